"""One SQL implementation of the store for both engines; what differs between them is in ``Dialect``.

``SqlStore`` holds every statement (forms, rounds, users, submissions, review, audit, key-value) once,
written with ``?`` placeholders, and the transaction primitives the rules of ``core.storage.rules`` decide
with. An engine subclass (``EmbeddedStore`` on SQLite, ``PostgresStore``) supplies connections
(``_cx`` autocommit, ``_tx`` one transaction, ``_read_cx`` and ``_batches`` for reads) and a
``Dialect``: placeholders, how JSON, arrays, booleans and times travel, a list-membership test, the
row lock of the rules' transactions, the current time in SQL, and the names of unique constraints an
error reports. It may override a statement where its driver offers something faster (PostgreSQL: a
one-statement claim, ``COPY`` for bulk loads, a column per indicator field).
"""

from __future__ import annotations

import re
import sqlite3
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from functools import lru_cache
from typing import Any

from pydantic_core import from_json, to_json
from rasoat.core import audit_actions
from rasoat.core.entities import EntityWork
from rasoat.core.models import AuditEvent, FormVersion, ReviewState, Round, Submission, User, utcnow
from rasoat.core.storage import rules, sql_kept
from rasoat.core.storage.base import (
    Condition,
    Conflict,
    Fact,
    Group,
    Latest,
    PageKey,
    SaveOutcome,
    Span,
    Store,
    SubmissionQuery,
    Tally,
)
from rasoat.core.storage.blobs import BlobStore, blob_key
from rasoat.core.storage.rules import BlobRow, Messages, Stored, md5_hex, safe_name
from rasoat.core.storage.sql_entities import EntitySql, SqlEntityTx

SUB_COLS: tuple[str, ...] = (
    "instance_id", "form_id", "form_version", "round_id", "unit_code", "collector_id", "received_at",
    "xml_md5", "fields", "attachments", "expected_attachments", "review_state", "review_history",
    "deprecated_id", "current", "encrypted",
)
SUB_COLS_SQL = ", ".join(SUB_COLS)
_SUB_MARKS = ", ".join(["?"] * len(SUB_COLS))
_JSON_COLS = ("fields", "attachments", "expected_attachments", "review_history")
_FORM_COLS = "form_id, version, title, md5, media, encrypted, source, published_at"
_BULK_BATCH = 500


#: a sqlite3 connection or a psycopg cursor: ``execute(sql, params)`` returns something with
#: ``fetchone``, ``fetchall`` and ``rowcount`` on both drivers
Cx = Any


SQLITE_HAS_ARROW = sqlite3.sqlite_version_info >= (3, 38, 0)  # the JSON ``->`` operator


class Dialect:
    """SQLite's way; ``PgDialect`` (in ``postgres``) overrides what PostgreSQL does differently."""

    #: the placeholder style of the driver (statements are written with ``?``)
    mark = "?"
    #: the current time in SQL, as the ``kv`` table's ``expires_at`` holds it (unix seconds here)
    now = "((julianday('now') - 2440587.5) * 86400.0)"
    #: the row lock of a read inside the rules' transactions (SQLite locks the whole database instead)
    for_update = ""
    #: text compared by code point (SQLite's default collation already does)
    binary = ""
    binary_param = ""
    #: the next value of ``entities.rev`` (SQLite has one writer at a time: max + 1 is safe)
    entity_rev = "(SELECT coalesce(max(rev), 0) + 1 FROM entities)"
    #: a lock on one entity id until the transaction ends, even before its row exists (SQLite: none
    #: needed, its writer holds the whole database)
    entity_lock: str | None = None
    #: a page of many units' records in given review states (a province's review queue) is planned from
    #: counts (``SqlStore._walk_by_time``): SQLite otherwise finds every such record by unit in the counts
    #: index and sorts them all (0.2-0.5 s for 100,000); PostgreSQL's planner weighs it itself
    pages_by_count = True

    def unindexed(self, column: str) -> str:
        """``column`` kept out of the choice of index (SQLite's unary plus)."""
        return f"+{column}"

    def expires(self) -> str:
        """``expires_at`` for a TTL parameter (NULL stays NULL)."""
        return f"({self.now} + ?)"

    def json(self, value: Any) -> Any:
        return to_json(value).decode()

    jsonb = json

    def ordered_json(self, value: Any) -> Any:
        """JSON whose key order must survive (a pyxform schema)."""
        return to_json(value).decode()

    def array(self, names: list[str]) -> Any:
        return to_json(names).decode()

    def load(self, raw: Any) -> Any:
        return from_json(raw)

    def flag(self, value: bool) -> Any:
        return int(value)

    def time(self, value: datetime) -> Any:
        """Fixed-width UTC text, so that text order is time order (naive times are taken as UTC)."""
        return ts(value)

    #: ``time``'s value read back (a builtin called directly: indicator scans call it for every row)
    time_load: Callable[[Any], datetime] = datetime.fromisoformat

    def blob(self, raw: Any) -> bytes:
        return bytes(raw)

    def in_list(self, column: str) -> str:
        return f"{column} IN (SELECT value FROM json_each(?))"

    def list_param(self, values: list[str]) -> Any:
        return to_json(values).decode()

    def member(self, key: str) -> tuple[str, Any] | None:
        """SQL for the JSON text of member ``key`` of ``fields`` (NULL when absent) and its parameter;
        None when the engine cannot name the key (read from the whole document instead). SQLite's
        ``->`` (3.38+) takes a path, ``$."key"``, which cannot hold a key whose JSON text needs an
        escape (a quote, a backslash, a control character: no XForm name has one). An older SQLite (Ubuntu
        22.04 ships 3.37) reads every key from the whole document."""
        if not SQLITE_HAS_ARROW or to_json(key).decode() != f'"{key}"':
            return None
        return "fields -> ?", f'$."{key}"'

    def member_text(self, key: str) -> tuple[str, Any] | None:
        """As ``member``, the member's SQL value: a JSON string's text, unescaped (other types: only
        read where ``member`` says it is a string or a number)."""
        found = self.member(key)
        return None if found is None else ("fields ->> ?", found[1])

    #: the position of a substring in a text, ``find(text, part)`` (0: not there)
    find = "instr"
    #: the SQL type of a float (PostgreSQL's ``real`` is single precision)
    double = "REAL"
    #: how ``aggregate`` keeps the answers it reads: SQLite parses the document for each use of an
    #: answer, so they are written down once per record; PostgreSQL reads a member of its binary JSON
    #: for less than writing the row down costs (measured: benchmarks/README.md, issue 21)
    materialized = "MATERIALIZED"

    def plain_number(self, text: str) -> str:
        """SQL true when ``text`` is a plain decimal: -?(digits[.digits] | .digits), digits optional after
        the point (SQLite has no regular expressions: digits, points and minus only, a digit somewhere,
        one point at most, a minus only first)."""
        return (f"({text} GLOB '*[0-9]*' AND {text} NOT GLOB '*[^0-9.-]*' AND {text} NOT GLOB '*.*.*'"
                f" AND {text} NOT GLOB '?*-*')")

    def unique_violated(self, exc: Exception) -> str | None:
        """The column of a unique index the error is about; None when it is another error."""
        match = re.search(r"UNIQUE constraint failed: \w+\.(\w+)", str(exc))
        return match.group(1) if match else None


def ts(value: datetime) -> str:
    from datetime import UTC

    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


class SqlStore(EntitySql, Store):
    """Every statement of the store, once; see the module notes for what an engine adds."""

    dialect: Dialect
    blobs: BlobStore
    _kv_puts = 0

    # --- what an engine supplies -------------------------------------------------------------
    @abstractmethod
    def _cx(self) -> AbstractContextManager[Cx]:
        """Autocommit: each statement is its own transaction."""

    @abstractmethod
    def _tx(self) -> AbstractContextManager[Cx]:
        """One transaction, committed on success, rolled back on an exception. Rows read in it with
        the dialect's ``for_update`` stay locked until it ends (SQLite: the whole database is)."""

    def _wx(self) -> AbstractContextManager[Cx]:
        """Autocommit for a write (an engine may queue writers of one process here)."""
        return self._cx()

    def _read_cx(self) -> AbstractContextManager[Cx]:
        """Where counts and pages are read (a replica when the engine has one)."""
        return self._cx()

    @abstractmethod
    def _batches(self, stmt: str, params: Sequence[Any]) -> Iterator[Sequence[tuple]]:
        """Rows of a long read, a batch at a time, in flat memory, all in one snapshot."""

    def _stream(self, stmt: str, params: Sequence[Any]) -> Iterator[tuple]:
        """The rows of ``_batches`` one by one."""
        for rows in self._batches(stmt, params):
            yield from rows

    def _q(self, stmt: str) -> str:
        return _translate(stmt, self.dialect.mark)

    def _scan_hint(self, query: SubmissionQuery | None) -> str:
        """What follows the table's name in an indicator scan (an engine may steer its planner)."""
        return ""

    # --- forms ---------------------------------------------------------------------------
    def _form(self, row: Sequence[Any]) -> FormVersion:
        form_id, version, title, md5, media, encrypted, source, published_at = row
        return FormVersion(form_id=form_id, version=version, title=title, md5=md5,
                           media=list(self.dialect.load(media)),
                           encrypted=bool(encrypted), source=source, published_at=published_at)

    def put_form(
        self, form: FormVersion, xml: bytes, schema: dict[str, Any], media: dict[str, bytes]
    ) -> None:
        """A published version's XForm never changes (phones cache it by md5); schema and media may."""
        xml = bytes(xml)
        for name in media:
            safe_name(name, "media file name")
        if form.md5 != md5_hex(xml):
            raise ValueError(Messages.bad_md5("form", form.md5, md5_hex(xml)))
        d = self.dialect
        with self._tx() as cx:
            row = cx.execute(self._q(
                f"INSERT INTO forms ({_FORM_COLS}, xml, schema) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (form_id, version) DO UPDATE SET title = excluded.title,"
                " media = excluded.media, encrypted = excluded.encrypted, source = excluded.source,"
                " published_at = excluded.published_at, schema = excluded.schema"
                " WHERE forms.md5 = excluded.md5 RETURNING 1"),
                (form.form_id, form.version, form.title, form.md5, d.array(list(form.media)),
                 d.flag(form.encrypted), form.source, d.time(form.published_at), xml,
                 d.ordered_json(schema)),
            ).fetchone()
            if row is None:
                raise Conflict("storage.form_version_taken", form=form.form_id, version=form.version)
            self._declare_lists(cx, form.form_id, xml, schema)
            for name, data in media.items():
                cx.execute(self._q(
                    "INSERT INTO form_media (form_id, version, name, data, md5) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (form_id, version, name)"
                    " DO UPDATE SET data = excluded.data, md5 = excluded.md5"),
                    (form.form_id, form.version, name, bytes(data), md5_hex(data)),
                )

    def get_form(self, form_id: str, version: str | None = None) -> FormVersion | None:
        with self._cx() as cx:
            if version is None:
                row = cx.execute(self._q(
                    f"SELECT {_FORM_COLS} FROM forms WHERE form_id = ?"
                    " ORDER BY published_at DESC, seq DESC LIMIT 1"), (form_id,)).fetchone()
            else:
                row = cx.execute(self._q(
                    f"SELECT {_FORM_COLS} FROM forms WHERE form_id = ? AND version = ?"),
                    (form_id, version)).fetchone()
        return self._form(row) if row else None

    def list_forms(self, all_versions: bool = False) -> list[FormVersion]:
        with self._cx() as cx:
            rows = cx.execute(f"SELECT {_FORM_COLS} FROM forms ORDER BY form_id, published_at, seq")
            rows = rows.fetchall()
        forms = [self._form(r) for r in rows]
        if all_versions:
            return forms
        return list({f.form_id: f for f in forms}.values())  # the last of each form is its latest

    def _form_column(self, column: str, form_id: str, version: str) -> Any:
        with self._cx() as cx:
            row = cx.execute(self._q(f"SELECT {column} FROM forms WHERE form_id = ? AND version = ?"),
                             (form_id, version)).fetchone()
        if row is None:
            raise KeyError(f"Không có biểu mẫu / No form {form_id} version {version}")
        return row[0]

    def form_xml(self, form_id: str, version: str) -> bytes:
        return bytes(self._form_column("xml", form_id, version))

    def form_schema(self, form_id: str, version: str) -> dict[str, Any]:
        return self.dialect.load(self._form_column("schema", form_id, version))

    def form_media(self, form_id: str, version: str, name: str) -> bytes | None:
        with self._cx() as cx:
            row = cx.execute(self._q(
                "SELECT data FROM form_media WHERE form_id = ? AND version = ? AND name = ?"),
                (form_id, version, name)).fetchone()
        return bytes(row[0]) if row else None

    # --- rounds and snapshots ------------------------------------------------------------
    def put_round(self, rnd: Round) -> None:
        with self._wx() as cx:
            cx.execute(self._q(
                "INSERT INTO rounds (id, data) VALUES (?, ?)"
                " ON CONFLICT (id) DO UPDATE SET data = excluded.data"),
                (rnd.id, self.dialect.jsonb(rnd.model_dump(mode="json"))))

    def _doc(self, raw: Any) -> Any:
        return self.dialect.load(raw)

    def get_round(self, round_id: str) -> Round | None:
        with self._cx() as cx:
            row = cx.execute(self._q("SELECT data FROM rounds WHERE id = ?"), (round_id,)).fetchone()
        return Round.model_validate(self._doc(row[0])) if row else None

    def list_rounds(self) -> list[Round]:
        with self._cx() as cx:
            rows = cx.execute("SELECT data FROM rounds").fetchall()
        rounds = [Round.model_validate(self._doc(r[0])) for r in rows]
        return sorted(rounds, key=lambda r: (r.created_at, r.id))

    def put_snapshot(self, round_id: str, data: dict[str, Any]) -> None:
        with self._wx() as cx:
            cx.execute(self._q(
                "INSERT INTO round_snapshots (round_id, taken_at, data) VALUES (?, ?, ?)"
                " ON CONFLICT (round_id) DO UPDATE SET data = excluded.data, taken_at = excluded.taken_at"),
                (round_id, self.dialect.time(utcnow()), self.dialect.jsonb(data)))

    def get_snapshot(self, round_id: str) -> dict[str, Any] | None:
        with self._cx() as cx:
            row = cx.execute(self._q("SELECT data FROM round_snapshots WHERE round_id = ?"),
                             (round_id,)).fetchone()
        return self._doc(row[0]) if row else None

    # --- users ---------------------------------------------------------------------------
    def put_user(self, user: User) -> None:
        try:
            with self._wx() as cx:
                cx.execute(self._q(
                    "INSERT INTO users (id, username, token_hash, data) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (id) DO UPDATE SET username = excluded.username,"
                    " token_hash = excluded.token_hash, data = excluded.data"),
                    (user.id, user.username, user.token_hash,
                     self.dialect.jsonb(user.model_dump(mode="json"))))
        except Exception as exc:
            column = self.dialect.unique_violated(exc)
            if column is None:
                raise
            if "token" in column:
                raise Conflict("storage.token_taken") from exc
            raise Conflict("storage.username_taken", username=user.username) from exc

    def _one_user(self, column: str, value: str) -> User | None:
        with self._cx() as cx:
            row = cx.execute(self._q(f"SELECT data FROM users WHERE {column} = ?"), (value,)).fetchone()
        return User.model_validate(self._doc(row[0])) if row else None

    def get_user(self, user_id: str) -> User | None:
        return self._one_user("id", user_id)

    def get_user_by_name(self, username: str) -> User | None:
        return self._one_user("username", username)

    def get_user_by_token_hash(self, token_hash: str) -> User | None:
        return self._one_user("token_hash", token_hash)

    def list_users(self) -> list[User]:
        with self._cx() as cx:
            rows = cx.execute("SELECT data FROM users").fetchall()
        users = [User.model_validate(self._doc(r[0])) for r in rows]
        return sorted(users, key=lambda u: (u.created_at, u.id))

    # --- submissions: rows, and the primitives the rules decide with --------------------------
    def _sub_params(self, sub: Submission, attachments: list[str], current: bool = True) -> tuple:
        d = self.dialect
        return (
            sub.instance_id, sub.form_id, sub.form_version, sub.round_id, sub.unit_code, sub.collector_id,
            d.time(sub.received_at), sub.xml_md5, d.jsonb(sub.fields), d.array(attachments),
            d.array(list(sub.expected_attachments)), ReviewState(sub.review_state).value,
            d.jsonb(sub.review_history), sub.deprecated_id, d.flag(current), d.flag(sub.encrypted),
        )

    def _sub(self, row: Sequence[Any]) -> Submission:
        doc = dict(zip(SUB_COLS, row, strict=True))
        for key in _JSON_COLS:
            doc[key] = self._doc(doc[key])
        return Submission.model_validate(doc)

    def _insert(self, cx: Cx, sub: Submission, xml: bytes, blobs: list[BlobRow]) -> bool:
        cur = cx.execute(self._q(
            f"INSERT INTO submissions ({SUB_COLS_SQL}) VALUES ({_SUB_MARKS})"
            " ON CONFLICT (instance_id) DO NOTHING"), self._sub_params(sub, [b[0] for b in blobs]))
        if cur.rowcount != 1:
            return False
        cx.execute(self._q("INSERT INTO submission_xml (instance_id, xml, md5) VALUES (?, ?, ?)"),
                   (sub.instance_id, xml, sub.xml_md5))
        self._attachment_rows(cx, sub.instance_id, blobs)
        return True

    def _attachment_rows(self, cx: Cx, instance_id: str, blobs: list[BlobRow]) -> None:
        now = self.dialect.time(utcnow())
        for name, key, size, md5 in blobs:
            cx.execute(self._q(
                "INSERT INTO attachments (instance_id, name, blob_key, size, md5, added_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (instance_id, name) DO NOTHING"),
                (instance_id, name, key, size, md5, now))

    def claim(self, sub: Submission, xml: bytes, blobs: list[BlobRow]) -> bool:
        with self._tx() as cx:
            return self._insert(cx, sub, xml, blobs)

    @contextmanager
    def transaction(self) -> Iterator[SqlTx]:
        with self._tx() as cx:
            yield SqlTx(self, cx)

    def _put_blobs(self, attachments: dict[str, bytes]) -> list[BlobRow]:
        """Write attachment bytes durably (before any row names them): (name, key, size, md5) each."""
        for name in attachments:
            safe_name(name, "attachment name")
        out = []
        for name, data in attachments.items():
            data = bytes(data)
            key = blob_key(data)
            self.blobs.put(key, data)
            out.append((name, key, len(data), md5_hex(data)))
        return out

    # --- submissions ---------------------------------------------------------------------
    def save_submission(
        self, sub: Submission, xml: bytes, attachments: dict[str, bytes], entities: EntityWork | None = None
    ) -> SaveOutcome:
        xml = bytes(xml)
        sub = rules.prepare(sub, xml)
        return rules.save(self, sub, xml, self._put_blobs(attachments), entities)

    def add_attachment(self, instance_id: str, name: str, data: bytes) -> None:
        """A late attachment; a name already stored keeps its first bytes (as a resend would)."""
        safe_name(name, "attachment name")
        if self.get_submission(instance_id) is None:
            raise KeyError(Messages.no_submission(instance_id))
        rules.add_attachment(self, instance_id, self._put_blobs({name: data}))

    def rewrite_payload(self, sub: Submission, xml: bytes, attachments: dict[str, bytes]) -> None:
        xml = bytes(xml)
        if sub.xml_md5 != md5_hex(xml):
            raise ValueError(Messages.bad_md5("xml_md5", sub.xml_md5, md5_hex(xml)))
        blobs = sorted(self._put_blobs(attachments))
        d, iid = self.dialect, sub.instance_id
        with self._tx() as cx:
            cur = cx.execute(self._q(
                "UPDATE submissions SET fields = ?, unit_code = ?, encrypted = ?, xml_md5 = ?,"
                " attachments = ?, expected_attachments = ? WHERE instance_id = ?"),
                (d.jsonb(sub.fields), sub.unit_code, d.flag(sub.encrypted), sub.xml_md5,
                 d.array([b[0] for b in blobs]), d.array(list(sub.expected_attachments)), iid))
            if cur.rowcount != 1:
                raise KeyError(Messages.no_submission(iid))
            cx.execute(self._q("UPDATE submission_xml SET xml = ?, md5 = ? WHERE instance_id = ?"),
                       (xml, sub.xml_md5, iid))
            old = {r[0] for r in cx.execute(self._q("SELECT blob_key FROM attachments WHERE instance_id = ?"),
                                            (iid,)).fetchall()}
            cx.execute(self._q("DELETE FROM attachments WHERE instance_id = ?"), (iid,))
            self._attachment_rows(cx, iid, blobs)
            orphans = [k for k in sorted(old - {b[1] for b in blobs}) if cx.execute(self._q(
                "SELECT 1 FROM attachments WHERE blob_key = ? LIMIT 1"), (k,)).fetchone() is None]
        for key in orphans:  # after the commit: a crash before this leaves only a file no row names
            self.blobs.delete(key)

    def put_many_submissions(self, items: Iterable[tuple[Submission, bytes, dict[str, bytes]]]) -> int:
        """Bulk load: ``_BULK_BATCH`` new submissions per transaction (one flush); edits and instanceIDs
        already stored go through the rules one by one."""
        created = 0
        batch: list[tuple[Submission, bytes, list[BlobRow]]] = []

        def flush() -> int:
            n = 0
            retry: list[tuple[Submission, bytes, list[BlobRow]]] = []
            if batch:
                with self._tx() as cx:
                    for sub, xml, blobs in batch:
                        if self._insert(cx, sub, xml, sorted(blobs)):
                            n += 1
                        else:
                            retry.append((sub, xml, blobs))
                batch.clear()
            for sub, xml, blobs in retry:  # stored before, or twice in the batch: the rules decide
                n += rules.save(self, sub, xml, blobs) is SaveOutcome.created
            return n

        for item_sub, raw, atts in items:
            xml = bytes(raw)
            sub = rules.prepare(item_sub, xml)
            blobs = self._put_blobs(atts)
            if sub.deprecated_id:  # the version it replaces must be stored first
                created += flush()
                created += rules.save(self, sub, xml, blobs) is SaveOutcome.created
                continue
            batch.append((sub, xml, blobs))
            if len(batch) >= _BULK_BATCH:
                created += flush()
        return created + flush()

    def get_submission(self, instance_id: str) -> Submission | None:
        with self._cx() as cx:
            row = cx.execute(self._q(f"SELECT {SUB_COLS_SQL} FROM submissions WHERE instance_id = ?"),
                             (instance_id,)).fetchone()
        return self._sub(row) if row else None

    def submission_xml(self, instance_id: str) -> bytes | None:
        with self._cx() as cx:
            row = cx.execute(self._q("SELECT xml FROM submission_xml WHERE instance_id = ?"),
                             (instance_id,)).fetchone()
        return bytes(row[0]) if row else None

    def attachment(self, instance_id: str, name: str) -> bytes | None:
        with self._cx() as cx:
            row = cx.execute(self._q("SELECT blob_key FROM attachments WHERE instance_id = ? AND name = ?"),
                             (instance_id, name)).fetchone()
        return self.blobs.get(row[0]) if row else None

    def attachment_info(self, instance_id: str) -> list[dict[str, Any]]:
        """Name, size, md5 and blob key of each stored attachment (verification, admin tools)."""
        with self._cx() as cx:
            rows = cx.execute(self._q(
                "SELECT name, size, md5, blob_key FROM attachments WHERE instance_id = ?"
                " ORDER BY added_at, name"),
                (instance_id,)).fetchall()
        return [dict(zip(("name", "size", "md5", "blob_key"), r, strict=True)) for r in rows]

    def _where(self, query: SubmissionQuery | None, unit_index: bool = True) -> tuple[str, list[Any]]:
        q = query or SubmissionQuery()
        d = self.dialect
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("form_id", q.form_id), ("form_version", q.form_version), ("round_id", q.round_id),
            ("collector_id", q.collector_id),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if q.unit_codes is not None:
            clauses.append(d.in_list("unit_code" if unit_index else d.unindexed("unit_code")))
            params.append(d.list_param(list(q.unit_codes)))
        if q.review_states is not None:
            clauses.append(d.in_list("review_state"))
            params.append(d.list_param([ReviewState(s).value for s in q.review_states]))
        if q.received_from is not None:
            clauses.append("received_at >= ?")
            params.append(d.time(q.received_from))
        if q.received_to is not None:
            clauses.append("received_at < ?")
            params.append(d.time(q.received_to))
        if q.touched_above is not None:
            clauses.append("touched > ?")
            params.append(q.touched_above)
        if q.current_only:
            clauses.append(f"current = {d.flag(True)}")
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def iter_submissions(self, query: SubmissionQuery | None = None) -> Iterator[Submission]:
        where, params = self._where(query)
        stmt = self._q(f"SELECT {SUB_COLS_SQL} FROM submissions{where} ORDER BY received_at, seq")
        for row in self._stream(stmt, params):
            yield self._sub(row)

    def iter_facts(self, query: SubmissionQuery | None, field_paths: Sequence[str]) -> Iterator[Fact]:
        """Indicator scans, no models and no order (the engine sums): the engine reads only the keys
        asked for, each as its own column holding the member's JSON text (``Dialect.member``; NULL when
        absent), so a row moves a few short values, not its whole ``fields``. A JSON string without a
        backslash is its text between the quotes, so most values need no JSON parse; anything else (a
        number, a repeat's rows, an escaped string) is parsed. A key the engine cannot name is read
        from the whole document. See benchmarks/README.md (Indicators) for figures."""
        d = self.dialect
        named: list[str] = []
        columns: list[str] = []
        select_params: list[Any] = []
        whole: list[str] = []
        for path in dict.fromkeys(field_paths):
            member = d.member(path)
            if member is None:
                whole.append(path)
                continue
            named.append(path)
            columns.append(member[0])
            select_params.append(member[1])
        if whole:
            columns.append("fields")
        where, params = self._where(query)
        stmt = self._q("SELECT instance_id, round_id, unit_code, received_at, review_state"
                       f"{''.join(', ' + c for c in columns)}"
                       f" FROM submissions{self._scan_hint(query)}{where}")
        time_load, load, n = d.time_load, self._doc, len(named)
        for rows in self._batches(stmt, [*select_params, *params]):  # a generator less per row
            for row in rows:
                values: dict[str, Any] = {}
                for path, text in zip(named, row[5:5 + n], strict=True):
                    if text is not None:
                        values[path] = text[1:-1] if text[0] == '"' and "\\" not in text else from_json(text)
                if whole:
                    doc = load(row[-1])
                    values.update((k, doc[k]) for k in whole if k in doc)
                yield Fact(row[0], row[1], row[2], time_load(row[3]), row[4], values)

    def aggregate(
        self, query: SubmissionQuery, spans: Sequence[Span], tallies: Sequence[Tally], sealed_key: str,
        latest: Latest | None = None,
    ) -> list[Group] | None:
        """``_grouped``'s groups, kept per commune (``sql_kept``): only communes whose records changed since
        are computed again."""
        return sql_kept.aggregate(self, query, spans, tallies, sealed_key, latest)

    def records_print(self, query: SubmissionQuery) -> str | None:
        return sql_kept.records_print(self, query)

    def records_added(self, query: SubmissionQuery, since: str) -> int | None:
        return sql_kept.records_added(self, query, since)

    def _grouped(
        self, query: SubmissionQuery, spans: Sequence[Span], tallies: Sequence[Tally], sealed_key: str,
        latest: Latest | None = None,
    ) -> tuple[list[Group], set[str | None]] | None:
        """The groups and the units holding an answer not totalled exactly (see ``Store.aggregate``);
        None when an answer cannot be named. One GROUP BY. The first select reads each answer used, as its
        JSON text (``Dialect.member``, whose first character tells its type) and its SQL value
        (``Dialect.member_text``: a string unescaped); SQLite writes them down once per record
        (``Dialect.materialized``). The second marks each record: in which spans, sealed, which conditions
        hold (0 or 1, never NULL), and its numbers; it groups by unit, round, review state and those marks,
        counting records and summing numbers. The few groups are then added into each tally here. With
        ``latest``, a window over the first select marks each key's latest record (readable ones apart
        from sealed ones), one mark more that every tally needs."""
        d = self.dialect
        keys = _answer_keys(spans, tallies, sealed_key, latest)
        inner: list[str] = []
        inner_params: list[Any] = []
        col: dict[str, int] = {}
        for i, key in enumerate(keys):
            member, text = d.member(key), d.member_text(key)
            if member is None or text is None:
                return None
            inner += [f"{member[0]} AS j{i}", f"{text[0]} AS t{i}"]
            inner_params += [member[1], text[1]]
            col[key] = i
        conditions = list(dict.fromkeys(c for t in tallies for c in t.where))
        summed = list(dict.fromkeys(t.field for t in tallies if t.field))
        params: list[Any] = []  # the outer statement's, in the order its text names them

        def is_text(i: int) -> str:
            return f"substr(j{i}, 1, 1) = '\"'"

        def plain(i: int) -> str:
            return f"{is_text(i)} AND {d.plain_number(f't{i}')}"

        def condition(c: Condition) -> str:
            i = col[c.field]
            if c.op == "answered":
                test = f"j{i} IS NOT NULL AND j{i} NOT IN ('null', '\"\"', '[]')"
            elif c.op == "absent":
                test = f"j{i} IS NULL"
            elif c.op == "word":
                test = f"{is_text(i)} AND {d.find}(' ' || t{i} || ' ', ?) > 0"
                params.append(f" {c.values[0]} ")
            elif len(c.values) == 1:
                test = f"{is_text(i)} AND t{i} = ?"
                params.append(c.values[0])
            else:
                test = f"{is_text(i)} AND {d.in_list(f't{i}')}"
                params.append(d.list_param(list(c.values)))
            return f"NOT COALESCE({test}, FALSE)" if c.negate else test

        def in_span(s: Span) -> str:
            if s.date_field is not None:  # its params come first, as its text does
                i = col[s.date_field]
                day = f"(CASE WHEN {is_text(i)} AND length(j{i}) > 2 THEN substr(t{i}, 1, 10) END)"
                by_day = f"{day}{d.binary} < ?{d.binary_param}"
                params.append(s.high_day)
                if s.low_day:
                    by_day += f" AND {day}{d.binary} >= ?{d.binary_param}"
                    params.append(s.low_day)
            received = []
            for op, bound in ((">=", s.low_utc), ("<", s.high_utc)):
                if bound is not None:
                    received.append(f"received_at {op} ?")
                    params.append(d.time(bound))
            by_received = " AND ".join(received) or "1 = 1"
            if s.date_field is None:
                return by_received
            return f"COALESCE({by_day}, {by_received})"  # NULL: no day, then the received time

        marks = [*map(in_span, spans), f"j{col[sealed_key]} IS NOT NULL", *map(condition, conditions)]
        source = "facts"
        if latest is not None:  # the commune is the unit code up to its first "-"
            i, unit = col[latest.field], "COALESCE(unit_code, '')"
            key = (f"CASE WHEN j{i} IS NULL OR j{i} IN ('null', '\"\"', '[]', '0', 'false') THEN instance_id"
                   f" ELSE CAST(t{i} AS TEXT) END")
            source = (f"(SELECT *, row_number() OVER (PARTITION BY j{col[sealed_key]} IS NULL,"
                      f" substr({unit}, 1, {d.find}({unit} || '-', '-') - 1), {key}"
                      f" ORDER BY received_at DESC, instance_id{d.binary} DESC) AS nth FROM facts) AS ranked")
            marks.append("nth = 1")
        digit = "('-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9')"  # a JSON number's first character
        numbers = [f"sum(CASE WHEN substr(j{i}, 1, 1) IN {digit} OR ({plain(i)})"
                   f" THEN CAST(t{i} AS {d.double}) END)" for i in (col[f] for f in summed)]
        # an answer to a summed field that is neither blank nor a number read here as Python reads it
        odd = " OR ".join(f"({is_text(i)} AND length(j{i}) > 2 AND NOT ({plain(i)}))"
                          f" OR j{i} IN ('true', 'false')" for i in (col[f] for f in summed))
        where, where_params = self._where(query)
        stmt = self._q(
            f"WITH facts AS {d.materialized} (SELECT instance_id, unit_code, round_id, review_state,"
            f" received_at, {', '.join(inner)} FROM submissions{self._scan_hint(query)}{where})"
            f" SELECT unit_code, round_id, review_state,"
            f" {', '.join(f'CASE WHEN {m} THEN 1 ELSE 0 END' for m in marks)}, count(*),"
            f" {''.join(n + ', ' for n in numbers)}{f'count(CASE WHEN {odd} THEN 1 END)' if odd else '0'}"
            f" FROM {source} GROUP BY {', '.join(str(k) for k in range(1, 4 + len(marks)))}")
        with self._read_cx() as cx:
            rows = cx.execute(stmt, [*inner_params, *where_params, *params]).fetchall()
        odd_units = {row[0] for row in rows if row[-1]}
        n_spans, n_marks = len(spans), len(marks)
        cond_at = {c: 3 + n_spans + 1 + k for k, c in enumerate(conditions)}
        sum_at = {f: 4 + n_marks + k for k, f in enumerate(summed)}
        out: dict[tuple[Any, ...], tuple[list[int], list[int], list[float]]] = {}
        for row in rows:
            records, sealed, totals = out.setdefault(
                row[:3], ([0] * n_spans, [0] * n_spans, [0.0 if t.field else 0 for t in tallies]))
            n, is_sealed = row[3 + n_marks], row[3 + n_spans]
            for k in range(n_spans):
                if row[3 + k]:
                    records[k] += n
                    sealed[k] += n if is_sealed else 0
            if is_sealed:
                continue
            if latest is not None and not row[2 + n_marks]:
                continue
            for k, t in enumerate(tallies):
                if row[3 + t.span] and all(row[cond_at[c]] for c in t.where):
                    totals[k] += (row[sum_at[t.field]] or 0) if t.field else n
        groups = [Group(u, rnd, st, tuple(r), tuple(s), tuple(t)) for (u, rnd, st), (r, s, t) in out.items()]
        return groups, odd_units

    def _nameable(self, spans: Sequence[Span], tallies: Sequence[Tally], sealed_key: str,
                  latest: Latest | None) -> bool:
        """Whether ``_grouped`` can name every answer it would read."""
        d = self.dialect
        return all(d.member(k) is not None and d.member_text(k) is not None
                   for k in _answer_keys(spans, tallies, sealed_key, latest))

    def page_submissions(
        self,
        query: SubmissionQuery | None = None,
        *,
        limit: int,
        after: PageKey | None = None,
        descending: bool = False,
    ) -> list[Submission]:
        """A row-value comparison on ``(received_at, instance_id)`` that the ``submissions_page`` index
        serves; instanceIDs compare by code point (the dialect's ``binary`` collation), as Python does."""
        if limit <= 0:
            return []
        d = self.dialect
        where, params = self._where(query, unit_index=not self._walk_by_time(query, limit))
        if after is not None:
            op = "<" if descending else ">"
            where += (" AND " if where else " WHERE ") + (
                f"(received_at, instance_id{d.binary}) {op} (?, ?{d.binary_param})")
            params += [d.time(after.received_at), after.instance_id]
        way = "DESC" if descending else "ASC"
        with self._read_cx() as cx:
            rows = cx.execute(self._q(
                f"SELECT {SUB_COLS_SQL} FROM submissions{where}"
                f" ORDER BY received_at {way}, instance_id{d.binary} {way} LIMIT ?"),
                [*params, limit]).fetchall()
        return [self._sub(r) for r in rows]

    def _walk_by_time(self, query: SubmissionQuery | None, limit: int) -> bool:
        """Whether a page of many units' records in some review states is found sooner by walking the
        receipt-time index than by finding each such record by unit and sorting them all: a walk reads
        about ``limit`` × all records / matching ones, a sort all matching ones, so walk when matching²
        exceeds ``limit`` × all (two counts from the counts index). Asked only where the dialect plans so."""
        q = query
        if not (self.dialect.pages_by_count and q is not None and q.review_states is not None
                and q.form_id is None and q.unit_codes is not None and len(q.unit_codes) > 1):
            return False
        matching = self.count_submissions(q)
        return matching * matching > limit * self.count_submissions()

    def count_submissions(self, query: SubmissionQuery | None = None) -> int:
        where, params = self._where(query)
        with self._read_cx() as cx:
            return int(cx.execute(self._q(f"SELECT count(*) FROM submissions{where}"), params).fetchone()[0])

    def count_by_unit(self, query: SubmissionQuery | None = None) -> dict[tuple[str | None, str], int]:
        """Grouped in ``submissions_counts`` (unit and form lead it): from the index alone."""
        where, params = self._where(query)
        with self._read_cx() as cx:
            rows = cx.execute(self._q(
                f"SELECT unit_code, form_id, count(*) FROM submissions{where} GROUP BY unit_code, form_id"),
                params).fetchall()
        return {(unit, form): int(n) for unit, form, n in rows}

    def filed_unit_codes(self) -> set[str]:
        """One index seek per code (a "skip scan" of ``submissions_counts``), not one step per record."""
        with self._read_cx() as cx:
            rows = cx.execute(
                "WITH RECURSIVE u(code) AS (SELECT min(unit_code) FROM submissions"
                " UNION ALL SELECT (SELECT min(unit_code) FROM submissions WHERE unit_code > u.code)"
                " FROM u WHERE u.code IS NOT NULL) SELECT code FROM u WHERE code IS NOT NULL").fetchall()
        return {r[0] for r in rows}

    def set_review(self, instance_id: str, state: ReviewState, comment: str, actor: str) -> Submission:
        state = ReviewState(state)
        with self._tx() as cx:
            row = cx.execute(self._q(
                "SELECT review_state, review_history FROM submissions WHERE instance_id = ?"
                + self.dialect.for_update), (instance_id,)).fetchone()
            if row is None:
                raise KeyError(Messages.no_submission(instance_id))
            entry = rules.review_entry(utcnow().isoformat(), actor, row[0], state, comment)
            history = [*self._doc(row[1]), entry]
            cx.execute(self._q(
                "UPDATE submissions SET review_state = ?, review_history = ? WHERE instance_id = ?"),
                       (state.value, self.dialect.jsonb(history), instance_id))
            if state is ReviewState.approved and row[0] != ReviewState.approved.value:
                self._approve_entities(cx, instance_id, actor)
            out = cx.execute(self._q(f"SELECT {SUB_COLS_SQL} FROM submissions WHERE instance_id = ?"),
                             (instance_id,)).fetchone()
        return self._sub(out)

    def set_derived_fields(self, instance_id: str, fields: dict[str, Any], unit_code: str | None) -> None:
        d = self.dialect
        with self._tx() as cx:
            cur = cx.execute(self._q(
                "UPDATE submissions SET fields = ?, unit_code = ? WHERE instance_id = ? AND encrypted = ?"),
                (d.jsonb(fields), unit_code, instance_id, d.flag(True)))
            if cur.rowcount != 1:
                raise KeyError(Messages.no_submission(instance_id))

    # --- audit ---------------------------------------------------------------------------
    def append_audit(self, event: AuditEvent) -> None:
        with self._wx() as cx:
            self._audit_row(cx, event)

    def _audit_row(self, cx: Cx, event: AuditEvent) -> None:
        """Write one audit event on ``cx`` (inside the caller's transaction, when it has one)."""
        audit_actions.check(event.action)
        details = event.model_dump(mode="json", include={"details"})["details"]
        cx.execute(self._q("INSERT INTO audit (at, actor, action, target, details) VALUES (?, ?, ?, ?, ?)"),
                   (self.dialect.time(event.at), event.actor, event.action, event.target,
                    self.dialect.jsonb(details)))

    def iter_audit(self, since: datetime | None = None, actor: str | None = None) -> Iterator[AuditEvent]:
        clauses, params = [], []
        if since is not None:
            clauses.append("at >= ?")
            params.append(self.dialect.time(since))
        if actor is not None:
            clauses.append("actor = ?")
            params.append(actor)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        stmt = self._q(f"SELECT at, actor, action, target, details FROM audit{where} ORDER BY seq")
        for at, who, action, target, details in self._stream(stmt, params):
            yield AuditEvent(at=at, actor=who, action=action, target=target, details=self._doc(details))

    def page_audit(
        self, *, limit: int, actor: str | None = None, since: datetime | None = None,
        until: datetime | None = None, before: int | None = None, after: int | None = None,
    ) -> list[tuple[int, AuditEvent]]:
        """From the primary key ``seq`` (``audit_actor`` for one actor): no entry outside the page is read."""
        d = self.dialect
        asked = [("at >= ?", since and d.time(since)), ("at < ?", until and d.time(until)),
                 ("actor = ?", actor), ("seq < ?", before), ("seq > ?", after)]
        clauses = [sql for sql, value in asked if value is not None]
        params: list[Any] = [value for _, value in asked if value is not None]
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        way = "ASC" if after is not None else "DESC"
        with self._read_cx() as cx:
            rows = cx.execute(self._q(f"SELECT seq, at, actor, action, target, details FROM audit{where}"
                                      f" ORDER BY seq {way} LIMIT ?"), [*params, limit]).fetchall()
        return [(int(seq), AuditEvent(at=at, actor=who, action=action, target=target,
                                      details=self._doc(details)))
                for seq, at, who, action, target, details in rows]

    # --- key-value with expiry (the database's clock decides what has expired) ----------------
    def kv_get(self, namespace: str, key: str) -> Any | None:
        with self._cx() as cx:
            row = cx.execute(self._q(
                "SELECT value FROM kv WHERE namespace = ? AND key = ?"
                f" AND (expires_at IS NULL OR expires_at > {self.dialect.now})"), (namespace, key)).fetchone()
        return self._doc(row[0]) if row else None

    def kv_get_many(self, namespace: str, keys: Sequence[str]) -> dict[str, Any]:
        """One statement for all of them (a province's 92 communes' documents: one round trip, not 92)."""
        if not keys:
            return {}
        d = self.dialect
        with self._cx() as cx:
            rows = cx.execute(self._q(
                f"SELECT key, value FROM kv WHERE namespace = ? AND {d.in_list('key')}"
                f" AND (expires_at IS NULL OR expires_at > {d.now})"),
                (namespace, d.list_param(list(dict.fromkeys(keys))))).fetchall()
        return {key: self._doc(value) for key, value in rows}

    def kv_put(self, namespace: str, key: str, value: Any, ttl_seconds: int | None = None) -> None:
        with self._wx() as cx:
            cx.execute(self._q(
                "INSERT INTO kv (namespace, key, value, expires_at)"
                f" VALUES (?, ?, ?, {self.dialect.expires()})"
                " ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value,"
                " expires_at = excluded.expires_at"),
                (namespace, key, self.dialect.jsonb(value), ttl_seconds))
        self._kv_puts += 1
        if self._kv_puts % 500 == 0:
            self.purge_expired_kv()

    def kv_delete(self, namespace: str, key: str) -> None:
        with self._wx() as cx:
            cx.execute(self._q("DELETE FROM kv WHERE namespace = ? AND key = ?"), (namespace, key))

    def kv_cas(
        self, namespace: str, key: str, expected: Any | None, new: Any, ttl_seconds: int | None = None
    ) -> bool:
        """Atomic across threads and processes. From absent (or expired), one conditional upsert: of two
        racing processes the second finds the row live and changes nothing. From a value, a read under
        the row's lock (SQLite: the database's) and a write in the same transaction."""
        d = self.dialect
        upsert = (f"INSERT INTO kv (namespace, key, value, expires_at) VALUES (?, ?, ?, {d.expires()})"
                  " ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value,"
                  " expires_at = excluded.expires_at")
        if expected is None:
            with self._wx() as cx:
                expired = f" WHERE kv.expires_at IS NOT NULL AND kv.expires_at <= {d.now}"
                cur = cx.execute(self._q(upsert + expired),
                                 (namespace, key, d.jsonb(new), ttl_seconds))
                return bool(cur.rowcount == 1)
        with self._tx() as cx:
            row = cx.execute(self._q(
                "SELECT value FROM kv WHERE namespace = ? AND key = ?"
                f" AND (expires_at IS NULL OR expires_at > {d.now})"
                + d.for_update), (namespace, key)).fetchone()
            if row is None or self._doc(row[0]) != expected:
                return False
            cx.execute(self._q(upsert), (namespace, key, d.jsonb(new), ttl_seconds))
            return True

    def iter_durable_kv(self) -> Iterator[tuple[str, str, Any]]:
        with self._cx() as cx:
            rows = cx.execute("SELECT namespace, key, value FROM kv WHERE expires_at IS NULL"
                              " ORDER BY namespace, key").fetchall()  # a few settings, never a big table
        for namespace, key, value in rows:
            yield namespace, key, self._doc(value)

    def purge_expired_kv(self) -> int:
        """Remove expired entries (they are already invisible); called now and then by ``kv_put``."""
        with self._wx() as cx:
            return int(cx.execute(f"DELETE FROM kv WHERE expires_at <= {self.dialect.now}").rowcount)


class SqlTx:
    """The rules' view of one transaction of a ``SqlStore``."""

    def __init__(self, store: SqlStore, cx: Cx) -> None:
        self.store = store
        self.cx = cx

    def locked(self, instance_id: str) -> Stored | None:
        s = self.store
        row = self.cx.execute(s._q(
            "SELECT s.current, x.xml, s.deprecated_id, s.attachments, s.fields FROM submissions s"
            " JOIN submission_xml x ON x.instance_id = s.instance_id WHERE s.instance_id = ?"
            + (" FOR UPDATE OF s" if s.dialect.for_update else "")), (instance_id,)).fetchone()
        if row is None:
            return None
        return Stored(bool(row[0]), bytes(row[1]), row[2], frozenset(s._doc(row[3])),
                      rules.digest_of(s._doc(row[4])))

    def insert(self, sub: Submission, xml: bytes, blobs: list[BlobRow]) -> bool:
        return self.store._insert(self.cx, sub, xml, blobs)

    def retire(self, instance_id: str) -> None:
        self.cx.execute(self.store._q(
            f"UPDATE submissions SET current = {self.store.dialect.flag(False)} WHERE instance_id = ?"),
            (instance_id,))

    def add_attachments(self, instance_id: str, have: frozenset[str], blobs: list[BlobRow]) -> None:
        s = self.store
        s._attachment_rows(self.cx, instance_id, blobs)
        names = sorted({*have, *(b[0] for b in blobs)})
        self.cx.execute(s._q("UPDATE submissions SET attachments = ? WHERE instance_id = ?"),
                        (s.dialect.array(names), instance_id))

    def apply_entities(self, sub: Submission, work: EntityWork) -> None:
        SqlEntityTx(self.store, self.cx).apply_submission(sub, work)


def _answer_keys(spans: Sequence[Span], tallies: Sequence[Tally], sealed_key: str,
                 latest: Latest | None) -> list[str]:
    """The answers ``_grouped`` reads, once each."""
    return list(dict.fromkeys([sealed_key, *([latest.field] if latest else []),
                               *(s.date_field for s in spans if s.date_field),
                               *(c.field for t in tallies for c in t.where),
                               *(t.field for t in tallies if t.field)]))


@lru_cache(maxsize=512)
def _translate(stmt: str, mark: str) -> str:
    """A statement with ``?`` placeholders in the engine's own style (once per statement)."""
    return stmt if mark == "?" else stmt.replace("?", mark)
