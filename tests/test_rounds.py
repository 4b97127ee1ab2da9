"""Round lifecycle: creation checks, allowed and refused transitions, audit, snapshots, what phones see."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from rasoat.core.cli import main as cli_main
from rasoat.core.models import FormVersion, ReviewState, Role, RoundState, Submission, User
from rasoat.core.round_lifecycle import archive_round, close_round, open_round, reopen_round
from rasoat.core.rounds import (
    RoundError,
    assign_collectors,
    create_round,
    make_round_id,
    parse_period,
    round_for_submission,
    set_counted_states,
    visible_form_ids,
)
from rasoat.core.storage.base import Store

FORMS = ["f1_person", "f2_pledge", "f5_hamlet"]


def publish(store: Store, *form_ids: str) -> None:
    for form_id in form_ids:
        xml = f'<h:html xmlns:h="http://www.w3.org/1999/xhtml"><!-- {form_id} --></h:html>'.encode()
        md5 = hashlib.md5(xml).hexdigest()
        store.put_form(FormVersion(form_id=form_id, version="1", title=form_id, md5=md5), xml, {}, {})


def open_embedded(path: Path) -> Store:
    from rasoat.core.storage.embedded import EmbeddedStore

    return EmbeddedStore(path)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_embedded(tmp_path / "data")
    publish(s, *FORMS)
    yield s
    s.close()


def save(store: Store, instance_id: str, form_id: str, round_id: str, unit: str) -> None:
    xml = f'<data id="{form_id}"><meta><instanceID>{instance_id}</instanceID></meta></data>'.encode()
    sub = Submission(
        instance_id=instance_id,
        form_id=form_id,
        form_version="1",
        round_id=round_id,
        unit_code=unit,
        xml_md5=hashlib.md5(xml).hexdigest(),
        fields={"commune": unit.split("-")[0], "hamlet": unit, "meta/instanceID": instance_id},
    )
    store.save_submission(sub, xml, {})


# --- periods and ids ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("period", "first", "last"),
    [
        ("2026", "2026-01-01", "2026-12-31"),
        ("2026-H1", "2026-01-01", "2026-06-30"),
        ("2026-H2", "2026-07-01", "2026-12-31"),
        ("2026-Q3", "2026-07-01", "2026-09-30"),
        ("2026-05", "2026-05-01", "2026-05-31"),
        ("2026-12", "2026-12-01", "2026-12-31"),
    ],
)
def test_periods(period: str, first: str, last: str) -> None:
    start, end = parse_period(period)
    assert (start.isoformat(), end.isoformat()) == (first, last)


@pytest.mark.parametrize("bad", ["26", "2026-Q5", "2026-13", "2026-H3", "năm 2026", ""])
def test_bad_periods_are_refused(bad: str) -> None:
    with pytest.raises(RoundError, match="Invalid period"):
        parse_period(bad)


def test_round_ids_are_short_and_readable() -> None:
    assert make_round_id("Rà soát 2026", "2026", ["05563"]) == "r-2026-ra-soat-05563"
    assert make_round_id("Cam kết hộ gia đình", "2026-H1", ["19", "05563"]) == "r-2026-h1-cam-ket-ho-gia-dinh"
    again = make_round_id("Rà soát 2026", "2026", ["05563"], taken={"r-2026-ra-soat-05563"})
    assert again.startswith("r-2026-ra-soat-05563-") and len(again) == len("r-2026-ra-soat-05563-") + 4


# --- create ------------------------------------------------------------------------------------
def test_create_checks_forms_units_kind_and_collectors(store: Store) -> None:
    with pytest.raises(RoundError, match="Unknown form.*f99_nothing"):
        create_round(store, "Rà soát 2026", "2026", ["f1_person", "f99_nothing"], ["05563"])
    with pytest.raises(RoundError, match="Unknown unit.*99999"):
        create_round(store, "Rà soát 2026", "2026", ["f1_person"], ["99999"])
    with pytest.raises(RoundError, match="Unknown round kind"):
        create_round(store, "Rà soát 2026", "2026", ["f1_person"], ["05563"], kind="party")
    with pytest.raises(RoundError, match="Unknown user 'nobody'"):
        create_round(store, "Rà soát 2026", "2026", ["f1_person"], ["05563"], collectors=["nobody"])
    with pytest.raises(RoundError, match="at least one form"):
        create_round(store, "Rà soát 2026", "2026", [], ["05563"])
    assert store.list_rounds() == []

    store.put_user(User(id="u-1", username="thu", role=Role.collector, unit_codes=["05563"]))
    rnd = create_round(
        store, "Rà soát 2026", "2026", ["f1_person"], ["05563"], collectors=["thu"], actor="admin"
    )
    assert (rnd.id, rnd.kind, rnd.state, rnd.collector_ids) == (
        "r-2026-ra-soat-05563",
        "census",
        "draft",
        ["u-1"],
    )
    assert rnd.counted_states == [s for s in ReviewState if s is not ReviewState.rejected]
    stored = store.get_round(rnd.id)
    assert stored is not None and stored.history[0]["action"] == "create"
    pledge = create_round(store, "Cam kết 2026", "2026", ["f2_pledge"], ["19"])
    assert pledge.kind == "pledge"  # kind follows the first form when not given


def test_transitions_allowed_and_refused(store: Store) -> None:
    rnd = create_round(store, "Rà soát 2026", "2026", ["f5_hamlet"], ["05563"])
    with pytest.raises(RoundError, match="Cannot move round from draft to closed"):
        close_round(store, rnd.id)
    with pytest.raises(RoundError, match="Cannot move round from draft to archived"):
        archive_round(store, rnd.id)
    assert open_round(store, rnd.id, actor="officer").state is RoundState.open
    with pytest.raises(RoundError, match="Cannot move round from open to open"):
        open_round(store, rnd.id)
    with pytest.raises(RoundError, match="Cannot move round from open to archived"):
        archive_round(store, rnd.id)
    assert close_round(store, rnd.id).state is RoundState.closed
    with pytest.raises(RoundError, match="reopen it with"):
        open_round(store, rnd.id)  # closed → open only as an explicit reopen
    with pytest.raises(RoundError, match="needs a reason"):
        reopen_round(store, rnd.id, reason="  ")
    assert reopen_round(store, rnd.id, reason="Thiếu xóm 3 / hamlet 3 missing").state is RoundState.open
    close_round(store, rnd.id)
    assert archive_round(store, rnd.id).state is RoundState.archived
    for move in (open_round, close_round, archive_round):
        with pytest.raises(RoundError, match="Cannot move round from archived"):
            move(store, rnd.id)
    with pytest.raises(RoundError, match="Cannot move round from archived to open"):
        reopen_round(store, rnd.id, reason="x")
    with pytest.raises(RoundError, match="No round 'r-nope'"):
        open_round(store, "r-nope")

    stored = store.get_round(rnd.id)
    assert stored is not None
    assert [h["action"] for h in stored.history] == ["create", "open", "close", "reopen", "close", "archive"]
    reopen = stored.history[3]
    assert (reopen["from"], reopen["to"], reopen["reason"]) == (
        "closed",
        "open",
        "Thiếu xóm 3 / hamlet 3 missing",
    )
    audit = [e for e in store.iter_audit() if e.target == rnd.id]
    assert [e.action for e in audit] == [
        "round.create",
        "round.open",
        "round.close",
        "round.reopen",
        "round.close",
        "round.archive",
    ]
    assert audit[1].actor == "officer" and audit[3].details["reason"].startswith("Thiếu xóm 3")


def test_close_freezes_counted_snapshot_and_hides_forms(store: Store) -> None:
    rnd = create_round(store, "Rà soát xóm 2026", "2026", ["f5_hamlet"], ["05563"])
    assert visible_form_ids(store, ["05563"]) == set()  # a draft is not on phones
    open_round(store, rnd.id)
    assert visible_form_ids(store, ["05563"]) == {"f5_hamlet"}
    assert visible_form_ids(store, ["19"]) == {"f5_hamlet"}  # a province officer's scope covers it
    assert visible_form_ids(store, ["05569"]) == set()  # another commune
    assert round_for_submission(store, "f5_hamlet", "05563-01").id == rnd.id  # type: ignore[union-attr]
    assert round_for_submission(store, "f5_hamlet", "05569") is None

    save(store, "uuid:a", "f5_hamlet", rnd.id, "05563-01")
    save(store, "uuid:b", "f5_hamlet", rnd.id, "05563-02")
    save(store, "uuid:c", "f5_hamlet", rnd.id, "05563-02")
    store.set_review("uuid:c", ReviewState.rejected, "trùng / duplicate", "officer")
    close_round(store, rnd.id)
    assert visible_form_ids(store, ["05563"]) == set()
    assert round_for_submission(store, "f5_hamlet", "05563-01") is None

    snap = store.get_snapshot(rnd.id)
    assert snap is not None and snap["round_id"] == rnd.id
    assert "indicators" in snap  # the indicators engine's frozen values sit beside the lifecycle counts
    counts = snap["lifecycle"]["forms"]["f5_hamlet"]
    assert counts == {"total": 2, "by_unit": {"05563-01": 1, "05563-02": 1}, "by_commune": {"05563": 2}}
    # A rejected submission after closing does not change the frozen snapshot.
    store.set_review("uuid:a", ReviewState.rejected, "sai xóm", "officer")
    assert store.get_snapshot(rnd.id)["lifecycle"]["forms"]["f5_hamlet"]["total"] == 2  # type: ignore[index]


def test_counted_states_rule_changes_the_snapshot(store: Store) -> None:
    rnd = create_round(store, "Rà soát xóm 2026", "2026", ["f5_hamlet"], ["05563"])
    set_counted_states(store, rnd.id, ["approved"], actor="officer")
    with pytest.raises(RoundError, match="Invalid review state"):
        set_counted_states(store, rnd.id, ["fine"])
    open_round(store, rnd.id)
    save(store, "uuid:a", "f5_hamlet", rnd.id, "05563-01")
    save(store, "uuid:b", "f5_hamlet", rnd.id, "05563-02")
    store.set_review("uuid:b", ReviewState.approved, "", "officer")
    close_round(store, rnd.id)
    assert store.get_snapshot(rnd.id)["lifecycle"]["forms"]["f5_hamlet"]["total"] == 1  # type: ignore[index]


def test_two_open_rounds_may_not_share_a_form_over_the_same_units(store: Store) -> None:
    a = create_round(store, "Xóm 2026 đợt 1", "2026-H1", ["f5_hamlet"], ["05563"])
    b = create_round(store, "Xóm 2026 toàn tỉnh", "2026-H1", ["f5_hamlet", "f2_pledge"], ["19"])
    c = create_round(store, "Cam kết 2026", "2026-H1", ["f2_pledge"], ["05563"])
    open_round(store, a.id)
    with pytest.raises(RoundError, match=f"Round '{a.id}' is open with form.*f5_hamlet"):
        open_round(store, b.id)
    open_round(store, c.id)  # another form over the same commune is fine
    assert visible_form_ids(store, ["05563"]) == {"f5_hamlet", "f2_pledge"}


def test_assign_collectors_until_closed(store: Store) -> None:
    store.put_user(User(id="u-1", username="thu", role=Role.collector, unit_codes=["05563"]))
    store.put_user(User(id="u-2", username="lan", role=Role.collector, unit_codes=["05563"]))
    rnd = create_round(store, "Xóm 2026", "2026", ["f5_hamlet"], ["05563"], collectors=["thu"])
    assign_collectors(store, rnd.id, ["u-2", "thu"])
    open_round(store, rnd.id)
    assert store.get_round(rnd.id).collector_ids == ["u-1", "u-2"]  # type: ignore[union-attr]
    assert visible_form_ids(store, ["05563"], collector_id="u-2") == {"f5_hamlet"}
    assert visible_form_ids(store, ["05563"], collector_id="u-3") == set()  # not assigned
    close_round(store, rnd.id)
    with pytest.raises(RoundError, match="no collectors can be added"):
        assign_collectors(store, rnd.id, ["lan"])


# --- CLI ---------------------------------------------------------------------------------------
def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli_main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_create_open_close_list(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # a wide terminal: table cells are not wrapped
    data = str(tmp_path / "data")
    s = open_embedded(Path(data))
    publish(s, *FORMS)
    s.close()

    code, out, _ = run(
        capsys,
        "rounds",
        "create",
        "Rà soát 2026",
        "--period",
        "2026",
        "--forms",
        "f1_person",
        "--units",
        "05563",
        "--data",
        data,
    )
    assert code == 0 and out.strip() == "r-2026-ra-soat-05563"
    code, out, _ = run(
        capsys,
        "rounds",
        "create",
        "Cam kết 2026",
        "--period",
        "2026-H1",
        "--forms",
        "f2_pledge,f5_hamlet",
        "--units",
        "05563,05569",
        "--kind",
        "pledge",
        "--json",
        "--data",
        data,
    )
    assert code == 0
    created = json.loads(out)
    assert (created["kind"], created["state"], created["unit_codes"]) == (
        "pledge",
        "draft",
        ["05563", "05569"],
    )
    pledge_id = created["id"]

    assert run(capsys, "rounds", "open", "r-2026-ra-soat-05563", "--data", data)[0] == 0
    code, out, _ = run(capsys, "rounds", "list", "--json", "--data", data)
    listed = {r["id"]: r for r in json.loads(out)}
    assert listed["r-2026-ra-soat-05563"]["state"] == "open" and listed[pledge_id]["state"] == "draft"
    assert listed["r-2026-ra-soat-05563"]["kind_label"].startswith("Tổng rà soát")

    assert run(capsys, "rounds", "close", "r-2026-ra-soat-05563", "--data", data)[0] == 0
    code, out, err = run(capsys, "rounds", "open", "r-2026-ra-soat-05563", "--data", data)
    assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "reopen" in err
    with pytest.raises(SystemExit) as exited:  # argparse: --reason is required
        cli_main(["rounds", "reopen", "r-2026-ra-soat-05563", "--data", data])
    assert exited.value.code == 2 and "--reason" in capsys.readouterr().err
    code, out, _ = run(
        capsys, "rounds", "reopen", "r-2026-ra-soat-05563", "--reason", "bổ sung", "--json", "--data", data
    )
    assert code == 0 and json.loads(out)["state"] == "open"
    code, _, err = run(capsys, "rounds", "archive", pledge_id, "--data", data)
    assert code == 1 and err.strip() == (
        "Lỗi / Error: Không thể chuyển đợt từ 'draft' sang 'archived' / "
        "Cannot move round from draft to archived"
    )
    code, out, _ = run(capsys, "rounds", "list", "--data", data)
    assert code == 0 and "r-2026-ra-soat-05563" in out and "Đang mở / Open" in out
    code, _, err = run(
        capsys,
        "rounds",
        "create",
        "X",
        "--period",
        "2026",
        "--forms",
        "f1_person",
        "--units",
        "99999",
        "--data",
        data,
    )
    assert code == 1 and "Unknown unit code(s): 99999" in err

    code, out, _ = run(capsys, "rounds", "show", "r-2026-ra-soat-05563", "--json", "--data", data)
    history = json.loads(out)["history"]
    assert [h["action"] for h in history] == [
        "create",
        "open",
        "rollforward",
        "close",
        "reopen",
        "rollforward",
    ]
