"""How entity blocks change entity lists, decided once for every engine (as ``core.storage.rules`` decides
submissions): ODK Central's processing (shared/reference/entities.md §3) over the few primitives of
``EntityTx``, always inside the transaction that stores the submission the blocks came from.

- **Create vs update** (§3.3): an ``update`` block updates; if the entity does not exist and the block
  may also ``create`` (an "upsert" form), it creates. A ``create`` block creates version 1, filed under
  the submission's unit (the unit it is served to). An id already taken is refused, unless that entity
  was itself made by force-processing (then the create is applied as an update, "create-as-update").
  A soft-deleted entity takes neither.
- **Conflicts** (§3.4): an update based on an older version than the current is still applied (data
  overlaid on the current, label kept when blank); the properties (and label) changed on the server
  since the base that the update also sets to another value make the conflict ``hard``, else
  ``soft``; a hard conflict is never downgraded. An offline branch interrupted by another update is
  ``soft`` even when its versions line up. Sealed (identifying) values are compared as stored: two
  seals of one value differ, so such a property counts as conflicting whenever both sides changed it.
- **Offline branches and the backlog** (§3.5): an update with a ``branchId`` is based on version 1
  (``baseVersion`` 1), on the server version it started from (``baseVersion == trunkVersion``), or on the
  previous update of the same branch (the version whose ``branch_base_version`` is ``baseVersion - 1``).
  When that base is not here yet the block is **held** in the backlog; after every create or update the
  next held block of that branch (or, after a create, the held updates of that entity with base 1) is
  applied in the same transaction. A ``trunkVersion`` above the current version is refused.
  ``force_backlog`` applies what has waited longer than Central's 5 days, in (branch, base) order: an
  update whose base never came is applied on the latest version (a soft conflict at least), an update
  of an entity that never came creates it (label "auto generated" when blank, ``forced``).
- **Approval** (§3.7): in a list with ``approval_required`` a create waits (held, reason
  ``approval``) until its submission's review state becomes ``approved``; updates apply on receipt.
- **Scope**: an update or create-as-update must touch an entity of the sender's units (``Source.scope``).
- **Moves** (``core.entities.moved_to``): an update that sets ``commune`` to another commune files the
  entity under that commune (its ``unit_code``: the phones it is served to), in the same version, with an
  ``entity.move`` audit line. The sender needs the entity in their units, not the receiving commune (a
  transfer hands the person to another commune's police); a commune the registry does not know fails the
  block (ingest refuses such a submission before this, ``core.ingest.entity_work``).
- **All or nothing** per submission: if any block of a submission fails, none of its entity changes is
  kept, and one ``entity.error`` audit line says why (the submission itself is stored, as in Central:
  refusing it would leave the form stuck on a phone).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from rasoat.core import entities as en
from rasoat.core.problems import Problem
from rasoat.core.rounds import in_scope

AUTO_LABEL = "auto generated"


class EntityFailure(Problem, ValueError):
    """One block cannot be applied; its message ("Việt / English") goes to the audit line (a submission)
    or the Problem back to the caller (``write``)."""


class _NotFound(EntityFailure):
    pass


class IdTaken(EntityFailure):
    def __init__(self, uuid: str) -> None:
        super().__init__("entity.id_taken", uuid=uuid)


class StaleVersion(EntityFailure):
    """``write`` with ``exact_base``: the update names a version that is no longer the current one."""

    def __init__(self, uuid: str, base: int | None, current: int) -> None:
        super().__init__("entity.version_conflict", uuid=uuid, base=base, current=current,
                         details={"baseVersion": base, "currentVersion": current})
        self.base, self.current = base, current


@dataclass(frozen=True)
class Source:
    """Where blocks come from: the submission (None for the API), who sent it, the unit it is filed
    under, when, whether it is approved, and the sender's units (None: no limit)."""

    instance_id: str | None
    actor: str
    unit_code: str | None
    at: datetime
    approved: bool = False
    scope: tuple[str, ...] | None = None


class EntityTx(Protocol):
    """One engine transaction, as the rules see it; rows read stay locked until it ends."""

    def entity_list(self, name: str) -> en.EntityList | None: ...

    def entity(self, uuid: str) -> en.Entity | None:
        """The entity, locked for this transaction."""

    def version(self, uuid: str, version: int) -> en.EntityVersion | None: ...

    def versions_after(self, uuid: str, version: int) -> list[en.EntityVersion]:
        """Versions above ``version``, in order."""

    def branch_version(self, uuid: str, branch_id: str,
                       branch_base_version: int) -> en.EntityVersion | None: ...

    def write(self, entity: en.Entity, version: en.EntityVersion, created: bool) -> None:
        """Insert (``created``) or update the entity row and add its version."""

    def hold(self, reason: str, block: en.EntityBlock, source: Source) -> None: ...

    def take_held(self, *, reason: str, uuid: str | None = None, branch_id: str | None = None,
                  branch_base_version: int | None = None,
                  instance_id: str | None = None) -> list[en.HeldEntity]:
        """Remove and return matching held blocks, oldest first."""

    def error(self, source: Source, message: str, details: Mapping[str, object]) -> None:
        """Record an ``entity.error`` audit line in this transaction."""

    def audit(self, source: Source, action: str, target: str, details: Mapping[str, object]) -> None:
        """Record an audit line in this transaction."""

    def savepoint(self) -> AbstractContextManager[None]:
        """Undo every write made inside it when it exits with an exception."""


def apply(tx: EntityTx, work: en.EntityWork, source: Source) -> None:
    """Apply a submission's entity blocks (all or none), then whatever they release from the backlog."""
    if not work:
        return
    if work.problems:
        p = work.problems[0]
        tx.error(source, p.message, {"index": p.index, "dataset": p.dataset})
        return
    try:
        with tx.savepoint():
            for block in work.blocks:
                _apply(tx, block, source, force=False)
    except EntityFailure as exc:
        tx.error(source, str(exc), {"blocks": [b.uuid for b in work.blocks]})


def write(tx: EntityTx, blocks: Sequence[en.EntityBlock], source: Source, *, exact_base: bool) -> None:
    """Blocks from outside a submission (the Central API, an officer's page), all or none, by the same
    rules as a submission's. An update without ``base_version`` is based on the current version (Central's
    ``force``); with ``exact_base`` one based on an older version is refused (``StaleVersion``: the API
    caller read a stale copy, unlike a phone whose offline edit is kept as a conflict). Raises the first
    ``EntityFailure``."""
    with tx.savepoint():
        for block in blocks:
            current = tx.entity(block.uuid) if block.update else None
            if current is not None and block.base_version is None:
                block = replace(block, base_version=current.version)
            elif current is not None and exact_base and block.base_version != current.version:
                raise StaleVersion(block.uuid, block.base_version, current.version)
            _apply(tx, block, source, force=False)


def approve(tx: EntityTx, instance_id: str, source: Source) -> None:
    """The submission was approved: create the entities its blocks held for approval."""
    for held in tx.take_held(reason="approval", instance_id=instance_id):
        _apply_held(tx, held, source.at, approved=True)


def force(tx: EntityTx, held: en.HeldEntity, at: datetime) -> None:
    """Apply one block that waited too long in the backlog (taken out by the caller)."""
    _apply_held(tx, held, at, force=True, forced=True)


def _apply_held(tx: EntityTx, held: en.HeldEntity, at: datetime, *, approved: bool = False,
                force: bool = False, **details: object) -> None:
    """Apply a block taken out of the backlog on its own: its failure undoes only its changes and says why
    in an ``entity.error`` line (its uuid and ``details``)."""
    src = Source(held.instance_id, held.actor, held.unit_code, at, approved, held.scope)
    try:
        with tx.savepoint():
            _apply(tx, held.block, src, force=force)
    except EntityFailure as exc:
        tx.error(src, str(exc), {"uuid": held.uuid, **details})


def _in_scope(source: Source, unit: str | None) -> bool:
    if source.scope is None:
        return True
    if unit is None:
        return False

    return in_scope(unit, source.scope)


def _apply(tx: EntityTx, block: en.EntityBlock, source: Source, *, force: bool) -> None:
    lst = tx.entity_list(block.dataset)
    if lst is None:
        raise EntityFailure("entity.no_list", list=block.dataset)
    if block.update:
        try:
            _update(tx, lst, block, source, force=force)
            return
        except _NotFound:
            if not (block.create or force):
                raise
    if lst.approval_required and not source.approved and not force:
        tx.hold("approval", block, source)
        return
    _create(tx, lst, block, source, force=force)


def _release(tx: EntityTx, *, uuid: str, branch_id: str | None, next_base: int | None, at: datetime) -> None:
    """Apply the held blocks the change just made possible (in this transaction)."""
    todo = []
    if next_base is None:  # after a create: updates of this entity based on version 1
        todo = tx.take_held(reason="branch", uuid=uuid, branch_base_version=1)
    elif branch_id:
        todo = [h for h in tx.take_held(reason="branch", branch_id=branch_id, branch_base_version=next_base)
                if h.uuid == uuid]
    for held in todo:
        _apply_held(tx, held, at, reprocessed=True)


def _version(block: en.EntityBlock, source: Source, number: int, label: str, base: int | None,
             conflict: str | None = None, conflicting: tuple[str, ...] = (),
             action: str = "update") -> en.EntityVersion:
    return en.EntityVersion(
        uuid=block.uuid, version=number, base_version=base, trunk_version=block.trunk_version,
        branch_id=block.branch_id, branch_base_version=block.base_version, instance_id=source.instance_id,
        actor=source.actor, at=source.at, label=label, data=dict(block.data), conflict=conflict,
        conflicting=conflicting, source_action=action)


def _create(tx: EntityTx, lst: en.EntityList, block: en.EntityBlock, source: Source, *, force: bool) -> None:
    existing = tx.entity(block.uuid)
    if existing is not None:
        if existing.deleted:
            raise EntityFailure("entity.deleted", uuid=block.uuid)
        if existing.forced and not force:
            _update(tx, lst, block, source, force=False, as_create=True)
            return
        raise IdTaken(block.uuid)
    label = block.label or (AUTO_LABEL if force else "")
    if not label:
        raise EntityFailure("entity.create_no_label")
    forced = force and not block.create
    data = dict(block.data)
    entity = en.Entity(uuid=block.uuid, list_name=lst.name, label=label, properties=data, version=1,
                       unit_code=source.unit_code, deleted=False, conflict=None, created_at=source.at,
                       created_by=source.actor, updated_at=source.at, updated_by=source.actor, forced=forced)
    tx.write(entity, _version(block, source, 1, label, None, action="create"), created=True)
    _release(tx, uuid=block.uuid, branch_id=None, next_base=None, at=source.at)


def _changed_since(tx: EntityTx, uuid: str, base: en.EntityVersion | None) -> set[str]:
    """Properties (and "label") the server changed after ``base`` (every version when None)."""
    changed: set[str] = set()
    label = base.label if base is not None else None
    for v in tx.versions_after(uuid, base.version if base is not None else 0):
        changed.update(v.data)
        if label is not None and v.label != label:
            changed.add("label")
        label = v.label
    return changed


def _update(tx: EntityTx, lst: en.EntityList, block: en.EntityBlock, source: Source, *, force: bool,
            as_create: bool = False) -> None:
    current = tx.entity(block.uuid)
    base: en.EntityVersion | None
    if as_create:
        base = None
    elif block.branch_id and block.base_version is not None:
        if current is not None and block.trunk_version is not None and block.trunk_version > current.version:
            raise EntityFailure("entity.trunk_unknown", trunk=block.trunk_version)
        bv = block.base_version
        if bv == 1 or bv == block.trunk_version:
            base = tx.version(block.uuid, bv)
        else:
            base = tx.branch_version(block.uuid, block.branch_id, bv - 1)
        if base is None and not force:
            tx.hold("branch", block, source)
            return
    else:
        if current is None:
            raise _NotFound("entity.missing", uuid=block.uuid)
        if block.base_version is None:
            raise _NotFound("entity.no_base_version")
        base = tx.version(block.uuid, block.base_version)
        if base is None:
            raise EntityFailure("entity.base_unknown", uuid=block.uuid, version=block.base_version)
    if current is None:
        raise _NotFound("entity.missing", uuid=block.uuid)
    if current.deleted:
        raise EntityFailure("entity.deleted", uuid=block.uuid)
    if current.list_name != lst.name:
        raise EntityFailure("entity.other_list", uuid=block.uuid, list=current.list_name)
    if not _in_scope(source, current.unit_code):
        raise EntityFailure("entity.outside_units", uuid=block.uuid)
    data = dict(block.data)
    received: dict[str, en.Value] = dict(data)
    if block.label:
        received["label"] = block.label
    now: dict[str, en.Value] = {**current.properties, "label": current.label}
    conflict, this_conflict = current.conflict, None
    conflicting: tuple[str, ...] = ()
    if base is None and force:  # its predecessor never came: applied on the latest, flagged to be checked
        this_conflict = "soft"
    elif base is None or base.version != current.version:
        changed = _changed_since(tx, block.uuid, base)
        conflicting = tuple(sorted(k for k, v in received.items() if k in changed and now.get(k) != v))
        this_conflict = "hard" if conflicting else "soft"
    elif block.branch_id and block.trunk_version is not None and any(
            v.branch_id != block.branch_id for v in tx.versions_after(block.uuid, block.trunk_version)):
        this_conflict = "soft"  # an offline branch interrupted by another update
    if this_conflict is not None:
        conflict = "hard" if "hard" in (conflict, this_conflict) else "soft"
    label = block.label or current.label
    number = current.version + 1
    target = en.moved_to(current.unit_code, data)
    refused = en.receiving_refusal(target) if target is not None else None
    if refused is not None:
        raise EntityFailure(refused.code, **refused.params)
    entity = replace(current, label=label, properties={**current.properties, **data}, version=number,
                     conflict=conflict, updated_at=source.at, updated_by=source.actor,
                     unit_code=target or current.unit_code)
    action = "create-as-update" if as_create else "update"
    tx.write(entity, _version(block, source, number, label, base.version if base else None, this_conflict,
                              conflicting, action), created=False)
    if target is not None:
        tx.audit(source, "entity.move", block.uuid, {"list": lst.name, "version": number,
                                                     "from": current.unit_code, "to": target,
                                                     "instance_id": source.instance_id})
    if block.branch_id and block.base_version is not None:
        _release(tx, uuid=block.uuid, branch_id=block.branch_id, next_base=block.base_version + 1,
                 at=source.at)


def iter_due(held: list[en.HeldEntity]) -> Iterator[en.HeldEntity]:
    """Held blocks in the order force-processing applies them: by branch, then base version."""
    yield from sorted(held, key=lambda h: (h.branch_id or "", h.branch_base_version or 0, h.seq))
