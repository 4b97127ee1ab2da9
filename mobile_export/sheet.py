"""A printable sheet of Collect set-up cards: one card per collector, four cards to an A4 page.

Plain HTML with inline SVG QR codes and print CSS: it opens in any browser, prints from there (or
to PDF), and needs no office software at the commune. Every card issues its collector a new token
(see ``phone_setup``), so the sheet itself is the only place the new codes exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import jinja2
from rasoat.core.collectors import CollectorError
from rasoat.core.models import Role, Round, RoundState, User
from rasoat.core.rounds import in_scope
from rasoat.core.storage.base import Store
from rasoat.core.units import get_units
from rasoat.mobile_export.phone_setup import PhoneCode, place_name
from rasoat.mobile_export.qr import DEFAULT_COLOR, inline_svg

CARDS_PER_PAGE = 4
LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


@dataclass(frozen=True)
class Card:
    collector_id: str
    name: str
    username: str
    place: str
    round: str
    project: str
    svg: str


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("rasoat.mobile_export", "templates"),
        autoescape=jinja2.select_autoescape(["html", "jinja2"]),
        undefined=jinja2.StrictUndefined,
    )


def _round_label(rnd: Round) -> str:
    return f"{rnd.name} ({rnd.period})"


def sheet_collectors(store: Store, unit: str | None, round_id: str | None) -> tuple[list[User], Round | None]:
    """Active collectors of a round and/or a unit (at or below it), by name; at least one filter is needed."""

    if not unit and not round_id:
        raise CollectorError("collector.unit_or_round")
    rnd = None
    if round_id:
        rnd = store.get_round(round_id)
        if rnd is None:
            raise CollectorError("round.no_round", round=round_id)
    if unit:
        get_units().require(unit)
    users = []
    for user in store.list_users():
        if user.role is not Role.collector or not user.active:
            continue
        if rnd is not None and user.id not in rnd.collector_ids:
            continue
        if unit and not any(in_scope(code, [unit]) for code in user.unit_codes):
            continue
        users.append(user)
    users.sort(key=lambda u: ((u.display_name or u.username).casefold(), u.id))
    return users, rnd


def make_card(store: Store, code: PhoneCode, rnd: Round | None) -> Card:
    """One card's content; without a round, the open rounds the collector is assigned to."""
    user = code.user
    if rnd is not None:
        round_text = _round_label(rnd)
    else:
        names = [_round_label(r) for r in store.list_rounds()
                 if r.state is RoundState.open and user.id in r.collector_ids]
        round_text = "; ".join(names) or "—"

    units = get_units()
    places = []
    for c in user.unit_codes:
        places.append(units.full_name(c) if units.get(c) is not None else c)
    return Card(
        collector_id=user.id,
        name=user.display_name or user.username,
        username=user.username,
        place="; ".join(places) or place_name(user.unit_codes),
        round=round_text,
        project=code.settings.get("project", {}).get("name", ""),
        svg=inline_svg(code.payload),
    )


def render_sheet(cards: list[Card], title: str, printed: datetime | None = None) -> str:
    """The HTML page: cards in pages of ``CARDS_PER_PAGE``."""
    printed = (printed or datetime.now(LOCAL_TZ)).astimezone(LOCAL_TZ)
    pages = [cards[i : i + CARDS_PER_PAGE] for i in range(0, len(cards), CARDS_PER_PAGE)]
    return _env().get_template("sheet.html.jinja2").render(
        title=title, pages=pages, color=DEFAULT_COLOR, printed=printed.strftime("%H:%M %d/%m/%Y")
    )
