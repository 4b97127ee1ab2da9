"""The engine on small hand-made indicators over a real EmbeddedStore: roll-up by sums, review states,
frozen snapshots for year-on-year, periods and time zones, de-duplication, unit selection."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from indicators_support import (
    C1,
    C2,
    C3,
    H11,
    H12,
    H21,
    PROVINCE,
    add,
    closed_round,
    run,
    small_registry,
)
from rasoat.core.indicators.engine import SNAPSHOT_FORMAT, build_snapshot, evaluate
from rasoat.core.indicators.loading import load
from rasoat.core.indicators.models import Indicator, Status
from rasoat.core.models import FormVersion, ReviewState, Round, RoundState
from rasoat.core.storage.base import Store, SubmissionQuery

PLEDGES = Indicator.model_validate({
    "id": "pledges",
    "name_vi": "Tỷ lệ hộ ký cam kết",
    "name_en": "Households pledged",
    "numerator": {"form": "f2_pledge", "kind": "sum", "field": "households_pledged"},
    "denominator": {"form": "f2_pledge", "kind": "sum", "field": "households_total"},
    "factor": 100,
    "comparison": "previous",
    "target": {"op": ">=", "value": 90, "deadline": 2030, "start": 2025},
})
PLEDGED_ROWS = Indicator.model_validate({
    "id": "pledged_rows",
    "name_vi": "Số hộ đã ký (theo danh sách)",
    "name_en": "Households pledged (list)",
    "numerator": {"form": "f2_pledge", "repeat": "household", "row_where": {"pledged": "yes"}},
})
ADDICTS = Indicator.model_validate({
    "id": "addicts",
    "name_vi": "Số người nghiện",
    "name_en": "Addicts",
    "numerator": {"form": "f1_person", "distinct": "person_key", "where": {"category": "addict"}},
    "comparison": "previous",
    "target": {"op": "<", "value": 1, "of": "change_pct", "each_period": True},
})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    from rasoat.core.storage.embedded import EmbeddedStore

    s = EmbeddedStore(tmp_path / "data")
    yield s
    s.close()


def pledge(store: Store, unit: str, pledged: int, total: int, **kw: object) -> str:
    sub = add(store, "f2_pledge", unit, {"households_pledged": str(pledged), "households_total": str(total)},
              **kw)  # type: ignore[arg-type]
    return sub.instance_id


# --- roll-up ----------------------------------------------------------------------------------------


def test_province_is_not_the_mean_of_its_communes(store: Store) -> None:
    pledge(store, H11, 9, 10)  # 90 %
    pledge(store, H12, 1, 90)  # 1.1 %  → C1 = 10 / 100 = 10 %
    pledge(store, H21, 2, 2)  # 100 % → C2
    r = run(store, indicators=[PLEDGES])
    assert r[(C1, "pledges")].value == pytest.approx(10)
    assert r[(C2, "pledges")].value == pytest.approx(100)
    province = r[(PROVINCE, "pledges")]
    assert (province.numerator, province.denominator) == (12, 102)
    assert province.value == pytest.approx(1200 / 102)
    assert province.value != pytest.approx((10 + 100) / 2)
    assert r[(C3, "pledges")].status is Status.no_data  # nothing reported is not 0 %


def test_repeat_rows_are_counted_with_row_filters(store: Store) -> None:
    add(store, "f2_pledge", H11, {"household": [{"pledged": "yes"}, {"pledged": "no"}, {"pledged": "yes"}]})
    add(store, "f2_pledge", H12, {"household": [{"pledged": "yes"}]})  # one row is still a list
    r = run(store, indicators=[PLEDGED_ROWS])
    assert r[(H11, "pledged_rows")].value == 2
    assert r[(C1, "pledged_rows")].value == 3


def test_zero_denominator_is_no_data_not_an_error(store: Store) -> None:
    pledge(store, H11, 0, 0)
    res = run(store, indicators=[PLEDGES])[(H11, "pledges")]
    assert (res.value, res.numerator, res.denominator, res.status) == (None, 0, 0, Status.no_data)


def test_hamlet_missing_from_the_registry_rolls_up_by_its_code(store: Store) -> None:
    pledge(store, f"{C1}-99", 1, 4)
    r = run(store, indicators=[PLEDGES], units=[C1, PROVINCE])
    assert r[(C1, "pledges")].value == pytest.approx(25)
    assert r[(PROVINCE, "pledges")].value == pytest.approx(25)


# --- which submissions count ------------------------------------------------------------------------


def test_review_states_follow_each_rounds_rule(store: Store) -> None:
    store.put_round(Round(id="strict", name="strict", period="2026", form_ids=["f2_pledge"],
                          counted_states=[ReviewState.approved]))
    pledge(store, H11, 1, 1, round_id="strict", state=ReviewState.approved)
    pledge(store, H11, 1, 1, round_id="strict", state=ReviewState.received)  # not approved: out
    pledge(store, H12, 1, 1)  # no round: everything but rejected counts
    pledge(store, H12, 1, 1, state=ReviewState.has_issues)
    pledge(store, H12, 5, 5, state=ReviewState.rejected)
    r = run(store, indicators=[PLEDGES])
    assert r[(H11, "pledges")].denominator == 1
    assert r[(H12, "pledges")].denominator == 2
    # the caller may impose one rule for everything
    r = run(store, indicators=[PLEDGES], counted_states=["approved"])
    assert r[(C1, "pledges")].denominator == 1
    # or keep one round only
    r = run(store, indicators=[PLEDGES], round_id="strict")
    assert r[(C1, "pledges")].denominator == 1


def test_only_the_current_version_of_an_edited_submission_counts(store: Store) -> None:
    first = pledge(store, H11, 1, 10)
    pledge(store, H11, 8, 10, deprecated_id=first)
    assert run(store, indicators=[PLEDGES])[(H11, "pledges")].value == pytest.approx(80)


def test_review_changes_after_the_fact_are_seen(store: Store) -> None:
    iid = pledge(store, H11, 1, 10)
    pledge(store, H11, 3, 10)
    store.set_review(iid, ReviewState.rejected, "trùng / duplicate", "officer")
    assert run(store, indicators=[PLEDGES])[(H11, "pledges")].value == pytest.approx(30)


# --- periods ---------------------------------------------------------------------------------------


def test_received_time_is_placed_in_vietnam_local_time(store: Store) -> None:
    # 2025-12-31 18:00 UTC is 2026-01-01 01:00 in Hà Nội: it belongs to 2026
    pledge(store, H11, 1, 2, received=datetime(2025, 12, 31, 18, 0, tzinfo=UTC))
    pledge(store, H11, 1, 8, received=datetime(2025, 12, 31, 16, 0, tzinfo=UTC))  # 23:00 local, 2025
    assert run(store, "2026", indicators=[PLEDGES])[(H11, "pledges")].denominator == 2
    assert run(store, "2025", indicators=[PLEDGES])[(H11, "pledges")].denominator == 8


def test_a_date_field_places_the_submission_and_blank_falls_back_to_received(store: Store) -> None:
    dated = PLEDGES.model_copy(update={
        "numerator": PLEDGES.numerator.model_copy(update={"date_field": "ref_date"}),
        "denominator": PLEDGES.denominator.model_copy(update={"date_field": "ref_date"}),  # type: ignore[union-attr]
        "comparison": PLEDGES.comparison.model_copy(update={"kind": "none"}),
    })
    add(store, "f2_pledge", H11, {"ref_date": "2025-12-20", "households_pledged": "1",
                                  "households_total": "4"}, day="2026-01-05")  # sent late: counts in 2025
    add(store, "f2_pledge", H11, {"ref_date": "", "households_pledged": "1", "households_total": "2"},
        day="2026-02-01")
    assert run(store, "2025", indicators=[dated])[(H11, "pledges")].denominator == 4
    assert run(store, "2026", indicators=[dated])[(H11, "pledges")].denominator == 2


def test_quarters_halves_and_months(store: Store) -> None:
    pledge(store, H11, 1, 1, day="2026-02-10")
    pledge(store, H11, 1, 2, day="2026-05-10")
    pledge(store, H11, 1, 4, day="2026-08-10")
    dens = {p: run(store, p, indicators=[PLEDGES])[(H11, "pledges")].denominator
            for p in ("2026-Q1", "2026-Q2", "2026-H1", "2026-H2", "2026-05", "2026")}
    assert dens == {"2026-Q1": 1, "2026-Q2": 2, "2026-H1": 3, "2026-H2": 4, "2026-05": 2, "2026": 7}
    # the previous quarter is the comparison
    q2 = run(store, "2026-Q2", indicators=[PLEDGES])[(H11, "pledges")]
    assert q2.previous_period == "2026-Q1"


# --- de-duplication ---------------------------------------------------------------------------------


def test_distinct_people_are_counted_once_across_the_roll_up(store: Store) -> None:
    add(store, "f1_person", H11, {"person_key": "K1", "category": "addict"})
    add(store, "f1_person", H11, {"person_key": "K1", "category": "addict"}, day="2026-05-01")  # revisit
    add(store, "f1_person", H21, {"person_key": "K1", "category": "addict"}, day="2026-06-01")  # moved
    add(store, "f1_person", H21, {"person_key": "K2", "category": "addict"})
    r = run(store, indicators=[ADDICTS])
    assert r[(H11, "addicts")].value == 1
    assert r[(C2, "addicts")].value == 2
    assert r[(PROVINCE, "addicts")].value == 2  # K1 once, though listed in two communes


def test_latest_record_per_key_with_carried_answers(store: Store) -> None:
    """A site's baseline flag is on its first record only; its status changes later."""
    ind = load({
        "id": "baseline_done", "name_vi": "x", "name_en": "x", "factor": 100,
        "numerator": {"form": "f6_hotspot", "latest_by": "site_key", "carry_forward": True,
                      "window": "to_date", "date_field": "ref_date",
                      "where": {"baseline": True, "status": "eliminated"}},
        "denominator": {"form": "f6_hotspot", "latest_by": "site_key", "carry_forward": True,
                        "window": "to_date", "date_field": "ref_date", "where": {"baseline": True}},
    })
    add(store, "f6_hotspot", H11, {"site_key": "S", "ref_date": "2021-01-01", "baseline": "yes",
                                   "status": "identified"}, day="2021-01-01")
    add(store, "f6_hotspot", H11, {"site_key": "S", "ref_date": "2026-03-01", "status": "eliminated"})
    # sent after the elimination but dated before it: the older answer does not win
    add(store, "f6_hotspot", H11, {"site_key": "S", "ref_date": "2025-03-01", "status": "identified"},
        day="2026-04-01")
    assert run(store, "2026", indicators=ind)[(H11, "baseline_done")].value == 100
    assert run(store, "2025", indicators=ind)[(H11, "baseline_done")].value == 0


# --- comparisons and frozen snapshots --------------------------------------------------------------


def test_year_on_year_uses_the_frozen_snapshot_which_later_edits_do_not_change(store: Store) -> None:
    reg = small_registry()
    first = pledge(store, H11, 5, 10, day="2025-04-01")
    rnd = closed_round(store, "r2025", "2025", ["f2_pledge"])
    snap = build_snapshot(store, rnd, indicators=[PLEDGES], registry=reg)
    store.put_snapshot(rnd.id, snap)
    # after closing: the 2025 record is corrected and another 2025 record arrives late
    pledge(store, H11, 10, 10, day="2025-05-01", deprecated_id=first)
    pledge(store, H12, 0, 10, day="2025-06-01")
    pledge(store, H11, 6, 10, day="2026-04-01")
    res = run(store, "2026", indicators=[PLEDGES], registry=reg)[(H11, "pledges")]
    assert res.previous_source == "snapshot:r2025"
    assert res.previous_value == pytest.approx(50)  # frozen, not the corrected 100
    assert res.change == pytest.approx(10)
    assert res.change_pct == pytest.approx(20)
    # 60 of 90 is 66.7 % of the way; two years of 2025–2030's six are gone (33.3 %)
    assert res.status is Status.on_track
    # the province's previous value is the frozen one too
    assert run(store, "2026", indicators=[PLEDGES], registry=reg)[(PROVINCE, "pledges")].previous_value == 50
    # without a closed round, the comparison is computed live and says so
    store.put_round(rnd.model_copy(update={"state": RoundState.open}))
    live = run(store, "2026", indicators=[PLEDGES], registry=reg)[(C1, "pledges")]
    assert live.previous_source == "live" and live.previous_value == pytest.approx(50)  # 10/20


def test_growth_target_on_the_change(store: Store) -> None:
    for i in range(100):
        add(store, "f1_person", H11, {"person_key": f"A{i}", "category": "addict"}, day="2025-03-01")
    for i in range(101):
        add(store, "f1_person", H11, {"person_key": f"A{i}", "category": "addict"}, day="2026-03-01")
    res = run(store, "2026", indicators=[ADDICTS])[(PROVINCE, "addicts")]
    assert (res.value, res.previous_value, res.change) == (101, 100, 1)
    assert res.compared_value == pytest.approx(1.0)
    assert res.status is Status.not_met  # +1 % is not < 1 %
    add(store, "f1_person", H11, {"person_key": "A0", "category": "addict"}, day="2025-06-01")
    assert run(store, "2026", indicators=[ADDICTS])[(PROVINCE, "addicts")].status is Status.not_met
    # last year unknown: the change is unknown, so is the status
    res = run(store, "2027", indicators=[ADDICTS])[(PROVINCE, "addicts")]
    assert res.status is Status.no_data


def test_base_year_comparison(store: Store) -> None:
    cases = load({"id": "cases", "name_vi": "Số vụ", "name_en": "Cases",
                  "numerator": {"form": "f9_case", "kind": "sum", "field": "cases_total"},
                  "comparison": {"kind": "base_year", "base_year": 2023},
                  "target": {"op": ">=", "value": 5, "on": "change_pct"}})
    add(store, "f9_case", C1, {"cases_total": "20"}, day="2023-05-01")
    add(store, "f9_case", C1, {"cases_total": "100"}, day="2025-05-01")
    add(store, "f9_case", C1, {"cases_total": "21"}, day="2026-05-01")
    res = run(store, "2026", indicators=cases)[(C1, "cases")]
    assert (res.previous_period, res.previous_value, res.change_pct) == ("2023", 20, pytest.approx(5))
    assert res.status is Status.met


def test_freeze_snapshot_holds_every_level(store: Store) -> None:
    pledge(store, H11, 1, 2, day="2025-04-01")
    pledge(store, H21, 1, 4, day="2025-04-01")
    rnd = Round(id="r", name="r", period="2025", form_ids=["f2_pledge", "f1_person"])
    snap = build_snapshot(store, rnd, indicators=[PLEDGES, ADDICTS, PLEDGED_ROWS], registry=small_registry())
    assert snap["format"] == SNAPSHOT_FORMAT and snap["period"] == "2025" and snap["round_id"] == "r"
    units = snap["indicators"]["pledges"]["units"]
    assert units == {H11: [1, 2, 50], C1: [1, 2, 50], H21: [1, 4, 25], C2: [1, 4, 25],
                     PROVINCE: [2, 6, pytest.approx(100 / 3)]}
    assert snap["indicators"]["pledges"]["definition"]["id"] == "pledges"
    assert snap["indicators"]["addicts"]["units"] == {}
    # a round of other forms freezes only the indicators that read them
    other = build_snapshot(store, Round(id="o", name="o", period="2025", form_ids=["f5_hamlet"]),
                           indicators=[PLEDGES], registry=small_registry())
    assert other["indicators"] == {}


def test_snapshot_measure_reads_a_frozen_baseline(store: Store) -> None:
    pledge(store, H11, 2, 10, day="2021-04-01")
    base = closed_round(store, "baseline", "2021", ["f2_pledge"])
    store.put_snapshot(base.id, build_snapshot(store, base, indicators=[PLEDGES], registry=small_registry()))
    vs_base = load({"id": "vs_base", "name_vi": "x", "name_en": "x", "factor": 100,
                    "numerator": {"form": "f2_pledge", "kind": "sum", "field": "households_pledged"},
                    "denominator": {"kind": "snapshot", "round_id": "baseline", "indicator": "pledges",
                                    "part": "denominator"}})
    pledge(store, H11, 7, 12)
    r = run(store, "2026", indicators=vs_base)
    assert r[(H11, "vs_base")].value == pytest.approx(70)  # 7 of the 10 households frozen in 2021
    assert r[(C1, "vs_base")].denominator == 10
    assert r[(H12, "vs_base")].status is Status.no_data


def test_closing_a_round_through_core_rounds_freezes_indicator_values(store: Store) -> None:
    from rasoat.core.round_lifecycle import close_round, open_round
    from rasoat.core.rounds import create_round

    xml = b"<h:html/>"
    store.put_form(FormVersion(form_id="f2_pledge", version="1", title="f2",
                               md5=hashlib.md5(xml).hexdigest()), xml, {}, {})
    rnd = create_round(store, "Cam kết 2025", "2025", ["f2_pledge"], [C1])
    open_round(store, rnd.id)
    add(store, "f2_pledge", "05563-01", {"ref_date": "2025-04-01", "households_total": "4",
                                         "households_pledged": "3"}, round_id=rnd.id, day="2025-04-01")
    close_round(store, rnd.id)
    snap = store.get_snapshot(rnd.id)
    assert snap is not None and snap["format"] == SNAPSHOT_FORMAT
    assert snap["indicators"]["nat_household_pledges"]["units"][C1] == [3, 4, 75]
    assert "lifecycle" in snap  # the rounds module's counts sit beside ours
    res = {(r.unit_code, r.indicator_id): r for r in evaluate(store, "2026", units=[C1])}
    assert res[(C1, "nat_household_pledges")].previous_source == f"snapshot:{rnd.id}"
    assert res[(C1, "nat_household_pledges")].previous_value == 75


# --- unit selection ------------------------------------------------------------------------------------


def test_unit_selection(store: Store) -> None:
    pledge(store, H11, 1, 2)
    pledge(store, H21, 1, 2)
    reg = small_registry()
    got = [(r.unit_code, r.level.value) for r in evaluate(store, "2026", indicators=[PLEDGES], registry=reg)]
    assert got == [(PROVINCE, "province")]  # nothing asked: provinces with data
    got = [r.unit_code for r in evaluate(store, "2026", level="commune", indicators=[PLEDGES], registry=reg)]
    assert got == [C1, C2]  # a level alone: units of it with data
    got = [r.unit_code for r in evaluate(store, "2026", units=[PROVINCE], level="commune",
                                         indicators=[PLEDGES], registry=reg)]
    assert got == [PROVINCE, C1, C2, C3]  # the unit, then every commune in it (C3 shows "no data")
    commune_only = PLEDGES.model_copy(update={"level": "commune"})
    got = [r.unit_code for r in evaluate(store, "2026", units=[C1], level="hamlet", indicators=[commune_only],
                                         registry=reg)]
    assert got == [C1]  # hamlet rows are skipped for a commune-level indicator


def test_iter_facts_default_gives_only_the_asked_fields(store: Store) -> None:
    add(store, "f2_pledge", H11, {"households_total": "3", "household": [{"pledged": "yes"}]}, round_id="x")
    (fact,) = list(store.iter_facts(SubmissionQuery(form_id="f2_pledge"), ["household", "absent"]))
    assert fact.unit_code == H11 and fact.round_id == "x" and fact.review_state == "received"
    assert fact.fields == {"household": [{"pledged": "yes"}]}
    assert fact.received_at.tzinfo is not None
