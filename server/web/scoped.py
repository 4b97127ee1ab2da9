"""Reads cut to what the officer may see (core.scope decides; this module only applies it to pages).

A commune officer never sees another commune: rounds are those over their units, progress rows are
their communes and hamlets only (totals recomputed from the visible rows), lists go through
``scope.narrow``, and details are checked one by one with ``scope.require_*``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rasoat.core import scope
from rasoat.core.collectors import list_collectors
from rasoat.core.models import Round, Submission, User, utcnow
from rasoat.core.problems import Problem
from rasoat.core.progress import pct, round_progress
from rasoat.core.storage.base import SubmissionQuery
from rasoat.core.units import Unit, get_units
from rasoat.server.web.base import Ctx
from rasoat.server.web.remember import remembered

LATEST_DAYS = 7


def rounds(ctx: Ctx) -> list[Round]:
    """Rounds over the officer's units, open ones first, then by period (newest first)."""
    visible = scope.visible_rounds(ctx.store.list_rounds(), ctx.user)
    order = {"open": 0, "draft": 1, "closed": 2, "archived": 3}
    return sorted(visible, key=lambda r: (order.get(r.state.value, 9), _neg(r.period), r.name))


def _neg(period: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in period)


def get_round(ctx: Ctx, round_id: str) -> Round:
    rnd = ctx.store.get_round(round_id)
    if rnd is None:
        raise Problem("round.not_found", round=round_id)
    scope.require_round(ctx.user, rnd)
    return rnd


def sees_collector(ctx: Ctx, user: User) -> bool:
    """A collector is the officer's when all of the collector's units are in the officer's (an administrator
    sees every collector; one with no unit is nobody else's)."""
    allowed = scope.allowed_units(ctx.user)
    return allowed is None or bool(user.unit_codes) and all(u in allowed for u in user.unit_codes)


def collectors(ctx: Ctx, include_revoked: bool = True) -> list[User]:
    """The officer's collectors (``sees_collector``), by creation time."""
    return [c for c in list_collectors(ctx.store, include_revoked) if sees_collector(ctx, c)]


def progress(ctx: Ctx, rnd: Round) -> dict[str, Any]:
    """``core.progress.round_progress`` from the counts alone (the page's pledge figure is the indicator's;
    remembered a short while) with only the communes and hamlets the officer may see."""
    data, _ = remembered(ctx, ("progress", rnd.model_dump_json()),
                         lambda: round_progress(ctx.store, rnd, records=False))
    allowed = scope.allowed_units(ctx.user)
    if allowed is None:
        return data
    rows = []
    for row in data["communes"]:
        hamlets = [h for h in row["hamlets"] if h["code"] in allowed]
        if row["code"] not in allowed and not hamlets:
            continue
        if row["code"] not in allowed:  # a hamlet officer: the commune row shows their hamlets only
            row = {
                **row,
                "hamlets": hamlets,
                "hamlets_expected": len(hamlets),
                "hamlets_covered": sum(1 for h in hamlets if h["covered"]),
                "submissions": sum(h["submissions"] for h in hamlets),
            }
            row["hamlets_pct"] = pct(row["hamlets_covered"], row["hamlets_expected"])
        rows.append(row)
    totals: dict[str, Any] = {
        "communes": len(rows),
        "received": ctx.store.count_submissions(scope.narrow(SubmissionQuery(round_id=rnd.id), ctx.user)),
        "counted": sum(r["submissions"] for r in rows),
        "hamlets_expected": sum(r["hamlets_expected"] for r in rows),
        "hamlets_covered": sum(r["hamlets_covered"] for r in rows),
    }
    totals["hamlets_pct"] = pct(totals["hamlets_covered"], totals["hamlets_expected"])
    # pledges are not summed here: the pages show the pledge indicator (pages_overview.pledge_figures)
    if "persons" in data["totals"]:
        roster = sum(r.get("persons", {}).get("roster", 0) for r in rows)
        followed = sum(r.get("persons", {}).get("followed_up", 0) for r in rows)
        totals["persons"] = {
            "roster": roster,
            "followed_up": followed,
            "pct": pct(followed, roster),
            "new": sum(r.get("persons", {}).get("new", 0) for r in rows),
        }
    return {**data, "communes": rows, "totals": totals}


def latest(ctx: Ctx, n: int = 10) -> list[Submission]:
    """The ``n`` newest submissions the officer may see from the last week, newest first (one page read
    in the store's order, not the week's rows skipped in Python)."""
    query = scope.narrow(SubmissionQuery(received_from=utcnow() - timedelta(days=LATEST_DAYS)), ctx.user)
    return ctx.store.page_submissions(query, limit=n, descending=True)


def unit_choices(ctx: Ctx) -> list[tuple[str, str]]:
    """Units to pick from in filters: the officer's units and one or two levels below them
    (administrators: the provinces, and the communes of open rounds)."""
    units = get_units()
    out: dict[str, str] = {}

    def add(code: str, indent: int = 0) -> None:
        unit = units.get(code)
        out.setdefault(code, ("\u2003" * indent) + (unit.name if unit else code))

    allowed = scope.allowed_units(ctx.user)
    if allowed is None:  # each round's commune under its own province (not by code: 05563 after 04)
        communes = _round_communes(ctx)
        for p in units.provinces():
            add(p.code)
            for c in communes:
                if c.parent_code == p.code:
                    add(c.code, 1)
        return list(out.items())
    for code in ctx.user.unit_codes:
        unit = units.get(code)
        if unit is None:
            continue
        add(code)
        below = (
            units.communes(code)
            if unit.level == "province"
            else (units.hamlets(code) if unit.level == "commune" else [])
        )
        for child in below:
            add(child.code, 1)
    return list(out.items())


def own_commune(ctx: Ctx) -> str:
    """The officer's first commune, which a commune's page shows unless another is asked for ("" for a
    province officer or an administrator)."""
    return next((code for code in ctx.user.unit_codes if _level(code) == "commune"), "")


def province_communes(ctx: Ctx) -> list[Unit]:
    """The communes of the officer's provinces: what a province officer picks from on a commune's page
    (an administrator, whose scope is the country: the communes of the rounds, where records come from)."""
    if scope.allowed_units(ctx.user) is None:
        return _round_communes(ctx)
    registry = get_units()
    return [c for code in ctx.user.unit_codes if _level(code) == "province" for c in registry.communes(code)]


def commune_choices(ctx: Ctx) -> list[tuple[str, str]]:
    """``province_communes`` as the commune chooser's (code, name) pairs."""
    return [(c.code, c.name) for c in province_communes(ctx)]


def _round_communes(ctx: Ctx) -> list[Unit]:
    """The communes of every round, by code: where an administrator's records come from."""
    registry = get_units()
    codes = sorted({code for rnd in ctx.store.list_rounds() for code in rnd.unit_codes})
    return [u for u in map(registry.get, codes) if u is not None and u.level == "commune"]


def _level(code: str) -> str | None:
    unit = get_units().get(code)
    return unit.level if unit is not None else None


def submission(ctx: Ctx, instance_id: str) -> Submission:
    try:
        sub = ctx.store.get_submission(instance_id)
    except ValueError:  # a name no store could hold (a path, NUL): no such record, not a server error
        sub = None
    if sub is None:
        raise Problem("submission.not_found", instance=instance_id)
    scope.require_submission(ctx.user, sub)
    return sub
