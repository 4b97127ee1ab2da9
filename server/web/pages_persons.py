"""Persons under management on the ``persons`` entity list (issue 23): a commune's monthly list of visits
not made (no F12 visit this month for a person under management), and a person's page with the
management history from the entity's versions (who, when, which form, what changed) and the conflicts
to resolve (keep the current values or choose a version; each resolution audited).

Scoped as every page (``core.scope``): the entities of the officer's units only. Who a person is (the
sealed ``display``, ``full_name`` and ``other_name``, a sealed label) is shown only to a role that may
read identities, each such view audited (``core.identities.record_read``); anyone else sees the
entity's label, which the national forms keep free of names (``Người <8 characters of the id>``).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from litestar import Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from rasoat.core import scope
from rasoat.core.audit import record
from rasoat.core.entities import MOVES_WITH, SEALED, SEALED_LABEL, Entity, EntityList, Value
from rasoat.core.followup import PERSONS, data_at, history, monthly_visits
from rasoat.core.identities import record_read
from rasoat.core.indicators.periods import vn_today
from rasoat.core.problems import Problem
from rasoat.core.protection import keyring, open_entity_label, open_entity_values
from rasoat.core.units import get_units
from rasoat.server.web import scoped
from rasoat.server.web.base import Ctx, allowed, page, redirect
from rasoat.server.web.i18n import LABELS

NAME_PROPERTIES = ("display", "full_name")  # what names a person on a page, first found wins


class Viewer:
    """What one officer may see of the persons list, and the identities opened for the audit."""

    def __init__(self, ctx: Ctx, lst: EntityList) -> None:
        self.ctx, self.lst = ctx, lst
        self.identities = ctx.can(scope.VIEW_PERSONAL)
        self.opened: list[str] = []
        self._ring: Any = None

    def _open(self, uuid: str, name: str, value: Value) -> str:
        self._ring = self._ring or keyring(self.ctx.store, create=False)
        if uuid not in self.opened:
            self.opened.append(uuid)
        return open_entity_values(self._ring, uuid, {name: value})[name]

    def value(self, uuid: str, name: str, value: Value | None) -> str | None:
        """A property value as this officer may see it (None: hidden)."""
        if value is None:
            return ""
        if isinstance(value, dict) and SEALED in value:
            return self._open(uuid, name, value) if self.identities else None
        return None if name in self.lst.identifying and not self.identities else str(value)

    def name(self, entity: Entity) -> str:
        """Who the person is for this officer: the name where allowed, else the entity's label."""
        if self.identities:
            for prop in NAME_PROPERTIES:
                shown = self.value(entity.uuid, prop, entity.properties.get(prop))
                if shown:
                    return shown
            if entity.label.startswith(SEALED_LABEL):
                self._ring = self._ring or keyring(self.ctx.store, create=False)
                self.opened.append(entity.uuid)
                return open_entity_label(self._ring, entity.uuid, entity.label)
        if entity.label.startswith(SEALED_LABEL):
            return f"Người {entity.uuid[:8]}"
        return entity.label

    def audit(self, action: str, **details: Any) -> None:
        if self.opened:
            record_read(self.ctx.store, self.ctx.actor, action, self.opened, target=self.lst.name, via="web",
                        **details)


def name_persons(ctx: Ctx, rows: list[dict[str, Any]]) -> None:
    """A record's answer that picked a person from the persons list (F12's ``known_person``) names that person
    as the persons pages do, linked to their page (``row["person"]``), instead of showing the list's key."""
    keys = [row for row in rows if _key_like(row.get("value"))]
    lst = ctx.store.get_entity_list(PERSONS) if keys else None
    if lst is None:
        return
    viewer = Viewer(ctx, lst)
    for row in keys:
        entity = ctx.store.get_entity(row["value"].lower())
        if entity and entity.list_name == PERSONS and scope.entity_visible(ctx.user, entity.unit_code):
            row["value"], row["person"] = viewer.name(entity), entity.uuid
    viewer.audit("view.person", via_record=True)


def _key_like(value: Any) -> bool:
    """An entity's key: a UUID (checked cheaply before any read)."""
    return isinstance(value, str) and len(value) == 36 and value.count("-") == 4


def _list(ctx: Ctx) -> EntityList:
    lst = ctx.store.get_entity_list(PERSONS)
    if lst is None:
        raise Problem("web.no_persons_list")
    return lst


def _entity(ctx: Ctx, uuid: str) -> Entity:
    """The person, if filed under the officer's units now. After a transfer (F11, Mẫu 08) that is the
    receiving commune, whose officers read the whole history, the sending commune's versions too; the
    sending commune's officers no longer open the page (the management file went with the person), while
    their own F1/F11/F12 records stay theirs in the submissions, exports and counts."""
    entity = ctx.store.get_entity(uuid.strip().lower())
    if entity is None or entity.list_name != PERSONS or not scope.entity_visible(ctx.user, entity.unit_code):
        raise Problem("web.no_person")
    return entity


@get("/persons", sync_to_thread=True)
def persons(ctx: NamedDependency[Ctx], commune: FromQuery[str] = "", month: FromQuery[str] = "") -> Response:
    """A commune's persons under management, those not visited in the month first."""
    if ctx.store.get_entity_list(PERSONS) is None:  # a menu entry leads to a page, not to an error
        return page(ctx, "persons.html", no_list=True, choose=None, commune=None, rows=None)
    lst = _list(ctx)
    registry = get_units()
    commune = commune.strip() or scoped.own_commune(ctx)
    if not commune:  # a province officer or an administrator: the communes to choose from
        return page(ctx, "persons.html", choose=scoped.commune_choices(ctx), commune=None, rows=None)
    unit = registry.get(commune)
    if unit is None or unit.level != "commune":
        raise Problem("web.choose_commune")
    scope.require_unit(ctx.user, commune)
    month = month.strip() or vn_today().isoformat()[:7]
    try:
        date.fromisoformat(f"{month}-01")
    except ValueError:
        raise Problem("web.bad_month") \
            from None
    viewer = Viewer(ctx, lst)
    followed = monthly_visits(ctx.store, sorted(registry.expand([commune])), month)
    rows = [{"uuid": f.entity.uuid, "name": viewer.name(f.entity), "visited": f.visited,
             "last_visit": f.last_visit, "term_end": str(f.entity.properties.get("term_end") or ""),
             "hamlet": _hamlet(str(f.entity.properties.get("hamlet") or f.entity.unit_code or ""))}
            for f in followed]
    viewer.audit("view.persons", commune=commune, month=month)
    overdue = sum(1 for r in rows if not r["visited"])
    return page(ctx, "persons.html", choose=None, commune=unit, month=month, rows=rows, overdue=overdue)


def _hamlet(code: str) -> str:
    unit = get_units().get(code) if code else None
    return unit.name if unit is not None else code


@get("/persons/{uuid:str}", sync_to_thread=True)
def person(ctx: NamedDependency[Ctx], uuid: FromPath[str]) -> Response:
    """One person's management history from the entity's versions, with the conflict to resolve."""
    lst = _list(ctx)
    entity = _entity(ctx, uuid)
    viewer = Viewer(ctx, lst)
    steps = []
    for step in reversed(history(ctx.store.entity_versions(entity.uuid))):
        sub = ctx.store.get_submission(step.instance_id) if step.instance_id else None
        who = ctx.store.get_user_by_name(step.actor)
        changes = [(name, viewer.value(entity.uuid, name, old) if name != "label" else old,
                    viewer.value(entity.uuid, name, new) if name != "label" else new)
                   for name, (old, new) in step.changes.items()]
        steps.append({"step": step, "form_id": sub.form_id if sub is not None else "",
                      "who": (who.display_name or who.username) if who is not None else step.actor,
                      "changes": changes})
    shown = ((name, viewer.value(entity.uuid, name, entity.properties.get(name))) for name in lst.properties
             if name != "display" and entity.properties.get(name) not in (None, ""))
    props = [(name, value) for name, value in shown if value != ""]  # no empty lines, a sealed "" neither
    name = viewer.name(entity)
    viewer.audit("view.person", uuid=entity.uuid)
    return page(ctx, "person.html", entity=entity, name=name, props=props, steps=steps,
                may_resolve=ctx.can(scope.REVIEW), labels=LABELS)


@post("/persons/{uuid:str}/resolve", guards=[allowed(scope.REVIEW)], sync_to_thread=True)
def resolve(
    ctx: NamedDependency[Ctx], posted: NamedDependency[FormMultiDict], uuid: FromPath[str]
) -> Response:
    """Resolve the person's conflict: keep the current values, or write a chosen version's values as a
    new version first; audited either way (``entity.resolve``)."""
    chosen = str(posted.get("version") or "").strip()
    entity = _entity(ctx, uuid)
    if entity.conflict is None:
        raise Problem("web.no_person_conflict")
    written: list[str] = []
    if chosen:
        if not chosen.isdigit():
            raise Problem("web.bad_version")
        try:
            values = data_at(history(ctx.store.entity_versions(entity.uuid)), int(chosen))
        except KeyError:
            raise Problem("web.no_version") from None
        # where the person lives is a transfer decision (Mẫu 08), not a value a resolution rolls back
        change = {k: v for k, v in values.items() if k != MOVES_WITH and entity.properties.get(k) != v}
        if change:
            ctx.store.write_entity(PERSONS, entity.uuid, label=None, data=change, actor=ctx.actor,
                                   base_version=entity.version)
            written = sorted(change)
    ctx.store.resolve_entity_conflict(entity.uuid, ctx.actor)
    record(ctx.store, ctx.actor, "entity.resolve", entity.uuid, list=PERSONS, conflict=entity.conflict,
           at_version=entity.version, chosen_version=int(chosen) if chosen else None, properties=written,
           via="web")
    return redirect(ctx, f"/persons/{uuid}", "msg.entity_resolved")


handlers = [persons, person, resolve]
