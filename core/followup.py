"""Following each managed person through the year on the ``persons`` entity list (issue 23): what each
version of a person's entity changed (the history a person's page shows), and who under management was
not visited in a month (the monthly overdue-visit list).

The facts come from the entity's versions (``EntityStore.entity_versions``), which the national forms
write: F1 creates and updates the person, F11's decisions set ``mgmt_status`` (``active`` while under
management) and ``term_end``, F12's monthly visit sets ``last_visit``, F13's test ``last_test``
(docs/forms.md). Decree 105/2021: a person under management is checked at least once a month; ``overdue``
is the one list of who was not (``core.management`` keeps the other monthly lists). Values are as stored
(identifying ones sealed); opening them is the caller's decision (``core.identities``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from rasoat.core.entities import Entity, EntityVersion, Value
from rasoat.core.storage.base import EntityQuery, Store

PERSONS = "persons"  # the national forms' entity list
ACTIVE = "active"  # mgmt_status of a person under management (F11 decision_start, F1 record_status)


@dataclass(frozen=True)
class Step:
    """One version of a person's entity: who made it, when, from which record, on which base, and what
    changed (``changes``: property → (value before, value after), as stored)."""

    version: int
    at: datetime
    actor: str
    instance_id: str | None
    base_version: int | None
    conflict: str | None
    conflicting: tuple[str, ...]
    label: str
    changes: Mapping[str, tuple[Value | None, Value]]
    data: Mapping[str, Value]  # the whole data after this version


def history(versions: Sequence[EntityVersion]) -> list[Step]:
    """The steps of an entity's history, version 1 first. A property a version sent with the value it
    already had (a property never set counts as ``""``) is not a change."""
    steps: list[Step] = []
    whole: dict[str, Value] = {}
    label = ""
    for v in versions:
        changes = {k: (whole.get(k), value) for k, value in v.data.items() if whole.get(k, "") != value}
        if v.label != label:
            changes["label"] = (label or None, v.label)
        whole = {**whole, **v.data}
        label = v.label
        steps.append(Step(v.version, v.at, v.actor, v.instance_id, v.base_version, v.conflict,
                          tuple(v.conflicting), v.label, changes, dict(whole)))
    return steps


def data_at(steps: Sequence[Step], version: int) -> Mapping[str, Value]:
    """The whole data after ``version`` (KeyError for a version the entity does not have)."""
    for step in steps:
        if step.version == version:
            return step.data
    raise KeyError(version)


@dataclass(frozen=True)
class Followed:
    """A person under management in a month: when last visited, and whether a visit fell in that month."""

    entity: Entity
    last_visit: str  # YYYY-MM-DD, '' if never visited
    visited: bool


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def visit_days(versions: Iterable[EntityVersion]) -> list[str]:
    """Every ``last_visit`` a version set (one per F12 visit), oldest first."""
    return sorted({d for v in versions if (d := _text(v.data.get("last_visit")))})


def under_management(entity: Entity, month_start: date) -> bool:
    """Managed (``mgmt_status`` active) and with a term not ended before the month began."""
    if entity.deleted or _text(entity.properties.get("mgmt_status")) != ACTIVE:
        return False
    end = _text(entity.properties.get("term_end"))
    return not end or end >= month_start.isoformat()


def monthly_visits(store: Store, unit_codes: list[str] | None, month: str,
                   list_name: str = PERSONS) -> list[Followed]:
    """The persons under management of ``unit_codes`` (already expanded, as ``EntityQuery`` takes them) in
    ``month`` (YYYY-MM), each with the last visit up to the end of that month and whether one fell in it;
    the overdue ones (no visit this month) first, then by label. The current ``last_visit`` answers for
    this month; a person's versions are read only when it is later than the month asked."""
    start = date.fromisoformat(f"{month}-01")
    out = []
    for entity in store.iter_entities(EntityQuery(list_name=list_name, unit_codes=unit_codes)):
        if not under_management(entity, start):
            continue
        last = _text(entity.properties.get("last_visit"))
        if last[:7] > month:  # a past month: the visit that stood then is in the versions
            days = [d for d in visit_days(store.entity_versions(entity.uuid)) if d[:7] <= month]
            last = days[-1] if days else ""
        out.append(Followed(entity, last, bool(last) and last[:7] == month))
    return sorted(out, key=lambda f: (f.visited, f.entity.label, f.entity.uuid))


def overdue(store: Store, unit_codes: list[str] | None, month: str) -> list[Followed]:
    """Who is overdue in ``month``: the persons under management of ``unit_codes`` with no visit in it.
    The one answer to that question: the persons page lists them first, the management page and
    ``rasoat management lists`` count and name them from here, so no two places can disagree."""
    return [f for f in monthly_visits(store, unit_codes, month) if not f.visited]
