"""The audit log for administrators and province managers: filter by person, action, unit and day,
newest first, and the same selection as an Excel workbook. A province manager reads only the entries
about their province (``core.audit`` decides which), a page at a time from a key."""

from __future__ import annotations

import io
from datetime import date, datetime
from typing import Annotated, Any

from litestar import Response, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery, QueryParameter
from rasoat.core import audit, audit_actions, scope
from rasoat.core.audit import AuditFilter
from rasoat.core.problems import Problem
from rasoat.server.web import scoped
from rasoat.server.web.audit_text import Describer
from rasoat.server.web.base import LOCAL_TZ, Ctx, allowed, form_titles, page, unit_name

PAGE_SIZE = 100
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# The action families offered in the filter (any other prefix can still be typed in the address)
ACTION_FAMILIES = ("login", "user", "collector", "round", "form", "submission", "view", "export", "key",
                   "assessment", "backup")


def _day(value: str | None) -> date | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise Problem("audit.bad_day") from exc


def audit_filter(
    ctx: NamedDependency[Ctx], person: FromQuery[str] = "", action: FromQuery[str] = "",
    unit: FromQuery[str] = "", day_from: Annotated[str, QueryParameter(name="from")] = "",
    day_to: Annotated[str, QueryParameter(name="to")] = "",
) -> AuditFilter:
    """The selection asked for in the address (both pages take the same one); a unit must be in scope."""
    unit = unit.strip()
    if unit:
        scope.require_unit(ctx.user, unit)
    return AuditFilter(person=person.strip(), action=action.strip(), unit=unit, day_from=_day(day_from),
                       day_to=_day(day_to))


VIEW_AUDIT = [allowed(scope.VIEW_AUDIT)]
FILTER = {"flt": Provide(audit_filter, sync_to_thread=False)}


@get("/audit", guards=VIEW_AUDIT, dependencies=FILTER, sync_to_thread=True)
def audit_log(
    ctx: NamedDependency[Ctx], flt: NamedDependency[AuditFilter],
    before: FromQuery[str] = "", after: FromQuery[str] = "",
) -> Response:
    """Newest first, a page at a time from a key the Older and Newer links carry (the log grows by every
    list an officer opens: a page is read from its key, not by counting through the log)."""
    found = audit.page_events(ctx.store, ctx.user, flt, PAGE_SIZE, before=_key(before),
                              after=None if before.strip() else _key(after))
    describe = Describer(ctx.lang, form_titles(ctx.store))
    rows = [_row(e, ctx.lang, describe) for e in found.events]
    allowed_units = scope.allowed_units(ctx.user)
    people = sorted(u.username for u in ctx.store.list_users()
                    if allowed_units is None or set(u.unit_codes) & allowed_units)
    return page(
        ctx, "audit.html", rows=rows, newer=found.newer, older=found.older, flt=flt, people=people,
        families=ACTION_FAMILIES,
        unit_label=unit_name(flt.unit) if flt.unit else "", unit_choices=scoped.unit_choices(ctx),
    )


def _key(value: str) -> int | None:
    value = value.strip()
    return int(value) if value.isdigit() and len(value) < 19 else None


def _row(event: Any, lang: str, describe: Describer) -> dict[str, Any]:
    return {
        "at": event.at, "actor": event.actor, "action": audit_actions.label(event.action, lang),
        "code": event.action, "target": describe.target(event.target),
        "details": describe.details(event.details),  # three items of a list; the export lists every one
    }


@get("/audit.xlsx", guards=VIEW_AUDIT, dependencies=FILTER, sync_to_thread=True)
def audit_export(ctx: NamedDependency[Ctx], flt: NamedDependency[AuditFilter]) -> Response:
    """The filtered selection as a workbook; the export is itself an audit entry."""
    events = audit.find_events(ctx.store, ctx.user, flt)
    buf = io.BytesIO()
    count = audit.write_xlsx(reversed(events), buf)  # the workbook reads in time order
    audit.record(ctx.store, ctx.actor, "export.audit", target=flt.unit, count=count,
                 filters={k: str(v) for k, v in vars(flt).items() if v})
    stamp = datetime.now(LOCAL_TZ).strftime("%Y%m%d-%H%M")
    return Response(
        content=buf.getvalue(), media_type=XLSX,
        headers={"Content-Disposition": f'attachment; filename="nhat-ky-audit-{stamp}.xlsx"',
                 "Cache-Control": "no-store"},
    )


handlers = [audit_log, audit_export]
