"""The overview (open rounds with coverage, latest submissions, indicators off target) and indicators."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter
from rasoat.core import scope
from rasoat.core.indicators.describe import forms_of, measure_words
from rasoat.core.indicators.engine import evaluate, evaluate_history, indicators_at
from rasoat.core.indicators.loading import collect
from rasoat.core.indicators.models import STATUS_LABELS, reported_text, uncounted_text
from rasoat.core.indicators.periods import Period
from rasoat.core.indicators.privacy import protect_for_viewer
from rasoat.core.models import REVIEW_LABELS
from rasoat.core.plans import province_of
from rasoat.core.problems import Problem, said
from rasoat.core.round_lifecycle import hamlet_lists
from rasoat.core.rounds import STATE_LABELS, kind_label
from rasoat.core.units import get_units
from rasoat.server.web import scoped
from rasoat.server.web.base import (
    LOCAL_TZ,
    Ctx,
    number,
    page,
    query_with,
    redirect,
    unit_name,
    vn_time,
)
from rasoat.server.web.charts import STATUS_CLASS, ChartRow, bar, bar_chart
from rasoat.server.web.ranking import STATUS_RANK, on_value, page_of, worst_first
from rasoat.server.web.remember import forget, remembered

CHILD_LEVEL = {"province": "commune", "commune": "hamlet"}
PARENT_LEVEL = {"hamlet": "commune", "commune": "province"}
# A round's pledge figure is this indicator, read as the indicators page reads it (issue 19, item 9)
PLEDGE_FORM, PLEDGE_INDICATOR = "f2_pledge", "nat_household_pledges"


def current_year() -> str:
    return str(datetime.now(LOCAL_TZ).year)


def _level_of(code: str) -> str:
    unit = get_units().get(code)
    if unit is not None:
        return unit.level
    return "hamlet" if "-" in code else ("province" if len(code) <= 2 else "commune")


def evaluate_for(
    ctx: Ctx, period: str, unit: str | None, below: str | None = None
) -> tuple[list[Any], Problem | None]:
    """Indicator results for ``unit`` and the level below it (inside the officer's scope), or an error;
    with ``below``, the level below has that indicator's results only (``evaluate``'s ``below``)."""

    may_see = ctx.can(scope.VIEW_PERSONAL)
    try:
        if unit:
            scope.require_unit(ctx.user, unit)
            child = CHILD_LEVEL.get(_level_of(unit))
            only = None if below is None else {below}
            return protect_for_viewer(evaluate(ctx.store, period, units=[unit], level=child, below=only),
                                      may_see), None
        return protect_for_viewer(evaluate(ctx.store, period), may_see), None
    except scope.ScopeError:
        raise
    except ValueError as exc:  # a bad period or an indicator the engine refuses: its text, as the API says it
        return [], exc if isinstance(exc, Problem) else Problem.with_text("indicator.refused", str(exc))


def cached_evaluation(
    ctx: Ctx, period: str, unit: str | None, below: str | None = None
) -> tuple[list[Any], Problem | None, float]:
    """``evaluate_for`` remembered (``remembered``), once per request; also returns when it was computed.
    With ``below`` (one indicator's units below are all the page shows): the whole evaluation when this
    request or this process keeps it already, else one building only that indicator's results below."""
    if unit:
        scope.require_unit(ctx.user, unit)  # checked on every visit, whoever computed the answer
    whole = ("evaluate", unit or "", period)
    narrow = below is not None and unit and whole not in ctx.memo
    key = (*whole, below) if narrow else whole
    if key not in ctx.memo:
        only = below if narrow else None
        ctx.memo[key] = remembered(ctx, key, lambda: evaluate_for(ctx, period, unit, only),
                                   instead=whole if narrow else None)
    (results, problem), at = ctx.memo[key]
    return results, problem, at


def default_unit(ctx: Ctx) -> str | None:
    """The officer's first unit (administrators: none, i.e. every province with data)."""
    if scope.allowed_units(ctx.user) is None:
        return None
    return ctx.user.unit_codes[0] if ctx.user.unit_codes else None


def value_text(r: Any, lang: str, digits: int = 1) -> str:
    """The value with its unit of measure in the page's language ("60 người" / "60 persons")."""
    if getattr(r, "suppressed", None):
        return str(r.suppressed)
    if r.value is None:
        return "—"
    english = ""
    if lang == "en":  # English says "1 site" and "2 sites"; Vietnamese has one form
        english = (r.unit_label_en_one if r.value == 1 else "") or r.unit_label_en
    unit = english or r.unit_label or ""
    return f"{number(r.value, digits)} {unit}".strip()


def target_text(r: Any, lang: str) -> str:
    """A figure's target in the page's language ("growth < 1 % on the previous year")."""
    return said(r.target_words, lang) if r.target_words else (r.target_text or "")


def change_text(r: Any) -> str:
    if r.change is None:
        return "—"
    sign = "+" if r.change > 0 else ""
    text = f"{sign}{number(r.change)}"
    if r.change_pct is not None:
        sign_pct = "+" if r.change_pct > 0 else ""
        text += f" ({sign_pct}{number(r.change_pct)} %)"
    return text


def row_view(r: Any, lang: str) -> dict[str, Any]:
    return {
        "id": r.indicator_id,
        "name": r.name_en if lang == "en" else r.name_vi,
        "other_name": r.name_vi if lang == "en" else r.name_en,
        "unit_code": r.unit_code,
        "unit_name": r.unit_name or unit_name(r.unit_code),
        "level": r.level.value if hasattr(r.level, "value") else str(r.level),
        "value": said(uncounted_text(r.uncounted_encrypted), lang) if r.uncounted_encrypted
        else value_text(r, lang),
        "target": target_text(r, lang) or "—",
        "status": r.status.value,
        "status_class": STATUS_CLASS.get(r.status.value, "st-no-data"),
        "status_label": said(STATUS_LABELS[r.status], lang),
        "previous": value_text(r.model_copy(update={"value": r.previous_value}), lang)
        if r.previous_value is not None
        else "—",
        "previous_period": r.previous_period,
        "change": change_text(r),
        "change_dir": "up" if (r.change or 0) > 0 else "down" if (r.change or 0) < 0 else "",
        "live": r.previous_source == "live",
        "reported": reported_text(r, lang) or "—",
        "progress": progress_text(r),
        "raw": r,
    }


def progress_text(r: Any) -> str:
    """"12,5 % / 20 %": how far a reach-by target has come beside how much of the plan's time is gone."""
    if r.progress_pct is None or r.elapsed_pct is None:
        return ""
    return f"{number(r.progress_pct)} % / {number(r.elapsed_pct)} %"


def pledge_figures(ctx: Ctx, rnd: Any) -> dict[str, Any] | None:
    """The pledge figures of a round that collects pledges, for the overview and the round page: the
    indicator ``PLEDGE_INDICATOR`` for the round's period, from the same evaluation as the indicators page
    (``evaluate_for``), for the officer's unit (an administrator: the round's province) and the units one
    level below it, each with how many units reported. None when the round collects no pledges."""
    if PLEDGE_FORM not in (rnd.form_ids or []):
        return None
    unit = default_unit(ctx) or _one_province(rnd.unit_codes)
    results, problem, _ = cached_evaluation(ctx, rnd.period, unit, below=PLEDGE_INDICATOR)
    rows = {r.unit_code: row_view(r, ctx.lang) for r in results if r.indicator_id == PLEDGE_INDICATOR}
    totals = [rows[unit]] if unit in rows else [v for k, v in rows.items() if _level_of(k) == "province"]
    return {"id": PLEDGE_INDICATOR, "period": rnd.period, "rows": rows, "totals": totals, "problem": problem}


def _one_province(codes: list[str]) -> str | None:
    """The province of a round's units when they all lie in one (the administrator's view of the round)."""

    provinces = {province_of(c) for c in codes}
    return provinces.pop() if len(provinces) == 1 else None


def off_target(ctx: Ctx, results: list[Any], unit: str | None, limit: int = 12) -> list[dict[str, Any]]:
    """Per indicator: the officer's own unit when it is off target, and how many units below it are."""
    groups: dict[str, dict[str, Any]] = {}
    visible = scope.unit_check(ctx.user)
    for r in results:  # ~6,000 figures for a province: the scope looked up once, a group made once
        g = groups.get(r.indicator_id)
        if g is None:
            g = groups[r.indicator_id] = {
                "id": r.indicator_id,
                "name": r.name_en if ctx.lang == "en" else r.name_vi,
                "target": target_text(r, ctx.lang) or "—",
                "own": None,
                "bad": [],
                "total": 0,
            }
        if unit and r.unit_code == unit:
            g["own"] = row_view(r, ctx.lang)
        elif visible(r.unit_code):
            g["total"] += 1
            if r.status == "not_met":
                g["bad"].append(r.unit_name or unit_name(r.unit_code))
    off = ("not_met", "unknown")  # an unknown figure needs attention as much as a missed one
    out = [g for g in groups.values() if (g["own"] and g["own"]["status"] in off) or g["bad"]]
    return out[:limit]


@get("/", sync_to_thread=True)
def overview(ctx: NamedDependency[Ctx]) -> Response:
    unit = default_unit(ctx)
    # first: a pledge block of the officer's unit and year then reads this evaluation instead of its own
    results, problem, computed = cached_evaluation(ctx, current_year(), unit)
    rounds = [r for r in scoped.rounds(ctx) if r.state.value == "open"]
    blocks = []

    for rnd in rounds:
        prog = scoped.progress(ctx, rnd)
        # communes of the round (inside the officer's scope) whose phones offer only "whole commune"
        no_list = [unit_name(c) for c, (n, _) in sorted(hamlet_lists(ctx.store, rnd).items())
                   if n == 0 and scope.unit_allowed(ctx.user, c)]
        blocks.append({"round": rnd, "kind": kind_label(rnd.kind), "progress": prog,
                       "pledge": pledge_figures(ctx, rnd), "no_hamlet_list": no_list})
    latest = scoped.latest(ctx, 10)
    off = off_target(ctx, results, unit)
    uncounted = max((r.uncounted_encrypted for r in results), default=0)
    return page(
        ctx,
        "overview.html",
        blocks=blocks,
        latest=latest,
        off=off,
        own_unit=unit,
        computed_at=vn_time(datetime.fromtimestamp(computed, UTC)),
        problem=problem,
        bar=bar,
        review_labels=REVIEW_LABELS,
        state_labels=STATE_LABELS,
        period=current_year(),
        uncounted=said(uncounted_text(uncounted), ctx.lang) if uncounted else "",
        may_unlock=ctx.can(scope.DECRYPT),
    )


@get("/indicators", sync_to_thread=True)
def indicators(
    ctx: NamedDependency[Ctx], period: FromQuery[str] = "", ind: FromQuery[str] = "",
    fresh: FromQuery[str] = "",
    asked_unit: Annotated[str, QueryParameter(name="unit")] = "",
    asked_page: Annotated[str, QueryParameter(name="p")] = "",
    asked_search: Annotated[str, QueryParameter(name="q")] = "",
) -> Response:
    period = (period or current_year()).strip()[:10]
    unit = asked_unit.strip() or default_unit(ctx)
    if unit and get_units().get(unit) is None:
        raise Problem("web.no_unit", unit=unit)
    if fresh == "1":  # "compute again now": forget, then show the page at its own address
        forget(ctx.store)
        return redirect(ctx, "/indicators" + query_with(ctx.request, fresh=None))
    # the units below show one indicator: the one asked, else the unit's first
    first = None if ind or not unit else next(iter(indicators_at(ctx.store, unit)), None)
    shown = ind or (first.id if first is not None else None)
    results, problem, computed = cached_evaluation(ctx, period, unit, below=shown)
    own_all = [row_view(r, ctx.lang) for r in results if unit and r.unit_code == unit]
    own = [r for r in own_all if r["status"] != "no_data"]
    own_empty = [r for r in own_all if r["status"] == "no_data"]
    below = [r for r in results if not unit or r.unit_code != unit]
    by_ind: dict[str, list[Any]] = defaultdict(list)
    visible = scope.unit_check(ctx.user)
    for r in below:
        if visible(r.unit_code):
            by_ind[r.indicator_id].append(r)
    choices = []
    seen: set[str] = set()
    for r in [*(x["raw"] for x in own_all), *below]:
        if r.indicator_id not in seen:
            seen.add(r.indicator_id)
            choices.append((r.indicator_id, r.name_en if ctx.lang == "en" else r.name_vi))
    chosen = ind or (choices[0][0] if choices else None)
    ranked = worst_first([row_view(r, ctx.lang) for r in by_ind.get(chosen or "", [])])
    try:
        page_no = int(asked_page or 1)
    except ValueError:
        page_no = 1
    search = asked_search.strip()[:80]
    level = _level_of(unit) if unit else None
    own_chosen = next((r for r in own_all if r["id"] == chosen), None)
    return page(
        ctx,
        "indicators.html",
        period=period,
        unit=unit,
        level=level,
        child_level=CHILD_LEVEL.get(level) if level else "province",
        own=sorted(own, key=lambda r: STATUS_RANK.get(r["status"], 3)),
        own_empty=own_empty,
        own_shown=OWN_SHOWN,
        status_labels={s.value: label for s, label in STATUS_LABELS.items()},
        any_live=any(r["live"] for r in own_all),
        units=page_of(ranked, search, page_no),
        all_units=len(ranked),
        search=search,
        choices=choices,
        chosen=chosen,
        chart=units_chart(ctx, ranked),
        history=history_chart(ctx, own_chosen["raw"], period) if own_chosen and not problem else "",
        computed_at=vn_time(datetime.fromtimestamp(computed, UTC)),
        crumbs=_crumbs(ctx, unit),
        problem=problem,
        unit_choices=scoped.unit_choices(ctx),
    )


OWN_SHOWN = 6  # the officer's own indicators shown open, worst first; the rest fold under "more"
HISTORY_PERIODS = 5  # the own unit's chart: this period and the four before it


def units_chart(ctx: Ctx, ranked: list[dict[str, Any]]) -> str:
    """Every unit below that has a figure, worst first, against the target; the title counts the rest."""
    drawn = [r for r in ranked if r["raw"].value is not None or r["raw"].suppressed]
    if not drawn:
        return ""
    first = drawn[0]["raw"]
    missing = len(ranked) - len(drawn)
    title = drawn[0]["name"] + (f" — {missing} {ctx.t('ind.units_no_data')}" if missing else "")
    return bar_chart(
        [ChartRow(label=r["unit_name"], value=r["raw"].value, status=r["status"], text=r["value"],
                  key=r["unit_code"]) for r in drawn],
        target=_target_line(first),
        title=title,
        target_label=target_text(first, ctx.lang),
    )


def history_chart(ctx: Ctx, own: Any, period: str) -> str:
    """The officer's own unit for one indicator over this period and the ones before, against its target."""

    ind = next((i for i in collect() if i.id == own.indicator_id), None)
    if ind is None:
        return ""
    periods = [Period.parse(period)]
    while len(periods) < HISTORY_PERIODS:
        periods.insert(0, periods[0].previous())
    history, _ = remembered(ctx, ("history", own.unit_code, period, ind.id),
                            lambda: evaluate_history(ctx.store, ind, own.unit_code, periods))
    found = protect_for_viewer(history, ctx.can(scope.VIEW_PERSONAL))
    points = []
    for r in found:
        view = row_view(r, ctx.lang)
        points.append(ChartRow(label=r.period, value=r.value, status=view["status"], text=view["value"],
                               key=r.period))
    missing = sum(1 for r in found if r.value is None and not r.suppressed)
    if missing == len(found):  # nothing to draw: the table above already says "no data"
        return ""
    name = own.name_en if ctx.lang == "en" else own.name_vi
    title = f"{own.unit_name or unit_name(own.unit_code)}: {name}" + (
        f" — {missing} {ctx.t('ind.periods_no_data')}" if missing else "")
    return bar_chart(points, target=_target_line(own), title=title, target_label=target_text(own, ctx.lang))


def _target_line(r: Any) -> float | None:
    """Where the target sits on the value axis (none when it is about the change, not the value)."""
    return r.target_value if on_value(r) else None


def _crumbs(ctx: Ctx, unit: str | None) -> list[tuple[str | None, str]]:
    """(code, name) from the highest unit the officer may see down to ``unit``."""
    if not unit:
        return []

    units = get_units()
    chain = [unit]
    if units.get(unit) is not None:
        chain = [u.code for u in reversed(units.ancestors(unit))] + [unit]
    out: list[tuple[str | None, str]] = []
    if scope.allowed_units(ctx.user) is None:
        out.append((None, ctx.t("all_units")))
    for code in chain:
        if scope.unit_allowed(ctx.user, code):
            out.append((code, unit_name(code)))
    return out


@get("/indicators/definition/{indicator_id:str}", sync_to_thread=True)
def indicator_definition(ctx: NamedDependency[Ctx], indicator_id: FromPath[str]) -> Response:
    """One indicator's meaning: numerator, denominator, source forms, period, target, plan and source,
    the page every figure of the overview and the indicators page links to."""

    ind = next((i for i in collect() if i.id == indicator_id), None)
    if ind is None:
        raise Problem("web.no_indicator", indicator=indicator_id)
    source = ind.source
    return page(
        ctx,
        "indicator_def.html",
        ind=ind,
        name=ind.name_en if ctx.lang == "en" else ind.name_vi,
        other_name=ind.name_vi if ctx.lang == "en" else ind.name_en,
        numerator=said(measure_words(ind.numerator), ctx.lang),
        denominator=said(measure_words(ind.denominator), ctx.lang) if ind.denominator else None,
        forms=forms_of(ind),
        target=said(ind.target.words(), ctx.lang) if ind.target else "—",
        unit_of_measure=(ind.label_en if ctx.lang == "en" else ind.label) or "—",
        source=" · ".join(x for x in (source.document, source.date, source.issuer, source.ref) if x)
        if source else "",
    )


handlers = [overview, indicators, indicator_definition]
