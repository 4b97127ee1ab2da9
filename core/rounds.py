"""Survey rounds (campaigns): periods, creation, collectors, counting rules, and which rounds apply where.

Every change is appended to ``Round.history`` and to the store's audit log (``record``). The
draft → open → closed → archived moves are in ``core.round_lifecycle``, above this module and the census
register (``core.rollforward``) they use. Only open rounds' forms reach phones, and only
the phones of the collectors a round names (``is_assigned``, the one rule the server, the offline bundle
and the importer share); and ``round_for_submission`` tells the server which round a submission
belongs to.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Iterable
from datetime import date
from typing import Any

from rasoat.core.formreg import catalogue_form_ids
from rasoat.core.indicators.periods import ACCEPTED, Period
from rasoat.core.models import (
    ROUND_KINDS,
    AuditEvent,
    FormVersion,
    ReviewState,
    Round,
    RoundState,
    User,
    utcnow,
)
from rasoat.core.plans import form_allowed
from rasoat.core.problems import Problem, Words, both
from rasoat.core.storage.base import Store
from rasoat.core.units import UnknownUnit, get_units

KIND_FORMS: dict[str, str] = {
    "census": "f1_person",
    "pledge": "f2_pledge",
    "school_audit": "f3_school",
    "enterprise_audit": "f4_enterprise",
    "hamlet_checklist": "f5_hamlet",
    "hotspot": "f6_hotspot",
    "cultivation": "f7_cultivation",
    "activity": "f8_activity",
    "cases": "f9_case",
    "summary": "f10_summary",
}

STATE_LABELS: dict[RoundState, Words] = {
    RoundState.draft: ("Nháp", "Draft"),
    RoundState.open: ("Đang mở", "Open"),
    RoundState.closed: ("Đã đóng", "Closed"),
    RoundState.archived: ("Lưu trữ", "Archived"),
}

# (from, to) → the action that makes the move. closed → open exists only as ``reopen``.
TRANSITIONS: dict[tuple[RoundState, RoundState], str] = {
    (RoundState.draft, RoundState.open): "open",
    (RoundState.open, RoundState.closed): "close",
    (RoundState.closed, RoundState.archived): "archive",
    (RoundState.closed, RoundState.open): "reopen",
}

class RoundError(Problem, ValueError):
    """A round operation the user asked for is not allowed; the message is bilingual and one line."""


# --- periods, kinds, ids ---------------------------------------------------------------------


def parse_period(period: str) -> tuple[date, date]:
    """First and last day of a period ("2026", "2026-H1", "2026-Q3", "2026-05", "2026-W07", "2026-QD28"),
    as ``core.indicators.periods`` reads it: one parser for rounds, indicators and reports."""

    try:
        p = Period.parse(period)
    except ValueError:
        raise RoundError("round.bad_period", period=period, examples=ACCEPTED) from None
    return p.start, p.last_day


def period_year(period: str) -> int:
    """The year a period is named for (2026 for "2026-QD28", which starts on 15/12/2025)."""

    parse_period(period)
    return Period.parse(period).year


def kind_label(kind: str) -> Words:
    """A round's kind in both languages (an unknown kind, a plugin's, as its key)."""
    return ROUND_KINDS.get(kind, (kind, kind))


def _ascii_slug(text: str) -> str:
    text = text.replace("đ", "d").replace("Đ", "D")
    text = unicodedata.normalize("NFD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def make_round_id(name: str, period: str, unit_codes: list[str], taken: Iterable[str] = ()) -> str:
    """A short readable id, e.g. ``r-2026-ra-soat-05563``; a 4-hex suffix when that is taken."""
    year = str(period_year(period))
    words = [w for w in _ascii_slug(name).split("-") if w and w != year]
    slug = "-".join(words)[:28].strip("-") or "dot"
    base = f"r-{period.lower()}-{slug}"
    if len(unit_codes) == 1:
        base += "-" + _ascii_slug(unit_codes[0])
    taken = set(taken)
    rid = base
    while rid in taken:
        rid = f"{base}-{secrets.token_hex(2)}"
    return rid


# --- units and forms ---------------------------------------------------------------------------


def _registry() -> Any:
    return get_units()


def _code(item: Any) -> str:
    return item if isinstance(item, str) else item.code


def ancestors_of(code: str) -> list[str]:
    """Codes above a unit (commune, province), from the registry, else from the code's shape."""
    try:
        return [_code(u) for u in _registry().ancestors(code)]
    except UnknownUnit:  # unknown to the registry: a hamlet code still names its commune
        return [code.split("-", 1)[0]] if "-" in code else []


def in_scope(code: str, scope: Iterable[str]) -> bool:
    """Is ``code`` one of ``scope`` or below one of them?"""
    scope = set(scope)
    return code in scope or any(a in scope for a in ancestors_of(code))


def scopes_overlap(a: Iterable[str], b: Iterable[str]) -> bool:
    """Two scopes overlap when a unit of one is, or lies under or above, a unit of the other."""
    a, b = list(a), list(b)
    return any(in_scope(x, b) for x in a) or any(in_scope(y, a) for y in b)


def known_form_ids(store: Store, wanted: Iterable[str] = ()) -> set[str]:
    """Forms published in the store, plus the plugins' catalogue when ``wanted`` names one the store lacks
    (compiling the catalogue costs a few seconds the first time, so the store is asked first)."""
    ids = {f.form_id for f in store.list_forms()}
    if set(wanted) <= ids and wanted:
        return ids

    return ids | set(catalogue_form_ids())


def _check_units(codes: list[str]) -> None:
    units = _registry()
    unknown = [c for c in codes if units.get(c) is None]
    if unknown:
        raise RoundError("unit.unknown_codes", codes=', '.join(unknown))


def _check_forms(store: Store, form_ids: list[str]) -> None:
    known = known_form_ids(store, form_ids)
    unknown = [f for f in form_ids if f not in known]
    if unknown:
        raise RoundError("round.unknown_forms", forms=', '.join(unknown))


def _resolve_collectors(store: Store, refs: Iterable[str]) -> list[str]:
    """Collector ids from ids or usernames; an unknown name is an error, not a silent skip."""
    ids: list[str] = []
    for ref in refs:
        user = store.get_user(ref) or store.get_user_by_name(ref)
        if user is None:
            raise RoundError("round.unknown_user", ref=ref)
        if user.id not in ids:
            ids.append(user.id)
    return ids


# --- history and audit ------------------------------------------------------------------------


def record(store: Store, rnd: Round, action: str, actor: str, **details: Any) -> None:
    """Append to the round's own history and to the audit log; the caller saves the round."""
    at = utcnow()
    entry = {"at": at.isoformat(), "actor": actor, "action": action, **details}
    rnd.history.append(entry)
    store.append_audit(
        AuditEvent(at=at, actor=actor, action=f"round.{action}", target=rnd.id, details=details)
    )


def get_round(store: Store, round_id: str) -> Round:
    rnd = store.get_round(round_id)
    if rnd is None:
        raise RoundError("round.no_round", round=round_id)
    return rnd


# --- create and change ------------------------------------------------------------------------


def create_round(
    store: Store,
    name: str,
    period: str,
    form_ids: Iterable[str],
    unit_codes: Iterable[str],
    kind: str | None = None,
    collectors: Iterable[str] = (),
    actor: str = "cli",
    round_id: str | None = None,
    counted_states: Iterable[ReviewState | str] | None = None,
) -> Round:
    """A new round in ``draft``; forms, units and collectors must exist. Kind defaults from the forms."""
    name = name.strip()
    if not name:
        raise RoundError("round.name_empty")
    parse_period(period)
    form_ids = list(dict.fromkeys(f.strip() for f in form_ids if f.strip()))
    unit_codes = list(dict.fromkeys(u.strip() for u in unit_codes if u.strip()))
    if not form_ids:
        raise RoundError("round.no_forms")
    if not unit_codes:
        raise RoundError("round.no_units")
    if kind is None:
        kind = next((k for k, f in KIND_FORMS.items() if f == form_ids[0]), "census")
    if kind not in ROUND_KINDS:
        raise RoundError("round.bad_kind", kind=kind, choices=', '.join(ROUND_KINDS))
    _check_forms(store, form_ids)
    _check_units(unit_codes)
    collector_ids = _resolve_collectors(store, collectors)
    taken = {r.id for r in store.list_rounds()}
    if round_id is not None and round_id in taken:
        raise RoundError("round.exists", round=round_id)
    rnd = Round(
        id=round_id or make_round_id(name, period, unit_codes, taken),
        name=name,
        kind=kind,
        period=period,
        form_ids=form_ids,
        unit_codes=unit_codes,
        collector_ids=collector_ids,
    )
    if counted_states is not None:
        rnd.counted_states = [ReviewState(s) for s in counted_states]
    record(
        store, rnd, "create", actor, name=name, kind=kind, period=period, forms=form_ids, units=unit_codes
    )
    store.put_round(rnd)
    return rnd


def assign_collectors(store: Store, round_id: str, collectors: Iterable[str], actor: str = "cli") -> Round:
    """Add collectors (ids or usernames) to a round that is not yet closed."""
    rnd = get_round(store, round_id)
    if rnd.state in (RoundState.closed, RoundState.archived):
        raise RoundError("round.closed_to_collectors", round=rnd.id, state=rnd.state.value)
    added = [c for c in _resolve_collectors(store, collectors) if c not in rnd.collector_ids]
    if added:
        rnd.collector_ids.extend(added)
        record(store, rnd, "assign", actor, collectors=added)
        store.put_round(rnd)
    return rnd


def add_form(store: Store, round_id: str, form_id: str, actor: str = "cli") -> Round:
    """Put a published form in a round that is not closed (``round.add_form``); already there: unchanged."""
    rnd = get_round(store, round_id)
    if rnd.state in (RoundState.closed, RoundState.archived):
        raise RoundError("round.closed_to_forms", round=rnd.id, state=rnd.state.value)
    if form_id not in rnd.form_ids:
        _check_forms(store, [form_id])
        rnd.form_ids.append(form_id)
        record(store, rnd, "add_form", actor, form=form_id)
        store.put_round(rnd)
    return rnd


def set_counted_states(
    store: Store, round_id: str, states: Iterable[ReviewState | str], actor: str = "cli"
) -> Round:
    """Change which review states count in indicators (the round's rule)."""
    rnd = get_round(store, round_id)
    try:
        new = list(dict.fromkeys(ReviewState(s) for s in states))
    except ValueError as exc:
        raise RoundError("round.bad_review_state", choices=', '.join(ReviewState)) from exc
    if not new:
        raise RoundError("round.no_states")
    old = [s.value for s in rnd.counted_states]
    rnd.counted_states = new
    record(store, rnd, "rule", actor, counted_states=[s.value for s in new], previous=old)
    store.put_round(rnd)
    return rnd


# --- what the server asks --------------------------------------------------------------------


def is_assigned(rnd: Round, collector_id: str, unit_codes: Iterable[str] = ()) -> bool:
    """The one assignment rule, used by the server's form list and submission checks, the offline bundle
    and the importer: an **open** round assigns its forms to the collectors it names in ``collector_ids``
    whose units overlap its own. A round that names nobody is on nobody's phone."""
    if rnd.state is not RoundState.open or collector_id not in rnd.collector_ids:
        return False
    units = list(unit_codes)
    return not rnd.unit_codes or not units or scopes_overlap(units, rnd.unit_codes)


def assigned_open_rounds(store: Store, user: User) -> list[Round]:
    """Open rounds that name this collector and overlap their units (``is_assigned``)."""
    return [rnd for rnd in store.list_rounds() if is_assigned(rnd, user.id, user.unit_codes)]


def assigned_forms(store: Store, user: User) -> list[FormVersion]:
    """The latest version of each form the collector's phone should hold, in round order: what the server
    lists and what an offline bundle carries."""

    seen: dict[str, FormVersion] = {}
    for rnd in assigned_open_rounds(store, user):
        for form_id in rnd.form_ids:
            if form_id in seen:
                continue
            form = store.get_form(form_id)
            # a round naming a form not yet published simply lists nothing for it; another province's
            # plan form is not offered (core.plans)
            if form is not None and form_allowed(form.source, form_id, user.unit_codes):
                seen[form_id] = form
    return list(seen.values())


def open_rounds(
    store: Store, unit_codes: Iterable[str] | None = None, collector_id: str | None = None
) -> list[Round]:
    """Open rounds, optionally only those over the given units and, with ``collector_id``, only those
    that assign that collector (``is_assigned``: the round must name them)."""
    out = []
    units = list(unit_codes) if unit_codes is not None else None
    for rnd in store.list_rounds():
        if rnd.state is not RoundState.open:
            continue
        if units is not None and not scopes_overlap(units, rnd.unit_codes):
            continue
        if collector_id is not None and not is_assigned(rnd, collector_id, units or ()):
            continue
        out.append(rnd)
    return out


def visible_form_ids(store: Store, unit_codes: Iterable[str], collector_id: str | None = None) -> set[str]:
    """Form ids of open rounds over ``unit_codes``; with ``collector_id``, only of rounds naming that
    collector, which is what their phone lists."""
    return {f for rnd in open_rounds(store, unit_codes, collector_id) for f in rnd.form_ids}


def round_for_submission(store: Store, form_id: str, unit_code: str | None) -> Round | None:
    """The open round a new submission belongs to (at most one: opening refuses overlapping rounds)."""
    for rnd in store.list_rounds():
        if (
            rnd.state is RoundState.open
            and form_id in rnd.form_ids
            and (unit_code is None or in_scope(unit_code, rnd.unit_codes))
        ):
            return rnd
    return None


def previous_round(store: Store, rnd: Round, kind: str | None = None) -> Round | None:
    """The latest closed or archived round of the same kind with an earlier period over the same units."""
    start = parse_period(rnd.period)[0]
    kind = kind or rnd.kind
    best: Round | None = None
    for other in store.list_rounds():
        if other.id == rnd.id or other.kind != kind:
            continue
        if other.state not in (RoundState.closed, RoundState.archived):
            continue
        if parse_period(other.period)[0] >= start or not scopes_overlap(other.unit_codes, rnd.unit_codes):
            continue
        if best is None or (parse_period(other.period)[0], other.created_at) > (
            parse_period(best.period)[0],
            best.created_at,
        ):
            best = other
    return best


def describe(rnd: Round) -> dict[str, Any]:
    """A round as plain JSON, with labels."""
    data = rnd.model_dump(mode="json")
    data["kind_label"] = both(kind_label(rnd.kind))
    data["state_label"] = both(STATE_LABELS[rnd.state])
    return data
