"""The indicator engine keeps what a form's record-by-record scan found (``core.indicators.kept_scans``,
issue 21 item 8): the register of persons is read again only when one of its records changed, and the
figures are always those of a fresh evaluation, on both engines."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from indicators_support import C1, C2, H11, H12, H21, PROVINCE, add, small_registry
from rasoat.core.indicators import kept_scans
from rasoat.core.indicators.engine import evaluate
from rasoat.core.indicators.models import Indicator
from rasoat.core.models import UNREAD_FIELD, ReviewState, Round, RoundState
from rasoat.core.storage.base import Store
from rasoat.core.storage.opening import open_store

PERSONS = {"form": "f1_person", "latest_by": "person_key", "carry_forward": True}
INDICATORS = [Indicator.model_validate({"id": i, "name_vi": i, "name_en": i, "level": "hamlet",
                                        "numerator": num, "denominator": None, "comparison": "none"})
              for i, num in [
                  ("using_now", {**PERSONS, "window": "to_date", "where": {"status": "using"}}),
                  ("persons_seen", {"form": "f1_person", "distinct": "person_key"}),
                  ("statuses_now", {**PERSONS, "distinct": "status"}),  # a set: each person's folded again
                  ("last_visit_using", {"form": "f1_person", "latest_by": "person_key", "date_field": "visit",
                                        "window": "to_date", "where": {"status": "using"}}),
                  ("pledges", {"form": "f2_pledge"}),
              ]]


class Counting:
    """The store, noting which forms were read record by record, from which mark (None: all of them)
    and how many records it gave; with ``fresh``, keeping nothing."""

    def __init__(self, store: Store, fresh: bool = False) -> None:
        self.store, self.fresh = store, fresh
        self.scanned: list[str | None] = []
        self.marks: list[int | None] = []
        self.read = 0

    def iter_facts(self, query: Any, paths: Any) -> Any:
        self.scanned.append(query.form_id)
        self.marks.append(query.touched_above)
        for fact in self.store.iter_facts(query, paths):
            self.read += 1
            yield fact

    def records_print(self, query: Any) -> str | None:
        return None if self.fresh else self.store.records_print(query)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


@pytest.fixture
def store(tmp_path: Path, backend_url: str | None) -> Iterator[Store]:
    s = open_store(tmp_path / "data", backend_url)
    s.put_round(Round(id="r", name="r", period="2026", form_ids=[], state=RoundState.open))
    for n, (unit, person, status) in enumerate([
            (H11, "p1", "using"), (H11, "p2", "using"), (H12, "p3", "stopped"), (H21, "p4", "using"),
            (H11, "p2", ""), (H21, "p5", "using")]):
        add(s, "f1_person", unit, {"person_key": person, "status": status}, day=f"2026-02-0{n + 1}",
            instance_id=f"uuid:p{n}", round_id="r")
    add(s, "f2_pledge", H11, {"ref_date": "2026-03-01"})
    yield s
    s.close()


def _run(store: Counting) -> list[dict[str, Any]]:
    return [r.model_dump() for r in evaluate(store, "2026", units=[PROVINCE, C1, C2], level="hamlet",  # type: ignore[arg-type]
                                             indicators=INDICATORS, registry=small_registry())]


def _figures(rows: list[dict[str, Any]], ind: str) -> dict[str, Any]:
    return {r["unit_code"]: r["value"] for r in rows if r["indicator_id"] == ind}


def _kept_scans(store: Any) -> int:
    with store._cx() as cx:
        return int(cx.execute(store._q("SELECT count(*) FROM kv WHERE namespace = ?"),
                              (kept_scans.NAMESPACE,)).fetchone()[0])


def test_the_persons_are_read_again_only_when_their_records_change(store: Store) -> None:
    counting = Counting(store)
    first = _run(counting)
    assert counting.scanned == ["f1_person"]
    assert _figures(first, "using_now")[PROVINCE] == 4 and _figures(first, "persons_seen")[C2] == 2

    def again(scanned: list[str]) -> list[dict[str, Any]]:
        counting.scanned.clear()
        got = _run(counting)
        assert counting.scanned == scanned
        assert got == _run(Counting(store, fresh=True))
        return got

    assert again([]) == first
    add(store, "f2_pledge", H21, {"ref_date": "2026-03-02"})  # another form: the persons are kept
    assert _figures(again([]), "pledges")[C2] == 1
    add(store, "f1_person", H21, {"person_key": "p1", "status": "stopped"}, day="2026-03-01",
        round_id="r")  # p1 moved to C2 and stopped
    moved = again(["f1_person"])
    assert _figures(moved, "using_now")[C1] == 1 and _figures(moved, "persons_seen")[C2] == 3
    store.set_review("uuid:p2", ReviewState.rejected, "sai", "officer")  # a review decision: read again
    assert _figures(again(["f1_person"]), "persons_seen")[C1] == 2
    assert _kept_scans(store) == 1  # written over at each change, not one more row each time
    # the round now counts approved records only: the same records, other figures
    store.put_round(Round(id="r", name="r", period="2026", form_ids=[], state=RoundState.open,
                          counted_states=[ReviewState.approved]))
    assert _figures(again(["f1_person"]), "using_now").get(PROVINCE) is None
    assert again([]) == _run(Counting(store, fresh=True))


def test_new_person_records_alone_are_read_and_the_figures_stay_exact(store: Store) -> None:
    """After each new person record only the new ones are read from where the kept fold stopped, and the
    figures are those of a fresh evaluation; an edit or a review decision reads everything again."""
    counting = Counting(store)
    _run(counting)
    assert counting.read == 6 and counting.marks == [None]

    def after(read: int, incremental: bool = True) -> list[dict[str, Any]]:
        counting.marks.clear()
        counting.read = 0
        got = _run(counting)
        assert counting.read == read
        assert [m is not None for m in counting.marks] == [incremental]
        assert got == _run(Counting(store, fresh=True))
        return got

    def person(unit: str, key: str, status: str, day: str, **kw: Any) -> None:
        add(store, "f1_person", unit, {"person_key": key, "status": status, "visit": day}, day=day,
            round_id="r", **kw)

    person(H11, "p1", "stopped", "2026-03-01")  # p1 stops: its latest state changes
    assert _figures(after(1), "using_now")[C1] == 1
    person(H12, "p6", "using", "2026-03-02", instance_id="uuid:p6")  # a new person
    new = after(1)
    assert _figures(new, "persons_seen")[C1] == 4 and _figures(new, "last_visit_using")[H12] == 1
    person(H21, "p3", "using", "2026-03-03")  # p3 moved to the other commune and uses again
    moved = after(1)
    assert _figures(moved, "using_now")[C2] == 3 and _figures(moved, "persons_seen")[C2] == 3
    person(H21, "p4", "stopped", "2026-01-15")  # older than p4's latest record: p4 still uses
    assert _figures(after(1), "using_now")[C2] == 3
    person(H11, "p2", "using", "2026-03-04", state=ReviewState.rejected)  # not counted: not even read
    assert _figures(after(0), "using_now")[C1] == 2
    add(store, "f1_person", H11, {UNREAD_FIELD: "c2VhbGVk"}, day="2026-03-05", round_id="r")  # ODK-encrypted
    assert _figures(after(1), "using_now")[C1] is None  # unknown, not a count that misses one
    assert _kept_scans(store) == 1

    # an edit replaces p6's record (the old one is no longer current), a review decision: all read again
    person(H12, "p6", "stopped", "2026-03-06", instance_id="uuid:p6b", deprecated_id="uuid:p6")
    assert _figures(after(11, incremental=False), "last_visit_using")[H12] == 0
    store.set_review("uuid:p4", ReviewState.rejected, "sai", "officer")  # p2's blank record
    after(10, incremental=False)
    person(H21, "p5", "stopped", "2026-03-07")  # new records only again: read alone
    assert _figures(after(1), "using_now")[C2] == 2  # p3 and p4


def test_a_record_changed_during_the_read_of_new_ones_makes_it_read_everything(store: Store) -> None:
    """An old record approved while the new ones are read comes among them (its ``touched`` is new): the
    evaluation notices the fingerprint moved and reads everything, and keeps nothing it cannot go on from."""

    class Racing(Counting):
        def iter_facts(self, query: Any, paths: Any) -> Any:
            if query.touched_above is not None:
                self.store.set_review("uuid:p0", ReviewState.approved, "", "officer")
            return super().iter_facts(query, paths)

    _run(Counting(store))
    add(store, "f1_person", H11, {"person_key": "p7", "status": "using"}, day="2026-03-01", round_id="r")
    racing = Racing(store)
    got = _run(racing)
    # p7 and p0 (approved after the mark), then all seven again
    assert racing.marks[0] is not None and racing.marks[1:] == [None] and racing.read == 2 + 7
    assert got == _run(Counting(store, fresh=True))
    after = Counting(store)
    assert _run(after) == got and after.marks == [None]  # what the race left is not gone on from
    assert _run(after) == got and after.marks == [None]  # then kept whole again
