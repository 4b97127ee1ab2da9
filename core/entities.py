"""ODK Entities as rasoat reads them: what a form declares, what one submission's entity blocks say, and
the records the store keeps (shared/reference/entities.md §1, §3.2). Pure functions and data, no storage.

**What a form declares** (``declared_lists``): pyxform writes each row of the XLSForm ``entities`` sheet
as a ``meta/entity`` element of the primary instance (at the root, or in a group or repeat for
entities-version 2025.1) with the attributes ``dataset`` (the list name), ``create`` and/or ``update``
(present when the form may do that), ``id``, ``baseVersion``, ``trunkVersion``, ``branchId`` and a
``label`` child; a survey row's ``save_to`` becomes the bind attribute ``entities:saveto`` naming the
property the field writes. A saveto belongs to the entity of the nearest enclosing container that
declares one. ``ListDeclaration`` holds one such declaration.

**What a submission says** (``read_blocks``): each ``meta/entity`` of the instance (one per repeat
instance inside a repeat) gives an ``EntityBlock``: the list, the entity id (a v4 UUID, ``uuid:``
prefix allowed, kept lower case without it), whether it creates and/or updates (``"1"`` or ``"true"``),
the versions an update is based on, the label and the properties whose elements are present (an
element present but empty sets the property to ``""``; an absent one leaves it untouched). A block that
cannot be used becomes an ``EntityProblem`` (the submission itself is still stored, as in Central).

**What the store keeps** (``core.storage.base.EntityStore``): ``EntityList``, ``Entity``,
``EntityVersion`` and ``HeldEntity`` below. Identifying properties (a property written by a field the
form marks ``rasoat:identifying``) are kept sealed: their value in ``properties`` and in a version's
``data`` is a ``{"#sealed": "<base64>"}`` object (``core.protection.seal_value``), opened only when the
list is served to the phones of the entity's unit.

**Where an entity lives** (``moved_to``): an entity is served to the phones of its unit, first the unit of
the submission that created it. Its ``commune`` property is what the phones filter the list by
(``choice_filter commune=${commune}``), so the server follows it too: an update setting ``commune`` to
another commune moves the entity there (F11's transfer decision, Mẫu 08 of Decree 105/2021), and the
phone lists and the server's scoping can never disagree. A receiving commune the unit registry does not
know is refused (``receiving_refusal``), never kept silently.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rasoat.core.instance import MAX_INSTANCE_BYTES, _local, _parse
from rasoat.core.problems import Problem
from rasoat.core.units import get_units

ENTITIES_NS = "http://www.opendatakit.org/xforms/entities"
SUPPORTED_VERSIONS = ("2022.1", "2023.1", "2024.1", "2025.1")
SEALED = "#sealed"  # the key of a sealed property value: {"#sealed": "<base64>"}
SEALED_LABEL = "#sealed:"  # the prefix of a sealed label (a label built from identifying fields)
FORCE_AFTER_DAYS = 5  # Central's default.taskSchedule.entitySubmissionBacklog
LABEL = "label"  # in ``identifying``: the label is built from identifying fields and sealed too
_UUID_RE = re.compile(
    r"^(?:uuid:)?([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})$", re.I)
_LIST_RE = re.compile(r"^[^\W\d.\-][\w:\-]*$")  # an XML name without '.', as Central checks it
_TRUE = {"1", "true"}

MOVES_WITH = "commune"  # the property whose new value moves an entity to that commune (``moved_to``)

#: a property value as stored: clear text, or a sealed identifying value
Value = str | dict[str, str]


class EntityError(Problem, ValueError):
    """A form's entity declaration that cannot be used (refused at publish); message Vietnamese first."""


# --- what a form declares ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ListDeclaration:
    """One ``meta/entity`` of a form: the list it writes, which actions the form may take, where the
    block sits (``container``: '' for the root, else the group/repeat path below the root), and the
    fields it saves: ``properties`` maps a field path (as ``Submission.fields`` keys it, relative to the
    root) to a property name; ``identifying`` are the properties whose field is marked identifying."""

    dataset: str
    create: bool
    update: bool
    container: str = ""
    properties: Mapping[str, str] = field(default_factory=dict)
    identifying: frozenset[str] = frozenset()
    spec_version: str = ""


def _strip_root(nodeset: str) -> str:
    parts = [p.split(":")[-1] for p in nodeset.strip().strip("/").split("/")]
    return "/".join(parts[1:])


def declared_lists(xform: bytes, identifying_fields: Iterable[str] = ()) -> list[ListDeclaration]:
    """The entity declarations of an XForm, in document order ([] for a form without entities).

    ``identifying_fields`` are the form's identifying field paths (``core.protection.identifying_fields``);
    a property saved from one of them is identifying. Raises EntityError for an entities-version rasoat
    does not know, a bad list name, a block with neither ``create`` nor ``update``, or two fields saving
    one property of one entity."""
    root = _parse(xform, max_bytes=max(len(xform), MAX_INSTANCE_BYTES))  # InstanceError: a ValueError too
    model = next((el for el in root.iter() if _local(el.tag) == "model"), None)
    if model is None:
        return []
    version = model.get(f"{{{ENTITIES_NS}}}entities-version") or ""
    instance = next((el for el in model if _local(el.tag) == "instance" and not el.get("id")), None)
    data = next((el for el in instance if isinstance(el.tag, str)), None) if instance is not None else None
    if data is None:
        return []
    found: list[tuple[str, ET.Element]] = []  # (container path, entity element)

    def walk(el: ET.Element, path: str) -> None:
        for child in el:
            if not isinstance(child.tag, str):
                continue
            name = _local(child.tag)
            here = f"{path}/{name}" if path else name
            if name == "meta":
                entity = next((c for c in child if _local(c.tag) == "entity"), None)
                if entity is not None:
                    found.append((path, entity))
            walk(child, here)

    walk(data, "")
    if not found:
        return []
    if not version.startswith(SUPPORTED_VERSIONS):
        raise EntityError(
            "entity.version_unsupported", version=version, supported=', '.join(SUPPORTED_VERSIONS))
    saveto: dict[str, str] = {}
    labels: dict[str, str] = {}  # container → the label's calculate expression
    for bind in model.iter():
        if _local(bind.tag) != "bind":
            continue
        nodeset = _strip_root(bind.get("nodeset", ""))
        if bind.get(f"{{{ENTITIES_NS}}}saveto"):
            saveto[nodeset] = bind.get(f"{{{ENTITIES_NS}}}saveto", "").strip()
        if nodeset == "meta/entity/label" or nodeset.endswith("/meta/entity/label"):
            labels[nodeset.removesuffix("meta/entity/label").rstrip("/")] = bind.get("calculate") or ""
    containers = sorted((c for c, _ in found), key=len, reverse=True)
    identifying = frozenset(identifying_fields)
    out = []
    for container, entity in found:
        dataset = (entity.get("dataset") or "").strip()
        if not _LIST_RE.match(dataset) or dataset.startswith("__"):
            raise EntityError("entity.bad_list_name", dataset=dataset)
        create, update = entity.get("create") is not None, entity.get("update") is not None
        if not (create or update):
            raise EntityError("entity.no_create_update", dataset=dataset)
        props: dict[str, str] = {}
        for path, prop in saveto.items():
            owner = next((c for c in containers if c == "" or path.startswith(c + "/")), None)
            if owner != container:
                continue
            if prop.casefold() in {p.casefold() for p in props.values()}:
                raise EntityError("entity.property_twice", prop=prop)
            props[path] = prop
        secret = {p for path, p in props.items() if path in identifying}
        calc = labels.get(container, "")
        if any(re.search(rf"/{re.escape(path.rsplit('/', 1)[-1])}(?![\w.-])", calc) for path in identifying):
            secret.add(LABEL)
        out.append(ListDeclaration(
            dataset=dataset, create=create, update=update, container=container, properties=props,
            identifying=frozenset(secret), spec_version=version))
    return out


# --- what one submission says ------------------------------------------------------------------------


@dataclass(frozen=True)
class EntityBlock:
    """One entity block of a submission, as received (``data``: the properties whose element is present;
    identifying values already sealed when the block was read for storage)."""

    dataset: str
    uuid: str
    create: bool
    update: bool
    label: str | None  # None or blank: keep the current label (an update)
    data: Mapping[str, Value]
    base_version: int | None = None
    trunk_version: int | None = None
    branch_id: str | None = None
    index: int = 0  # the block's place in the submission (several entities per submission: 2025.1)

    def to_json(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "uuid": self.uuid, "create": self.create, "update": self.update,
                "label": self.label, "data": dict(self.data), "base_version": self.base_version,
                "trunk_version": self.trunk_version, "branch_id": self.branch_id, "index": self.index}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> EntityBlock:
        return cls(**{k: doc[k] for k in ("dataset", "uuid", "create", "update", "label", "data",
                                          "base_version", "trunk_version", "branch_id", "index")})


@dataclass(frozen=True)
class EntityProblem:
    """A block that cannot be used: why, Vietnamese first."""

    index: int
    dataset: str
    message: str


def normal_uuid(value: str | None) -> str | None:
    """A v4 UUID lower case without ``uuid:``; None when ``value`` is not one."""
    match = _UUID_RE.match((value or "").strip())
    return match.group(1).lower() if match else None


def _int(value: str | None) -> int | None | str:
    text = (value or "").strip()
    if not text:
        return None
    return int(text) if text.isdigit() else text


def read_blocks(
    xml: bytes, declarations: Iterable[ListDeclaration]
) -> tuple[list[EntityBlock], list[EntityProblem]]:
    """The entity blocks of a submission of a form with ``declarations`` (its ``declared_lists``), and the
    problems of the blocks that cannot be used. A block whose ``create``/``update`` are both false is
    not an action (the form's condition said no) and is left out."""
    decls = {d.container: d for d in declarations}
    if not decls:
        return [], []
    root = _parse(xml, max_bytes=MAX_INSTANCE_BYTES)
    blocks: list[EntityBlock] = []
    problems: list[EntityProblem] = []
    index = 0

    def walk(el: ET.Element, path: str) -> None:
        nonlocal index
        meta = next((c for c in el if _local(c.tag) == "meta"), None)
        entity = next((c for c in meta if _local(c.tag) == "entity"), None) if meta is not None else None
        decl = decls.get(path)
        if entity is not None and decl is not None:
            found = _block(entity, el, path, decl, index)
            index += 1
            if isinstance(found, EntityProblem):
                problems.append(found)
            elif found is not None:
                blocks.append(found)
        for child in el:
            if isinstance(child.tag, str) and _local(child.tag) != "meta" and len(child):
                name = _local(child.tag)
                walk(child, f"{path}/{name}" if path else name)

    walk(root, "")
    return blocks, problems


def _find(el: ET.Element, rel: str) -> ET.Element | None:
    found: ET.Element | None = el
    for part in rel.split("/"):
        found = next((c for c in found if _local(c.tag) == part), None) if found is not None else None
    return found


def _block(entity: ET.Element, holder: ET.Element, container: str, decl: ListDeclaration,
           index: int) -> EntityBlock | EntityProblem | None:
    attrs = {_local(k): v for k, v in entity.attrib.items()}
    dataset = (attrs.get("dataset") or decl.dataset).strip()
    create = decl.create and (attrs.get("create") or "").strip().lower() in _TRUE
    update = decl.update and (attrs.get("update") or "").strip().lower() in _TRUE
    if not (create or update):
        return None

    def problem(vi: str, en: str) -> EntityProblem:
        return EntityProblem(index, dataset, f"{vi} / {en}")

    raw_id = (attrs.get("id") or "").strip()
    uuid = normal_uuid(raw_id)
    if uuid is None:
        return problem(f"Mã thực thể không hợp lệ '{raw_id}'", f"invalid entity id '{raw_id}' (a v4 UUID)")
    label_el = next((c for c in entity if _local(c.tag) == "label"), None)
    label = (label_el.text or "").strip() if label_el is not None else ""
    numbers: dict[str, int | None] = {}
    for name in ("baseVersion", "trunkVersion"):
        value = _int(attrs.get(name))
        if isinstance(value, str):
            return problem(f"{name} không phải số: '{value}'", f"{name} is not a number: '{value}'")
        numbers[name] = value
    branch_raw = (attrs.get("branchId") or "").strip()
    branch = normal_uuid(branch_raw) if branch_raw else None
    if branch_raw and branch is None:
        return problem(f"branchId không hợp lệ '{branch_raw}'", f"invalid branchId '{branch_raw}'")
    if numbers["trunkVersion"] is not None and branch is None:
        return problem("Có trunkVersion mà thiếu branchId", "trunkVersion without branchId")
    if update and not create and numbers["baseVersion"] is None:
        return problem("Cập nhật thiếu baseVersion", "an update needs baseVersion")
    if create and not update and not label:
        return problem("Tạo thực thể cần nhãn (label)", "creating an entity needs a label")
    if label.startswith(SEALED_LABEL):
        return problem("Nhãn không hợp lệ", "invalid label")
    data: dict[str, Value] = {}
    prefix = f"{container}/" if container else ""
    for path, prop in decl.properties.items():
        el = _find(holder, path[len(prefix):])
        if el is not None:
            data[prop] = el.text or ""
    return EntityBlock(dataset=dataset, uuid=uuid, create=create, update=update, label=label or None,
                       data=data, base_version=numbers["baseVersion"], trunk_version=numbers["trunkVersion"],
                       branch_id=branch, index=index)


# --- what the store keeps ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EntityList:
    """An entity list (Central's dataset): created on publish by the forms that declare it."""

    name: str
    approval_required: bool
    forms: tuple[str, ...]  # ids of the forms declaring it, in the order they were published
    properties: tuple[str, ...]  # every property any form saves, in first-declared order
    identifying: frozenset[str]  # properties kept sealed at rest
    created_at: datetime


@dataclass(frozen=True)
class Entity:
    """An entity as it stands: ``properties`` as stored (identifying values sealed), ``version`` the
    current one (1 after the create), ``conflict`` None, "soft" or "hard" (entities.md §3.4), ``unit_code``
    the unit of the submission that created it (the scope it is served to)."""

    uuid: str
    list_name: str
    label: str
    properties: Mapping[str, Value]
    version: int
    unit_code: str | None
    deleted: bool
    conflict: str | None
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    forced: bool = False  # created by force-processing the backlog from an update (its create was missing)


@dataclass(frozen=True)
class EntityVersion:
    """One version of an entity: who made it from which submission, on which base, and what it changed
    (``data``: the properties the source sent, sealed as stored; ``label`` the label after it)."""

    uuid: str
    version: int
    base_version: int | None
    trunk_version: int | None
    branch_id: str | None
    branch_base_version: int | None
    instance_id: str | None
    actor: str
    at: datetime
    label: str
    data: Mapping[str, Value]
    conflict: str | None  # the conflict this version caused, if any
    conflicting: tuple[str, ...]  # properties (and "label") changed both here and on the server
    source_action: str  # "create", "update", or "create-as-update" (a create applied on a forced entity)


@dataclass(frozen=True)
class HeldEntity:
    """An entity block waiting: for the offline update it follows (``reason`` "branch", entities.md §3.5)
    or for its submission's approval (``reason`` "approval", §3.7)."""

    seq: int
    reason: str
    instance_id: str
    list_name: str
    uuid: str
    branch_id: str | None
    branch_base_version: int | None
    block: EntityBlock
    unit_code: str | None
    actor: str
    held_at: datetime
    scope: tuple[str, ...] | None = None  # the sender's units, checked when the block is applied


@dataclass(frozen=True)
class EntityWork:
    """The entity blocks a submission carries, applied in the transaction that stores it
    (``SubmissionStore.save_submission``): ``actor`` the submitter's name, ``problems`` blocks that could
    not be read (recorded as ``entity.error`` audit lines in that transaction)."""

    blocks: tuple[EntityBlock, ...] = ()
    problems: tuple[EntityProblem, ...] = ()
    actor: str = ""
    scope: tuple[str, ...] | None = None  # the sender's units (None: no limit); updates stay inside them

    def __bool__(self) -> bool:
        return bool(self.blocks or self.problems)


# --- where an entity lives ---------------------------------------------------------------------------


def moved_to(unit_code: str | None, data: Mapping[str, Value]) -> str | None:
    """The commune an update with ``data`` moves an entity filed under ``unit_code`` to: the ``commune``
    it sets, when that is not the commune the entity lies in (None: it stays; a blank or sealed value
    never moves it)."""
    target = data.get(MOVES_WITH)
    if not isinstance(target, str) or not target.strip():
        return None
    target = target.strip()
    here = unit_code.split("-", 1)[0] if unit_code else None  # "05563-07" lies in commune "05563"
    return None if target == here else target


def receiving_refusal(code: str) -> Problem | None:
    """Why an entity may not move to ``code`` (None: it may): only a commune (xã, phường, đặc khu) of
    Vietnam's unit registry receives one. The caller raises it in its own terms (ingest refuses the
    submission, the rules fail the block)."""

    unit = get_units().get(code)
    return None if unit is not None and unit.level == "commune" else Problem("entity.unit_unknown", unit=code)
