"""What the unit and period pickers (``templates/_pickers.html``, ``static/pickers.js``) need from the
server: the suggested periods, and a search of the units inside the officer's scope.

Without JavaScript the unit picker is a select of the officer's units as a tree (``scoped.unit_choices``)
and the period picker a text box with these suggestions; with it, the unit picker also searches every
unit in scope through ``/units/search`` (name with or without diacritics, or code; hamlets too), and the
period picker composes the name from its kind, year and part. Period names are read by
``core.indicators.periods`` only.
"""

from __future__ import annotations

import json
from typing import cast

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.params import FromQuery
from rasoat.core import scope
from rasoat.core.indicators.periods import Period, PeriodKind, vn_today, weeks_in_year
from rasoat.core.units import LEVELS, Level, get_units
from rasoat.server.web.base import SECURITY_HEADERS, Ctx

SEARCH_LIMIT = 20
KINDS = tuple(PeriodKind)  # the picker's kinds, in the order periods.py lists them


def period_label(p: Period, lang: str) -> str:
    """"Quý 2/2026" / "Q2 2026": how a period reads to an officer (its code is the option's value)."""
    en = lang == "en"
    if p.kind is PeriodKind.year:
        return f"Year {p.year}" if en else f"Năm {p.year}"
    if p.kind is PeriodKind.half:
        which = "đầu" if p.index == 1 else "cuối"
        return f"Half {p.index} of {p.year}" if en else f"6 tháng {which} năm {p.year}"
    if p.kind is PeriodKind.quarter:
        return f"Q{p.index} {p.year}" if en else f"Quý {p.index}/{p.year}"
    if p.kind is PeriodKind.month:
        return f"Month {p.index}/{p.year}" if en else f"Tháng {p.index}/{p.year}"
    if p.kind is PeriodKind.week:
        days = f"{p.start:%d/%m}–{p.last_day:%d/%m/%Y}"
        return f"Week {p.index} of {p.year} ({days})" if en else f"Tuần {p.index}/{p.year} ({days})"
    days = f"{p.start:%d/%m/%Y}–{p.last_day:%d/%m/%Y}"  # 15/12 of the year before to 14/12
    return f"QĐ 28 assessment year {p.year} ({days})" if en else f"Năm đánh giá QĐ 28 {p.year} ({days})"


def period_choices(lang: str) -> list[tuple[str, str]]:
    """Suggestions: this year and last as years, QĐ 28 years, halves, quarters and months; this year's
    weeks up to the current one, newest first."""
    today = vn_today()
    out: list[Period] = []
    for year in (today.year, today.year - 1):
        out += [Period(year), Period(year, PeriodKind.qd28)]
        out += [Period(year, PeriodKind.half, i) for i in (1, 2)]
        out += [Period(year, PeriodKind.quarter, i) for i in range(1, 5)]
        out += [Period(year, PeriodKind.month, i) for i in range(1, 13)]
    iso = today.isocalendar()
    last = min(iso.week, weeks_in_year(iso.year))
    out += [Period(iso.year, PeriodKind.week, w) for w in range(last, 0, -1)]
    return [(str(p), period_label(p, lang)) for p in out]


@get("/units/search", sync_to_thread=True)
def units_search(ctx: NamedDependency[Ctx], q: FromQuery[str] = "", level: FromQuery[str] = "") -> Response:
    """Units in the officer's scope whose name (any diacritics) or code matches ``q``, best first, only of
    ``level`` when given (a commune's page): ``[{"code", "name", "level", "path"}]`` (``path`` names the
    units above, for telling namesakes apart)."""

    query = q.strip()[:80]
    units = get_units()
    within = None if scope.allowed_units(ctx.user) is None else list(ctx.user.unit_codes)
    kind = cast(Level, level) if level in LEVELS else None
    found = units.search(query, kind, within=within, limit=SEARCH_LIMIT) if query and within != [] else []
    rows = [{"code": u.code, "name": u.name, "level": u.level,
             "path": ", ".join(a.name for a in units.ancestors(u.code))} for u in found]
    return Response(content=json.dumps(rows, ensure_ascii=False), media_type="application/json",
                    headers=dict(SECURITY_HEADERS))


handlers = [units_search]
