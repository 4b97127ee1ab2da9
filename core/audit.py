"""The audit log: who did what, when, to which records. Append-only; read it with ``rasoat audit``.

Every module writes with ``store.append_audit(AuditEvent(...))``; this module adds the helpers for the
events the law cares most about (person-level data viewed or exported) and the readers: filtering,
a plain-text line per event, and an Excel export (text written as text, never as a formula: actors and
targets come from users and phones).

Action names (``.``-separated, a family first: ``login.ok``, ``round.open``…) and what each means in
Vietnamese and English are listed once, in ``core.audit_actions``. Details never hold passwords,
passphrases, tokens or field values — only filters and counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import IO, Any

from rasoat.core import scope
from rasoat.core.audit_actions import both
from rasoat.core.excel.cells import Formats, to_vn_naive, write_header, write_text
from rasoat.core.indicators.periods import LOCAL_TZ
from rasoat.core.models import AuditEvent, User
from rasoat.core.storage.base import Store
from rasoat.core.units import get_units

PERSONAL_ACTIONS = ("view.submissions", "view.submission", "roster.download", "export.raw", "key.decrypt")


def record(store: Store, actor: str, action: str, target: str = "", **details: Any) -> AuditEvent:
    """Append one event and return it."""
    event = AuditEvent(actor=actor, action=action, target=target, details=details)
    store.append_audit(event)
    return event


def record_view(
    store: Store,
    actor: str,
    what: str,
    *,
    filters: dict[str, Any] | None = None,
    count: int = 0,
    personal: bool = True,
    via: str = "",
) -> AuditEvent:
    """A view of submissions (a list with field values, or one record): who, which filter, how many."""
    return record(
        store,
        actor,
        what,
        target=str((filters or {}).get("form_id") or ""),
        filters={k: v for k, v in (filters or {}).items() if v not in (None, [], "")},
        count=count,
        personal=personal,
        via=via,
    )


def iter_events(
    store: Store,
    since: datetime | None = None,
    user: str | None = None,
    action: str | None = None,
) -> Iterator[AuditEvent]:
    """Events in time order; ``action`` matches a whole name or a prefix ("login" → login.*)."""
    for event in store.iter_audit(since=since, actor=user):
        if action and not (event.action == action or event.action.startswith(action.rstrip(".") + ".")):
            continue
        yield event


def _vn(when: datetime) -> datetime:
    return to_vn_naive(when)


def describe_details(details: dict[str, Any]) -> str:
    """``key=value; …`` on one line (lists joined with commas, nested dicts flattened): the export's column
    (the audit page labels each detail in its language, server.web.audit_text)."""
    parts = []
    for key, value in details.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, list | tuple):
            value = ",".join(str(v) for v in value)
        parts.append(f"{key}={value}")
    return "; ".join(parts)


def event_row(event: AuditEvent) -> list[str]:
    """[time (Vietnam), actor, action in both languages, action code, target, details] as text."""

    return [
        _vn(event.at).strftime("%Y-%m-%d %H:%M:%S"),
        event.actor,
        both(event.action),
        event.action,
        event.target,
        describe_details(event.details),
    ]


HEADERS = [
    "Thời điểm / Time (UTC+7)",
    "Người / Actor",
    "Hành động / Action",
    "Mã hành động / Action code",
    "Đối tượng / Target",
    "Chi tiết / Details",
]


def write_xlsx(events: Iterable[AuditEvent], target: str | Path | IO[bytes]) -> int:
    """Write events to an Excel workbook (streaming); returns how many were written."""
    from xlsxwriter import Workbook

    wb = Workbook(
        target,
        {
            "constant_memory": True,
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
        },
    )
    try:
        fmt = Formats(wb)
        ws = wb.add_worksheet("Nhat ky - Audit")
        write_header(ws, HEADERS, fmt.header)
        for col, width in enumerate((20, 24, 36, 22, 40, 80)):
            ws.set_column(col, col, width)
        ws.freeze_panes(1, 0)
        n = 0
        for n, event in enumerate(events, start=1):
            ws.write_datetime(n, 0, _vn(event.at), fmt.datetime)
            for col, text in enumerate(event_row(event)[1:], start=1):
                write_text(ws, n, col, text, fmt.text_quoted)
        ws.autofilter(0, 0, max(n, 1), len(HEADERS) - 1)
    finally:
        wb.close()
    return n


# --- reading the log as an officer ----------------------------------------------------------------

UNIT_DETAIL_KEYS = ("unit", "units", "unit_code", "unit_codes")


@dataclass(frozen=True)
class AuditFilter:
    """What an officer asks of the log; empty fields ask nothing. Days are Vietnamese calendar days."""

    person: str = ""
    action: str = ""  # a whole name or a prefix ("round" → round.*)
    unit: str = ""  # entries that name this unit or one below it
    day_from: date | None = None
    day_to: date | None = None


class _Names:
    """Which units an entry is about: its actor's, the account or round it names, the units in its details."""

    def __init__(self, store: Store) -> None:
        self.accounts: dict[str, User] = {}
        for user in store.list_users():
            self.accounts[user.username] = user
            self.accounts[user.id] = user
        self.rounds = {r.id: r for r in store.list_rounds()}

    def units(self, event: AuditEvent) -> set[str]:
        out: set[str] = set()
        for who in (event.actor, event.target):
            user = self.accounts.get(who)
            if user is not None:
                out.update(user.unit_codes)
        if event.action.startswith("round.") and event.target in self.rounds:
            out.update(self.rounds[event.target].unit_codes)
        if event.target and event.target in get_units():
            out.add(event.target)
        sources = [event.details, event.details.get("filters") or {}]
        for source in sources:
            if not isinstance(source, dict):
                continue
            for key in UNIT_DETAIL_KEYS:
                value = source.get(key)
                if isinstance(value, str) and value:
                    out.add(value)
                elif isinstance(value, list | tuple):
                    out.update(str(v) for v in value)
        return out


def _below(code: str) -> set[str]:
    registry = get_units()
    return {code, *registry.expand([code])} if code in registry else {code}


def _local_day(when: datetime) -> date:
    return _vn(when).date()


def _matcher(store: Store, viewer: User, flt: AuditFilter) -> Callable[[AuditEvent], bool]:
    """Whether an entry is one ``find_events`` lists: read by ``viewer`` and matching ``flt``.

    A province manager reads the entries about their units: made by an account of theirs, naming an
    account, round or unit of theirs. An administrator reads everything; other roles nothing."""

    scope.require(viewer, scope.VIEW_AUDIT)
    allowed = scope.allowed_units(viewer)
    wanted = _below(flt.unit) if flt.unit else None
    names = _Names(store) if allowed is not None or wanted is not None else None
    action = flt.action

    def match(event: AuditEvent) -> bool:
        if action and not (event.action == action or event.action.startswith(action.rstrip(".") + ".")):
            return False
        day = _local_day(event.at)
        if (flt.day_from and day < flt.day_from) or (flt.day_to and day > flt.day_to):
            return False
        if names is not None:
            units = names.units(event)
            if allowed is not None and not units & allowed:
                return False
            if wanted is not None and not units & wanted:
                return False
        return True

    return match


def find_events(store: Store, viewer: User, flt: AuditFilter) -> list[AuditEvent]:
    """The entries ``viewer`` may read that match ``flt``, newest first (the whole list: the export)."""
    match = _matcher(store, viewer, flt)
    out = [event for event in store.iter_audit(actor=flt.person or None) if match(event)]
    out.reverse()
    return out


@dataclass
class AuditPage:
    """A page of ``find_events``: its entries newest first, and the keys of the pages either side (None
    where there is none)."""

    events: list[AuditEvent]
    newer: int | None
    older: int | None


READ_BATCH = 500  # entries read from the store at a time while a page fills


def page_events(
    store: Store, viewer: User, flt: AuditFilter, limit: int, before: int | None = None,
    after: int | None = None,
) -> AuditPage:
    """``limit`` entries of ``find_events`` from a key: those just older than ``before`` (or the newest),
    or, given ``after``, those just newer than it. The store is read a batch at a time from the key until
    the page is full, so a page costs about the same however long the log is (a filter that few entries
    match reads further)."""
    match = _matcher(store, viewer, flt)
    since = datetime.combine(flt.day_from, time(), LOCAL_TZ) if flt.day_from else None
    until = datetime.combine(flt.day_to + timedelta(days=1), time(), LOCAL_TZ) if flt.day_to else None
    found: list[tuple[int, AuditEvent]] = []
    key_before, key_after = before, after
    while len(found) <= limit:
        batch = store.page_audit(limit=READ_BATCH, actor=flt.person or None, since=since, until=until,
                                 before=key_before, after=key_after)
        found += [(k, e) for k, e in batch if match(e)]
        if len(batch) < READ_BATCH:
            break
        if after is not None:
            key_after = batch[-1][0]
        else:
            key_before = batch[-1][0]
    more = len(found) > limit  # beyond this page, in the direction read
    found = found[:limit]
    if after is not None:
        found.reverse()
    if not found:
        return AuditPage([], None, None)
    going_back = after is None
    newer = found[0][0] if (before is not None if going_back else more) else None
    older = found[-1][0] if (more if going_back else True) else None
    return AuditPage([e for _, e in found], newer, older)
