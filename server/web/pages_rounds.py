"""Rounds: create rounds, open/close/archive/reopen them, assign collectors (forms: ``pages_forms``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from litestar.params import FromPath
from rasoat.core import audit_actions, scope
from rasoat.core.models import ROUND_KINDS, RoundState
from rasoat.core.problems import Problem
from rasoat.core.round_lifecycle import set_state
from rasoat.core.rounds import (
    STATE_LABELS,
    RoundError,
    assign_collectors,
    create_round,
    kind_label,
)
from rasoat.core.unit_lists import KINDS
from rasoat.server.web import scoped
from rasoat.server.web.base import Ctx, allowed, form_list, page, redirect
from rasoat.server.web.charts import bar
from rasoat.server.web.pages_overview import pledge_figures

MANAGE = [allowed(scope.MANAGE_ROUNDS)]
# Which state buttons a round shows: target state → label key
STATE_ACTIONS: dict[RoundState, list[tuple[str, str]]] = {
    RoundState.draft: [("open", "rounds.open")],
    RoundState.open: [("closed", "rounds.close")],
    RoundState.closed: [("open", "rounds.reopen"), ("archived", "rounds.archive")],
    RoundState.archived: [],
}


def _require_units(ctx: Ctx, codes: list[str]) -> None:
    for code in codes:
        scope.require_unit(ctx.user, code)


def _rounds_page(ctx: Ctx, status: int = 200, **extra: Any) -> Response:
    rounds = scoped.rounds(ctx)
    forms = sorted(ctx.store.list_forms(), key=lambda f: f.form_id)
    values: dict[str, Any] = {
        "rounds": rounds,
        "forms": forms,
        "kinds": list(ROUND_KINDS.items()),
        "state_labels": STATE_LABELS,
        "kind_label": kind_label,
        "can_manage": ctx.can(scope.MANAGE_ROUNDS),
        "can_publish": ctx.can(scope.PUBLISH_FORMS),
        "create_error": None,
        "values": {},
        "unit_choices": scoped.unit_choices(ctx),
    }
    values.update(extra)
    return page(ctx, "rounds.html", status=status, **values)


@get("/rounds", sync_to_thread=True)
def rounds_list(ctx: NamedDependency[Ctx]) -> Response:
    return _rounds_page(ctx)


@post("/rounds", guards=MANAGE, sync_to_thread=True)
def round_create(ctx: NamedDependency[Ctx], posted: NamedDependency[FormMultiDict]) -> Response:
    name = str(posted.get("name") or "").strip()[:200]
    period = str(posted.get("period") or "").strip()[:20]
    kind = str(posted.get("kind") or "").strip() or None
    form_ids = form_list(posted, "forms")
    # units picked in the list (one value each), or typed as "05563, 05563-01" by a script
    typed = [v.replace(";", ",").split(",") for v in form_list(posted, "units")]
    units = [u.strip() for codes in typed for u in codes if u.strip()]
    values = {"name": name, "period": period, "kind": kind, "forms": form_ids, "units": units}
    try:
        _require_units(ctx, units)
        if not units and scope.allowed_units(ctx.user) is not None:
            raise RoundError("round.no_units_chosen")
        rnd = create_round(ctx.store, name, period, form_ids, units, kind=kind, actor=ctx.actor)
    except (RoundError, scope.ScopeError) as exc:
        status = 403 if isinstance(exc, scope.ScopeError) else 400
        return _rounds_page(ctx, status, create_error=exc, values=values)
    return redirect(ctx, f"/rounds/{quote(rnd.id, safe='')}", "rounds.created")


def _round_page(ctx: Ctx, round_id: str, status: int = 200, error: Problem | None = None) -> Response:
    rnd = scoped.get_round(ctx, round_id)
    prog = scoped.progress(ctx, rnd)
    mine = {c.id: c for c in scoped.collectors(ctx)}  # another commune's are not this officer's business
    assigned = [mine[c] for c in rnd.collector_ids if c in mine]
    assignable = [c for c in mine.values() if c.active and c.id not in rnd.collector_ids]
    return page(
        ctx,
        "round.html",
        status=status,
        rnd=rnd,
        prog=prog,
        pledge=pledge_figures(ctx, rnd),
        bar=bar,
        kind=kind_label(rnd.kind),
        state_labels=STATE_LABELS,
        actions=STATE_ACTIONS.get(rnd.state, []),
        assigned=assigned,
        assignable=assignable,
        can_manage=ctx.can(scope.MANAGE_ROUNDS),
        error=error,
        history=_history(ctx, rnd) if ctx.can(scope.MANAGE_ROUNDS) else [],  # administrators included
        lists_used=_lists_used(ctx, rnd),
        list_kinds=KINDS,
    )


def _lists_used(ctx: Ctx, rnd: Any) -> dict[str, dict[str, Any]]:
    """commune → register → the list the round opened with (``core.unit_lists.list_status``), last opening."""
    opened = [h for h in rnd.history if h.get("action") == "open" and h.get("unit_lists")]
    rows: dict[str, dict[str, Any]] = {}
    for kind, by_commune in (opened[-1]["unit_lists"] if opened else {}).items():
        for commune, info in by_commune.items():
            if scope.unit_allowed(ctx.user, commune):
                rows.setdefault(commune, {})[kind] = info
    return rows


def _history(ctx: Ctx, rnd: Any) -> list[dict[str, Any]]:
    """Newest first, each action named in the officer's language as the audit log names it (a round's own
    ``open`` is ``round.open`` there; an action without a label shows as is)."""
    rows = []
    for h in reversed(rnd.history):
        action = str(h.get("action", ""))
        code = action if "." in action else f"round.{action}"
        rows.append({**h, "what": audit_actions.label(code, ctx.lang) if code in audit_actions.ACTIONS
                     else action})
    return rows



@get("/rounds/{round_id:str}", sync_to_thread=True)
def round_detail(ctx: NamedDependency[Ctx], round_id: FromPath[str]) -> Response:
    return _round_page(ctx, round_id)


@post("/rounds/{round_id:str}/state", guards=MANAGE, sync_to_thread=True)
def round_state(
    ctx: NamedDependency[Ctx], posted: NamedDependency[FormMultiDict], round_id: FromPath[str]
) -> Response:
    target = str(posted.get("target") or "")
    reason = str(posted.get("reason") or "")[:500]
    rnd = scoped.get_round(ctx, round_id)
    _require_units(ctx, rnd.unit_codes)  # changing a round needs the whole of it in scope
    try:
        set_state(ctx.store, rnd.id, target, actor=ctx.actor, reason=reason,
                  allow_missing_hamlets=bool(posted.get("allow_missing_hamlets")),
                  acknowledge_encrypted=bool(posted.get("acknowledge_encrypted")))
    except RoundError as exc:
        return _round_page(ctx, round_id, 400, exc)
    return redirect(ctx, f"/rounds/{quote(round_id, safe='')}", "rounds.changed")


@post("/rounds/{round_id:str}/collectors", guards=[allowed(scope.MANAGE_ROUNDS, scope.MANAGE_COLLECTORS)],
      sync_to_thread=True)
def round_collectors(
    ctx: NamedDependency[Ctx], posted: NamedDependency[FormMultiDict], round_id: FromPath[str]
) -> Response:
    wanted = form_list(posted, "collector")
    rnd = scoped.get_round(ctx, round_id)
    mine = {c.id for c in scoped.collectors(ctx, include_revoked=False)}
    if not wanted:
        return _round_page(ctx, round_id, 400, RoundError("round.no_collectors_ticked"))
    outside = [c for c in wanted if c not in mine]
    if outside:
        raise scope.ScopeError("scope.collectors_outside", collectors=', '.join(outside))
    try:
        assign_collectors(ctx.store, rnd.id, wanted, actor=ctx.actor)
    except RoundError as exc:
        return _round_page(ctx, round_id, 400, exc)
    return redirect(ctx, f"/rounds/{quote(round_id, safe='')}", "rounds.changed")


handlers = [rounds_list, round_create, round_detail, round_state, round_collectors]
