"""The entity statements of ``SqlStore`` (both engines), kept beside ``sql`` so that file stays readable:
``EntitySql`` is mixed into ``SqlStore``; ``SqlEntityTx`` is ``core.storage.entity_rules``' view of one
transaction. Tables: ``entity_lists``, ``entities``, ``entity_versions``, ``entity_backlog`` (migration
0003). ``entities.rev`` takes a store-wide increasing number at every change (PostgreSQL: a sequence;
SQLite: max + 1 under its single writer), so count, max and sum of ``rev`` over a collector's units tell
whether that collector's list changed without reading it (``entity_list_state``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rasoat.core import audit_actions
from rasoat.core import entities as en
from rasoat.core.models import AuditEvent, ReviewState, Submission, utcnow
from rasoat.core.protection import identifying_fields
from rasoat.core.storage import entity_rules
from rasoat.core.storage.base import ENTITY_ORDER, EntityQuery
from rasoat.core.storage.entity_rules import IdTaken, Source

if TYPE_CHECKING:
    from rasoat.core.storage.sql import Cx, Dialect

ENT_COLS = ("uuid", "list_name", "label", "properties", "version", "unit_code", "deleted", "conflict",
            "created_at", "created_by", "updated_at", "updated_by", "forced")
ENT_SQL = ", ".join(ENT_COLS)
VER_COLS = ("uuid", "version", "base_version", "trunk_version", "branch_id", "branch_base_version",
            "instance_id", "actor", "at", "label", "data", "conflict", "conflicting", "source_action")
VER_SQL = ", ".join(VER_COLS)
HELD_COLS = ("seq, reason, instance_id, list_name, uuid, branch_id, branch_base_version, block, unit_code,"
             " actor, held_at")
LIST_COLS = "name, approval_required, forms, properties, identifying, created_at"


def _seals(values: Mapping[str, Any], label: str) -> Iterator[bytes]:
    import base64

    for value in values.values():
        if isinstance(value, dict) and en.SEALED in value:
            yield base64.b64decode(value[en.SEALED])
    if label.startswith(en.SEALED_LABEL):
        yield base64.b64decode(label[len(en.SEALED_LABEL):])


def _rewrapped(values: Mapping[str, Any], label: str, rewrap: Callable[[bytes], bytes]
               ) -> tuple[dict[str, Any], str]:
    import base64

    def again(token: str) -> str:
        return base64.b64encode(rewrap(base64.b64decode(token))).decode()

    out = {k: ({en.SEALED: again(v[en.SEALED])} if isinstance(v, dict) and en.SEALED in v else v)
           for k, v in values.items()}
    if label.startswith(en.SEALED_LABEL):
        label = en.SEALED_LABEL + again(label[len(en.SEALED_LABEL):])
    return out, label


def commune_of(unit: str | None) -> str | None:
    """The commune a unit code lies in by its shape ("05563-07" → "05563"; a commune is its own)."""
    return unit.split("-", 1)[0] if unit else None


class _Codec:
    """Rows to the types of ``core.entities`` and back, for one dialect."""

    def __init__(self, d: Dialect) -> None:
        self.d = d

    def entity(self, row: Sequence[Any]) -> en.Entity:
        d = self.d
        (uuid, list_name, label, props, version, unit, deleted, conflict, created_at, created_by,
         updated_at, updated_by, forced) = row
        return en.Entity(uuid=uuid, list_name=list_name, label=label, properties=d.load(props),
                         version=int(version), unit_code=unit, deleted=bool(deleted), conflict=conflict,
                         created_at=d.time_load(created_at), created_by=created_by,
                         updated_at=d.time_load(updated_at), updated_by=updated_by, forced=bool(forced))

    def version(self, row: Sequence[Any]) -> en.EntityVersion:
        d = self.d
        (uuid, version, base, trunk, branch, bbv, iid, actor, at, label, data, conflict, conflicting,
         action) = row
        return en.EntityVersion(uuid=uuid, version=int(version), base_version=base, trunk_version=trunk,
                                branch_id=branch, branch_base_version=bbv, instance_id=iid, actor=actor,
                                at=d.time_load(at), label=label, data=d.load(data), conflict=conflict,
                                conflicting=tuple(d.load(conflicting)), source_action=action)

    def held(self, row: Sequence[Any]) -> en.HeldEntity:
        d = self.d
        seq, reason, iid, list_name, uuid, branch, bbv, block, unit, actor, held_at = row
        doc = d.load(block)
        scope = doc.get("scope")
        return en.HeldEntity(seq=int(seq), reason=reason, instance_id=iid, list_name=list_name, uuid=uuid,
                             branch_id=branch, branch_base_version=bbv,
                             block=en.EntityBlock.from_json(doc["block"]),
                             unit_code=unit, actor=actor, held_at=d.time_load(held_at),
                             scope=tuple(scope) if scope is not None else None)

    def entity_list(self, row: Sequence[Any]) -> en.EntityList:
        d = self.d
        name, approval, forms, props, identifying, created_at = row
        return en.EntityList(name=name, approval_required=bool(approval), forms=tuple(d.load(forms)),
                             properties=tuple(d.load(props)), identifying=frozenset(d.load(identifying)),
                             created_at=d.time_load(created_at))


class SqlEntityTx:
    """``entity_rules.EntityTx`` over one transaction of a ``SqlStore``."""

    def __init__(self, store: EntitySql, cx: Cx, lock_ids: bool = True) -> None:
        self.store = store
        self.cx = cx
        self.lock_ids = lock_ids
        self.c = _Codec(store.dialect)
        self._lists: dict[str, en.EntityList | None] = {}
        self._points = 0
        self._locked: set[str] = set()

    def _one(self, stmt: str, params: Sequence[Any]) -> Any:
        return self.cx.execute(self.store._q(stmt), params).fetchone()

    def entity_list(self, name: str) -> en.EntityList | None:
        if name not in self._lists:
            row = self._one(f"SELECT {LIST_COLS} FROM entity_lists WHERE name = ?", (name,))
            self._lists[name] = self.c.entity_list(row) if row else None
        return self._lists[name]

    def entity(self, uuid: str) -> en.Entity | None:
        if self.lock_ids and self.store.dialect.entity_lock and uuid not in self._locked:
            self.cx.execute(self.store._q(self.store.dialect.entity_lock), (uuid,))
            self._locked.add(uuid)
        lock = self.store.dialect.for_update
        row = self._one(f"SELECT {ENT_SQL} FROM entities WHERE uuid = ?{lock}", (uuid,))
        return self.c.entity(row) if row else None

    def version(self, uuid: str, version: int) -> en.EntityVersion | None:
        row = self._one(f"SELECT {VER_SQL} FROM entity_versions WHERE uuid = ? AND version = ?",
                        (uuid, version))
        return self.c.version(row) if row else None

    def versions_after(self, uuid: str, version: int) -> list[en.EntityVersion]:
        rows = self.cx.execute(self.store._q(
            f"SELECT {VER_SQL} FROM entity_versions WHERE uuid = ? AND version > ? ORDER BY version"),
            (uuid, version)).fetchall()
        return [self.c.version(r) for r in rows]

    def branch_version(self, uuid: str, branch_id: str, branch_base_version: int) -> en.EntityVersion | None:
        row = self._one(f"SELECT {VER_SQL} FROM entity_versions WHERE uuid = ? AND branch_id = ?"
                        " AND branch_base_version = ? ORDER BY version DESC LIMIT 1",
                        (uuid, branch_id, branch_base_version))
        return self.c.version(row) if row else None

    def write(self, entity: en.Entity, version: en.EntityVersion, created: bool) -> None:
        s, d = self.store, self.store.dialect
        if created:
            cur = self.cx.execute(s._q(
                "INSERT INTO entities (uuid, list_name, label, properties, version, unit_code, commune_code,"
                " deleted, conflict, forced, rev, created_at, created_by, updated_at, updated_by)"
                f" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {s._rev_sql}, ?, ?, ?, ?)"
                " ON CONFLICT (uuid) DO NOTHING"),
                (entity.uuid, entity.list_name, entity.label, d.jsonb(dict(entity.properties)),
                 entity.version,
                 entity.unit_code, commune_of(entity.unit_code), d.flag(entity.deleted), entity.conflict,
                 d.flag(entity.forced), d.time(entity.created_at), entity.created_by,
                 d.time(entity.updated_at), entity.updated_by))
            if cur.rowcount != 1:  # made meanwhile by a writer that took no id lock (write_entities)
                raise IdTaken(entity.uuid)
        else:
            self.cx.execute(s._q(
                "UPDATE entities SET label = ?, properties = ?, version = ?, conflict = ?, unit_code = ?,"
                f" commune_code = ?, rev = {s._rev_sql},"
                " updated_at = ?, updated_by = ? WHERE uuid = ?"),
                (entity.label, d.jsonb(dict(entity.properties)), entity.version, entity.conflict,
                 entity.unit_code, commune_of(entity.unit_code), d.time(entity.updated_at), entity.updated_by,
                 entity.uuid))
        v = version
        self.cx.execute(s._q(
            f"INSERT INTO entity_versions ({VER_SQL}) VALUES ({', '.join(['?'] * len(VER_COLS))})"),
            (v.uuid, v.version, v.base_version, v.trunk_version, v.branch_id, v.branch_base_version,
             v.instance_id, v.actor, d.time(v.at), v.label, d.jsonb(dict(v.data)), v.conflict,
             d.jsonb(list(v.conflicting)), v.source_action))

    def hold(self, reason: str, block: en.EntityBlock, source: Source) -> None:
        d = self.store.dialect
        doc = {"block": block.to_json(), "scope": list(source.scope) if source.scope is not None else None}
        self.cx.execute(self.store._q(
            f"INSERT INTO entity_backlog ({HELD_COLS.removeprefix('seq, ')})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
            (reason, source.instance_id or "", block.dataset, block.uuid, block.branch_id, block.base_version,
             d.jsonb(doc), source.unit_code, source.actor, d.time(source.at)))

    def take_held(self, *, reason: str, uuid: str | None = None, branch_id: str | None = None,
                  branch_base_version: int | None = None,
                  instance_id: str | None = None) -> list[en.HeldEntity]:
        clauses: list[str] = ["reason = ?"]
        params: list[Any] = [reason]
        for column, value in (("uuid", uuid), ("branch_id", branch_id),
                              ("branch_base_version", branch_base_version), ("instance_id", instance_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = " AND ".join(clauses)
        rows = self.cx.execute(self.store._q(
            f"SELECT {HELD_COLS} FROM entity_backlog WHERE {where} ORDER BY seq"), params).fetchall()
        held = [self.c.held(r) for r in rows]
        for h in held:
            self.cx.execute(self.store._q("DELETE FROM entity_backlog WHERE seq = ?"), (h.seq,))
        return held

    def error(self, source: Source, message: str, details: Mapping[str, object]) -> None:
        self.audit(source, "entity.error", source.instance_id or "", {"message": message, **details})

    def audit(self, source: Source, action: str, target: str, details: Mapping[str, object]) -> None:
        audit_actions.check(action)
        d = self.store.dialect
        self.cx.execute(self.store._q(
            "INSERT INTO audit (at, actor, action, target, details) VALUES (?, ?, ?, ?, ?)"),
            (d.time(utcnow()), source.actor or "entities", action, target, d.jsonb(dict(details))))

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        self._points += 1
        name = f"entity_{self._points}"
        self.cx.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self.cx.execute(f"ROLLBACK TO SAVEPOINT {name}")
            self.cx.execute(f"RELEASE SAVEPOINT {name}")
            raise
        self.cx.execute(f"RELEASE SAVEPOINT {name}")

    # --- what the submission rules call -------------------------------------------------------
    def apply_submission(self, sub: Submission, work: en.EntityWork) -> None:
        """A new submission's (or an edit's) blocks; an edit whose earlier version already changed an
        entity changes nothing more (Central: one entity change per submission)."""
        if sub.deprecated_id and self._one(
                "SELECT 1 FROM entity_versions WHERE instance_id = ? LIMIT 1", (sub.deprecated_id,)):
            return
        source = Source(sub.instance_id, work.actor, sub.unit_code, sub.received_at,
                        ReviewState(sub.review_state) is ReviewState.approved, work.scope)
        entity_rules.apply(self, work, source)


class EntitySql:
    """The entity half of ``SqlStore`` (see the module notes)."""

    dialect: Dialect

    if TYPE_CHECKING:
        def _q(self, stmt: str) -> str: ...
        def _cx(self) -> AbstractContextManager[Cx]: ...
        def _tx(self) -> AbstractContextManager[Cx]: ...
        def _read_cx(self) -> AbstractContextManager[Cx]: ...
        def _stream(self, stmt: str, params: Sequence[Any]) -> Iterator[tuple]: ...
        def _audit_row(self, cx: Cx, event: AuditEvent) -> None: ...

    @property
    def _rev_sql(self) -> str:
        return self.dialect.entity_rev

    @property
    def _codec(self) -> _Codec:
        return _Codec(self.dialect)

    # --- lists ------------------------------------------------------------------------------------
    def _declare_lists(self, cx: Cx, form_id: str, xml: bytes, schema: dict[str, Any]) -> None:
        """The lists a stored form declares: created, or given the form and its new properties."""

        if en.ENTITIES_NS.encode() not in xml:  # no entities: nothing to parse
            return
        try:
            declarations = en.declared_lists(xml, identifying_fields(schema))
        except ValueError as exc:
            raise ValueError(f"Biểu mẫu {form_id}: {exc}") from None
        d = self.dialect
        for decl in declarations:
            row = cx.execute(self._q(f"SELECT {LIST_COLS} FROM entity_lists WHERE name = ?" + d.for_update),
                             (decl.dataset,)).fetchone()
            props = list(decl.properties.values())
            if row is None:
                cx.execute(self._q(f"INSERT INTO entity_lists ({LIST_COLS}) VALUES (?, ?, ?, ?, ?, ?)"),
                           (decl.dataset, d.flag(False), d.jsonb([form_id]), d.jsonb(props),
                            d.jsonb(sorted(decl.identifying)), d.time(utcnow())))
                continue
            old = self._codec.entity_list(row)
            forms = [*old.forms, *([form_id] if form_id not in old.forms else [])]
            known = {p.casefold() for p in old.properties}
            merged = [*old.properties, *(p for p in props if p.casefold() not in known)]
            identifying = sorted(old.identifying | decl.identifying)
            cx.execute(self._q(
                "UPDATE entity_lists SET forms = ?, properties = ?, identifying = ? WHERE name = ?"),
                       (d.jsonb(forms), d.jsonb(merged), d.jsonb(identifying), decl.dataset))

    def get_entity_list(self, name: str) -> en.EntityList | None:
        with self._cx() as cx:
            row = cx.execute(self._q(f"SELECT {LIST_COLS} FROM entity_lists WHERE name = ?"),
                             (name,)).fetchone()
        return self._codec.entity_list(row) if row else None

    def list_entity_lists(self) -> list[en.EntityList]:
        with self._cx() as cx:
            rows = cx.execute(f"SELECT {LIST_COLS} FROM entity_lists ORDER BY name").fetchall()
        return [self._codec.entity_list(r) for r in rows]

    def set_entity_list(self, name: str, *, approval_required: bool) -> en.EntityList:
        with self._tx() as cx:
            cur = cx.execute(self._q("UPDATE entity_lists SET approval_required = ? WHERE name = ?"),
                             (self.dialect.flag(approval_required), name))
            if cur.rowcount != 1:
                raise KeyError(f"Không có danh sách thực thể / No entity list {name!r}")
        found = self.get_entity_list(name)
        assert found is not None
        return found

    # --- entities -----------------------------------------------------------------------------------
    def get_entity(self, uuid: str) -> en.Entity | None:
        with self._cx() as cx:
            row = cx.execute(self._q(f"SELECT {ENT_SQL} FROM entities WHERE uuid = ?"), (uuid,)).fetchone()
        return self._codec.entity(row) if row else None

    def _ent_where(self, q: EntityQuery) -> tuple[str, str, list[Any]]:
        """(``WITH …`` or "", `` FROM … WHERE …``, parameters) of the entities ``q`` selects. A unit scope
        matches an entity by its commune or by its own unit, as two disjoint index lookups (one OR over
        both columns made SQLite read the whole table: 1.8 s for a commune's hash among 100,000)."""
        d = self.dialect
        prefix, source, params = "", "entities", []
        if q.unit_codes is not None:
            codes = d.list_param(list(q.unit_codes))
            cols = ", ".join(ENT_COLS) + ", rev"
            by_commune, by_unit = d.in_list("commune_code"), d.in_list("unit_code")
            # materialized: else SQLite walks the (list, uuid) index of the whole list for the ORDER BY
            prefix = (f"WITH scoped AS MATERIALIZED (SELECT {cols} FROM entities WHERE list_name = ? AND"
                      f" {by_commune} UNION ALL SELECT {cols} FROM entities WHERE list_name = ? AND {by_unit}"
                      f" AND NOT ({by_commune})) ")
            source = "scoped"
            params = [q.list_name, codes, q.list_name, codes, codes]
        clauses = ["list_name = ?"]
        params.append(q.list_name)
        if not q.include_deleted:
            clauses.append("deleted = ?")
            params.append(d.flag(False))
        if q.conflict_only:
            clauses.append("conflict IS NOT NULL")
        return prefix, f" FROM {source} WHERE " + " AND ".join(clauses), params

    def page_entities(self, query: EntityQuery, *, limit: int, after: str | None = None) -> list[en.Entity]:
        if limit <= 0:
            return []
        d = self.dialect
        prefix, where, params = self._ent_where(query)
        if after is not None:
            where += f" AND uuid{d.binary} > ?{d.binary_param}"
            params.append(after)
        with self._read_cx() as cx:
            rows = cx.execute(self._q(
                f"{prefix}SELECT {ENT_SQL} {where} ORDER BY uuid{d.binary} LIMIT ?"),
                [*params, limit]).fetchall()
        return [self._codec.entity(r) for r in rows]

    def iter_entities(self, query: EntityQuery) -> Iterator[en.Entity]:
        prefix, where, params = self._ent_where(query)
        codec = self._codec
        keys = [*((c, desc) for c, desc in query.order_by if c in ENTITY_ORDER), ("uuid", False)]
        order = ", ".join(f"{c}{self.dialect.binary if c == 'uuid' else ''}{' DESC' if desc else ''}"
                          for c, desc in keys)
        stmt = self._q(f"{prefix}SELECT {ENT_SQL} {where} ORDER BY {order}")
        for row in self._stream(stmt, params):
            yield codec.entity(row)

    def count_entities(self, query: EntityQuery) -> int:
        prefix, where, params = self._ent_where(query)
        with self._read_cx() as cx:
            return int(cx.execute(self._q(f"{prefix}SELECT count(*) {where}"), params).fetchone()[0])

    def entity_versions(self, uuid: str) -> list[en.EntityVersion]:
        with self._cx() as cx:
            rows = cx.execute(self._q(
                f"SELECT {VER_SQL} FROM entity_versions WHERE uuid = ? ORDER BY version"),
                              (uuid,)).fetchall()
        return [self._codec.version(r) for r in rows]

    def entity_list_state(self, query: EntityQuery) -> str:
        lst = self.get_entity_list(query.list_name)
        prefix, where, params = self._ent_where(query.model_copy(update={"include_deleted": True}))
        with self._cx() as cx:  # the primary: a phone must see its own change at once
            n, top, total = cx.execute(self._q(
                f"{prefix}SELECT count(*), coalesce(max(rev), 0), coalesce(sum(rev), 0) {where}"),
                params).fetchone()
        props = ",".join(lst.properties) if lst is not None else ""
        return f"{query.list_name}|{props}|{n}|{top}|{total}"

    def entity_deleted(
        self, list_name: str, uuids: Sequence[str], unit_codes: list[str] | None
    ) -> dict[str, bool]:
        ids = sorted({u.strip().lower() for u in uuids if u and u.strip()})
        if not ids:
            return {}
        d = self.dialect
        scope = set(unit_codes) if unit_codes is not None else None
        with self._cx() as cx:
            rows = cx.execute(self._q(
                "SELECT uuid, deleted, unit_code, commune_code FROM entities WHERE list_name = ? AND "
                + d.in_list("uuid")), (list_name, d.list_param(ids))).fetchall()
        out = {}
        for uuid, deleted, unit, commune in rows:
            outside = scope is not None and unit not in scope and commune not in scope
            out[uuid] = bool(deleted) or outside
        return out

    def entity_backlog(self, list_name: str | None = None) -> list[en.HeldEntity]:
        where, params = ("", []) if list_name is None else (" WHERE list_name = ?", [list_name])
        with self._cx() as cx:
            rows = cx.execute(self._q(f"SELECT {HELD_COLS} FROM entity_backlog{where} ORDER BY seq"),
                              params).fetchall()
        return [self._codec.held(r) for r in rows]

    @contextmanager
    def entity_transaction(self, lock_ids: bool = True) -> Iterator[SqlEntityTx]:
        with self._tx() as cx:
            yield SqlEntityTx(self, cx, lock_ids)

    def write_entity(
        self, list_name: str, uuid: str, *, label: str | None, data: dict[str, en.Value], actor: str,
        base_version: int | None = None, unit_code: str | None = None,
    ) -> en.Entity:
        block = en.EntityBlock(dataset=list_name, uuid=uuid, create=base_version is None,
                               update=base_version is not None, label=label, data=dict(data),
                               base_version=base_version)
        self.write_entities([block], actor=actor, unit_code=unit_code)
        found = self.get_entity(uuid)
        assert found is not None
        return found

    def write_entities(
        self, blocks: Sequence[en.EntityBlock], *, actor: str, unit_code: str | None = None,
        scope: tuple[str, ...] | None = None, exact_base: bool = False, audit: AuditEvent | None = None,
    ) -> None:
        source = Source(None, actor, unit_code, utcnow(), approved=True, scope=scope)
        # No lock per entity id (PostgreSQL: one advisory lock each, and a transaction may hold only a few
        # thousand; a bulk create of 20,000 failed): an update locks its row, and a create that meets an
        # id made meanwhile inserts nothing and is refused (write's ON CONFLICT)
        with self.entity_transaction(lock_ids=False) as tx:
            entity_rules.write(tx, blocks, source, exact_base=exact_base)
            if audit is not None:
                self._audit_row(tx.cx, audit)

    def _set_entity(self, uuid: str, actor: str, sets: str, params: list[Any],
                    audit: AuditEvent | None = None) -> en.Entity:
        d = self.dialect
        with self._tx() as cx:
            cur = cx.execute(self._q(
                f"UPDATE entities SET {sets}, rev = {self._rev_sql}, updated_at = ?, updated_by = ?"
                " WHERE uuid = ?"),
                [*params, d.time(utcnow()), actor, uuid])
            if cur.rowcount != 1:
                raise KeyError(f"Không có thực thể / No entity {uuid!r}")
            if audit is not None:
                self._audit_row(cx, audit)
        found = self.get_entity(uuid)
        assert found is not None
        return found

    def delete_entity(self, uuid: str, actor: str, deleted: bool = True, audit: AuditEvent | None = None
                      ) -> en.Entity:
        return self._set_entity(uuid, actor, "deleted = ?", [self.dialect.flag(deleted)], audit)

    def resolve_entity_conflict(self, uuid: str, actor: str) -> en.Entity:
        found = self.get_entity(uuid)
        if found is None:
            raise KeyError(f"Không có thực thể / No entity {uuid!r}")
        if found.conflict is None:
            raise ValueError(f"Thực thể {uuid} không có xung đột / entity {uuid} has no conflict")
        return self._set_entity(uuid, actor, "conflict = NULL", [])

    def force_entity_backlog(self, older_than: datetime) -> int:
        d = self.dialect
        done = 0
        with self.entity_transaction() as tx:
            rows = tx.cx.execute(self._q(
                f"SELECT {HELD_COLS} FROM entity_backlog WHERE reason = 'branch' AND held_at < ?"),
                (d.time(older_than),)).fetchall()
            for held in entity_rules.iter_due([self._codec.held(r) for r in rows]):
                if not tx.take_held(reason="branch", instance_id=held.instance_id, uuid=held.uuid):
                    continue  # applied meanwhile, released by an earlier one of this run
                entity_rules.force(tx, held, utcnow())
                done += 1
        return done

    # --- copies between stores (migrate-store) ---------------------------------------------------------
    def import_entity(self, entity: en.Entity, versions: Sequence[en.EntityVersion]) -> bool:
        d, e = self.dialect, entity
        with self._tx() as cx:
            cur = cx.execute(self._q(
                "INSERT INTO entities (uuid, list_name, label, properties, version, unit_code, commune_code,"
                " deleted, conflict, forced, rev, created_at, created_by, updated_at, updated_by)"
                f" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {self._rev_sql}, ?, ?, ?, ?)"
                " ON CONFLICT (uuid) DO NOTHING"),
                (e.uuid, e.list_name, e.label, d.jsonb(dict(e.properties)), e.version, e.unit_code,
                 commune_of(e.unit_code), d.flag(e.deleted), e.conflict, d.flag(e.forced),
                 d.time(e.created_at), e.created_by, d.time(e.updated_at), e.updated_by))
            if cur.rowcount != 1:
                return False
            for v in versions:
                cx.execute(self._q(
                    f"INSERT INTO entity_versions ({VER_SQL}) VALUES ({', '.join(['?'] * len(VER_COLS))})"),
                    (v.uuid, v.version, v.base_version, v.trunk_version, v.branch_id, v.branch_base_version,
                     v.instance_id, v.actor, d.time(v.at), v.label, d.jsonb(dict(v.data)), v.conflict,
                     d.jsonb(list(v.conflicting)), v.source_action))
        return True

    def import_held(self, held: en.HeldEntity) -> bool:
        d, h = self.dialect, held
        doc = {"block": h.block.to_json(), "scope": list(h.scope) if h.scope is not None else None}
        with self._tx() as cx:
            if cx.execute(self._q(
                    "SELECT 1 FROM entity_backlog WHERE instance_id = ? AND uuid = ? AND reason = ?"
                    " AND held_at = ?"), (h.instance_id, h.uuid, h.reason, d.time(h.held_at))).fetchone():
                return False
            cx.execute(self._q(
                f"INSERT INTO entity_backlog ({HELD_COLS.removeprefix('seq, ')})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                (h.reason, h.instance_id, h.list_name, h.uuid, h.branch_id, h.branch_base_version,
                 d.jsonb(doc), h.unit_code, h.actor, d.time(h.held_at)))
        return True

    # --- sealed values: a KEK rotation --------------------------------------------------------------
    def _sealed_rows(self) -> Iterator[tuple[str, str, tuple[Any, ...], dict[str, Any], str]]:
        """(table, column holding the values, key, values, label) of every row that may hold seals."""
        load = self.dialect.load
        for uuid, props, label in self._stream(self._q("SELECT uuid, properties, label FROM entities"), ()):
            yield "entities", "properties", (uuid,), load(props), label
        stmt = self._q("SELECT uuid, version, data, label FROM entity_versions")
        for uuid, version, data, label in self._stream(stmt, ()):
            yield "entity_versions", "data", (uuid, version), load(data), label
        for seq, block in self._stream(self._q("SELECT seq, block FROM entity_backlog"), ()):
            doc = load(block)
            yield "entity_backlog", "block", (seq,), doc, str(doc["block"].get("label") or "")

    def entity_seal_keys(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _table, _col, _key, values, label in self._sealed_rows():
            inner = values["block"]["data"] if "block" in values else values
            for raw in _seals(inner, label):
                kid = raw[4:12].hex()  # core.protection's layout: MAGIC (4) | KEK id (8) | …
                counts[kid] = counts.get(kid, 0) + 1
        return counts

    def rewrite_entity_seals(self, rewrap: Callable[[bytes], bytes]) -> int:
        keys = {"entities": "uuid = ?", "entity_versions": "uuid = ? AND version = ?",
                "entity_backlog": "seq = ?"}
        changes: list[tuple[str, list[Any], tuple[Any, ...]]] = []
        for table, column, key, values, label in list(self._sealed_rows()):
            if "block" in values:
                block = dict(values["block"])
                data, new_label = _rewrapped(block["data"], block.get("label") or "", rewrap)
                new = {**values, "block": {**block, "data": data, "label": new_label or block.get("label")}}
                if new != values:
                    changes.append((f"UPDATE {table} SET {column} = ? WHERE {keys[table]}", [new], key))
                continue
            data, new_label = _rewrapped(values, label, rewrap)
            if data != values or new_label != label:
                changes.append((f"UPDATE {table} SET {column} = ?, label = ? WHERE {keys[table]}",
                                [data, new_label], key))
        d = self.dialect
        for i in range(0, len(changes), 500):
            with self._tx() as cx:
                for stmt, values_, key in changes[i:i + 500]:
                    params = [d.jsonb(values_[0]), *values_[1:], *key]
                    cx.execute(self._q(stmt), params)
        return len(changes)

    def _approve_entities(self, cx: Cx, instance_id: str, actor: str) -> None:
        entity_rules.approve(SqlEntityTx(self, cx), instance_id, Source(instance_id, actor, None, utcnow()))
