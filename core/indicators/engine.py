"""The indicator engine: one pass per form, partial sums per lowest unit, roll-up by summing.

How a computation runs:
1. Every (measure, period) the indicators need becomes a *slot*; equal measures share one.
2. For each form, counts and sums of answers under simple conditions are totalled by the store per
   unit, round and review state (``Store.aggregate``, SQL group-bys); the other slots take one scan of
   ``Store.iter_facts`` (only the fields they read). A submission counts when its review state is in its
   round's ``counted_states`` (default: all but rejected). Each slot keeps, per lowest unit (hamlet,
   else commune): a number (count/sum) or a set (distinct values, units), and which units reported
   anything at all.
3. Roll-up: hamlet → commune → province by adding numbers (and uniting sets), never by averaging
   ratios; then value = numerator / denominator × factor per unit.
   A record the server cannot read (ODK-encrypted, not derived: ``core.models.UNREAD_FIELD``) is not
   taken by a measure that reads fields; it is counted per unit as *unread* instead, and a figure with
   unread records has no value and the status unknown (``core.indicators.status``).
4. Comparison with the previous period (or a base year) reads the frozen snapshot of a closed round
   of that period; with none, it is computed live from the store and marked ``live``.

Nothing here knows HTTP; storage is only the ``Store`` interface.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from rasoat.core.indicators import kept_scans
from rasoat.core.indicators.loading import collect
from rasoat.core.indicators.matching import compile_all, condition, number
from rasoat.core.indicators.models import (
    LEVEL_RANK,
    STATUS_LABELS,
    ComparisonKind,
    Filter,
    Indicator,
    IndicatorResult,
    Level,
    Measure,
    MeasureKind,
    Window,
)
from rasoat.core.indicators.periods import Period
from rasoat.core.indicators.status import compared_quantity, elapsed_pct, judge, progress_pct
from rasoat.core.indicators.units_index import UnitIndex
from rasoat.core.models import DEFAULT_COUNTED_STATES, UNREAD_FIELD, ReviewState, RoundState
from rasoat.core.plans import applies_in
from rasoat.core.problems import both
from rasoat.core.storage.base import Span, Store, SubmissionQuery, Tally
from rasoat.core.unit_lists import sites, units_for
from rasoat.core.units import UnitRegistry

SNAPSHOT_FORMAT = "rasoat.indicators.snapshot/1"
_DEFAULT_STATES = frozenset(s.value for s in DEFAULT_COUNTED_STATES)


# --- slots: one accumulator per (measure, period) ----------------------------------------------


@dataclass
class _Slot:
    measure: Measure
    period: Period
    values: dict[str, float] = field(default_factory=dict)  # lowest unit → count or sum
    sets: dict[str, set[Any]] = field(default_factory=dict)  # lowest unit → distinct values
    seen: set[str] = field(default_factory=set)  # lowest units with any submission of the form in window
    unread: dict[str, int] = field(default_factory=dict)  # lowest unit → records it could not read
    # after roll-up, every level:
    totals: dict[str, float] = field(default_factory=dict)
    present: set[str] = field(default_factory=set)
    unread_totals: dict[str, int] = field(default_factory=dict)

    @property
    def uses_sets(self) -> bool:
        m = self.measure
        return m.kind is MeasureKind.units or (m.kind is MeasureKind.count and m.distinct is not None)

    def paths(self) -> set[str]:
        """Top-level field keys this slot reads (a repeat's key brings its rows)."""
        m = self.measure
        out = {f.field for f in m.where}
        if m.repeat:
            out.add(m.repeat)
        else:
            out.update(p for p in (m.field, m.distinct) if p)
        out.update(p for p in (m.date_field, m.latest_by) if p)
        return out

    @property
    def reads_fields(self) -> bool:
        """Whether an unreadable record would change this measure (anything but a plain record count)."""
        m = self.measure
        return bool(self.paths() or m.latest_per_unit)


_MIN_UTC = datetime.min.replace(tzinfo=UTC)
_MAX_UTC = datetime.max.replace(tzinfo=UTC)


def _bounds(slot: _Slot) -> tuple[str, str, datetime, datetime]:
    """A slot's window as [low, high) local ISO days (for its date field) and UTC times (for the
    received time, used when the measure has no date field or the answer is blank)."""
    m, p = slot.measure, slot.period
    if m.window is Window.all:
        return "", "\uffff", _MIN_UTC, _MAX_UTC
    start_utc, end_utc = p.utc_bounds()
    if m.window is Window.to_date:
        return "", p.end.isoformat(), _MIN_UTC, end_utc
    return p.start.isoformat(), p.end.isoformat(), start_utc, end_utc


def _taker(slot: _Slot, index: UnitIndex) -> Callable[[str, dict[str, Any]], None]:
    """The function that adds one submission (already in the window) to the slot."""
    m = slot.measure
    where = compile_all(m.where)
    row_where = compile_all(m.row_where)
    values, sets = slot.values, slot.sets

    repeat = m.repeat

    def rows_of(fields: dict[str, Any]) -> list[dict[str, Any]]:
        rows = fields.get(repeat)  # type: ignore[arg-type]
        if rows.__class__ is not list:
            rows = [rows] if isinstance(rows, dict) else []
        return rows if row_where is None else [r for r in rows if row_where(r)]

    if m.kind is MeasureKind.units:
        level = m.unit_level
        assert level is not None

        def take_unit(unit: str, fields: dict[str, Any]) -> None:
            if where is not None and not where(fields):
                return
            if m.repeat and not rows_of(fields):
                return
            code = index.at_level(unit, level)
            if code is not None:
                sets.setdefault(unit, set()).add(code)

        return take_unit

    if m.kind is MeasureKind.sum:
        path = m.field
        assert path is not None  # Measure's validator: a sum names its field
        if where is None and not m.repeat:
            def take_plain_sum(unit: str, fields: dict[str, Any]) -> None:
                x = number(fields.get(path))
                if x is not None:
                    values[unit] = values.get(unit, 0.0) + x

            return take_plain_sum

        def take_sum(unit: str, fields: dict[str, Any]) -> None:
            if where is not None and not where(fields):
                return
            if m.repeat:
                total = 0.0
                for row in rows_of(fields):
                    x = number(row.get(path))
                    if x is not None:
                        total += x
            else:
                x = number(fields.get(path))
                if x is None:
                    return
                total = x
            values[unit] = values.get(unit, 0.0) + total

        return take_sum

    if m.distinct is not None:
        key = m.distinct

        def take_distinct(unit: str, fields: dict[str, Any]) -> None:
            if where is not None and not where(fields):
                return
            vals = [r.get(key) for r in rows_of(fields)] if m.repeat else [fields.get(key)]
            vals = [v for v in vals if v not in (None, "")]
            if vals:
                sets.setdefault(unit, set()).update(vals)

        return take_distinct

    if m.repeat:
        def take_rows(unit: str, fields: dict[str, Any]) -> None:
            if where is not None and not where(fields):
                return
            n = len(rows_of(fields))
            if n:
                values[unit] = values.get(unit, 0) + n

        return take_rows

    if where is None:
        def take_all(unit: str, fields: dict[str, Any]) -> None:
            values[unit] = values.get(unit, 0) + 1

        return take_all

    def take_count(unit: str, fields: dict[str, Any]) -> None:
        if where(fields):
            values[unit] = values.get(unit, 0) + 1

    return take_count


def _latest_key(slot: _Slot, index: UnitIndex) -> Callable[[str, str, dict[str, Any]], Any]:
    m = slot.measure
    by, per = m.latest_by, m.latest_per_unit

    def key(instance_id: str, unit: str, fields: dict[str, Any]) -> Any:
        k = fields.get(by) if by else None
        if by and k in (None, ""):
            return ("@instance", instance_id)  # no key to merge on: the submission stands alone
        return (k, index.at_level(unit, per) if per else None)

    return key


class _Latest:
    """Slots that keep each key's latest record (same key, window and carry rule) share one pass:
    the key's final state is found once and handed to each slot's taker."""

    def __init__(self, slot: _Slot, index: UnitIndex, name: str) -> None:
        m = slot.measure
        self.name = name  # the same group in the next computation (``kept_scans``)
        self.key = _latest_key(slot, index)
        self.date_field = m.date_field
        self.carry = m.carry_forward
        self.kept: dict[Any, Any] = {}
        self.slots: list[_Slot] = []
        self.takers: list[Callable[[str, dict[str, Any]], None]] = []
        # resumed (``kept_scans.resume``): the keys the new records change, as they were, and the counting
        # slots' finished values (by their place in ``slots``)
        self.before: dict[Any, Any] | None = None
        self.done: dict[int, dict[str, float]] = {}
        self.dumped: dict[str, str] = {}  # resumed: each key's kept text, as read

    def offer(self, instance_id: str, unit: str, received: datetime, fields: dict[str, Any]) -> None:
        k = self.key(instance_id, unit, fields)
        if self.before is not None and k not in self.before:
            old = self.kept.get(k)
            self.before[k] = list(old) if self.carry and old is not None else old
        df = self.date_field
        order = ((fields.get(df) or "")[:10] if df else "", received)
        if self.carry:
            self.kept.setdefault(k, []).append((order, unit, fields))
            return
        old = self.kept.get(k)
        if old is None or order >= old[0]:
            self.kept[k] = (order, unit, fields)

    def _state(self, kept: Any) -> tuple[str, dict[str, Any]]:
        return _fold(kept) if self.carry else (kept[1], kept[2])

    def finish(self, index: UnitIndex) -> None:
        """Hand each key's final state to the takers. Resumed, a counting slot starts from its finished
        values, the changed keys' old states taken away and their new ones added (whole counts: exact)."""
        every = []
        for i, (slot, take) in enumerate(zip(self.slots, self.takers, strict=True)):
            done = self.done.get(i)
            if done is None or self.before is None:
                every.append(take)
                continue
            old = _Slot(slot.measure, slot.period)
            undo = _taker(old, index)
            for entry in self.before.values():
                if entry is not None:
                    undo(*self._state(entry))
            values = dict(done)
            for unit, n in old.values.items():
                values[unit] -= n
                if not values[unit]:
                    del values[unit]
            slot.values.update(values)
            for k in self.before:
                take(*self._state(self.kept[k]))
        if every:  # resumed with only counting slots, the unchanged keys' states are not needed at all
            for kept in self.kept.values():
                unit, state = self._state(kept)
                for take in every:
                    take(unit, state)
        self.kept.clear()


# (low day, high day, low UTC, high UTC, units seen, takers, latest groups, takers of unreadable
# records, slots that count unreadable records instead)
_Window = tuple[str, str, datetime, datetime, set[str], tuple[Any, ...], tuple["_Latest", ...],
                tuple[Any, ...], tuple["_Slot", ...]]


def _plan(slots: list[_Slot], index: UnitIndex) -> list[tuple[str | None, list[_Window]]]:
    """Slots grouped by the date that places a submission (a field, or the received time) and then by
    window: the date is read once per submission, each window checked once, not once per slot. Slots
    of one window share their set of units that reported anything."""
    groups: dict[tuple[Any, ...], tuple[Any, set[str], list[Any], dict[tuple[Any, ...], _Latest], list[Any],
                                        list[_Slot]]] = {}
    for slot in slots:
        m = slot.measure
        wkey = (m.date_field, _bounds(slot))
        if wkey not in groups:
            groups[wkey] = (_bounds(slot), set(), [], {}, [], [])
        _, seen, direct, latests, plain, unread = groups[wkey]
        slot.seen = seen
        if m.latest_by or m.latest_per_unit:
            lkey = (m.latest_by, m.latest_per_unit, m.carry_forward)
            if lkey not in latests:
                latests[lkey] = _Latest(slot, index, str(wkey + lkey))
            latests[lkey].slots.append(slot)
            latests[lkey].takers.append(_taker(slot, index))
        else:
            direct.append(_taker(slot, index))
        if slot.reads_fields:
            unread.append(slot)
        else:
            plain.append(direct[-1])
    clocks: dict[str | None, list[_Window]] = {}
    for (date_field, _), (bounds, seen, direct, latests, plain, unread) in groups.items():
        clocks.setdefault(date_field, []).append(
            (*bounds, seen, tuple(direct), tuple(latests.values()), tuple(plain), tuple(unread)))
    return list(clocks.items())


def _fold(history: list[tuple[Any, str, dict[str, Any]]]) -> tuple[str, dict[str, Any]]:
    """An entity's state: its submissions in date order, later answers over earlier ones, blanks ignored;
    the unit is the latest submission's (a person who moved counts where they live now)."""
    history.sort(key=lambda h: h[0])
    state: dict[str, Any] = {}
    for _, _, fields in history:
        for k, v in fields.items():
            if v is not None and v != "" and v != []:
                state[k] = v
    return history[-1][1], state


# --- a computation: slots, scans, roll-up --------------------------------------------------------


def _with_below(registry: UnitRegistry | None, codes: Sequence[str], filed: set[str]) -> list[str]:
    """The codes, every unit the registry holds below them, and the hamlets records are ``filed`` under
    that it does not hold but that belong to one of them ("05563-07" → "05563", as ``UnitIndex.chain``)."""
    out: set[str] = set()
    for code in codes:
        out.add(code)
        if registry is not None and code in registry:
            out.update(registry.expand([code]))
    out.update(c for c in filed if "-" in c and c.split("-", 1)[0] in out)
    return sorted(out)


class Computation:
    """Numbers for a set of indicators over one or more periods, at every unit that has data."""

    def __init__(
        self,
        store: Store,
        registry: UnitRegistry | None,
        counted_states: Iterable[ReviewState | str] | None = None,
        round_id: str | None = None,
        within: Sequence[str] | None = None,
    ) -> None:
        self.store = store
        self.index = UnitIndex(registry)
        self.round_id = round_id
        # figures wanted only for these units: read only their records (theirs and below)
        self.within = _with_below(registry, within, store.filed_unit_codes()) if within else None
        self.slots: dict[tuple[str, str], _Slot] = {}
        self._reported: dict[str, set[str]] = {}
        self._registers: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self._present_counts: dict[tuple[Any, ...], dict[str, int]] = {}
        self._snapshots: dict[str, dict[str, Any] | None] = {}
        self._keys: dict[int, str] = {}
        # per indicator (and period): its form slots and measure keys, looked up once, not per unit
        self._form_slots: dict[tuple[int, str], tuple[tuple[str, _Slot], ...]] = {}
        self._form_keys: dict[int, tuple[str, ...]] = {}
        if counted_states is not None:
            fixed = frozenset(ReviewState(s).value for s in counted_states)
            self._default_states = fixed
            self._round_states: dict[str | None, frozenset[str]] = {}
            self._fixed = True
        else:
            self._default_states = _DEFAULT_STATES
            self._round_states = {
                r.id: frozenset(s.value for s in r.counted_states) for r in store.list_rounds()
            }
            self._fixed = False

    # slots
    def need(self, measure: Measure, period: Period) -> None:
        if measure.kind in (MeasureKind.count, MeasureKind.sum) or (
            measure.kind is MeasureKind.units and measure.form
        ):
            k = (measure.key(), str(period))
            if k not in self.slots:
                self.slots[k] = _Slot(measure, period)

    def _key(self, m: Measure) -> str:
        """``m.key()`` worked out once per measure: it serialises the measure, and every unit's result
        asks for it (the indicators, and so their measures, live as long as the computation)."""
        k = self._keys.get(id(m))
        if k is None:
            k = self._keys[id(m)] = m.key()
        return k

    def need_indicator(self, ind: Indicator, period: Period) -> None:
        for m in ind.measures():
            self.need(m, period)

    # scanning
    def run(self, progress: Callable[[int], object] | None = None) -> None:
        """Scan each form once, then roll up."""
        by_form: dict[str, list[_Slot]] = {}
        for slot in self.slots.values():
            by_form.setdefault(slot.measure.form or "", []).append(slot)
        for form_id, slots in by_form.items():
            self._scan(form_id, slots, progress)
        for slot in self.slots.values():
            self._rollup(slot)

    def _counted(self, round_id: str | None) -> frozenset[str]:
        if self._fixed:
            return self._default_states
        return self._round_states.get(round_id, self._default_states) if round_id else self._default_states

    def _scan(self, form_id: str, slots: list[_Slot], progress: Callable[[int], object] | None) -> None:
        states = set(self._default_states)
        for st in self._round_states.values():
            states |= st
        query = SubmissionQuery(
            form_id=form_id,
            round_id=self.round_id,
            unit_codes=self.within,
            review_states=[ReviewState(s) for s in sorted(states)],
            **self._received_bounds(slots),
        )
        slots = self._aggregate(query, slots)
        if not slots:
            return
        rules = [self._fixed, sorted(self._default_states),
                 sorted([r or "", sorted(st)] for r, st in self._round_states.items())]
        kept = kept_scans.key(self.store, query, slots, rules)
        if kept is not None and kept_scans.restore(self.store, kept, slots):
            return
        paths: set[str] = {UNREAD_FIELD}
        for s in slots:
            paths |= s.paths()
        plan = _plan(slots, self.index)
        latests = [lg for _, windows in plan for window in windows for lg in window[6]]
        # new records only since the kept fold: it takes them where it stopped (``kept_scans.resume``)
        mark = None if kept is None else kept_scans.resume(self.store, kept, query, slots, latests)
        steady = False
        if kept is not None and mark is not None:
            self._read(query.model_copy(update={"touched_above": mark}), plan, paths, progress)
            steady = self.store.records_print(query) == kept[1]
            if not steady:  # written to during the read: an old record may be among the new ones
                for s in slots:
                    s.values, s.sets, s.unread = {}, {}, {}
                plan = _plan(slots, self.index)
                latests = [lg for _, windows in plan for window in windows for lg in window[6]]
                mark = None
        if mark is None:
            self._read(query, plan, paths, progress)
            steady = kept is not None and self.store.records_print(query) == kept[1]
        fold = kept_scans.fold(slots, latests) if kept is not None and steady else None
        for lg in latests:
            lg.finish(self.index)
        if kept is not None and fold is not None:  # read exactly the printed records: the fold may go on
            kept_scans.keep(self.store, kept, slots, fold)

    def _read(self, query: SubmissionQuery, plan: list[tuple[str | None, list[_Window]]], paths: set[str],
              progress: Callable[[int], object] | None) -> None:
        """Offer each record ``query`` reads to the slots of its windows."""
        # per-round rules, looked up once per round rather than once per submission
        counted_cache: dict[str | None, frozenset[str]] = {}
        n = 0
        for fact in self.store.iter_facts(query, sorted(paths)):
            n += 1
            if progress is not None and not n % 50_000:
                progress(50_000)
            iid, rid, unit, received, state, fields = fact
            if not unit:
                continue
            counted = counted_cache.get(rid)
            if counted is None:
                counted = counted_cache[rid] = self._counted(rid)
            if state not in counted:
                continue
            if received.tzinfo is None:
                received = received.replace(tzinfo=UTC)
            for date_field, windows in plan:
                day: Any = fields.get(date_field) if date_field is not None else None
                by_day = bool(day) and day.__class__ is str
                if by_day:
                    day = day[:10]
                sealed = UNREAD_FIELD in fields
                for lo_day, hi_day, lo_utc, hi_utc, seen, direct, latests, plain, unread in windows:
                    if by_day:
                        if not lo_day <= day < hi_day:
                            continue
                    elif not lo_utc <= received < hi_utc:
                        continue
                    seen.add(unit)
                    if sealed:  # fields unknown: only plain record counts take it, the others note it
                        for take in plain:
                            take(unit, fields)
                        for slot in unread:
                            slot.unread[unit] = slot.unread.get(unit, 0) + 1
                        continue
                    for take in direct:
                        take(unit, fields)
                    for lg in latests:
                        lg.offer(iid, unit, received, fields)
        if progress is not None:
            progress(n % 50_000)

    def _aggregate(self, query: SubmissionQuery, slots: list[_Slot]) -> list[_Slot]:
        """Counts and sums of answers under simple conditions totalled by the store per unit, round and
        review state (``Store.aggregate``: SQL group-bys), not record by record here; returns the slots
        left to the scan: a unit set, distinct values, a repeat's rows, the latest record of a key (its
        fold of records in date order), orderings and word tests (``matching.condition``), and every slot
        of the form when the store cannot total it exactly."""
        spans: dict[tuple[Any, ...], int] = {}
        tallies: list[Tally] = []
        placed: list[tuple[_Slot, int, int | None]] = []  # slot, its span, its tally (None: every record)
        rest: list[_Slot] = []
        for slot in slots:
            m = slot.measure
            where = [condition(f) for f in m.where]
            if (m.kind is MeasureKind.units or m.distinct or m.repeat or m.latest_by or m.latest_per_unit
                    or None in where):
                rest.append(slot)
                continue
            span = spans.setdefault((m.date_field, _bounds(slot)), len(spans))
            if slot.reads_fields:
                tallies.append(Tally(span, tuple(c for c in where if c is not None), m.field))
            placed.append((slot, span, len(tallies) - 1 if slot.reads_fields else None))
        if not placed:
            return slots
        groups = self.store.aggregate(query, [
            Span(date_field, lo_day, hi_day, None if lo_utc == _MIN_UTC else lo_utc,
                 None if hi_utc == _MAX_UTC else hi_utc)
            for date_field, (lo_day, hi_day, lo_utc, hi_utc) in spans], tallies, UNREAD_FIELD)
        if groups is None:
            return slots
        seen: list[set[str]] = [set() for _ in spans]
        for slot, span, _ in placed:
            slot.seen = seen[span]
        for g in groups:
            unit = g.unit_code
            if not unit or g.review_state not in self._counted(g.round_id):
                continue
            for span, n in enumerate(g.records):
                if n:
                    seen[span].add(unit)
            for slot, span, tally in placed:
                if tally is None:  # a plain record count takes sealed records too, as the scan does
                    total: float = g.records[span]
                else:
                    total = g.totals[tally]
                    if g.sealed[span]:
                        slot.unread[unit] = slot.unread.get(unit, 0) + g.sealed[span]
                if total:
                    slot.values[unit] = slot.values.get(unit, 0) + total
        return rest

    @staticmethod
    def _received_bounds(slots: list[_Slot]) -> dict[str, datetime]:
        """Let the store skip other periods when every slot of the form dates by received time."""
        if any(s.measure.date_field or s.measure.window is not Window.period for s in slots):
            return {}
        bounds = [s.period.utc_bounds() for s in slots]
        return {"received_from": min(b[0] for b in bounds), "received_to": max(b[1] for b in bounds)}

    def _rollup(self, slot: _Slot) -> None:
        chain = self.index.chain
        totals: dict[str, float] = {}
        for unit, v in slot.values.items():
            for code in chain(unit):
                totals[code] = totals.get(code, 0) + v
        if slot.uses_sets:
            united: dict[str, set[Any]] = {}
            for unit, vals in slot.sets.items():
                for code in chain(unit):
                    united.setdefault(code, set()).update(vals)
            totals = {code: len(vals) for code, vals in united.items()}
        slot.totals = totals
        slot.present = {code for unit in slot.seen for code in chain(unit)}
        unread: dict[str, int] = {}
        for unit, n in slot.unread.items():
            for code in chain(unit):
                unread[code] = unread.get(code, 0) + n
        slot.unread_totals = unread
        slot.values, slot.sets, slot.unread = {}, {}, {}

    # reading results
    def measure_value(self, m: Measure | None, period: Period, unit: str) -> float | None:
        """The rolled-up number of a measure for a unit; None means no data."""
        if m is None:
            return None
        if m.kind is MeasureKind.units and not m.form:
            assert m.unit_level is not None
            return self.index.count_at(unit, m.unit_level)
        if m.kind is MeasureKind.register:
            assert m.sites is not None
            return self.register_count(m.sites, unit, m.where)
        if m.kind is MeasureKind.snapshot:
            snap = self.snapshot(m.round_id or "")
            frozen = ((snap or {}).get("indicators") or {}).get(m.indicator or "") or {}
            row = frozen.get("units", {}).get(unit)
            if row is None:
                return None
            return row[{"numerator": 0, "denominator": 1, "value": 2}[m.part]]
        slot = self.slots[(self._key(m), str(period))]
        # an empty register counts as zero only where the unit reported something for the period: a unit
        # that sent nothing has no data, never a zero that meets "= 0"
        if unit not in slot.present and (m.if_empty == "no_data" or unit not in self.reported(period)):
            return None
        return slot.totals.get(unit, 0)

    def uncounted(self, ind: Indicator, period: Period, unit: str) -> int:
        """Records inside ``unit`` an indicator's figure needs but could not read: per form the most any
        of its measures missed (a numerator and a denominator over one form miss the same records)."""
        by_form: dict[str, int] = {}
        for form, slot in self._slots_of(ind, period):
            n = slot.unread_totals.get(unit, 0)
            if n > by_form.get(form, 0):
                by_form[form] = n
        return sum(by_form.values())

    def _slots_of(self, ind: Indicator, period: Period) -> tuple[tuple[str, _Slot], ...]:
        """(form, slot) of each of an indicator's measures over a form that missed any record, for one
        period (after ``run``; most indicators have none, and every unit's answer is then 0 at once)."""
        key = (id(ind), str(period))
        found = self._form_slots.get(key)
        if found is None:
            slots = ((m.form, self.slots.get((self._key(m), key[1]))) for m in ind.measures() if m.form)
            found = self._form_slots[key] = tuple(
                (f, slot) for f, slot in slots if slot is not None and slot.unread_totals)
        return found

    def register_count(self, kind: str, unit: str, where: Sequence[Filter] = ()) -> float | None:
        """Entries of the ``kind`` register (loaded by officers, else a plugin's: ``core.unit_lists``) in the
        communes inside ``unit`` that pass ``where`` (e.g. enterprises with a ``zone``); None when none of
        them has a list: coverage is then unknown, never "of those audited"."""
        if kind not in self._registers:
            self._registers[kind] = sites(self.store, kind)
        keep = compile_all(list(where)) or (lambda row: True)
        lists = [self._registers[kind].get(c) for c in self.index.below(unit, Level.commune)]
        found = [sum(1 for row in rows if keep(row)) for rows in lists if rows is not None]
        return float(sum(found)) if found else None

    def reported(self, period: Period) -> set[str]:
        """Units (every level) with a counted submission of any scanned form dated in ``period``."""
        key = str(period)
        found = self._reported.get(key)
        if found is None:
            found = set()
            for slot in self.slots.values():
                if slot.measure.window is Window.period and str(slot.period) == key:
                    found |= slot.present
            self._reported[key] = found
        return found

    def reporting(
        self, ind: Indicator, period: Period, code: str
    ) -> tuple[int | None, int | None, Level | None]:
        """(units that sent data for this indicator, units listed, their level) inside ``code``: communes
        of a province; hamlets of a commune for a hamlet-level indicator, else the commune itself."""
        level = self.index.level(code)
        if level is Level.province:
            child: Level | None = Level.commune
        elif level is Level.commune:
            child = Level.hamlet if ind.level is Level.hamlet else Level.commune
        else:
            child = level
        keys = self._form_keys.get(id(ind))
        if keys is None:
            keys = self._form_keys[id(ind)] = tuple(sorted({self._key(m) for m in ind.measures() if m.form}))
        if child is None or not keys:
            return None, None, None
        counts = self._present_counts.get((keys, str(period), child))
        if counts is None:
            codes: set[str] = set()
            for k in keys:
                slot = self.slots.get((k, str(period)))
                if slot is not None:
                    codes |= slot.present
            counts = {}
            for c in codes:
                if self.index.level(c) is child:
                    for above in self.index.chain(c):
                        counts[above] = counts.get(above, 0) + 1
            self._present_counts[(keys, str(period), child)] = counts
        expected = self.index.count_at(code, child)
        return counts.get(code, 0), (expected or None), child

    def values(
        self, ind: Indicator, period: Period, unit: str
    ) -> tuple[float | None, float | None, float | None]:
        """(value, numerator, denominator); a zero or missing denominator gives no value."""
        num = self.measure_value(ind.numerator, period, unit)
        if ind.denominator is None:
            return (None if num is None else num * ind.factor), num, None
        den = self.measure_value(ind.denominator, period, unit)
        if num is None or not den:
            return None, num, den
        return num / den * ind.factor, num, den

    def units_with_data(self) -> set[str]:
        out: set[str] = set()
        for slot in self.slots.values():
            out |= slot.present
        return out

    def snapshot(self, round_id: str) -> dict[str, Any] | None:
        if round_id not in self._snapshots:
            self._snapshots[round_id] = self.store.get_snapshot(round_id)
        return self._snapshots[round_id]


# --- comparisons from frozen snapshots --------------------------------------------------------------


def find_snapshot(
    store: Store,
    period: Period,
    ind: Indicator,
    rounds: list[Any] | None = None,
    cache: dict[str, dict[str, Any] | None] | None = None,
) -> tuple[str, dict[str, Any]] | None:
    """The frozen snapshot of a closed round of ``period`` that holds ``ind``: rounds carrying the
    indicator's forms first, then the latest frozen."""
    forms = {m.form for m in ind.measures() if m.form}
    best: tuple[tuple[Any, ...], str, dict[str, Any]] | None = None
    for rnd in rounds if rounds is not None else store.list_rounds():
        if rnd.state not in (RoundState.closed, RoundState.archived):
            continue
        try:
            if Period.parse(rnd.period) != period:
                continue
        except ValueError:
            continue
        if cache is None:
            snap = store.get_snapshot(rnd.id)
        elif rnd.id in cache:
            snap = cache[rnd.id]
        else:
            snap = cache[rnd.id] = store.get_snapshot(rnd.id)
        if not snap or ind.id not in (snap.get("indicators") or {}):
            continue
        rank = (forms <= set(rnd.form_ids), bool(forms & set(rnd.form_ids)), str(snap.get("frozen_at", "")))
        if best is None or rank > best[0]:
            best = (rank, rnd.id, snap)
    return None if best is None else (best[1], best[2])


def comparison_period(ind: Indicator, period: Period) -> Period | None:
    c = ind.comparison
    if c.kind is ComparisonKind.previous:
        return period.previous()
    if c.kind is ComparisonKind.base_year and c.base_year is not None:
        return period.same_in_year(c.base_year)
    return None


# --- the public entry points ---------------------------------------------------------------------


def _registry(registry: UnitRegistry | None, store: Store) -> UnitRegistry:
    return registry if registry is not None else units_for(store)


def _indicators(indicators: Sequence[Indicator] | None) -> list[Indicator]:
    if indicators is not None:
        return list(indicators)

    return collect()


def _as_number(x: float | None) -> float | int | None:
    if x is None:
        return None
    return int(x) if float(x).is_integer() and abs(x) < 2**53 else x


def evaluate(
    store: Store,
    period: str | Period,
    units: Sequence[str] | None = None,
    level: Level | str | None = None,
    *,
    indicators: Sequence[Indicator] | None = None,
    registry: UnitRegistry | None = None,
    counted_states: Iterable[ReviewState | str] | None = None,
    round_id: str | None = None,
    compare: bool = True,
    progress: Callable[[int], object] | None = None,
    below: Collection[str] | None = None,
) -> list[IndicatorResult]:
    """Every indicator for the chosen units in one period, one result per (unit, indicator).

    Units: ``units`` alone → those units; ``units`` + ``level`` → each unit and every unit of that
    level inside it (a province and all its communes); ``level`` alone → every unit of that level that
    has data; neither → every province that has data. Indicators are skipped at units below their
    ``level``. ``counted_states`` overrides the rounds' own rules; ``round_id`` keeps one round only.
    ``below``: with ``units`` and ``level``, the units inside take only these indicators (a page showing
    one indicator's communes builds 92 results, not 7,400); every indicator is still computed, so each
    result is the one the whole evaluation gives (which units reported depends on every form scanned).
    """
    p = Period.parse(period)
    lvl = Level(level) if level is not None else None
    inds = _indicators(indicators)
    reg = _registry(registry, store)
    comp = Computation(store, reg, counted_states, round_id, within=units)
    for ind in inds:
        comp.need_indicator(ind, p)

    previous: dict[str, tuple[Period, str, dict[str, Any] | None]] = {}
    if compare:
        rounds = store.list_rounds()
        for ind in inds:
            pp = comparison_period(ind, p)
            if pp is None:
                continue
            found = find_snapshot(store, pp, ind, rounds, comp._snapshots)
            if found is not None:
                previous[ind.id] = (pp, f"snapshot:{found[0]}", found[1])
            else:
                previous[ind.id] = (pp, "live", None)
                comp.need_indicator(ind, pp)
    comp.run(progress)

    chosen = _choose_units(comp, units, lvl)
    asked = set(units or ())
    same = {ind.id: _same(ind, p) for ind in inds}
    results: list[IndicatorResult] = []
    for code in chosen:
        code_level = comp.index.level(code)
        province = comp.index.at_level(code, Level.province)
        for ind in inds:
            if not _applies_at(ind, code_level, province):
                continue
            if below is not None and code not in asked and ind.id not in below:
                continue
            results.append(_result(comp, ind, p, code, code_level, previous.get(ind.id), same[ind.id]))
    return results


def _applies_at(ind: Indicator, code_level: Level | None, province: str | None) -> bool:
    """Whether a unit of ``code_level`` in ``province`` takes ``ind``: not below the indicator's level, and
    not another province's plan (``core.plans``)."""
    if code_level is not None and LEVEL_RANK[code_level] < LEVEL_RANK[ind.level]:
        return False
    return applies_in(ind.province, province)


def indicators_at(
    store: Store, unit: str, *, indicators: Sequence[Indicator] | None = None,
    registry: UnitRegistry | None = None,
) -> list[Indicator]:
    """The indicators ``evaluate`` gives ``unit`` a result for, in its order."""
    index = UnitIndex(_registry(registry, store))
    level, province = index.level(unit), index.at_level(unit, Level.province)
    return [ind for ind in _indicators(indicators) if _applies_at(ind, level, province)]


def evaluate_history(
    store: Store,
    indicator: Indicator,
    unit: str,
    periods: Sequence[str | Period],
    *,
    registry: UnitRegistry | None = None,
) -> list[IndicatorResult]:
    """One indicator for one unit over several periods (a unit's figures against its target, period
    after period), each form scanned once for all of them; no comparison with earlier periods."""
    ps = [Period.parse(p) for p in periods]
    comp = Computation(store, _registry(registry, store), within=[unit])
    for p in ps:
        comp.need_indicator(indicator, p)
    comp.run()
    level = comp.index.level(unit)
    return [_result(comp, indicator, p, unit, level, None, _same(indicator, p)) for p in ps]


def _choose_units(comp: Computation, units: Sequence[str] | None, level: Level | None) -> list[str]:
    index = comp.index
    if units:
        if level is None:
            return list(units)
        out: list[str] = []
        with_data = [c for c in sorted(comp.units_with_data()) if index.level(c) is level]
        for code in units:
            out.append(code)
            listed = [c for c in index.below(code, level) if c != code]
            # units with data the registry does not list (a hamlet list not loaded) still show
            known = set(listed)
            extra = [c for c in with_data if c != code and c not in known and code in index.chain(c)]
            out.extend(listed + extra)
        return out
    want = level or Level.province
    return sorted(c for c in comp.units_with_data() if index.level(c) is want)


# status → its label as the CLI and Excel say it, worked out once
_STATUS_TEXT = {status: both(words) for status, words in STATUS_LABELS.items()}


@dataclass(frozen=True)
class _Same:
    """What every unit's result of one indicator in one period shares, worked out once for all of them."""

    end: date  # the period's end, the day targets are judged on
    fields: dict[str, Any]  # the result's fields that do not depend on the unit


def _same(ind: Indicator, p: Period) -> _Same:
    t = ind.target
    words = t.words(_compared_words(ind, p)) if t else None
    return _Same(p.end, {
        "indicator_id": ind.id,
        "name_vi": ind.name_vi,
        "name_en": ind.name_en,
        "group": ind.group,
        "period": str(p),
        "factor": ind.factor,
        "unit_label": ind.label,
        "unit_label_en": ind.label_en,
        "unit_label_en_one": ind.label_en_one,
        "target_op": t.op.value if t else None,
        "target_value": t.value if t else None,
        "target_on": t.of if t else None,
        "target_deadline": t.deadline if t else None,
        "target_text": both(words) if words is not None else None,
        "target_words": words,
        "elapsed_pct": elapsed_pct(t, p.end),
        "source_document": ind.source.document if ind.source else None,
        "plan": ind.plan,
    })


def _result(
    comp: Computation,
    ind: Indicator,
    p: Period,
    code: str,
    code_level: Level | None,
    prev: tuple[Period, str, dict[str, Any] | None] | None,
    same: _Same,
) -> IndicatorResult:
    uncounted = comp.uncounted(ind, p, code)
    value, num, den = (None, None, None) if uncounted else comp.values(ind, p, code)
    prev_value: float | None = None
    prev_period = prev_source = None
    if prev is not None:
        pp, prev_source, snap = prev
        prev_period = str(pp)
        if snap is not None:
            row = snap["indicators"][ind.id].get("units", {}).get(code)
            prev_value = row[2] if row else None
        elif not comp.uncounted(ind, pp, code):
            prev_value = comp.values(ind, pp, code)[0]
    change = change_pct = None
    if value is not None and prev_value is not None:
        change = value - prev_value
        change_pct = (change / prev_value * 100) if prev_value else None
    t = ind.target
    status = judge(t, same.end, value, prev_value, change, change_pct, uncounted)
    reported, expected, reporting_level = comp.reporting(ind, p, code)
    return IndicatorResult(
        **same.fields,
        unit_code=code,
        unit_name=comp.index.name(code),
        level=code_level or ind.level,
        value=_as_number(value),
        numerator=_as_number(num),
        denominator=_as_number(den),
        compared_value=_as_number(compared_quantity(t, value, change, change_pct)) if t else None,
        status=status,
        status_label=_STATUS_TEXT[status],
        progress_pct=progress_pct(t, value),
        units_reported=reported,
        units_expected=expected,
        reporting_level=reporting_level,
        previous_period=prev_period,
        previous_value=_as_number(prev_value),
        previous_source=prev_source,
        change=_as_number(change),
        change_pct=change_pct,
        uncounted_encrypted=uncounted,
    )


def _compared_words(ind: Indicator, p: Period) -> tuple[str, str]:
    """What a change target compares with, in words (Vietnamese, English)."""
    c = ind.comparison
    if c.kind is ComparisonKind.base_year and c.base_year is not None:
        return f"năm {c.base_year}", str(c.base_year)
    if p.kind.value == "year":
        return "năm trước", "the previous year"
    return "kỳ trước", "the previous period"


def build_snapshot(
    store: Store,
    rnd: Any,
    *,
    indicators: Sequence[Indicator] | None = None,
    registry: UnitRegistry | None = None,
) -> dict[str, Any]:
    """The indicator part of a closed round's snapshot (see ``freeze_snapshot``)."""
    p = Period.parse(rnd.period)
    inds = _indicators(indicators)
    forms = set(rnd.form_ids or [])
    if forms:
        inds = [i for i in inds if any(m.form in forms for m in i.measures())]
    comp = Computation(store, _registry(registry, store))
    for ind in inds:
        comp.need_indicator(ind, p)
    comp.run()
    codes = sorted(comp.units_with_data())
    out: dict[str, Any] = {}
    for ind in inds:
        rows: dict[str, list[Any]] = {}
        uncounted: dict[str, int] = {}
        for code in codes:
            level = comp.index.level(code)
            if level is not None and LEVEL_RANK[level] < LEVEL_RANK[ind.level]:
                continue
            if not applies_in(ind.province, comp.index.at_level(code, Level.province)):
                continue
            missed = comp.uncounted(ind, p, code)
            if missed:  # frozen as unknown: next year compares with nothing rather than with a zero
                uncounted[code] = missed
                rows[code] = [None, None, None]
                continue
            value, num, den = comp.values(ind, p, code)
            if value is None and num is None and den is None:
                continue
            rows[code] = [_as_number(num), _as_number(den), _as_number(value)]
        out[ind.id] = {
            "name_vi": ind.name_vi,
            "factor": ind.factor,
            "definition": ind.model_dump(mode="json", exclude_defaults=True),
            "units": rows,
            **({"uncounted_encrypted": uncounted} if uncounted else {}),
        }
    return {
        "format": SNAPSHOT_FORMAT,
        "round_id": rnd.id,
        "period": str(p),
        "frozen_at": datetime.now(UTC).isoformat(),
        "indicators": out,
    }


def freeze_snapshot(store: Store, rnd: Any) -> dict[str, Any]:
    """What closing a round freezes for indicators; the caller stores it with ``store.put_snapshot``.

    Shape::

        {"format": "rasoat.indicators.snapshot/1", "round_id": …, "period": "2025", "frozen_at": iso,
         "indicators": {indicator_id: {"name_vi": …, "factor": 100, "definition": {…},
                                       "units": {unit_code: [numerator, denominator, value], …},
                                       "uncounted_encrypted": {unit_code: n, …}}}}   # only when some

    A unit whose figure needed records the server could not read (``uncounted_encrypted``) is frozen as
    ``[None, None, None]``: next year compares with nothing rather than with a zero.

    Every unit with data at every level (hamlet, commune, province) is stored, so later years compare
    against exactly these numbers, whatever edits or reviews happen afterwards. Indicators are those
    reading any of the round's forms (all when the round names none), computed over all counted
    submissions of the round's period.
    """
    return build_snapshot(store, rnd)

