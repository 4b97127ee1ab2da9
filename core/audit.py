"""The audit log: who did what, when, to which records. Append-only; read it with ``rasoat audit``.

Every module writes with ``store.append_audit(AuditEvent(...))``; this module adds the helpers for the
events the law cares most about (person-level data viewed or exported) and the readers: filtering,
a plain-text line per event, and an Excel export (text written as text, never as a formula: actors and
targets come from users and phones).

Action names in use (prefix ``.``-separated): ``login.ok|failed|throttled``, ``user.*``, ``collector.*``,
``round.*``, ``form.publish``, ``submission.review``, ``view.submissions``, ``view.submission``,
``export.raw``, ``export.report``, ``key.create|change_passphrase|decrypt|decrypt_failed``,
``backup.create``, ``restore``, ``demo.setup``. Details never hold passwords, passphrases, tokens or
field values — only filters and counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from rasoat.core.models import AuditEvent
from rasoat.core.storage.base import Store

PERSONAL_ACTIONS = ("view.submissions", "view.submission", "export.raw", "key.decrypt")


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
    from rasoat.core.excel.cells import to_vn_naive

    return to_vn_naive(when)


def describe_details(details: dict[str, Any]) -> str:
    """``key=value; …`` on one line (lists joined with commas, nested dicts flattened)."""
    parts = []
    for key, value in details.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, list | tuple):
            value = ",".join(str(v) for v in value)
        parts.append(f"{key}={value}")
    return "; ".join(parts)


def event_row(event: AuditEvent) -> list[str]:
    """[time (Vietnam), actor, action, target, details] as text."""
    return [
        _vn(event.at).strftime("%Y-%m-%d %H:%M:%S"),
        event.actor,
        event.action,
        event.target,
        describe_details(event.details),
    ]


HEADERS = [
    "Thời điểm / Time (UTC+7)",
    "Người / Actor",
    "Hành động / Action",
    "Đối tượng / Target",
    "Chi tiết / Details",
]


def write_xlsx(events: Iterable[AuditEvent], target: str | Path | IO[bytes]) -> int:
    """Write events to an Excel workbook (streaming); returns how many were written."""
    from rasoat.core.excel.cells import Formats, write_header, write_text
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
        for col, width in enumerate((20, 24, 22, 40, 80)):
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
