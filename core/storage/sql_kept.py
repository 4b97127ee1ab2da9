"""``SqlStore.aggregate``'s groups kept per commune, so that a province's indicators after a new record
compute one commune again, not ninety (issue 21 item 8).

An aggregate over many communes is the union of the same aggregate over each: its groups are per unit, and
``Latest`` looks no further than a commune (a unit code up to its first "-"; no unit is a commune of its
own, ""). A *part* is one commune with the units asked that hold records of the form. Every write to a
submission gives it the next ``touched`` value (a trigger, migration 0007), so a part's (count, sum, max) of
``touched``, read from the ``submissions_touched`` index alone, changes with any insert, update or delete
of its records. ``kept_groups`` holds, per (spec, part), the fingerprint its groups were computed at; the
spec is a hash of everything else that shapes the answer. Rows computed more than ``KEPT_DAYS`` ago are
removed (computed once more if still asked for).

The fingerprint is read before the groups are computed: a write in between leaves groups newer than their
fingerprint, which the next call finds stale and computes again, never the other way round.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic_core import from_json, to_json
from rasoat.core.models import utcnow
from rasoat.core.storage.base import Group, Latest, Span, SubmissionQuery, Tally

if TYPE_CHECKING:
    from rasoat.core.storage.sql import SqlStore

#: changed when ``_grouped`` answers differently for the same records: every kept row is then stale
FORMAT = 1
KEPT_DAYS = 30

Print = tuple[int, int, int]  # count, sum and max of ``touched``


def commune_of(unit: str | None) -> str:
    """The part a unit's groups belong to, as ``Latest``'s window partitions (no unit: "")."""
    return (unit or "").split("-", 1)[0]


def spec_key(query: SubmissionQuery, spans: Sequence[Span], tallies: Sequence[Tally], sealed_key: str,
             latest: Latest | None) -> str:
    """A stable hash of what shapes the answer besides the units."""
    asked = query.model_dump(mode="json", exclude={"unit_codes"})
    shape = [FORMAT, asked, spans, tallies, sealed_key, latest]
    return hashlib.sha256(to_json(shape)).hexdigest()


def aggregate(store: SqlStore, query: SubmissionQuery, spans: Sequence[Span], tallies: Sequence[Tally],
              sealed_key: str, latest: Latest | None) -> list[Group] | None:
    """The kept groups of each part whose fingerprint is unchanged, the others computed in one group-by
    over their units and kept; None when a part holds answers the store cannot total exactly."""
    if not store._nameable(spans, tallies, sealed_key, latest):
        return None
    if query.form_id is None:  # the fingerprints are read per form
        found = store._grouped(query, spans, tallies, sealed_key, latest)
        return None if found is None or found[1] else found[0]
    spec = spec_key(query, spans, tallies, sealed_key, latest)
    parts = _prints(store, query)
    kept = _kept(store, spec, list(parts))
    stale = [p for p, (_, fp) in parts.items() if kept.get(p, (None, None))[0] != fp]
    if stale:
        units = [u for p in stale for u in parts[p][0]]
        asked = query if None in units else query.model_copy(update={"unit_codes": units})
        found = store._grouped(asked, spans, tallies, sealed_key, latest)
        assert found is not None  # the answers were named above
        groups, odd = found
        # a commune whose first records came after the fingerprints were read (``asked`` is the whole query
        # when the records without a unit are stale) is left out, as if read just before them
        part = {commune_of(u[0] if u else None): p for p, (u, _) in parts.items()}
        fresh: dict[str, list[Group] | None] = {p: [] for p in stale}
        for g in groups:
            p = part.get(commune_of(g.unit_code), "")
            if p in fresh and (found_groups := fresh[p]) is not None:
                found_groups.append(g)
        for unit in odd:
            p = part.get(commune_of(unit), "")
            if p in fresh:
                fresh[p] = None
        _keep(store, spec, {p: (parts[p][1], fresh[p]) for p in stale})
        kept.update((p, (parts[p][1], fresh[p])) for p in stale)
    out: list[Group] = []
    for p in parts:
        answer = kept[p][1]
        if answer is None:
            return None
        out += answer
    return out


def _of_form(store: SqlStore, query: SubmissionQuery) -> tuple[str, list[Any]]:
    where, params = "form_id = ?", [query.form_id]
    if query.unit_codes is not None:
        where += " AND " + store.dialect.in_list("unit_code")
        params.append(store.dialect.list_param(list(query.unit_codes)))
    return where, params


def prints_statement(store: SqlStore, query: SubmissionQuery) -> tuple[str, list[Any]]:
    """Per unit, the count, sum and max of ``touched`` of the form's records in the units asked."""
    where, params = _of_form(store, query)
    return store._q("SELECT unit_code, count(*), coalesce(sum(touched), 0), coalesce(max(touched), 0)"
                    f" FROM submissions WHERE {where} GROUP BY unit_code"), params


def records_print(store: SqlStore, query: SubmissionQuery) -> str | None:
    """``Store.records_print``: the fingerprint of every part at once."""
    if query.form_id is None:
        return None
    with store._read_cx() as cx:
        rows = cx.execute(*prints_statement(store, query)).fetchall()
    return (f"{sum(int(r[1]) for r in rows)}:{sum(int(r[2]) for r in rows)}"
            f":{max((int(r[3]) for r in rows), default=0)}")


def records_added(store: SqlStore, query: SubmissionQuery, since: str) -> int | None:
    """``Store.records_added``: the records touched at or before the print's max are its records
    unchanged when their count and sum are its own (a write moves a record's ``touched`` above it, a
    late commit below it adds one, a delete takes one away); then the others are all new."""
    if query.form_id is None:
        return None
    n, total, top = (int(x) for x in since.split(":"))
    where, params = _of_form(store, query)
    with store._read_cx() as cx:
        row = cx.execute(store._q(f"SELECT count(*), coalesce(sum(touched), 0) FROM submissions WHERE {where}"
                                  " AND touched <= ?"), [*params, top]).fetchone()
    return top if (int(row[0]), int(row[1])) == (n, total) else None


def _prints(store: SqlStore, query: SubmissionQuery) -> dict[str, tuple[list[str | None], Print]]:
    """Each part's units and fingerprint, over every record of the form in the units asked (whatever the
    rest of the query): one GROUP BY read from the ``submissions_touched`` index alone."""
    with store._read_cx() as cx:
        rows = cx.execute(*prints_statement(store, query)).fetchall()
    communes: dict[str, list[tuple[Any, ...]]] = {}
    for row in sorted(rows, key=lambda r: (r[0] is not None, r[0] or "")):
        communes.setdefault(commune_of(row[0]), []).append(row)
    out: dict[str, tuple[list[str | None], Print]] = {}
    for commune, found in communes.items():
        units = [r[0] for r in found]
        part = f"{commune}:{hashlib.sha256(to_json(units)).hexdigest()[:16]}"
        out[part] = units, (sum(int(r[1]) for r in found), sum(int(r[2]) for r in found),
                            max(int(r[3]) for r in found))
    return out


def _kept(store: SqlStore, spec: str, parts: list[str]) -> dict[str, tuple[Print, list[Group] | None]]:
    if not parts:
        return {}
    d = store.dialect
    with store._cx() as cx:
        rows = cx.execute(store._q(
            f"SELECT part, rows, touched_sum, touched_max, groups FROM kept_groups WHERE spec = ?"
            f" AND {d.in_list('part')}"), (spec, d.list_param(parts))).fetchall()
    return {part: ((int(n), int(total), int(top)),
                   None if groups is None else [Group(u, r, st, tuple(a), tuple(b), tuple(c))
                                                for u, r, st, a, b, c in from_json(groups)])
            for part, n, total, top, groups in rows}


def _keep(store: SqlStore, spec: str, fresh: dict[str, tuple[Print, list[Group] | None]]) -> None:
    d = store.dialect
    now = utcnow()
    rows = [(spec, part, *fp, None if groups is None else to_json(groups).decode(), d.time(now))
            for part, (fp, groups) in fresh.items()]
    with store._wx() as cx:
        cx.executemany(store._q(
            "INSERT INTO kept_groups (spec, part, rows, touched_sum, touched_max, groups, computed_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (spec, part) DO UPDATE SET rows = excluded.rows,"
            " touched_sum = excluded.touched_sum, touched_max = excluded.touched_max,"
            " groups = excluded.groups, computed_at = excluded.computed_at"), rows)
        cx.execute(store._q("DELETE FROM kept_groups WHERE computed_at < ?"),
                   (d.time(now - timedelta(days=KEPT_DAYS)),))
