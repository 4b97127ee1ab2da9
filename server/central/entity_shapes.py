"""Entity lists and entities in the JSON and OData shapes Central sends and pyodk's models read
(shared/reference/entities.md §4). Pure functions over ``core.entities`` records: who may see what is
decided by the caller (``central.entities``), which hands in property values already opened or withheld.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from pydantic import BaseModel
from rasoat.core.entities import Entity, EntityList, EntityVersion
from rasoat.server.central.auth import iso

#: one property value as the API shows it: a string, or None where the caller may not read it
Shown = str | None


def odata_name(prop: str) -> str:
    """Central's OData name of a property: characters outside ``[A-Za-z0-9_]`` become ``_``, and a name
    that does not start with a letter gets a leading ``_``."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", prop)
    return name if name[:1].isalpha() else f"_{name}"


def list_json(lst: EntityList, project_id: int, extended: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``GET /projects/{p}/datasets`` item (``extended``: the counts ``X-Extended-Metadata`` adds)."""
    out: dict[str, Any] = {
        "name": lst.name,
        "createdAt": iso(lst.created_at),
        "projectId": project_id,
        "approvalRequired": lst.approval_required,
        "ownerOnly": False,
    }
    if extended is not None:
        out.update(extended)
    return out


def list_metadata_json(
    lst: EntityList, project_id: int, forms: Mapping[str, str], writers: Mapping[str, Sequence[str]],
    linked: Iterable[str],
) -> dict[str, Any]:
    """``GET /projects/{p}/datasets/{name}``: ``forms`` form id → title; ``writers`` property → ids of
    the forms that save it; ``linked`` the forms that read the list as ``<name>.csv``. A property's
    ``forms`` are form ids (pyodk's ``EntityListProperty`` reads strings)."""

    def form(form_id: str) -> dict[str, str]:
        return {"xmlFormId": form_id, "name": forms.get(form_id, form_id)}

    return {
        **list_json(lst, project_id),
        "lastUpdate": None,
        "linkedForms": [form(f) for f in linked],
        "sourceForms": [form(f) for f in lst.forms],
        "draftLinkedForms": [],
        "draftSourceForms": [],
        "properties": [
            {"name": p, "publishedAt": iso(lst.created_at), "odataName": odata_name(p),
             "forms": list(writers.get(p, ()))}
            for p in lst.properties
        ],
    }


def entity_json(
    entity: Entity, label: str, creator_id: int, data: Mapping[str, Shown] | None = None,
    last: EntityVersion | None = None,
) -> dict[str, Any]:
    """An entity: without ``data`` the list item (``GET …/entities``), with it the single entity
    (``GET …/entities/{uuid}``, ``currentVersion.data`` and ``dataReceived``); ``last`` is its current
    version (base version, branch, conflicting properties)."""
    current: dict[str, Any] = {
        "label": label,
        "current": True,
        "creatorId": creator_id,
        "userAgent": "",  # not kept (pyodk needs a string)
        "version": entity.version,
        "baseVersion": last.base_version if last else None,
        "createdAt": iso(entity.updated_at),
        "branchId": last.branch_id if last else None,
        "trunkVersion": last.trunk_version if last else None,
        "branchBaseVersion": last.branch_base_version if last else None,
        "conflictingProperties": list(last.conflicting) if last and last.conflicting else None,
    }
    if data is not None:
        current["data"] = dict(data)
        current["dataReceived"] = {k: data.get(k) for k in (last.data if last else {})}
    return {
        "uuid": entity.uuid,
        "creatorId": creator_id,
        "createdAt": iso(entity.created_at),
        "updatedAt": iso(entity.updated_at) if entity.version > 1 else None,
        "deletedAt": iso(entity.updated_at) if entity.deleted else None,
        "conflict": entity.conflict,
        "currentVersion": current,
    }


class CurrentVersion(BaseModel):
    """An entity's current version as Central sends it (pyodk ``CurrentVersion``)."""

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
    data: dict[str, Shown] | None = None
    dataReceived: dict[str, Shown] | None = None


class EntityOut(BaseModel):
    """What creating or updating one entity answers (pyodk ``Entity``): the entity with its data."""

    uuid: str
    creatorId: int
    createdAt: str | None
    updatedAt: str | None
    deletedAt: str | None
    conflict: str | None
    currentVersion: CurrentVersion


class Success(BaseModel):
    """Central's answer to a bulk create and a delete."""

    success: bool = True


def versions_json(
    entity: Entity, versions: Sequence[EntityVersion], labels: Sequence[str],
    data: Sequence[Mapping[str, Shown]], creator_ids: Sequence[int],
) -> list[dict[str, Any]]:
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
        out.append({
            "label": labels[i],
            "current": v.version == entity.version,
            "creatorId": creator_ids[i],
            "userAgent": "",  # not kept (pyodk needs a string)
            "version": v.version,
            "baseVersion": v.base_version,
            "createdAt": iso(v.at),
            "branchId": v.branch_id,
            "trunkVersion": v.trunk_version,
            "branchBaseVersion": v.branch_base_version,
            "conflict": v.conflict,
            "resolved": v.conflict is not None and entity.conflict is None,
            "conflictingProperties": list(v.conflicting) if v.conflicting else None,
            "baseDiff": base_diff,
            "serverDiff": server_diff,
            "data": dict(data[i]),
            "dataReceived": received,
            "source": {"action": v.source_action,
                       "submission": {"instanceId": v.instance_id} if v.instance_id else None},
        })
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
