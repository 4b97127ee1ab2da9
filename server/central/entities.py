"""Entity lists through Central's REST API and OData, the calls ``pyodk.entities`` and
``pyodk.entity_lists`` make (shared/reference/entities.md §4): read-only.

- ``GET /v1/projects/{p}/datasets`` — the lists (``X-Extended-Metadata: true`` adds ``entities`` and
  ``conflicts``, counted within the caller's units);
- ``GET …/datasets/{name}`` — a list's metadata (forms that write it, forms that read it, properties);
- ``GET …/datasets/{name}/entities`` (``?deleted=true`` adds deleted ones), ``…/entities/{uuid}``,
  ``…/entities/{uuid}/versions`` — entities and their history;
- ``GET …/datasets/{name}.svc``, ``…/{name}.svc/$metadata``, ``…/{name}.svc/Entities`` — OData, with
  ``$top $skip $count $select $skiptoken`` (keyset on the entity id, 1,000 rows a page).

Scoped as submissions are (``core.scope``): an officer reads the entities of their units only (an
entity's unit is the unit of the submission that created it); one outside them is "not found".
Identifying properties (and a label built from identifying answers) are stored sealed: they are opened
in memory for an officer whose role may read identities (``view_personal``), each such read written to
the audit log (``core.identities.record_read``), and are ``null`` for anyone else (a sealed label is
shown as ``Người <first 8 characters of the id>``).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from litestar import Request, Response, get
from litestar.params import FromPath
from litestar.response import Stream
from rasoat.core import scope
from rasoat.core.entities import SEALED, SEALED_LABEL, Entity, EntityList, declared_lists
from rasoat.core.identities import record_read
from rasoat.core.models import User
from rasoat.core.storage.base import EntityQuery, Store
from rasoat.server.central import problems
from rasoat.server.central.auth import officer
from rasoat.server.central.entity_shapes import (
    entities_edmx,
    entity_json,
    list_json,
    list_metadata_json,
    odata_name,
    odata_row,
    versions_json,
)
from rasoat.server.central.project import base_url, check_project, find_form, project_id
from rasoat.server.central.shapes import actor_id

PAGE = 1000
JSON_TYPE = "application/json; odata.metadata=minimal"
HEADERS = {"OData-Version": "4.0"}
UNSUPPORTED = ("$filter", "$orderby", "$search", "$expand", "$apply")


@dataclass
class Reader:
    """One request's view of one list: who asks, what they may see, and the openings it audits."""

    user: User
    store: Store
    lst: EntityList
    opened: list[str] = field(default_factory=list)  # entity ids whose identifying values were shown
    _ring: Any = None
    _creators: dict[str, tuple[int, str]] = field(default_factory=dict)

    @property
    def identities(self) -> bool:
        return scope.can(self.user, scope.VIEW_PERSONAL)

    def query(self, deleted: bool = False, conflicts: bool = False) -> EntityQuery:
        allowed = scope.allowed_units(self.user)
        return EntityQuery(list_name=self.lst.name, unit_codes=None if allowed is None else sorted(allowed),
                           include_deleted=deleted, conflict_only=conflicts)

    def visible(self, entity: Entity | None) -> bool:
        if entity is None or entity.list_name != self.lst.name:
            return False
        allowed = scope.allowed_units(self.user)
        unit = entity.unit_code or ""
        return allowed is None or unit in allowed or unit.split("-", 1)[0] in allowed

    def entity(self, uuid: str) -> Entity:
        found = self.store.get_entity(uuid.strip().lower())
        if not self.visible(found):
            raise problems.not_found(f"entity {uuid}")
        assert found is not None
        return found

    def _open(self, uuid: str, values: Mapping[str, Any], label: str) -> tuple[dict[str, str], str]:
        from rasoat.core.protection import keyring, open_entity_label, open_entity_values

        self._ring = self._ring or keyring(self.store, create=False)
        self.opened.append(uuid)
        return open_entity_values(self._ring, uuid, values), open_entity_label(self._ring, uuid, label)

    def show(self, uuid: str, values: Mapping[str, Any], label: str) -> tuple[dict[str, str | None], str]:
        """Property values and label as this caller may see them."""
        sealed = label.startswith(SEALED_LABEL) or any(isinstance(v, dict) and SEALED in v
                                                       for v in values.values())
        if sealed and self.identities:
            opened, label = self._open(uuid, values, label)
            return dict(opened), label
        shown: dict[str, str | None] = {}
        for name, value in values.items():
            hidden = name in self.lst.identifying or (isinstance(value, dict) and SEALED in value)
            shown[name] = None if hidden else str(value)
        return shown, (f"Người {uuid[:8]}" if label.startswith(SEALED_LABEL) else label)

    def creator(self, username: str) -> tuple[int, str]:
        """(Central actor id, display name) of an account name."""
        if username not in self._creators:
            user = self.store.get_user_by_name(username)
            self._creators[username] = (
                (actor_id(user.id), user.display_name or user.username) if user else (0, username))
        return self._creators[username]

    def audit(self, action: str) -> None:
        if self.opened:
            record_read(self.store, self.user.username, action, self.opened, target=self.lst.name,
                        via="central")
            self.opened = []


def _store(request: Request) -> Store:
    return request.app.state["rasoat"].store


def _user(request: Request) -> User:
    check_project(request)
    user = officer(request)
    if not scope.can(user, scope.VIEW):
        raise problems.forbidden(scope.VIEW)
    return user


def _reader(request: Request, name: str) -> Reader:
    user = _user(request)
    store = _store(request)
    lst = store.get_entity_list(name)
    if lst is None:
        raise problems.not_found(f"dataset {name}")
    return Reader(user, store, lst)


def _is_true(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


# --- lists ---------------------------------------------------------------------------------------------


@get("/v1/projects/{pid:str}/datasets", sync_to_thread=True)
def entity_lists(request: Request, pid: FromPath[str]) -> list[dict[str, Any]]:
    """Every entity list (Central: dataset)."""
    del pid
    user = _user(request)
    store = _store(request)
    extended = _is_true(request.headers.get("x-extended-metadata"))
    out = []
    for lst in store.list_entity_lists():
        counts = None
        if extended:
            rd = Reader(user, store, lst)
            counts = {"entities": store.count_entities(rd.query()), "lastEntity": None,
                      "conflicts": store.count_entities(rd.query(conflicts=True))}
        out.append(list_json(lst, project_id(request), counts))
    return out


def _list_metadata(request: Request, name: str) -> dict[str, Any]:
    rd = _reader(request, name)
    titles: dict[str, str] = {}
    writers: dict[str, list[str]] = {}
    for form_id in rd.lst.forms:
        form = find_form(rd.store, form_id)
        if form is None:
            continue
        titles[form_id] = form.title
        for decl in declared_lists(rd.store.form_xml(form.form_id, form.version)):
            if decl.dataset == rd.lst.name:
                for prop in decl.properties.values():
                    writers.setdefault(prop, []).append(form_id)
    linked = []
    for form in rd.store.list_forms():
        if f"{rd.lst.name}.csv" in form.media:
            titles.setdefault(form.form_id, form.title)
            linked.append(form.form_id)
    return list_metadata_json(rd.lst, project_id(request), titles, writers, linked)


@get("/v1/projects/{pid:str}/datasets/{name:str}", sync_to_thread=True)
def entity_list(request: Request, pid: FromPath[str], name: FromPath[str]) -> Response:
    """A list's metadata, or its OData service document (``{name}.svc``)."""
    del pid
    if name.endswith(".svc"):
        rd = _reader(request, name[: -len(".svc")])
        base = f"{base_url(request)}/v1/projects/{project_id(request)}/datasets/{rd.lst.name}.svc"
        body = {"@odata.context": f"{base}/$metadata",
                "value": [{"name": "Entities", "kind": "EntitySet", "url": "Entities"}]}
        return Response(content=body, media_type=JSON_TYPE, headers=HEADERS)
    return Response(content=_list_metadata(request, name))


# --- entities ------------------------------------------------------------------------------------------


def _summary(rd: Reader, entity: Entity) -> dict[str, Any]:
    _data, label = rd.show(entity.uuid, {}, entity.label)
    return entity_json(entity, label, rd.creator(entity.created_by)[0])


@get("/v1/projects/{pid:str}/datasets/{name:str}/entities", sync_to_thread=True)
def entities(request: Request, pid: FromPath[str], name: FromPath[str]) -> list[dict[str, Any]]:
    """The list's entities in the caller's units, without their data (Central's list)."""
    del pid
    rd = _reader(request, name)
    out = [_summary(rd, e) for e in rd.store.iter_entities(rd.query(deleted=_is_true(
        request.query_params.get("deleted"))))]
    rd.audit("entities.list")
    return out


@get("/v1/projects/{pid:str}/datasets/{name:str}/entities/{uuid:str}", sync_to_thread=True)
def entity(request: Request, pid: FromPath[str], name: FromPath[str], uuid: FromPath[str]) -> dict[str, Any]:
    """One entity with its current data."""
    del pid
    rd = _reader(request, name)
    found = rd.entity(uuid)
    versions = rd.store.entity_versions(found.uuid)
    data, label = rd.show(found.uuid, dict(found.properties), found.label)
    out = entity_json(found, label, rd.creator(found.created_by)[0], data, versions[-1] if versions else None)
    rd.audit("entities.read")
    return out


@get("/v1/projects/{pid:str}/datasets/{name:str}/entities/{uuid:str}/versions", sync_to_thread=True)
def entity_versions(
    request: Request, pid: FromPath[str], name: FromPath[str], uuid: FromPath[str]
) -> list[dict[str, Any]]:
    """One entity's history, version 1 first: who, when, from which submission, what it changed."""
    del pid
    rd = _reader(request, name)
    found = rd.entity(uuid)
    versions = rd.store.entity_versions(found.uuid)
    whole: dict[str, Any] = {}
    data, labels, creators = [], [], []
    for v in versions:
        whole = {**whole, **v.data}
        shown, label = rd.show(found.uuid, whole, v.label)
        data.append(shown)
        labels.append(label)
        creators.append(rd.creator(v.actor)[0])
    out = versions_json(found, versions, labels, data, creators)
    rd.opened = rd.opened[:1]  # one entity, however many versions were opened
    rd.audit("entities.versions")
    return out


# --- OData ---------------------------------------------------------------------------------------------


def _option(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    if not raw.isdigit():
        raise problems.invalid_value(name, raw)
    return int(raw)


def _skiptoken(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        doc = json.loads(base64.b64decode(raw[2:], validate=True)) if raw.startswith("01") else None
    except (ValueError, binascii.Error):
        doc = None
    if not isinstance(doc, dict) or not isinstance(doc.get("uuid"), str):
        raise problems.bad_skiptoken()
    return str(doc["uuid"])


def _odata_entities(request: Request, rd: Reader) -> Stream:
    for option in UNSUPPORTED:
        if request.query_params.get(option):
            raise problems.not_implemented("501.1", f"{option} trên danh sách thực thể / {option} on "
                                           "entities")
    top, skip = _option(request, "$top"), _option(request, "$skip") or 0
    after = _skiptoken(request.query_params.get("$skiptoken"))
    select = [s.strip() for s in (request.query_params.get("$select") or "").split(",") if s.strip()]
    known = {"__id", "__system", "label", *(odata_name(p) for p in rd.lst.properties)}
    for name in select:
        if name not in known:
            raise problems.odata_select(name)
    query = rd.query()
    total = rd.store.count_entities(query) if _is_true(request.query_params.get("$count")) else None
    base = f"{base_url(request)}/v1/projects/{project_id(request)}/datasets/{rd.lst.name}.svc"

    def rows() -> Iterator[Entity]:
        cursor = after
        while True:
            page = rd.store.page_entities(query, limit=PAGE, after=cursor)
            yield from page
            if len(page) < PAGE:
                return
            cursor = page[-1].uuid

    def body() -> Iterator[bytes]:
        yield b'{"value":['
        sent = skipped = 0
        last: str | None = None
        more = False
        for found in rows():
            if skipped < skip:
                skipped += 1
                continue
            if top is not None and sent >= top:
                more = True
                break
            data, label = rd.show(found.uuid, dict(found.properties), found.label)
            creator_id, creator_name = rd.creator(found.created_by)
            row = odata_row(found, label, data, rd.lst.properties, creator_id, creator_name)
            if select:
                row = {k: v for k, v in row.items() if k in select}
            text = json.dumps(row, ensure_ascii=False, separators=(",", ":"))
            yield (b"," if sent else b"") + text.encode()
            sent += 1
            last = found.uuid
        tail: dict[str, Any] = {"@odata.context": f"{base}/$metadata#Entities"}
        if more and last:
            token = "01" + base64.b64encode(json.dumps({"uuid": last}).encode()).decode()
            params = {k: v for k, v in request.query_params.items() if k not in ("$skip", "$skiptoken")}
            params["$skiptoken"] = token
            from urllib.parse import urlencode

            tail["@odata.nextLink"] = f"{base}/Entities?{urlencode(params)}"
        if total is not None:
            tail["@odata.count"] = total
        rd.audit("entities.odata")
        yield b"]," + json.dumps(tail, ensure_ascii=False, separators=(",", ":"))[1:].encode()

    from rasoat.server.central.odata import chunks

    return Stream(chunks(body()), media_type=JSON_TYPE, headers=HEADERS)


@get("/v1/projects/{pid:str}/datasets/{name:str}/{table:str}", sync_to_thread=True)
def entity_list_odata(
    request: Request, pid: FromPath[str], name: FromPath[str], table: FromPath[str]
) -> Response:
    """OData of a list: ``{name}.svc/$metadata`` and ``{name}.svc/Entities``."""
    del pid
    if not name.endswith(".svc") or table not in ("$metadata", "Entities"):
        raise problems.not_found()
    rd = _reader(request, name[: -len(".svc")])
    if table == "$metadata":
        return Response(content=entities_edmx(rd.lst), media_type="application/xml", headers=HEADERS)
    return _odata_entities(request, rd)


entity_handlers = [entity_lists, entity_list, entities, entity, entity_versions, entity_list_odata]
