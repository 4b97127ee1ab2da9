"""Entity lists and entities in the JSON and OData shapes Central sends and pyodk's models read
(shared/reference/entities.md §4). Pure functions over ``core.entities`` records: who may see what is
decided by the caller (``central.entities``), which hands in property values already opened or withheld.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from pydantic import BaseModel, ConfigDict
from rasoat.core.entities import Entity, EntityList, EntityVersion
from rasoat.server.central.auth import iso

#: one property value as the API shows it: a string, or None where the caller may not read it
Shown = str | None


def odata_name(prop: str) -> str:
    """Central's OData name of a property: characters outside ``[A-Za-z0-9_]`` become ``_``, and a name
    that does not start with a letter gets a leading ``_``."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", prop)
    return name if name[:1].isalpha() else f"_{name}"


class EntityListOut(BaseModel):
    """``GET /projects/{p}/datasets`` item (pyodk ``EntityList``)."""

    # no other keys: the schema then tells an item with counts (``EntityListCounts``) from one without
    model_config = ConfigDict(extra="forbid")

    name: str
    createdAt: str | None
    projectId: int
    approvalRequired: bool
    ownerOnly: bool


class EntityListCounts(EntityListOut):
    """A list item with what ``X-Extended-Metadata: true`` adds: its entities and conflicts counted within
    the caller's units."""

    entities: int
    lastEntity: str | None
    conflicts: int


class ListForm(BaseModel):
    xmlFormId: str
    name: str


class ListProperty(BaseModel):
    """A property of a list (pyodk ``EntityListProperty``): ``forms`` are the ids of the forms saving it."""

    name: str
    publishedAt: str | None
    odataName: str
    forms: list[str]


class EntityListMetadata(EntityListOut):
    """``GET /projects/{p}/datasets/{name}``: the forms that write it, the forms that read it, properties."""

    lastUpdate: str | None
    linkedForms: list[ListForm]
    sourceForms: list[ListForm]
    draftLinkedForms: list[ListForm]
    draftSourceForms: list[ListForm]
    properties: list[ListProperty]


def list_json(lst: EntityList, project_id: int) -> EntityListOut:
    return EntityListOut(name=lst.name, createdAt=iso(lst.created_at), projectId=project_id,
                         approvalRequired=lst.approval_required, ownerOnly=False)


def list_metadata_json(
    lst: EntityList, project_id: int, forms: Mapping[str, str], writers: Mapping[str, Sequence[str]],
    linked: Iterable[str],
) -> EntityListMetadata:
    """``forms`` form id → title; ``writers`` property → ids of the forms that save it; ``linked`` the forms
    that read the list as ``<name>.csv``."""

    def form(form_id: str) -> ListForm:
        return ListForm(xmlFormId=form_id, name=forms.get(form_id, form_id))

    return EntityListMetadata(
        **list_json(lst, project_id).model_dump(),
        lastUpdate=None,
        linkedForms=[form(f) for f in linked],
        sourceForms=[form(f) for f in lst.forms],
        draftLinkedForms=[],
        draftSourceForms=[],
        properties=[ListProperty(name=p, publishedAt=iso(lst.created_at), odataName=odata_name(p),
                                 forms=list(writers.get(p, ()))) for p in lst.properties],
    )


class CurrentVersion(BaseModel):
    """An entity's current version as Central lists it (pyodk ``CurrentVersion``)."""

    label: str
    current: bool
    creatorId: int
    userAgent: str
    version: int
    baseVersion: int | None
    createdAt: str | None
    branchId: str | None
    trunkVersion: int | None
    branchBaseVersion: int | None
    conflictingProperties: list[str] | None


class CurrentData(CurrentVersion):
    """The current version of one entity read by itself: with its data and what that version received."""

    data: dict[str, Shown]
    dataReceived: dict[str, Shown]


class EntitySummary(BaseModel):
    """An entity as ``GET …/entities`` lists it (pyodk ``Entity``), without its data."""

    uuid: str
    creatorId: int
    createdAt: str | None
    updatedAt: str | None
    deletedAt: str | None
    conflict: str | None
    currentVersion: CurrentVersion


class EntityOut(EntitySummary):
    """One entity with its data: ``GET …/entities/{uuid}``, and what creating or updating one answers."""

    currentVersion: CurrentData


def entity_json(
    entity: Entity, label: str, creator_id: int, last: EntityVersion | None = None
) -> EntitySummary:
    """An entity without its data; ``last`` is its current version (base version, branch, conflicting
    properties)."""
    current = CurrentVersion(
        label=label,
        current=True,
        creatorId=creator_id,
        userAgent="",  # not kept (pyodk needs a string)
        version=entity.version,
        baseVersion=last.base_version if last else None,
        createdAt=iso(entity.updated_at),
        branchId=last.branch_id if last else None,
        trunkVersion=last.trunk_version if last else None,
        branchBaseVersion=last.branch_base_version if last else None,
        conflictingProperties=list(last.conflicting) if last and last.conflicting else None,
    )
    return EntitySummary(
        uuid=entity.uuid,
        creatorId=creator_id,
        createdAt=iso(entity.created_at),
        updatedAt=iso(entity.updated_at) if entity.version > 1 else None,
        deletedAt=iso(entity.updated_at) if entity.deleted else None,
        conflict=entity.conflict,
        currentVersion=current,
    )


def entity_data_json(
    entity: Entity, label: str, creator_id: int, data: Mapping[str, Shown], last: EntityVersion | None
) -> EntityOut:
    """One entity with its data as the caller may see it (``dataReceived``: what ``last`` received)."""
    summary = entity_json(entity, label, creator_id, last)
    current = CurrentData(**summary.currentVersion.model_dump(), data=dict(data),
                          dataReceived={k: data.get(k) for k in (last.data if last else {})})
    return EntityOut(**summary.model_dump(exclude={"currentVersion"}), currentVersion=current)


class VersionSubmission(BaseModel):
    instanceId: str


class VersionSource(BaseModel):
    """Where a version came from: its action and, for a submission's, the submission."""

    action: str
    submission: VersionSubmission | None


class EntityVersionOut(CurrentVersion):
    """One version in ``GET …/entities/{uuid}/versions``: the current version's keys and what the version
    changed (pyodk reads these keys)."""

    conflict: str | None
    resolved: bool
    baseDiff: list[str]
    serverDiff: list[str]
    data: dict[str, Shown]
    dataReceived: dict[str, Shown]
    source: VersionSource


def versions_json(
    entity: Entity, versions: Sequence[EntityVersion], labels: Sequence[str],
    data: Sequence[Mapping[str, Shown]], creator_ids: Sequence[int],
) -> list[EntityVersionOut]:
    """``GET …/entities/{uuid}/versions``, version 1 first. ``data[i]`` is the whole data after version
    ``i + 1`` (what the version received laid over the one before), ``labels[i]`` its label, both as the
    caller may see them. ``baseDiff``: what the version changed from its base; ``serverDiff``: what
    changed on the server between its base and the version before it (a conflict's other side)."""
    by_version = {v.version: i for i, v in enumerate(versions)}
    out = []
    for i, v in enumerate(versions):
        received = {k: data[i].get(k) for k in v.data}
        base_i = by_version.get(v.base_version) if v.base_version is not None else None
        base = data[base_i] if base_i is not None else {}
        before = data[i - 1] if i else {}
        base_diff = sorted(k for k, value in received.items() if base.get(k) != value)
        server_diff = sorted(k for k in set(before) | set(base) if before.get(k) != base.get(k)) \
            if base_i is not None and base_i != i - 1 else []
        out.append(EntityVersionOut(
            label=labels[i],
            current=v.version == entity.version,
            creatorId=creator_ids[i],
            userAgent="",  # not kept (pyodk needs a string)
            version=v.version,
            baseVersion=v.base_version,
            createdAt=iso(v.at),
            branchId=v.branch_id,
            trunkVersion=v.trunk_version,
            branchBaseVersion=v.branch_base_version,
            conflict=v.conflict,
            resolved=v.conflict is not None and entity.conflict is None,
            conflictingProperties=list(v.conflicting) if v.conflicting else None,
            baseDiff=base_diff,
            serverDiff=server_diff,
            data=dict(data[i]),
            dataReceived=received,
            source=VersionSource(action=v.source_action, submission=VersionSubmission(
                instanceId=v.instance_id) if v.instance_id else None),
        ))
    return out


def odata_row(
    entity: Entity, label: str, data: Mapping[str, Shown], properties: Sequence[str], creator_id: int,
    creator_name: str,
) -> dict[str, Any]:
    """One row of ``…/{name}.svc/Entities``: ``__id``, ``label``, ``__system``, then each property by its
    OData name (``""`` when never set, ``None`` where the caller may not read it)."""
    row: dict[str, Any] = {
        "__id": entity.uuid,
        "label": label,
        "__system": {
            "createdAt": iso(entity.created_at),
            "creatorId": str(creator_id),
            "creatorName": creator_name,
            "updates": entity.version - 1,
            "updatedAt": iso(entity.updated_at) if entity.version > 1 else None,
            "deletedAt": iso(entity.updated_at) if entity.deleted else None,
            "version": entity.version,
            "conflict": entity.conflict,
        },
    }
    for prop in properties:
        row[odata_name(prop)] = data.get(prop, "") if prop in data else ""
    return row


SYSTEM_FIELDS = ("createdAt", "creatorId", "creatorName", "updates", "updatedAt", "deletedAt", "version",
                 "conflict")
_SYSTEM_TYPES = {"createdAt": "Edm.DateTimeOffset", "updatedAt": "Edm.DateTimeOffset",
                 "deletedAt": "Edm.DateTimeOffset", "updates": "Edm.Int64", "version": "Edm.Int64"}


def entities_edmx(lst: EntityList) -> bytes:
    """``…/{name}.svc/$metadata``: the entity type ``Entities`` with ``__id``, ``__system``, ``label`` and
    each property as ``Edm.String``, as Central describes an entity list."""
    system = "".join(
        f'<Property Name="{f}" Type="{_SYSTEM_TYPES.get(f, "Edm.String")}"/>' for f in SYSTEM_FIELDS)
    props = "".join(f'<Property Name={quoteattr(odata_name(p))} Type="Edm.String"/>' for p in lst.properties)
    name = escape(lst.name)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0">'
        "<edmx:DataServices>"
        '<Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="org.opendatakit.entity">'
        f'<ComplexType Name="metadata">{system}</ComplexType>'
        "</Schema>"
        f'<Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="org.opendatakit.user.{name}">'
        '<EntityType Name="Entities"><Key><PropertyRef Name="__id"/></Key>'
        '<Property Name="__id" Type="Edm.String"/>'
        '<Property Name="__system" Type="org.opendatakit.entity.metadata"/>'
        f'<Property Name="label" Type="Edm.String"/>{props}</EntityType>'
        f'<EntityContainer Name="{name}">'
        f'<EntitySet Name="Entities" EntityType="org.opendatakit.user.{name}.Entities"/>'
        "</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>"
    ).encode()
