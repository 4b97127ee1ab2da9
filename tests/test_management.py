"""Decree 105/2021 management records from F11 events, and the monthly lists: terms ending within 30 days,
persons who moved with their transfer note (Mẫu 08); the Law 120/2025 deadline (24 hours from 1/7/2026)
applies by date; who was not visited this month is the persons list's (core.followup.overdue), which the
CLI shows. Both backends."""

from __future__ import annotations

from datetime import date

from assessment_support import encrypted_f1, opened
from entity_support import new_uuid, publish_national
from indicators_support import C1, H11, add
from rasoat.core.management import add_working_days, monthly_lists, records, terms_on


def event(store, person: str, event: str, day: str, **fields) -> None:
    add(store, "f11_management", H11, {"person_key": person, "event": event, "event_date": day, **fields},
        day=day)


def start(store, person: str, day: str, kind: str = "user", basis: str | None = None) -> None:
    extra = {"post_rehab_basis": basis} if basis else {}
    event(store, person, "decision_start", day, mgmt_kind=kind, decision_no=f"{person}/QĐ-UBND", **extra)


def checks(store, person: str, months: list[str]) -> None:
    for m in months:
        event(store, person, "residence_check", f"{m}-05", check_result="present")


def test_monthly_lists(tmp_path, backend_url) -> None:
    with opened(tmp_path, backend_url) as store:
        start(store, "a", "2026-01-15")  # 1 year (Law 73 Art. 23) → 15/01/2027: 18 days left on 28/12
        checks(store, "a", ["2026-11", "2026-12"])
        start(store, "b", "2025-12-15", "post_rehab", "compulsory_adult")  # 2 years → 15/12/2027
        checks(store, "b", ["2026-12"])
        event(store, "b", "team", "2025-12-16", member=[
            {"member_name": "Trần Văn Công", "member_role": "leader", "member_helper": "no"},
            {"member_name": "Lý Thị Mai", "member_role": "family", "member_helper": "yes"},
        ])
        event(store, "b", "cv", "2025-12-16", ethnicity="other", ethnicity_other="Thái",
              use_route="inhale oral", prior_rehab="yes", prior_rehab_count="2", use_frequency="week",
              use_times=3)
        start(store, "d", "2026-03-01")  # moved on Tuesday 8/12/2026: Law 120 → notify within 24 h
        event(store, "d", "residence_check", "2026-12-10", check_result="moved", moved_to="Xã Tả Lèng",
              moved_date="2026-12-08")
        start(store, "e", "2026-03-01")  # moved on Tuesday 2/6/2026: Decree 105 → 5 working days (9/6)
        event(store, "e", "residence_check", "2026-06-03", check_result="moved", moved_to="Phường Đoàn Kết",
              moved_date="2026-06-02")
        event(store, "e", "transfer", "2026-06-05", transfer_to="Công an phường Đoàn Kết",
              transfer_no="08/TB-CAX", transfer_items="decision cv test")
        start(store, "f", "2026-02-01")
        event(store, "f", "decision_stop", "2026-08-01", decision_no="09/QĐ", stop_reason="prison")
        start(store, "g", "2025-11-01")
        start(store, "g", "2026-03-01")  # a new positive use: a new decision, the term restarts
        checks(store, "g", ["2026-12"])

        recs = records(store, [C1, H11])
        assert recs["b"].end == date(2027, 12, 15) and recs["g"].end == date(2027, 3, 1)
        assert recs["f"].closed == "stopped:prison" and not recs["f"].active
        assert [m["name"] for m in recs["b"].team] == ["Trần Văn Công", "Lý Thị Mai"]
        assert recs["b"].cv["ethnicity_other"] == "Thái" and recs["b"].cv["prior_rehab_count"] == "2"

        lists = monthly_lists(recs, date(2026, 12, 28))
        assert [(r.person_key, left) for r, left in lists.ending] == [("a", 18)]
        moved = {r.person_key: (due, overdue) for r, due, overdue in lists.moved}
        assert moved == {"d": (date(2026, 12, 9), True), "e": (date(2026, 6, 9), False)}
        assert lists.unreadable == 0
        encrypted_f1(store, H11, "f11_management")  # a record the server cannot read is counted, not lost
        assert monthly_lists(records(store, [C1, H11]), date(2026, 12, 28)).unreadable == 1
        assert recs["e"].transfer["no"] == "08/TB-CAX"
        assert recs["e"].transfer["items"] == ["decision", "cv", "test"]


def test_a_moved_visit_starts_the_transfer_deadline(tmp_path, backend_url) -> None:
    """F12 (f12_visit) records the monthly residence check since F11 2026120730: a 'moved' visit starts the
    transfer deadline, as F11's older residence_check events did."""
    with opened(tmp_path, backend_url) as store:
        for person in ("v", "w", "x"):
            start(store, person, "2026-02-10")

        def visit(person: str, day: str, result: str = "present", **more: str) -> None:
            fields = {"person_key": person, "visit_date": day, "check_result": result, **more}
            add(store, "f12_visit", H11, fields, day=day)

        visit("v", "2026-12-04")
        visit("w", "2026-12-08", "moved", moved_to="Xã Tả Lèng", moved_date="2026-12-07")
        visit("x", "2026-11-30")
        event(store, "x", "residence_check", "2026-10-05", check_result="moved", moved_to="Xã Tả Lèng",
              moved_date="2026-10-02")  # an F11 record of an older version
        lists = monthly_lists(records(store, [C1, H11]), date(2026, 12, 28))
        assert {r.person_key: due for r, due, _ in lists.moved} == {"w": date(2026, 12, 8),
                                                                   "x": date(2026, 10, 3)}


def test_terms_change_by_date() -> None:
    before, after = terms_on(date(2026, 6, 30)), terms_on(date(2026, 7, 1))
    assert "transfer_hours" not in before.values and after.values["transfer_hours"] == 24
    assert before.transfer_due(date(2026, 6, 26)) == date(2026, 7, 3)  # Friday + 5 working days
    assert after.transfer_due(date(2026, 7, 3)) == date(2026, 7, 4)
    assert before.term_days("post_rehab", "compulsory_minor") == 365
    assert before.term_days("user", None) == 365 and before.term_days("post_rehab", "compulsory_adult") == 730
    assert add_working_days(date(2026, 12, 11), 1) == date(2026, 12, 14)  # Friday → Monday


def test_monthly_lists_through_the_cli(tmp_path, backend_url, capsys) -> None:
    import json

    from rasoat.core.cli import main as cli_main
    from rasoat.core.users import create_user
    from server_support import store_args

    data = tmp_path / "data"
    key, seen_key = new_uuid(), new_uuid()
    with opened(tmp_path, backend_url) as store:
        create_user(store, "xa.pt", "mật-khẩu-xã-9999", "commune_officer", [C1])
        create_user(store, "xa.khac", "mật-khẩu-xã-8888", "commune_officer", ["01843"])
        add(store, "f1_person", H11, {"person_key": key, "person_name": "Hà Văn Cường", "present": "yes"})
        start(store, key, "2026-02-10")
        publish_national(store, "f1_person")  # the persons list: who was not visited comes from it
        for k, visited in ((key, ""), (seen_key, "2026-12-03")):
            props = {"mgmt_status": "active", "term_end": "2027-02-10", "last_visit": visited}
            store.write_entity("persons", k, label=f"Người {k[:8]}", data=props, actor="test", unit_code=H11)
    base = [*store_args(data, backend_url), "--as-of", "2026-12-28"]
    assert cli_main(["management", "lists", C1, "--as", "xa.pt", "--json", *base]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["month"] == "2026-12"
    assert out["checks_missing"] == [{"person_key": key, "name": "Hà Văn Cường", "last_visit": ""}]
    assert cli_main(["management", "lists", C1, "--as", "xa.khac", *base]) == 1
    assert "05563" in capsys.readouterr().err
    with opened(tmp_path, backend_url) as store:
        views = [e for e in store.iter_audit() if e.action == "view.management"]
    seen = [(e.actor, e.details["filters"], e.details["count"]) for e in views]
    assert seen == [("xa.pt", {"commune": C1}, 1)]
