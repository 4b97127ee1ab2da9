"""Entity lists through Central's REST API and OData, the calls ``pyodk.entities`` and
``pyodk.entity_lists`` make (shared/reference/entities.md §4).

- ``GET /v1/projects/{p}/datasets`` — the lists (``X-Extended-Metadata: true`` adds ``entities`` and
  ``conflicts``, counted within the caller's units);
- ``GET …/datasets/{name}`` — a list's metadata (forms that write it, forms that read it, properties);
- ``GET …/datasets/{name}/entities`` (``?deleted=true`` adds deleted ones), ``…/entities/{uuid}``,
  ``…/entities/{uuid}/versions`` — entities and their history;
- ``POST …/datasets/{name}/entities`` — one entity ``{"uuid"?, "label", "data"}``, or many
  ``{"entities": [...], "source": {"name", "size"?}}`` (all or none); ``PATCH …/entities/{uuid}`` with
  ``?baseVersion=N`` (409.15 when N is not the current version) or ``?force=true``, data laid over the
  current data; ``DELETE …/entities/{uuid}`` (soft: phones drop it, the integrity endpoint reports it).
  Each goes through ``core.storage.entity_rules`` as a submission's entity block does (a version with
  who and when, one audit event in the same transaction) and needs the role's ``edit`` permission. A new
  entity is filed under the unit the body names (``"unit"``, rasoat's own key; in a bulk body, one for
  all) or the officer's only unit; it must be inside their units. Writing an entity outside them is 403;
- ``GET …/datasets/{name}.svc``, ``…/{name}.svc/$metadata``, ``…/{name}.svc/Entities`` — OData, with
  ``$top $skip $count $select $skiptoken`` (keyset on the entity id, 1,000 rows a page), ``$filter`` on
  ``__id``, ``label``, ``__system/createdAt|updatedAt|deletedAt|creatorId|conflict|version`` and the
  properties (Central's grammar, ``odata_filter``; deleted entities only when it names ``deletedAt``),
  ``$orderby`` on ``__id`` and ``__system/createdAt|updatedAt|version``; ``$search`` is 501.

Scoped as submissions are (``core.scope``): an officer reads the entities of their units only (an
entity's unit is the unit of the submission that created it); one outside them is "not found".
Identifying properties (and a label built from identifying answers) are stored sealed, those written
through the API too: they are opened in memory for an officer whose role may read identities
(``view_personal``), each such read written to the audit log (``core.identities.record_read``), and are
``null`` for anyone else (a sealed label is shown as ``Người <first 8 characters of the id>``); a
``$filter`` on one is 400.18.

As in ``rest``, the officer and the store come from the Central router's dependencies and the role's
``view`` or ``edit`` permission is a ``requires`` guard (``server.deps``); each JSON answer is a model of
``entity_shapes`` (the OData ones ``shapes``' envelopes), so the OpenAPI schema describes it. Which
entities an officer may see or write stays ``core.scope``'s rule (``entity_visible``, ``require_entity``).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid as uuidlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import anyio
from litestar import Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter
from litestar.response import Stream
from rasoat.core import scope
from rasoat.core.entities import (
    LABEL,
    SEALED,
    SEALED_LABEL,
    Entity,
    EntityBlock,
    EntityList,
    Value,
    declared_lists,
    normal_uuid,
)
from rasoat.core.identities import record_read
from rasoat.core.models import AuditEvent, Role, User
from rasoat.core.problems import Problem
from rasoat.core.protection import (
    keyring,
    open_entity_label,
    open_entity_values,
    seal_entity_label,
    seal_entity_values,
)
from rasoat.core.storage.base import EntityQuery, Store
from rasoat.core.storage.entity_rules import StaleVersion
from rasoat.server.central import problems
from rasoat.server.central.bodies import EntitiesWrite, EntityChange, NewEntity, NewProperty
from rasoat.server.central.entity_shapes import (
    EntityListCounts,
    EntityListMetadata,
    EntityListOut,
    EntityOut,
    EntitySummary,
    EntityVersionOut,
    entities_edmx,
    entity_data_json,
    entity_json,
    list_json,
    list_metadata_json,
    odata_name,
    odata_row,
    versions_json,
)
from rasoat.server.central.odata import PAGE_RESPONSE, chunks
from rasoat.server.central.odata_filter import evaluate, parse_filter, parse_orderby
from rasoat.server.central.odata_query import ODATA, ODataQuery
from rasoat.server.central.project import base_url, find_form, project_id
from rasoat.server.central.rest import MAY_EDIT, MAY_VIEW
from rasoat.server.central.shapes import EntitySet, ODataServiceDocument, Success, actor_id
from rasoat.server.openapi import JsonOrXml

PAGE = 1000
JSON_TYPE = "application/json; odata.metadata=minimal"
HEADERS = {"OData-Version": "4.0"}
ORDER_COLUMNS = {"__id": "uuid", "__system/createdAt": "created_at", "__system/updatedAt": "updated_at",
                 "__system/version": "version"}  # core.storage.base.ENTITY_ORDER


@dataclass
class Reader:
    """One request's view of one list: who asks, what they may see, and the openings it audits."""

    user: User
    store: Store
    lst: EntityList
    opened: list[str] = field(default_factory=list)  # entity ids whose identifying values were shown
    _ring: Any = None
    _seal_ring: Any = None
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
        return scope.entity_visible(self.user, entity.unit_code)

    def entity(self, uuid: str) -> Entity:
        found = self.store.get_entity(uuid.strip().lower())
        if not self.visible(found):
            raise problems.not_found(f"entity {uuid}")
        assert found is not None
        return found

    def _open(self, uuid: str, values: Mapping[str, Any], label: str) -> tuple[dict[str, str], str]:
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

    def seal(
        self, uuid: str, data: Mapping[str, str], label: str | None
    ) -> tuple[dict[str, Value], str | None]:
        """What the API received, protected at rest as a submission's block is (``core.ingest``):
        identifying properties sealed, and the label when the forms build it from identifying fields."""

        secret = self.lst.identifying
        out: dict[str, Value] = dict(data)
        if not (secret & set(data) or (label and LABEL in secret)):
            return out, label
        self._seal_ring = self._seal_ring or keyring(self.store, current=True)  # follows a rotation
        if secret & set(data):
            out = seal_entity_values(self._seal_ring, uuid, data, secret)
        if label and LABEL in secret:
            label = seal_entity_label(self._seal_ring, uuid, label)
        return out, label

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


def _reader(store: Store, user: User, name: str) -> Reader:
    """The list ``name`` as ``user`` reads it (the role's permission is checked by the route's guards)."""
    lst = store.get_entity_list(name)
    if lst is None:
        raise problems.not_found(f"dataset {name}")
    return Reader(user, store, lst)


# --- lists ---------------------------------------------------------------------------------------------


@get("/v1/projects/{pid:str}/datasets", guards=[MAY_VIEW], sync_to_thread=True)
def entity_lists(
    request: Request, store: NamedDependency[Store], user: NamedDependency[User], pid: FromPath[str],
    extended: Annotated[str | None, HeaderParameter(name="X-Extended-Metadata")] = None,
) -> list[EntityListCounts | EntityListOut]:
    """Every entity list (Central: dataset); with ``X-Extended-Metadata: true``, each with its counts."""
    del pid
    out: list[EntityListCounts | EntityListOut] = []
    for lst in store.list_entity_lists():
        item = list_json(lst, project_id(request))
        if (extended or "").strip().lower() == "true":
            rd = Reader(user, store, lst)
            item = EntityListCounts(**item.model_dump(), entities=store.count_entities(rd.query()),
                                    lastEntity=None, conflicts=store.count_entities(rd.query(conflicts=True)))
        out.append(item)
    return out


def _list_metadata(request: Request, rd: Reader) -> EntityListMetadata:
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


@get("/v1/projects/{pid:str}/datasets/{name:str}", guards=[MAY_VIEW], sync_to_thread=True,
     responses={200: ResponseSpec(EntityListMetadata | ODataServiceDocument, generate_examples=False,
                                  description="Danh sách (JSON) hoặc tài liệu dịch vụ OData của nó (….svc) / "
                                              "The list (JSON) or its OData service document (….svc)")})
def entity_list(
    request: Request, store: NamedDependency[Store], user: NamedDependency[User], pid: FromPath[str],
    name: FromPath[str],
) -> Response[Any]:
    """A list's metadata, or its OData service document (``{name}.svc``)."""
    del pid
    if name.endswith(".svc"):
        rd = _reader(store, user, name[: -len(".svc")])
        base = f"{base_url(request)}/v1/projects/{project_id(request)}/datasets/{rd.lst.name}.svc"
        body: ODataServiceDocument = {"@odata.context": f"{base}/$metadata",
                                      "value": [EntitySet(name="Entities", kind="EntitySet", url="Entities")]}
        return Response(content=body, media_type=JSON_TYPE, headers=HEADERS)
    return Response(content=_list_metadata(request, _reader(store, user, name)))


# --- entities ------------------------------------------------------------------------------------------


def _summary(rd: Reader, entity: Entity) -> EntitySummary:
    _data, label = rd.show(entity.uuid, {}, entity.label)
    return entity_json(entity, label, rd.creator(entity.created_by)[0])


@get("/v1/projects/{pid:str}/datasets/{name:str}/entities", guards=[MAY_VIEW], sync_to_thread=True)
def entities(
    store: NamedDependency[Store], user: NamedDependency[User], pid: FromPath[str], name: FromPath[str],
    deleted: FromQuery[bool] = False,
) -> list[EntitySummary]:
    """The list's entities in the caller's units, without their data (Central's list)."""
    del pid
    rd = _reader(store, user, name)
    out = [_summary(rd, e) for e in rd.store.iter_entities(rd.query(deleted=deleted))]
    rd.audit("entities.list")
    return out


@get("/v1/projects/{pid:str}/datasets/{name:str}/entities/{uuid:str}", guards=[MAY_VIEW], sync_to_thread=True)
def entity(
    store: NamedDependency[Store], user: NamedDependency[User], pid: FromPath[str], name: FromPath[str],
    uuid: FromPath[str],
) -> EntityOut:
    """One entity with its current data."""
    del pid
    return _full(_reader(store, user, name), uuid)


def _full(rd: Reader, uuid: str) -> EntityOut:
    """One entity with its current data as ``rd`` may see it (its opening audited)."""
    found = rd.entity(uuid)
    versions = rd.store.entity_versions(found.uuid)
    data, label = rd.show(found.uuid, dict(found.properties), found.label)
    out = entity_data_json(found, label, rd.creator(found.created_by)[0], data,
                           versions[-1] if versions else None)
    rd.audit("entities.read")
    return out


@get("/v1/projects/{pid:str}/datasets/{name:str}/entities/{uuid:str}/versions", guards=[MAY_VIEW],
     sync_to_thread=True)
def entity_versions(
    store: NamedDependency[Store], user: NamedDependency[User], pid: FromPath[str], name: FromPath[str],
    uuid: FromPath[str],
) -> list[EntityVersionOut]:
    """One entity's history, version 1 first: who, when, from which submission, what it changed."""
    del pid
    rd = _reader(store, user, name)
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


# --- writes --------------------------------------------------------------------------------------------


def _label(value: str | None, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    if value is None or not value.strip():
        raise Problem("entity.label_blank")
    return value.strip()


def _data(lst: EntityList, value: dict[str, str] | None) -> dict[str, str]:
    """Central's rule: the list's properties only ("" clears one; every value a string, as the body's
    model says)."""
    for name in value or {}:
        if name not in lst.properties:
            raise Problem("entity.unknown_property", list=lst.name, property=name)
    return dict(value or {})


def _new(rd: Reader, doc: NewEntity) -> EntityBlock:
    uuid = normal_uuid(doc.uuid) if doc.uuid is not None else str(uuidlib.uuid4())
    if uuid is None:
        raise problems.invalid_value("uuid", f"{doc.uuid!r} is not a v4 UUID")
    data, label = rd.seal(uuid, _data(rd.lst, doc.data), _label(doc.label, required=True))
    return EntityBlock(dataset=rd.lst.name, uuid=uuid, create=True, update=False, label=label, data=data)


def _unit(rd: Reader, asked: str | None) -> str:
    """Where a new entity is filed: the unit asked (inside the officer's units), else their only unit."""
    unit = scope.report_unit(rd.user, asked or None)  # ScopeError: outside, unknown, or several to choose
    if unit is None:  # an administrator: no unit of their own
        raise scope.ScopeError("scope.choose_unit", units="unit")
    return unit


def _target(rd: Reader, uuid: str) -> Entity:
    """The entity a PATCH or DELETE names: 404 when it is not (or no longer) on the list, 403 when it lies
    outside the officer's units."""
    found = rd.store.get_entity(uuid.strip().lower())
    if found is None or found.list_name != rd.lst.name or found.deleted:
        raise problems.not_found(f"entity {uuid}")
    scope.require_entity(rd.user, found.uuid, found.unit_code)
    return found


def _write(rd: Reader, blocks: list[EntityBlock], audit: AuditEvent, *, unit: str | None = None,
           exact_base: bool = False) -> None:
    units = None if rd.user.role is Role.admin else tuple(rd.user.unit_codes)
    # a refused block raises its EntityFailure, a Problem with a code of its own
    rd.store.write_entities(blocks, actor=rd.user.username, unit_code=unit, scope=units,
                            exact_base=exact_base, audit=audit)


def _event(rd: Reader, action: str, target: str, **details: Any) -> AuditEvent:
    return AuditEvent(actor=rd.user.username, action=action, target=target,
                      details={"list": rd.lst.name, **details, "via": "central"})


def _create(rd: Reader, doc: EntitiesWrite) -> EntityOut | Success:
    mixed = doc.mixed_keys()
    if mixed:
        raise Problem("request.unexpected_keys", keys=", ".join(sorted(mixed)))
    unit = _unit(rd, doc.unit)
    if doc.entities is not None:  # pyodk's create_many
        blocks = [_new(rd, item) for item in doc.entities]
        source = doc.source.name if doc.source is not None else None
        _write(rd, blocks, _event(rd, "entity.bulk_create", rd.lst.name, count=len(blocks), unit=unit,
                                  source=source or ""), unit=unit)
        return Success(success=True)
    block = _new(rd, doc)
    _write(rd, [block], _event(rd, "entity.create", block.uuid, unit=unit, properties=sorted(block.data)),
           unit=unit)
    return _full(rd, block.uuid)


@post("/v1/projects/{pid:str}/datasets/{name:str}/entities", guards=[MAY_EDIT], status_code=200)
async def create_entities(
    store: NamedDependency[Store], user: NamedDependency[User], pid: FromPath[str], name: FromPath[str],
    data: JSONBody[EntitiesWrite],
) -> EntityOut | Success:
    """One entity (answered with it), or pyodk's ``create_many`` body (``{"success": true}``)."""
    del pid
    rd = await anyio.to_thread.run_sync(_reader, store, user, name)
    return await anyio.to_thread.run_sync(_create, rd, data)


@patch("/v1/projects/{pid:str}/datasets/{name:str}/entities/{uuid:str}", guards=[MAY_EDIT], status_code=200)
async def update_entity(
    store: NamedDependency[Store], user: NamedDependency[User], pid: FromPath[str], name: FromPath[str],
    uuid: FromPath[str], baseVersion: Annotated[int | None, QueryParameter(ge=0)] = None,  # Central's name
    force: FromQuery[bool] = False, resolve: FromQuery[bool] = False,
    data: JSONBody[EntityChange | None] = None,
) -> EntityOut:
    """``{"label"?, "data"?}`` laid over the current version named by ``?baseVersion=N`` (409.15 when it is
    not the current one), or over whatever is current with ``?force=true``. ``&resolve=true`` then marks
    the entity's conflict resolved (400.32 without one), with or without a body, as the persons page
    does (``entity.resolve``: a second transaction after the update's)."""
    del pid
    rd = await anyio.to_thread.run_sync(_reader, store, user, name)
    base = baseVersion
    if base is None and not force:
        raise problems.missing_params(["baseVersion"], {})
    doc = data or EntityChange()

    def run() -> EntityOut:
        found = _target(rd, uuid)
        if resolve and found.conflict is None:
            raise Problem("entity.no_conflict", uuid=found.uuid)
        values, label = rd.seal(found.uuid, _data(rd.lst, doc.data), _label(doc.label, required=False))
        if values or label is not None or not resolve:
            block = EntityBlock(dataset=rd.lst.name, uuid=found.uuid, create=False, update=True, label=label,
                                data=values, base_version=None if force else base)
            event = _event(rd, "entity.update", found.uuid, base_version=base, force=force,
                           properties=sorted(values), label=label is not None)
            _write(rd, [block], event, exact_base=not force)
        elif not force and base != found.version:
            raise StaleVersion(found.uuid, base, found.version)
        if resolve:
            rd.store.resolve_entity_conflict(found.uuid, rd.user.username)
            rd.store.append_audit(_event(rd, "entity.resolve", found.uuid, conflict=found.conflict,
                                         at_version=base))
        return _full(rd, found.uuid)

    return await anyio.to_thread.run_sync(run)


@post("/v1/projects/{pid:str}/datasets/{name:str}/properties", guards=[MAY_EDIT], status_code=200)
async def add_property(
    store: NamedDependency[Store], user: NamedDependency[User], pid: FromPath[str], name: FromPath[str],
    data: JSONBody[NewProperty],
) -> Success:
    """pyodk's ``entity_list_properties.create``, which ``entities.merge`` calls for each key it did not
    see in the list's rows (every key, when the list is empty): a property the list has is answered as
    done; a new one is refused, as properties come from the forms that save them, where an identifying
    one is marked to be sealed at rest."""
    del pid
    rd = await anyio.to_thread.run_sync(_reader, store, user, name)
    prop = data.name
    if prop not in rd.lst.properties:
        raise Problem("entity.property_from_forms", list=rd.lst.name, property=prop)
    return Success(success=True)


@delete("/v1/projects/{pid:str}/datasets/{name:str}/entities/{uuid:str}", guards=[MAY_EDIT], status_code=200,
        sync_to_thread=True)
def delete_entity(
    store: NamedDependency[Store], user: NamedDependency[User], pid: FromPath[str], name: FromPath[str],
    uuid: FromPath[str],
) -> Success:
    """Soft delete: kept with its history, gone from the lists phones receive (the integrity endpoint
    says so)."""
    del pid
    rd = _reader(store, user, name)
    found = _target(rd, uuid)
    rd.store.delete_entity(found.uuid, rd.user.username,
                           audit=_event(rd, "entity.delete", found.uuid, version=found.version))
    return Success(success=True)


# --- OData ---------------------------------------------------------------------------------------------


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


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


_SYSTEM: dict[str, Callable[[Reader, Entity], Any]] = {  # $filter's fields other than properties
    "__id": lambda rd, e: e.uuid,
    "label": lambda rd, e: e.label,
    "__system/createdAt": lambda rd, e: _aware(e.created_at),
    "__system/updatedAt": lambda rd, e: _aware(e.updated_at) if e.version > 1 else None,
    "__system/deletedAt": lambda rd, e: _aware(e.updated_at) if e.deleted else None,
    "__system/creatorId": lambda rd, e: rd.creator(e.created_by)[0],
    "__system/conflict": lambda rd, e: e.conflict,
    "__system/version": lambda rd, e: e.version,
}


def _filter(rd: Reader, text: str | None) -> Callable[[Entity], bool] | None:
    """A ``$filter`` as a test of one entity (None: no filter). Identifying properties, and a label built
    from identifying fields, are sealed at rest: naming one is 400.18."""
    if not text or not text.strip():
        return None
    props = {odata_name(p): p for p in rd.lst.properties}
    sealed = {n for n, p in props.items() if p in rd.lst.identifying} | ({"label"} & rd.lst.identifying)
    tree = parse_filter(text, {*_SYSTEM, *props}, frozenset(sealed))

    def value(e: Entity, name: str) -> Any:
        system = _SYSTEM.get(name)
        if system is not None:
            return system(rd, e)
        found = e.properties.get(props[name], "")  # never set: "" as the row shows it
        return found if isinstance(found, str) else None

    return lambda e: bool(evaluate(tree, lambda name: value(e, name)))


def _odata_entities(request: Request, q: ODataQuery, rd: Reader) -> Stream:
    for option, given in (("$search", q.search), ("$expand", q.expand), ("$apply", q.apply)):
        if given:
            raise problems.not_implemented("501.1", option)
    top, skip = q.top, q.skip or 0
    after = _skiptoken(q.skiptoken)
    select = [s.strip() for s in (q.select or "").split(",") if s.strip()]
    known = {"__id", "__system", "label", *(odata_name(p) for p in rd.lst.properties)}
    for name in select:
        if name not in known:
            raise problems.odata_select(name)
    order = parse_orderby(q.orderby, ORDER_COLUMNS)
    if order and after:
        raise problems.not_implemented("501.1", "$orderby + $skiptoken")
    test = _filter(rd, q.filter)
    query = rd.query(deleted="__system/deletedAt" in (q.filter or ""))  # as Central: only when named
    query = query.model_copy(update={"order_by": [(ORDER_COLUMNS[f], desc) for f, desc in order]})
    counting = q.count
    total = None  # a filtered list from its start is counted in the pass that sends it
    if counting and test is None:
        total = rd.store.count_entities(query)
    elif counting and test is not None and after is not None:
        total = sum(1 for e in rd.store.iter_entities(query) if test(e))
    base = f"{base_url(request)}/v1/projects/{project_id(request)}/datasets/{rd.lst.name}.svc"

    def rows() -> Iterator[Entity]:
        if order:  # streamed in that order; pages follow by $skip
            found: Iterator[Entity] = rd.store.iter_entities(query)
        else:
            found = _keyset(rd.store, query, after)
        return found if test is None else (e for e in found if test(e))

    def body() -> Iterator[bytes]:
        yield b'{"value":['
        sent = skipped = beyond = 0
        last: str | None = None
        for found in rows():
            if skipped < skip:
                skipped += 1
                continue
            if top is not None and sent >= top:
                beyond += 1
                if total is not None or not counting:
                    break
                continue  # only counted
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
        if beyond and last:
            token = "01" + base64.b64encode(json.dumps({"uuid": last}).encode()).decode()
            params = q.link(skip=str(skip + sent)) if order else q.link(skiptoken=token)
            tail["@odata.nextLink"] = f"{base}/Entities?{urlencode(params)}"
        if counting:
            tail["@odata.count"] = total if total is not None else skipped + sent + beyond
        rd.audit("entities.odata")
        yield b"]," + json.dumps(tail, ensure_ascii=False, separators=(",", ":"))[1:].encode()

    return Stream(chunks(body()), media_type=JSON_TYPE, headers=HEADERS)


def _keyset(store: Store, query: EntityQuery, after: str | None) -> Iterator[Entity]:
    """The entities by uuid from after ``after``, a page of ``PAGE`` at a time."""
    while True:
        page = store.page_entities(query, limit=PAGE, after=after)
        yield from page
        if len(page) < PAGE:
            return
        after = page[-1].uuid


@get("/v1/projects/{pid:str}/datasets/{name:str}/{table:str}", guards=[MAY_VIEW], responses=PAGE_RESPONSE,
     dependencies=ODATA, operation_class=JsonOrXml, sync_to_thread=True)
def entity_list_odata(
    request: Request, store: NamedDependency[Store], user: NamedDependency[User],
    odata: NamedDependency[ODataQuery], pid: FromPath[str], name: FromPath[str], table: FromPath[str],
) -> Response[Any]:
    """OData of a list: ``{name}.svc/$metadata`` and ``{name}.svc/Entities``."""
    del pid
    if not name.endswith(".svc") or table not in ("$metadata", "Entities"):
        raise problems.not_found()
    rd = _reader(store, user, name[: -len(".svc")])
    if table == "$metadata":
        return Response(content=entities_edmx(rd.lst), media_type="application/xml", headers=HEADERS)
    return _odata_entities(request, odata, rd)


entity_handlers = [entity_lists, entity_list, entities, entity, entity_versions, entity_list_odata,
                   create_entities, update_entity, delete_entity, add_property]
