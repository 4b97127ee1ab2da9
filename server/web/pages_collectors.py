"""Collectors: add, revoke, and show or print their ODK Collect QR codes.

Showing a code issues the collector a new token (core.phone_setup's rule: no token is kept at rest), so
it is a POST with a confirmation, and the page says the earlier code stopped working.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import segno
from litestar import Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from litestar.params import FromPath
from rasoat.core import scope
from rasoat.core.collect_settings import DEFAULT_COLOR
from rasoat.core.collectors import (
    CollectorError,
    create_collector,
    get_collector,
    revoke_collector,
)
from rasoat.core.models import RoundState, User
from rasoat.core.phone_setup import ENV_PUBLIC_URL, PhoneCode, phone_code, rotate_token
from rasoat.core.problems import Problem
from rasoat.core.rounds import in_scope
from rasoat.server.web import scoped
from rasoat.server.web.base import Ctx, allowed, form_list, page, redirect, unit_name


@dataclass(frozen=True)
class Card:
    name: str
    username: str
    place: str
    rounds: str
    project: str
    svg: str


def base_url(ctx: Ctx) -> str:
    """Where phones reach this server: the configured public URL, else the address the officer used."""
    url = ctx.settings.public_url or os.environ.get(ENV_PUBLIC_URL) or str(ctx.request.base_url)
    return url.rstrip("/")


def _local_only(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.")


def _collector(ctx: Ctx, ref: str) -> User:
    user = get_collector(ctx.store, ref)  # collector.not_found: 404
    if not scoped.sees_collector(ctx, user):
        raise scope.ScopeError("scope.collector_outside", collector=ref)
    return user


def _card(ctx: Ctx, code: PhoneCode) -> Card:
    user = code.user
    rounds = [
        f"{r.name} ({r.period})"
        for r in ctx.store.list_rounds()
        if r.state is RoundState.open and user.id in r.collector_ids
    ]
    svg = segno.make(code.payload, error="m", micro=False).svg_inline(
        scale=1, border=4, omitsize=True, title="ODK Collect QR"
    )
    return Card(
        name=user.display_name or user.username,
        username=user.username,
        place=", ".join(unit_name(c) for c in user.unit_codes),
        rounds="; ".join(rounds) or "—",
        project=code.settings.get("project", {}).get("name", ""),
        svg=svg,
    )


def _cards_page(ctx: Ctx, cards: list[Card], message: str, status: int = 200) -> Response:
    base = base_url(ctx)
    return page(
        ctx,
        "qr_cards.html",
        status=status,
        cards=cards,
        message=message,
        base=base,
        local_only=_local_only(base),
        color=DEFAULT_COLOR,
    )


def _collectors_page(
    ctx: Ctx, status: int = 200, error: Problem | None = None, values: Any = None
) -> Response:
    collectors = scoped.collectors(ctx)
    rounds = scoped.rounds(ctx)
    round_names = {r.id: r.name for r in rounds}
    assigned: dict[str, list[str]] = {}
    for r in rounds:
        for cid in r.collector_ids:
            assigned.setdefault(cid, []).append(r.name)
    return page(
        ctx,
        "collectors.html",
        status=status,
        collectors=collectors,
        assigned=assigned,
        open_rounds=[r for r in rounds if r.state in (RoundState.draft, RoundState.open)],
        round_names=round_names,
        unit_choices=scoped.unit_choices(ctx),
        error=error,
        values=values or {},
        can_manage=ctx.can(scope.MANAGE_COLLECTORS),
    )


MANAGE = [allowed(scope.MANAGE_COLLECTORS)]


@get("/collectors", guards=MANAGE, sync_to_thread=True)
def collectors(ctx: NamedDependency[Ctx]) -> Response:
    return _collectors_page(ctx)


@post("/collectors", guards=MANAGE, sync_to_thread=True)
def collector_add(ctx: NamedDependency[Ctx], posted: NamedDependency[FormMultiDict]) -> Response:
    name = str(posted.get("name") or "")[:200]
    units = [u.strip() for u in form_list(posted, "units") if u.strip()]
    round_ids = form_list(posted, "rounds")
    try:
        for code in units:
            scope.require_unit(ctx.user, code)
        for rid in round_ids:
            scoped.get_round(ctx, rid)
        user, token = create_collector(ctx.store, name, units, round_ids, actor=ctx.actor)
    except (CollectorError, scope.ScopeError) as exc:
        status = 403 if isinstance(exc, scope.ScopeError) else 400
        return _collectors_page(ctx, status, exc, {"name": name, "units": units, "rounds": round_ids})
    phone = phone_code(
        ctx.store,
        user.id,
        base_url(ctx),
        token=token,
        project_id=ctx.settings.project_id,
        actor=ctx.actor,
    )
    return _cards_page(ctx, [_card(ctx, phone)], ctx.t("col.added"), 201)


@post("/collectors/{ref:str}/revoke", guards=MANAGE, sync_to_thread=True)
def collector_revoke(
    ctx: NamedDependency[Ctx], posted: NamedDependency[FormMultiDict], ref: FromPath[str]
) -> Response:
    user = _collector(ctx, ref)
    revoke_collector(ctx.store, user.id, actor=ctx.actor)
    return redirect(ctx, "/collectors", "done")


@post("/collectors/{ref:str}/qr", guards=MANAGE, sync_to_thread=True)
def collector_qr(
    ctx: NamedDependency[Ctx], posted: NamedDependency[FormMultiDict], ref: FromPath[str]
) -> Response:
    user = _collector(ctx, ref)
    code = phone_code(
        ctx.store, user.id, base_url(ctx), project_id=ctx.settings.project_id, actor=ctx.actor
    )
    return _cards_page(ctx, [_card(ctx, code)], ctx.t("col.card"))


@post("/collectors/{ref:str}/rotate", guards=MANAGE, sync_to_thread=True)
def collector_rotate(
    ctx: NamedDependency[Ctx], posted: NamedDependency[FormMultiDict], ref: FromPath[str]
) -> Response:
    """A new token (a lost card or phone): the old card stops working; the page asked to confirm."""
    user = _collector(ctx, ref)
    token = rotate_token(ctx.store, user, actor=ctx.actor)
    code = phone_code(ctx.store, user.id, base_url(ctx), token=token,
                      project_id=ctx.settings.project_id, actor=ctx.actor)
    return _cards_page(ctx, [_card(ctx, code)], ctx.t("col.rotated"))


@post("/collectors/sheet", guards=MANAGE, sync_to_thread=True)
def collectors_sheet(ctx: NamedDependency[Ctx], posted: NamedDependency[FormMultiDict]) -> Response:
    """Cards for every active collector of a unit and/or a round, with their current codes."""
    unit = str(posted.get("unit") or "").strip()
    round_id = str(posted.get("round") or "").strip()

    if not unit and not round_id:
        raise Problem("web.choose_unit_or_round")
    if unit:
        scope.require_unit(ctx.user, unit)
    rnd = scoped.get_round(ctx, round_id) if round_id else None
    chosen = []
    for user in scoped.collectors(ctx, include_revoked=False):
        if rnd is not None and user.id not in rnd.collector_ids:
            continue
        if unit and not any(in_scope(code, [unit]) for code in user.unit_codes):
            continue
        chosen.append(user)
    chosen.sort(key=lambda u: ((u.display_name or u.username).casefold(), u.id))
    cards = []
    for user in chosen:
        code = phone_code(
            ctx.store, user.id, base_url(ctx), project_id=ctx.settings.project_id, actor=ctx.actor
        )
        cards.append(_card(ctx, code))
    return _cards_page(ctx, cards, ctx.t("col.card") if cards else ctx.t("col.none"))


handlers = [collectors, collector_add, collector_revoke, collector_qr, collector_rotate, collectors_sheet]
