"""Counts and sums totalled by the store in SQL (``Store.aggregate``, issue 21 item 8) give exactly the
figures of the record-by-record scan, on both backends: every national indicator, and indicators made to
try each condition, window and odd answer, at every unit, compared field by field with the same evaluation
made with the store's grouping switched off. Sums use halves and quarters, exact in binary, so that adding
in another order cannot change a figure."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from indicators_support import C1, C2, C3, H11, H12, H21, PROVINCE, Scanning, add, small_registry
from rasoat.core.indicators.engine import evaluate
from rasoat.core.indicators.loading import load
from rasoat.core.indicators.models import Indicator
from rasoat.core.models import UNREAD_FIELD, ReviewState, Round, RoundState
from rasoat.core.storage.base import Store
from rasoat.core.storage.opening import open_store

UNITS = [PROVINCE, C1, C2, C3, H11, H12, H21, f"{C1}-77"]  # a hamlet the registry does not list
DAYS = ["2025-11-30", "2025-12-31", "2026-01-01", "2026-03-05", "2026-06-30", "2026-07-01", "2026-12-31"]
# the answers a date field gets: days, nothing, not text dates, a day with a time
DATES = [*DAYS, "", "2026", "không rõ", "2026-04-02T08:00:00+07:00"]
NUMBERS = ["3", "0", "12", "2.5", "-1", ".25", "007", "", "1.", None]
PLANTS = ["cannabis", "opium_poppy", "coca", 'tên "lạ" \\ cây', ""]


class Grouping(Scanning):
    """The store, noting which forms it totalled itself."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.totalled: set[str] = set()
        self.refused: set[str] = set()

    def aggregate(self, query: Any, *args: Any) -> Any:
        groups = self.store.aggregate(query, *args)
        (self.refused if groups is None else self.totalled).add(query.form_id)
        return groups


def _answers(rng: random.Random, form: str) -> dict[str, Any]:
    pick = rng.choice
    if form == "f2_pledge":
        return {"ref_date": pick(DATES), "households_total": pick(NUMBERS),
                "households_pledged": pick(NUMBERS)}
    if form == "f7_cultivation":
        return {"found_date": pick(DATES), "plant": pick(PLANTS), "area_m2": pick(NUMBERS),
                "plant_count": pick(NUMBERS), "destroyed": pick(["yes", "no", ""]),
                "recultivation": pick(["yes", "no", "", None])}
    if form == "f8_activity":
        return {"act_date": pick(DATES), "venue_type": pick(["hamlet", "school", "enterprise"]),
                "media_products": pick(NUMBERS)}
    return {"period_from": "2026-01-01", "period_to": pick(DATES), **{  # f9_case
        k: pick(NUMBERS) for k in ("fugitives_arrested", "tips_verified", "tips_received", "patrols",
                                   "networks_found", "drug_tests", "legal_aid_given", "legal_aid_requested")}}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, module_backend_url: str | None) -> Iterator[Store]:
    s = open_store(tmp_path_factory.mktemp("sql") / "data", module_backend_url)
    # a round that counts only approved records, and one with the default rule
    s.put_round(Round(id="approved-only", name="a", period="2026", form_ids=[], state=RoundState.open,
                      counted_states=[ReviewState.approved]))
    rng = random.Random(21)
    for n in range(240):
        form = ("f2_pledge", "f7_cultivation", "f8_activity", "f9_case")[n % 4]
        fields = {k: v for k, v in _answers(rng, form).items() if v is not None}
        unit, day = rng.choice(UNITS[1:]), rng.choice(DAYS)
        state = rng.choice([ReviewState.received, ReviewState.approved, ReviewState.rejected,
                            ReviewState.has_issues])
        round_id = rng.choice([None, None, "approved-only"])
        if n % 37 == 0:  # ODK-encrypted, not derived: its answers cannot be read (counted in every case)
            fields, unit, round_id = {UNREAD_FIELD: "c2VhbGVk"}, H11, "approved-only"
            state = ReviewState.approved
        add(s, form, unit, fields, day=day, state=state, round_id=round_id)
    # a summed answer the store does not read as Python does (a decimal comma): that form is scanned
    add(s, "f8_activity", H11, {"act_date": "2026-05-05", "venue_type": "school", "media_products": "1,5"},
        state=ReviewState.approved, round_id="approved-only")
    yield s
    s.close()


def _made(rows: list[tuple[str, dict[str, Any], dict[str, Any] | None]]) -> list[Indicator]:
    return [Indicator.model_validate({"id": i, "name_vi": i, "name_en": i, "level": "hamlet",
                                      "numerator": num, "denominator": den, "comparison": "previous"})
            for i, num, den in rows]


CULTIVATION = {"form": "f7_cultivation", "date_field": "found_date"}
TRIALS = _made([
    ("eq_ne", {**CULTIVATION, "where": [{"field": "destroyed", "op": "ne", "value": "yes"}]},
     {**CULTIVATION, "where": {"destroyed": "yes"}}),
    ("in_not_in",
     {**CULTIVATION, "where": [{"field": "plant", "op": "in", "value": [*PLANTS[:2], PLANTS[3]]}]},
     {**CULTIVATION, "where": [{"field": "plant", "op": "not_in", "value": ["coca", ""]}]}),
    ("exists_missing", {**CULTIVATION, "where": [{"field": "recultivation", "op": "exists"}]},
     {**CULTIVATION, "where": [{"field": "recultivation", "op": "missing"}]}),
    ("eq_none", {**CULTIVATION, "kind": "sum", "field": "area_m2", "where": {"recultivation": None}},
     {**CULTIVATION, "kind": "sum", "field": "plant_count",
      "where": [{"field": "recultivation", "op": "ne", "value": None}]}),
    ("to_date_all", {**CULTIVATION, "kind": "sum", "field": "area_m2", "window": "to_date"},
     {**CULTIVATION, "kind": "sum", "field": "area_m2", "window": "all"}),
    ("received", {"form": "f7_cultivation", "kind": "sum", "field": "area_m2"},
     {"form": "f7_cultivation"}),  # no date field: the received time; a plain count takes sealed records
    ("plain_dated", {**CULTIVATION}, {"form": "f2_pledge", "date_field": "ref_date", "window": "all"}),
])


def _national() -> list[Indicator]:
    import rasoat.core.builtin.national as pack

    return load(pack.indicators())


@pytest.mark.parametrize("how", [
    {"period": "2026"},
    {"period": "2026-Q3"},
    {"period": "2026", "counted_states": ["approved"]},
    {"period": "2026", "round_id": "approved-only"},
    {"period": "2026", "within": [C1]},
])
def test_sql_totals_equal_the_scan_for_every_indicator_and_unit(store: Store, how: dict[str, Any]) -> None:
    indicators = [*_national(), *TRIALS]
    kw = dict(how)
    units = kw.pop("within", [PROVINCE, C1, C2, C3])
    grouping = Grouping(store)
    by_sql = evaluate(grouping, units=units, level="hamlet", indicators=indicators,  # type: ignore[arg-type]
                      registry=small_registry(), **kw)
    by_scan = evaluate(Scanning(store), units=units, level="hamlet",  # type: ignore[arg-type]
                       indicators=indicators, registry=small_registry(), **kw)
    assert [r.model_dump() for r in by_sql] == [r.model_dump() for r in by_scan]
    # the store did total them (the decimal comma sends the activities form to the scan)
    assert grouping.totalled == {"f2_pledge", "f7_cultivation", "f9_case"}
    assert grouping.refused == {"f8_activity"}


def test_the_figures_compared_are_figures(store: Store) -> None:
    """What the comparison above compares is not zeros everywhere: each indicator made here and a
    national count and sum have a value somewhere, units reported, and sealed records left uncounted."""
    ids = {i.id for i in TRIALS} | {"nat_household_pledges", "nat_cultivation_area", "nat_patrols"}
    mine = [r for r in evaluate(store, "2026", units=[PROVINCE, C1, C2, C3], level="hamlet",
                                indicators=[*_national(), *TRIALS], registry=small_registry())
            if r.indicator_id in ids]
    assert all(any(r.value for r in mine if r.indicator_id == i) for i in ids)
    assert all(r.units_reported for r in mine if r.unit_code in (PROVINCE, C1))
    assert all(r.units_expected == 3 for r in mine if r.unit_code == PROVINCE)
    assert any(r.uncounted_encrypted for r in mine)


def test_the_store_refuses_what_it_cannot_total_exactly(store: Store) -> None:
    """A summed answer that is neither blank nor a plain number: None, so the engine reads the records."""
    from rasoat.core.storage.base import Span, SubmissionQuery, Tally

    spans = [Span(None, "", "\uffff", None, None)]
    query = SubmissionQuery(form_id="f8_activity")
    assert store.aggregate(query, spans, [Tally(0, (), "media_products")], UNREAD_FIELD) is None
    counted = store.aggregate(query, spans, [Tally(0, ())], UNREAD_FIELD)
    assert counted is not None
    assert sum(g.records[0] for g in counted) == store.count_submissions(query)


def test_an_older_sqlite_without_the_arrow_operator_scans(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ubuntu 22.04's SQLite (3.37) has no JSON ``->``: the store totals nothing and the engine reads the
    records, with the same figures."""
    from rasoat.core.storage import sql
    from rasoat.core.storage.base import Span, SubmissionQuery, Tally

    s = open_store(tmp_path / "data", None)
    for unit, pledged in ((H11, "2"), (H12, "1.5"), (H21, "4")):
        add(s, "f2_pledge", unit, {"ref_date": "2026-04-01", "households_pledged": pledged,
                                   "households_total": "5"})
    kw: dict[str, Any] = {"units": [PROVINCE], "level": "hamlet", "indicators": _national(),
                          "registry": small_registry()}
    grouped = evaluate(s, "2026", **kw)
    monkeypatch.setattr(sql, "SQLITE_HAS_ARROW", False)
    query = SubmissionQuery(form_id="f2_pledge")
    assert s.aggregate(query, [Span(None, "", "\uffff", None, None)], [Tally(0, ())], UNREAD_FIELD) is None
    assert [r.model_dump() for r in evaluate(s, "2026", **kw)] == [r.model_dump() for r in grouped]
    assert {r.value for r in grouped if r.indicator_id == "nat_household_pledges"} >= {7.5 / 15 * 100}
    s.close()
