"""The yearly QĐ 28/2025 assessment: communes by sign-off state with the 20/12 deadline, the steps
(propose, accept, send back, approve, reopen), the printable report and the workbook the province sends.

The rules and who may do what live in ``core.assessment``; this module only shows them and posts to them.
"""

from __future__ import annotations

import io
from typing import Annotated, Any

from litestar import Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter
from rasoat.core import scope
from rasoat.core.assessment import signoff
from rasoat.core.assessment.compute import assess_province, facts_version
from rasoat.core.assessment.facts import FactError
from rasoat.core.assessment.rules import INPUT_LABELS, PROVINCE_CRITERIA, PROVINCE_LABELS, class_label
from rasoat.core.assessment.signoff import SignoffError
from rasoat.core.assessment.workbook import TYPES, province_report, write_workbook
from rasoat.core.indicators.periods import vn_today
from rasoat.core.problems import Problem, said
from rasoat.core.units import get_units
from rasoat.server.web.base import Ctx, page, redirect
from rasoat.server.web.ranking import page_of
from rasoat.server.web.remember import remembered


def _province_for(ctx: Ctx, asked: str) -> str:
    """The province asked for, else the officer's own (a commune officer: the province of their commune)."""
    registry = get_units()
    code = asked or next(iter(ctx.user.unit_codes), "")
    unit = registry.get(code)
    while unit is not None and unit.level != "province":
        unit = registry.get(unit.parent_code) if unit.parent_code else None
    if unit is None:
        raise Problem("web.choose_province")
    return unit.code


def _year(value: Any) -> int:
    try:
        year = int(str(value or "").strip() or vn_today().year)
    except ValueError:
        raise Problem("web.bad_year") from None
    if not 2000 <= year <= 2100:
        raise Problem("web.bad_year")
    return year


def _label(klass: str, lang: str) -> str:
    return said(class_label(klass), lang)


def _status(ctx: Ctx, year: int, province: str) -> dict[str, Any]:
    def assess() -> Any:  # the registers' scan of a province: kept as the indicators are, per data version
        key = ("qd28", year, province, facts_version(ctx.store, year, province))
        return remembered(ctx, key, lambda: assess_province(ctx.store, year, province))[0]

    st = signoff.province_status(ctx.store, ctx.user, year, province, assess=assess)
    left = (st["deadline"] - vn_today()).days
    st["days_left"] = left
    return st


# what a province officer acts on first: a proposal to accept, then a commune sent back or not yet proposed
ATTENTION = {"proposed": 0, "sent_back": 1, "not_proposed": 2, "accepted": 3}


def _page(
    ctx: Ctx, year: int, province: str, status: int = 200, error: Problem | None = None, only: str = "",
    search: str = "", page_no: int = 1,
) -> Response:
    st = _status(ctx, year, province)
    rows = st["rows"]
    if only in signoff.STATES:  # the list narrowed to one state (the counts stay whole)
        rows = [r for r in rows if r["signoff"]["state"] == only]
    for r in rows:  # what ranking.page_of searches by
        r["unit_code"], r["unit_name"] = r["assessment"].code, r["assessment"].name
    # a province's ~100 communes a page at a time, changed-after-approval and waiting ones first
    rows.sort(key=lambda r: (not r["changed"], ATTENTION.get(r["signoff"]["state"], 4), r["unit_code"]))
    communes = page_of(rows, search, page_no)
    st["rows"] = communes.rows
    is_province = signoff.may_review(ctx.user, province)
    return page(
        ctx, "assessment.html", status=status, st=st, year=year, error=error, is_province=is_province,
        class_label=lambda k: _label(k, ctx.lang), state_names=signoff.state_names, states=signoff.STATES,
        input_labels=INPUT_LABELS, only=only, province_criteria=PROVINCE_CRITERIA,
        province_labels=PROVINCE_LABELS, communes=communes, search=search, all_communes=len(rows),
        can_propose=lambda code: signoff.may_propose(ctx.user, code),
    )


@get("/assessment", sync_to_thread=True)
def assessment(
    ctx: NamedDependency[Ctx], province: FromQuery[str] = "", year: FromQuery[str] = "",
    only: Annotated[str, QueryParameter(name="state")] = "", q: FromQuery[str] = "", p: FromQuery[str] = "",
) -> Response:
    if not province.strip() and scope.allowed_units(ctx.user) is None:  # an administrator: which province
        return page(ctx, "assessment.html", choose=get_units().provinces())
    chosen = _province_for(ctx, province.strip())
    page_no = int(p) if p.isdigit() else 1
    return _page(ctx, _year(year), chosen, only=only.strip(), search=q.strip()[:80], page_no=page_no)


@post("/assessment/{year:int}/{unit:str}/{action:str}", sync_to_thread=True)
def assessment_step(
    ctx: NamedDependency[Ctx], posted: NamedDependency[FormMultiDict], year: FromPath[int],
    unit: FromPath[str], action: FromPath[str],
) -> Response:
    text = str(posted.get("text") or "").strip()[:1000]
    province = _province_for(ctx, unit)
    try:
        if action == "propose":
            signoff.propose(ctx.store, ctx.user, year, unit, text)
        elif action == "accept":
            signoff.review(ctx.store, ctx.user, year, unit, accept=True)
        elif action == "send_back":
            signoff.review(ctx.store, ctx.user, year, unit, accept=False, reason=text)
        elif action == "approve":
            signoff.approve(ctx.store, ctx.user, year, unit)
        elif action == "reopen":
            signoff.reopen(ctx.store, ctx.user, year, unit, text)
        elif action == "fact":  # who may is core's rule (scope.may_not_set_fact: 403)
            signoff.set_fact(ctx.store, ctx.user, year, unit, str(posted.get("name") or ""),
                             str(posted.get("value") or ""), text, str(posted.get("as_of") or ""))
        else:
            raise Problem("resource.not_found", what="")
    except (SignoffError, FactError) as exc:
        return _page(ctx, year, province, 400, exc)
    return redirect(ctx, f"/assessment?year={year}&province={province}", "asm.done")


@get("/assessment/{year:int}/{province:str}/print", sync_to_thread=True)
def assessment_print(ctx: NamedDependency[Ctx], year: FromPath[int], province: FromPath[str]) -> Response:
    rep = province_report(ctx.store, ctx.user, year, province)
    return page(
        ctx, "assessment_print.html", rep=rep, year=year, types=TYPES,
        class_label=lambda k: _label(k, ctx.lang),
        province_criteria=PROVINCE_CRITERIA, province_labels=PROVINCE_LABELS, today=vn_today(),
    )


@get("/assessment/{year:int}/{province:str}/workbook.xlsx", sync_to_thread=True)
def assessment_workbook(ctx: NamedDependency[Ctx], year: FromPath[int], province: FromPath[str]) -> Response:
    buf = io.BytesIO()
    write_workbook(ctx.store, ctx.user, year, province, buf)
    return Response(
        buf.getvalue(),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={
            "Content-Disposition": f'attachment; filename="phan-loai-dia-ban-{province}-{year}.xlsx"',
            "Cache-Control": "no-store",
        },
    )


handlers = [assessment, assessment_step, assessment_print, assessment_workbook]
