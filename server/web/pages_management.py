"""Decree 105/2021 management: a commune's monthly lists (terms ending within 30 days, persons not visited
this month, moved persons and their transfer note). The records and rules live in ``core.management``;
who was not visited is the persons list's own answer (``core.followup.overdue``, the list /persons shows
first), linked to it, so the two pages never disagree. Seeing the lists is a view of personal data and is
audited."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter
from rasoat.core import scope
from rasoat.core.audit import record_view
from rasoat.core.followup import PERSONS, overdue
from rasoat.core.identities import person_names
from rasoat.core.indicators.periods import vn_today
from rasoat.core.management import monthly_lists, records
from rasoat.core.problems import Problem
from rasoat.core.units import get_units
from rasoat.server.web import scoped
from rasoat.server.web.base import Ctx, allowed, page


@get("/management", guards=[allowed(scope.VIEW_PERSONAL)], sync_to_thread=True)
def management(
    ctx: NamedDependency[Ctx], commune: FromQuery[str] = "",
    day: Annotated[str, QueryParameter(name="as_of")] = "",
) -> Response:
    registry = get_units()
    commune = commune.strip() or scoped.own_commune(ctx)
    unit = registry.get(commune)
    if not commune:  # a province officer: their communes to choose from
        choose = scoped.commune_choices(ctx)
        if choose:
            return page(ctx, "management.html", choose=choose, commune=None, lists=None)
    if unit is None or unit.level != "commune":
        raise Problem("web.choose_commune")
    scope.require_unit(ctx.user, commune)
    try:
        as_of = date.fromisoformat(day.strip()) if day else vn_today()
    except ValueError:
        raise Problem("web.bad_date") from None
    units = sorted(registry.expand([commune]))
    lists = monthly_lists(records(ctx.store, units), as_of)
    late = overdue(ctx.store, units, lists.month) if ctx.store.get_entity_list(PERSONS) else None
    names = person_names(ctx.store, units)
    record_view(ctx.store, ctx.actor, "view.management", filters={"commune": commune},
                count=len(lists.ending) + len(late or []) + len(lists.moved), via="web")
    return page(ctx, "management.html", choose=None, commune=unit, lists=lists, as_of=as_of, names=names,
                overdue=late)


handlers = [management]
