"""What a form's record-by-record scan left in its slots, kept in the store between evaluations (issue 21
item 8): the register of persons (each person's latest record, folded in date order) is read again only
when one of the form's records in the units asked changed (``Store.records_print``), not after every
pledge that arrives.

A person's records may lie in two communes (they moved), so the fold cannot be kept per commune as the
store's groups are (``core.storage.sql_kept``): a scan is kept whole, under a key made of the query, the
slots' measures and periods and the review states each round counts, with the records' fingerprint it was
computed at beside it: one row per such scan, written over when its records change. Slots
that place records by the unit registry (units kinds, a unit's latest record) are not kept: the registry
changes with no record changing.

When the only change is new records (a person's new record among the province's 10,000), the scan goes on
from where it stopped instead of reading them all again: its fold, kept beside it (``keep_fold``: the
slots' sums, sets and units as the records left them, and each key's latest record or history with the
fields read), takes the new records alone (``Store.records_added``) and finishes again: a slot counting
latest records from its finished counts, the changed keys' old states taken away and their new ones added,
the others from every key. Any other change (an update, a review decision, a delete) reads everything.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic_core import from_json, to_json
from rasoat.core.indicators.models import MeasureKind
from rasoat.core.storage.base import Store, SubmissionQuery

if TYPE_CHECKING:
    from rasoat.core.indicators.engine import _Latest, _Slot

NAMESPACE = "kept_scans"
FOLDS = "kept_folds"  # the same keys: a scan's fold before it finished
KEEP_SECONDS = 7 * 86400  # an unused key (its records changed since) expires
FORMAT = 2  # changed when the scan fills its slots differently: every kept scan is then ignored


def _name(slot: _Slot) -> str:
    return f"{slot.measure.key()}|{slot.period}"


def key(store: Store, query: SubmissionQuery, slots: Sequence[_Slot], rules: Any) -> tuple[str, str] | None:
    """Where a scan of ``slots`` over ``query`` is kept and the fingerprint of the records it reads; None
    when it cannot be kept. ``rules``: which review states count (per round), as JSON."""
    if any(s.measure.kind is MeasureKind.units or s.measure.latest_per_unit for s in slots):
        return None
    found = store.records_print(query)
    if found is None:
        return None
    shape = [FORMAT, query.model_dump(mode="json"), sorted(_name(s) for s in slots), rules]
    return hashlib.sha256(to_json(shape)).hexdigest(), found


def _state(slots: Sequence[_Slot]) -> dict[str, Any]:
    # copies: a fold is taken before its latest slots finish
    return {_name(s): [dict(s.values), {u: list(v) for u, v in s.sets.items()}, sorted(s.seen),
                       dict(s.unread)] for s in slots}


def _fill(slots: Sequence[_Slot], state: dict[str, Any]) -> None:
    for s in slots:
        values, sets, seen, unread = state[_name(s)]
        s.values.update(values)
        s.sets.update((u, set(v)) for u, v in sets.items())
        s.seen.update(seen)  # in place: the slots of one window share it
        s.unread.update(unread)


def _counts(slot: _Slot) -> bool:
    """A latest slot whose finished values are whole counts: a key's old state can be taken away."""
    m = slot.measure
    return bool(m.latest_by) and m.kind is MeasureKind.count and m.distinct is None


def keep(store: Store, kept: tuple[str, str], slots: Sequence[_Slot], fold: dict[str, Any]) -> None:
    """One row per scan, written over at each change of its records (not one more per change), and its
    ``fold`` with the counting latest slots' finished values."""
    state = _state(slots)
    store.kv_put(NAMESPACE, kept[0], {"print": kept[1], "slots": state}, ttl_seconds=KEEP_SECONDS)
    done = {_name(s): s.values for s in slots if _counts(s)}
    store.kv_put(FOLDS, kept[0], {"print": kept[1], **fold, "done": done}, ttl_seconds=KEEP_SECONDS)


def restore(store: Store, kept: tuple[str, str], slots: Sequence[_Slot]) -> bool:
    """Fill the slots as the kept scan left them; False when none is kept for these records."""
    found = store.kv_get(NAMESPACE, kept[0])
    if found is None or found["print"] != kept[1] or any(_name(s) not in found["slots"] for s in slots):
        return False
    for s in slots:
        s.seen = set()
    _fill(slots, found["slots"])
    return True


# a latest group's kept record: ((day, received), unit, fields) → [day, received, unit, fields]
def _dump(entry: tuple[Any, str, dict[str, Any]]) -> list[Any]:
    (day, received), unit, fields = entry
    return [day, received.isoformat(), unit, fields]


def _load(entry: list[Any]) -> tuple[Any, str, dict[str, Any]]:
    day, received, unit, fields = entry
    return (day, datetime.fromisoformat(received)), unit, fields


def _text(value: Any) -> str:
    return to_json(value).decode()


class _Unread(dict[Any, Any]):
    """A resumed group's keys, each read from its kept text only when a new record asks for it (``get``, as
    ``_Latest.offer`` does): when every slot goes on from its finished counts the others are never needed."""

    def __init__(self, texts: dict[str, str], carry: bool) -> None:
        super().__init__()
        self.texts, self.carry = texts, carry

    def get(self, k: Any, default: Any = None) -> Any:
        if k not in self and (text := self.texts.get(_text(list(k)))) is not None:
            entry = from_json(text)
            self[k] = [_load(e) for e in entry] if self.carry else _load(entry)
        return super().get(k, default)


def fold(slots: Sequence[_Slot], latests: Sequence[_Latest]) -> dict[str, Any]:
    """The scan's state before its latest groups finish, for ``resume`` to go on from."""
    return {"slots": _state(slots), "latest": {lg.name: _dumps(lg) for lg in latests}}


def _dumps(lg: _Latest) -> list[list[str]]:
    """Each key's kept records as text beside the key's (read back whole only for the keys asked for);
    resumed, the keys no new record changed as they were read, in their order, the new keys after."""
    out = dict(lg.dumped) if lg.before is not None else {}
    for k in lg.before if lg.before is not None else lg.kept:
        v = lg.kept[k]
        out[_text(list(k))] = _text([_dump(e) for e in v] if lg.carry else _dump(v))
    return [[k, v] for k, v in out.items()]


def resume(store: Store, kept: tuple[str, str], query: SubmissionQuery, slots: Sequence[_Slot],
           latests: Sequence[_Latest]) -> int | None:
    """Fill the slots and latest groups as the kept fold left them, when the records changed since only by
    new ones; the mark from which to read those (``SubmissionQuery.touched_above``), else None."""
    found = store.kv_get(FOLDS, kept[0])
    if (found is None or any(_name(s) not in found["slots"] for s in slots)
            or any(lg.name not in found["latest"] for lg in latests)):
        return None
    mark = store.records_added(query, found["print"])
    if mark is None:
        return None
    _fill(slots, found["slots"])
    done = found.get("done", {})
    for lg in latests:
        lg.dumped = dict(found["latest"][lg.name])
        lg.before = {}
        lg.done = {i: done[_name(s)] for i, s in enumerate(lg.slots) if _name(s) in done}
        lg.kept = _Unread(lg.dumped, lg.carry)
        if len(lg.done) < len(lg.slots):  # a slot not going on from its counts takes every key
            for k in lg.dumped:
                lg.kept.get(tuple(from_json(k)))
    return mark
