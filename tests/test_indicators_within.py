"""Figures for some units read only those units' records (issue 21 item 8: a commune officer's indicator
page over a province of 100,000 read all of them): the same figures as a whole evaluation, hamlets the
registry does not list included, on both backends; the evidence is the records read, not a time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from indicators_support import C1, C2, H11, H12, H21, PROVINCE, add, small_registry, table
from rasoat.core.indicators.engine import evaluate, evaluate_history
from rasoat.core.indicators.models import Indicator
from rasoat.core.storage.base import Store, SubmissionQuery
from rasoat.core.storage.opening import open_store

PLEDGES = Indicator.model_validate({
    "id": "pledges", "name_vi": "Tỷ lệ hộ ký cam kết", "name_en": "Households pledged",
    "numerator": {"form": "f2_pledge", "kind": "sum", "field": "households_pledged"},
    "denominator": {"form": "f2_pledge", "kind": "sum", "field": "households_total"},
    "factor": 100, "comparison": "previous",
})
UNLISTED = f"{C1}-99"  # a hamlet the registry does not list: it still belongs to C1


class Counting:
    """The store, counting the records the engine reads: the facts it scans and those the store totals
    for it (``aggregate``: the records its query selects)."""

    def __init__(self, store: Store) -> None:
        self.store, self.read = store, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def iter_facts(self, *args: Any, **kw: Any) -> Iterator[Any]:
        for fact in self.store.iter_facts(*args, **kw):
            self.read += 1
            yield fact

    def aggregate(self, query: SubmissionQuery, *args: Any) -> Any:
        groups = self.store.aggregate(query, *args)
        if groups is not None:
            self.read += self.store.count_submissions(query)
        return groups


@pytest.fixture
def store(tmp_path: Path, backend_url: str | None) -> Iterator[Store]:
    s = open_store(tmp_path / "data", backend_url)
    for unit, pledged, total in ((H11, 9, 10), (H12, 1, 90), (UNLISTED, 1, 4), (C1, 2, 2), (H21, 5, 5),
                                 (C2, 3, 4), (C2, 1, 1)):
        add(s, "f2_pledge", unit, {"households_pledged": str(pledged), "households_total": str(total)})
    yield s
    s.close()


def test_a_communes_figures_read_only_its_records(store: Store) -> None:
    reg = small_registry()
    whole = table(evaluate(store, "2026", units=[PROVINCE, C1, C2], level="hamlet", indicators=[PLEDGES],
                           registry=reg))  # the whole province is read
    counting = Counting(store)
    mine = table(evaluate(counting, "2026", units=[C1], level="hamlet",  # type: ignore[arg-type]
                          indicators=[PLEDGES], registry=reg))
    assert counting.read == 4  # C1's four records (one at a hamlet the registry lacks), not C2's three
    assert {k for k in mine if k[0] == UNLISTED} == {(UNLISTED, "pledges")}
    for key, result in mine.items():
        assert (result.numerator, result.denominator, result.value) == (
            whole[key].numerator, whole[key].denominator, whole[key].value), key
    assert (mine[(C1, "pledges")].numerator, mine[(C1, "pledges")].denominator) == (13, 106)


def test_a_units_history_reads_only_its_records(store: Store) -> None:
    counting = Counting(store)
    history = evaluate_history(counting, PLEDGES, C2, ["2025", "2026"],  # type: ignore[arg-type]
                               registry=small_registry())
    assert counting.read == 3
    assert (history[1].numerator, history[1].denominator) == (9, 10)


def test_the_store_lists_every_unit_records_are_filed_under(store: Store) -> None:
    assert store.filed_unit_codes() == {H11, H12, UNLISTED, C1, H21, C2}


def test_the_units_below_can_take_one_indicator_with_the_figures_of_the_whole(store: Store) -> None:
    """A page showing one indicator's communes (the indicator page, the pledge block) builds their results
    only, not every indicator's: the province keeps every indicator, and each result built is the one the
    whole evaluation gives (which units reported depends on every form scanned, so all are computed)."""
    visits = Indicator.model_validate({
        "id": "visits", "name_vi": "Số lần kiểm tra", "name_en": "Visits",
        "numerator": {"form": "f12_visit", "if_empty": "zero"}, "unit_label": "lần", "comparison": "previous",
    })
    add(store, "f12_visit", C2, {})
    reg = small_registry()
    whole = table(evaluate(store, "2026", units=[PROVINCE], level="commune", indicators=[PLEDGES, visits],
                           registry=reg))
    for shown in ("pledges", "visits"):
        some = table(evaluate(store, "2026", units=[PROVINCE], level="commune", indicators=[PLEDGES, visits],
                              registry=reg, below={shown}))
        assert set(some) == {k for k in whole if k[0] == PROVINCE or k[1] == shown}
        assert {(C1, shown), (C2, shown), (PROVINCE, "pledges"), (PROVINCE, "visits")} <= set(some)
        for key, result in some.items():
            assert result == whole[key], key
