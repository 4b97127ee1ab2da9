"""The PostgreSQL backend: one database shared by any number of server processes and machines.

Every decision that must be atomic across processes is made by the database: a submission row is
claimed with ``INSERT … ON CONFLICT (instance_id) DO NOTHING`` (two processes receiving the same
instanceID at once store it once; the loser then compares XML bytes under ``FOR UPDATE``: identical →
duplicate, else Conflict), and an edit locks the version it replaces with ``SELECT … FOR UPDATE``.
Processes keep no state: sessions, nonces and throttles live in the ``kv`` table with expiry times.

Raw XML is stored in the database (``submission_xml``), attachment bytes in a :class:`BlobStore`
(``files_dir/attachments`` by default, a shared path when several machines run the server), written
durably before the row that names them commits. The schema comes from numbered SQL files in
``core/storage/pg_migrations``, applied at open under an advisory lock.

The database URL may carry ``?schema=NAME`` to keep rasoat's tables in their own schema (tests use a
fresh schema per run); it is removed before the URL reaches libpq. With ``read_url`` (or
``RASOAT_READ_DATABASE_URL``) the streaming reads (``iter_submissions``, ``iter_facts``, ``iter_audit``,
``count_submissions``) go to a read replica, so exports and indicators do not load the primary; they
may then lag the primary by the replication delay. Everything else reads and writes the primary.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import os
import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.types.json import Json, Jsonb, set_json_loads
from psycopg_pool import ConnectionPool, PoolTimeout
from pydantic_core import from_json, to_json
from rasoat.core.models import AuditEvent, FormVersion, ReviewState, Round, Submission, User, utcnow
from rasoat.core.storage.base import Conflict, Fact, PageKey, SaveOutcome, Store, SubmissionQuery
from rasoat.core.storage.blobs import BlobStore, FileBlobStore, blob_key
from rasoat.core.storage.files import safe_name

MIGRATIONS_PACKAGE = "rasoat.core.storage.pg_migrations"
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_MIGRATION_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

SUB_COLS: tuple[str, ...] = (
    "instance_id", "form_id", "form_version", "round_id", "unit_code", "collector_id", "received_at",
    "xml_md5", "fields", "attachments", "expected_attachments", "review_state", "review_history",
    "deprecated_id", "current", "encrypted",
)
_SUB_COLS_SQL = ", ".join(SUB_COLS)
_SUB_PLACEHOLDERS = ", ".join(["%s"] * len(SUB_COLS))
_BULK_BATCH = 1000

# an attachment as the database records it: (name, blob key, size, md5)
BlobRow = tuple[str, str, int, str]
# a submission in a bulk batch: (record, XML, attachments as given, their blob rows once written)
BulkItem = tuple[Submission, bytes, dict[str, bytes], list[BlobRow]]


class StoreUnavailable(Exception):
    """The database cannot be reached, or its schema is newer than this version of rasoat."""


def split_schema(database_url: str) -> tuple[str, str | None]:
    """Take rasoat's own ``schema=`` query parameter out of a URL libpq would reject it in."""
    parts = urlsplit(database_url)
    if not parts.query:
        return database_url, None
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), None)
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


def redact(database_url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(database_url)
    if parts.password is None:
        return database_url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _one(cur: psycopg.Cursor) -> tuple[Any, ...]:
    """The row of a statement that always returns one (an aggregate, RETURNING of a row locked before)."""
    row = cur.fetchone()
    if row is None:
        raise RuntimeError("PostgreSQL returned no row where one was certain")
    return row


def migration_files() -> list[tuple[int, str, str]]:
    """(number, file name, SQL) of every shipped migration, in order."""
    out = []
    for entry in importlib.resources.files(MIGRATIONS_PACKAGE).iterdir():
        match = _MIGRATION_RE.match(entry.name)
        if match:
            out.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    out.sort()
    numbers = [n for n, _, _ in out]
    if numbers != list(range(1, len(out) + 1)):
        raise RuntimeError(f"migrations must be numbered 0001, 0002, … without gaps: {numbers}")
    return out


class PostgresStore(Store):
    """A :class:`Store` on PostgreSQL (psycopg 3, a connection pool per process)."""

    def __init__(
        self,
        database_url: str,
        files_dir: Path,
        schema: str | None = None,
        *,
        blobs: BlobStore | None = None,
        min_pool: int = 1,
        max_pool: int = 10,
        itersize: int = 2000,
        connect_timeout: float = 10.0,
        read_url: str | None = None,
    ) -> None:
        url, url_schema = split_schema(database_url)
        self.schema = schema or url_schema
        if self.schema is not None and not _SCHEMA_RE.match(self.schema):
            raise ValueError(f"tên schema không hợp lệ / invalid schema name: {self.schema!r}")
        self.files_dir = Path(files_dir)
        self.files_dir.mkdir(parents=True, exist_ok=True)  # the server's health check measures its disk
        self.blobs = blobs or FileBlobStore(self.files_dir / "attachments")
        self.itersize = itersize
        self._kv_puts = 0
        self._pool = self._open_pool(url, min_pool, max_pool, connect_timeout, "rw")
        # streaming reads (exports, indicators, listings) may go to a replica; writes never do
        read_url = read_url or os.environ.get("RASOAT_READ_DATABASE_URL") or None
        self._read_pool = self._pool
        if read_url:
            try:
                replica = split_schema(read_url)[0]
                self._read_pool = self._open_pool(replica, 1, max_pool, connect_timeout, "ro")
            except BaseException:
                self._pool.close()
                raise
        try:
            self._migrate()
        except BaseException:
            self.close()
            raise

    # --- connections and schema ----------------------------------------------------------
    def _open_pool(self, url: str, min_size: int, max_size: int, timeout: float, role: str) -> ConnectionPool:
        try:  # one direct attempt first: a refused or misconfigured connection says why, at once
            psycopg.connect(url, connect_timeout=max(1, int(timeout))).close()
        except psycopg.Error as exc:
            reason = " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or repr(exc)
            raise StoreUnavailable(
                f"không kết nối được PostgreSQL / cannot connect to PostgreSQL at {redact(url)}: {reason}"
            ) from exc
        pool = ConnectionPool(
            url, min_size=min_size, max_size=max_size, kwargs={"autocommit": True}, configure=self._configure,
            open=False, name=f"rasoat-{self.schema or 'public'}-{role}",
        )
        try:
            pool.open(wait=True, timeout=timeout)
        except PoolTimeout as exc:
            pool.close()
            raise StoreUnavailable(
                f"không kết nối được PostgreSQL / cannot connect to PostgreSQL at {redact(url)}"
            ) from exc
        return pool

    def _configure(self, conn: psycopg.Connection) -> None:
        """Every pooled connection talks UTC, sees only this store's schema, parses JSON in Rust."""
        set_json_loads(from_json, conn)  # about twice as fast as json.loads on submission fields
        conn.execute("SET TimeZone TO 'UTC'")
        if self.schema:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Cursor]:
        """A cursor inside one transaction, committed on success, rolled back on any exception."""
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield cur

    @contextmanager
    def _cur(self) -> Iterator[psycopg.Cursor]:
        """An autocommit cursor: each statement is its own (atomic) transaction."""
        with self._pool.connection() as conn, conn.cursor() as cur:
            yield cur

    def _migrate(self) -> None:
        """Apply missing migrations in one transaction, under a lock so concurrent starts do not race."""
        lock_name = f"rasoat-migrate:{self.schema or 'public'}"
        with self._tx() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (lock_name,))
            if self.schema:
                cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cur.execute("SELECT coalesce(max(version), 0) FROM schema_version")
            current = _one(cur)[0]
            files = migration_files()
            if current > len(files):
                raise StoreUnavailable(
                    f"cơ sở dữ liệu ở phiên bản lược đồ {current}, mới hơn bản rasoat này ({len(files)}) / "
                    f"database schema version {current} is newer than this rasoat ({len(files)})"
                )
            for number, name, text in files[current:]:
                cur.execute(text)
                cur.execute("INSERT INTO schema_version (version, name) VALUES (%s, %s)", (number, name))

    def schema_version(self) -> int:
        """The highest migration applied to this database."""
        with self._cur() as cur:
            cur.execute("SELECT coalesce(max(version), 0) FROM schema_version")
            return int(_one(cur)[0])

    def close(self) -> None:
        if self._read_pool is not self._pool:
            self._read_pool.close()
        self._pool.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- forms ---------------------------------------------------------------------------
    _FORM_COLS = "form_id, version, title, md5, media, encrypted, source, published_at"

    @staticmethod
    def _form(row: tuple) -> FormVersion:
        form_id, version, title, md5, media, encrypted, source, published_at = row
        return FormVersion(
            form_id=form_id, version=version, title=title, md5=md5, media=list(media),
            encrypted=encrypted, source=source, published_at=published_at,
        )

    def put_form(
        self, form: FormVersion, xml: bytes, schema: dict[str, Any], media: dict[str, bytes]
    ) -> None:
        """A published version's XForm never changes (phones cache it by md5); schema and media may."""
        xml = bytes(xml)
        for name in media:
            safe_name(name, "media file name")
        if form.md5 != md5_hex(xml):
            raise ValueError(f"form md5 {form.md5!r} is not the md5 of the XForm ({md5_hex(xml)})")
        with self._tx() as cur:
            cur.execute(
                f"INSERT INTO forms ({self._FORM_COLS}, xml, schema)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (form_id, version) DO UPDATE SET title = excluded.title,"
                " media = excluded.media, encrypted = excluded.encrypted, source = excluded.source,"
                " published_at = excluded.published_at, schema = excluded.schema"
                " WHERE forms.md5 = excluded.md5 RETURNING 1",
                (form.form_id, form.version, form.title, form.md5, list(form.media), form.encrypted,
                 form.source, form.published_at, xml, Json(schema)),
            )
            if cur.fetchone() is None:
                raise Conflict(
                    f"Biểu mẫu {form.form_id} phiên bản {form.version} đã có với nội dung khác / "
                    "this version is already published with a different XForm; change the version"
                )
            if media:
                cur.executemany(
                    "INSERT INTO form_media (form_id, version, name, data, md5) VALUES (%s, %s, %s, %s, %s)"
                    " ON CONFLICT (form_id, version, name)"
                    " DO UPDATE SET data = excluded.data, md5 = excluded.md5",
                    [(form.form_id, form.version, n, bytes(d), md5_hex(d)) for n, d in media.items()],
                )

    def get_form(self, form_id: str, version: str | None = None) -> FormVersion | None:
        with self._cur() as cur:
            if version is None:
                cur.execute(
                    f"SELECT {self._FORM_COLS} FROM forms WHERE form_id = %s"
                    " ORDER BY published_at DESC, seq DESC LIMIT 1",
                    (form_id,),
                )
            else:
                cur.execute(
                    f"SELECT {self._FORM_COLS} FROM forms WHERE form_id = %s AND version = %s",
                    (form_id, version),
                )
            row = cur.fetchone()
        return self._form(row) if row else None

    def list_forms(self, all_versions: bool = False) -> list[FormVersion]:
        with self._cur() as cur:
            if all_versions:
                cur.execute(f"SELECT {self._FORM_COLS} FROM forms ORDER BY form_id, published_at, seq")
            else:
                cur.execute(
                    f"SELECT DISTINCT ON (form_id) {self._FORM_COLS} FROM forms"
                    " ORDER BY form_id, published_at DESC, seq DESC"
                )
            return [self._form(r) for r in cur.fetchall()]

    def form_xml(self, form_id: str, version: str) -> bytes:
        with self._cur() as cur:
            cur.execute("SELECT xml FROM forms WHERE form_id = %s AND version = %s", (form_id, version))
            row = cur.fetchone()
        if row is None:
            raise KeyError(f"{form_id}@{version}")
        return bytes(row[0])

    def form_schema(self, form_id: str, version: str) -> dict[str, Any]:
        with self._cur() as cur:
            cur.execute("SELECT schema FROM forms WHERE form_id = %s AND version = %s", (form_id, version))
            row = cur.fetchone()
        if row is None:
            raise KeyError(f"{form_id}@{version}")
        return row[0]

    def form_media(self, form_id: str, version: str, name: str) -> bytes | None:
        with self._cur() as cur:
            cur.execute(
                "SELECT data FROM form_media WHERE form_id = %s AND version = %s AND name = %s",
                (form_id, version, name),
            )
            row = cur.fetchone()
        return bytes(row[0]) if row else None

    # --- rounds --------------------------------------------------------------------------
    def put_round(self, rnd: Round) -> None:
        with self._cur() as cur:
            cur.execute(
                "INSERT INTO rounds (id, data) VALUES (%s, %s)"
                " ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                (rnd.id, Jsonb(rnd.model_dump(mode="json"))),
            )

    def get_round(self, round_id: str) -> Round | None:
        with self._cur() as cur:
            cur.execute("SELECT data FROM rounds WHERE id = %s", (round_id,))
            row = cur.fetchone()
        return Round.model_validate(row[0]) if row else None

    def list_rounds(self) -> list[Round]:
        with self._cur() as cur:
            cur.execute("SELECT data FROM rounds")
            rounds = [Round.model_validate(r[0]) for r in cur.fetchall()]
        return sorted(rounds, key=lambda r: (r.created_at, r.id))

    def put_snapshot(self, round_id: str, data: dict[str, Any]) -> None:
        with self._cur() as cur:
            cur.execute(
                "INSERT INTO round_snapshots (round_id, data) VALUES (%s, %s)"
                " ON CONFLICT (round_id) DO UPDATE SET data = excluded.data, taken_at = now()",
                (round_id, Jsonb(data)),
            )

    def get_snapshot(self, round_id: str) -> dict[str, Any] | None:
        with self._cur() as cur:
            cur.execute("SELECT data FROM round_snapshots WHERE round_id = %s", (round_id,))
            row = cur.fetchone()
        return row[0] if row else None

    # --- users ---------------------------------------------------------------------------
    def put_user(self, user: User) -> None:
        try:
            with self._cur() as cur:
                cur.execute(
                    "INSERT INTO users (id, username, token_hash, data) VALUES (%s, %s, %s, %s)"
                    " ON CONFLICT (id) DO UPDATE SET username = excluded.username,"
                    " token_hash = excluded.token_hash, data = excluded.data",
                    (user.id, user.username, user.token_hash, Jsonb(user.model_dump(mode="json"))),
                )
        except psycopg.errors.UniqueViolation as exc:
            if exc.diag.constraint_name == "users_token_hash":
                raise Conflict("Mã truy cập trùng / Token already belongs to another user") from exc
            raise Conflict(f"Tên đăng nhập đã dùng / Username {user.username!r} is taken") from exc

    def _one_user(self, where: str, value: str) -> User | None:
        with self._cur() as cur:
            cur.execute(f"SELECT data FROM users WHERE {where} = %s ORDER BY seq LIMIT 1", (value,))
            row = cur.fetchone()
        return User.model_validate(row[0]) if row else None

    def get_user(self, user_id: str) -> User | None:
        return self._one_user("id", user_id)

    def get_user_by_name(self, username: str) -> User | None:
        return self._one_user("username", username)

    def get_user_by_token_hash(self, token_hash: str) -> User | None:
        return self._one_user("token_hash", token_hash)

    def list_users(self) -> list[User]:
        with self._cur() as cur:
            cur.execute("SELECT data FROM users")
            users = [User.model_validate(r[0]) for r in cur.fetchall()]
        return sorted(users, key=lambda u: (u.created_at, u.id))

    # --- submissions ---------------------------------------------------------------------
    @staticmethod
    def _sub_params(sub: Submission, attachments: list[str], current: bool = True) -> tuple:
        return (  # to_json writes what model_dump(mode="json") would, several times faster than json
            sub.instance_id, sub.form_id, sub.form_version, sub.round_id, sub.unit_code, sub.collector_id,
            sub.received_at, sub.xml_md5, Jsonb(sub.fields, dumps=to_json), attachments,
            list(sub.expected_attachments), ReviewState(sub.review_state).value,
            Jsonb(sub.review_history, dumps=to_json), sub.deprecated_id, current, sub.encrypted,
        )

    @staticmethod
    def _sub(row: tuple) -> Submission:
        return Submission.model_validate(dict(zip(SUB_COLS, row, strict=True)))

    def _put_blobs(self, attachments: dict[str, bytes]) -> list[BlobRow]:
        """Write attachment bytes durably (before any row names them): (name, key, size, md5) each."""
        for name in attachments:  # every backend refuses the same names, so stores stay interchangeable
            safe_name(name, "attachment name")
        out = []
        for name, data in attachments.items():
            data = bytes(data)
            key = blob_key(data)
            self.blobs.put(key, data)
            out.append((name, key, len(data), md5_hex(data)))
        return out

    @staticmethod
    def _insert_attachment_rows(cur: psycopg.Cursor, instance_id: str, rows: list[BlobRow]) -> None:
        if rows:
            cur.executemany(
                "INSERT INTO attachments (instance_id, name, blob_key, size, md5) VALUES (%s, %s, %s, %s, %s)"
                " ON CONFLICT (instance_id, name) DO NOTHING",
                [(instance_id, *r) for r in rows],
            )

    def save_submission(self, sub: Submission, xml: bytes, attachments: dict[str, bytes]) -> SaveOutcome:
        xml = bytes(xml)
        if sub.xml_md5 != md5_hex(xml):
            raise ValueError(f"xml_md5 {sub.xml_md5!r} is not the md5 of the XML ({md5_hex(xml)})")
        safe_name(sub.instance_id, "instanceID")  # the embedded store's limit: a copy either way must fit
        if sub.deprecated_id is not None and sub.review_state is ReviewState.received:
            sub = sub.model_copy(update={"review_state": ReviewState.edited})
        blobs = self._put_blobs(attachments)
        if sub.deprecated_id:
            return self._save_edit(sub, xml, blobs)
        if self._insert_new(sub, xml, blobs):
            return SaveOutcome.created
        return self._resend(sub.instance_id, xml, blobs)

    def _insert_new(self, sub: Submission, xml: bytes, blobs: list[BlobRow]) -> bool:
        """Claim the instanceID and write the row, its XML and attachments in one atomic statement."""
        blobs = sorted(blobs)
        names = [b[0] for b in blobs]
        with self._cur() as cur:
            cur.execute(
                f"WITH ins AS (INSERT INTO submissions ({_SUB_COLS_SQL}) VALUES ({_SUB_PLACEHOLDERS})"
                "  ON CONFLICT (instance_id) DO NOTHING RETURNING instance_id),"
                " x AS (INSERT INTO submission_xml (instance_id, xml, md5)"
                "  SELECT instance_id, %s, %s FROM ins),"
                " a AS (INSERT INTO attachments (instance_id, name, blob_key, size, md5)"
                "  SELECT ins.instance_id, t.name, t.key, t.size, t.md5 FROM ins,"
                "  unnest(%s::text[], %s::text[], %s::bigint[], %s::text[]) AS t(name, key, size, md5))"
                " SELECT count(*) FROM ins",
                (
                    *self._sub_params(sub, names), xml, sub.xml_md5,  # save_submission checked it
                    names, [b[1] for b in blobs], [b[2] for b in blobs], [b[3] for b in blobs],
                ),
            )
            return _one(cur)[0] == 1

    def _resend(self, instance_id: str, xml: bytes, blobs: list[BlobRow]) -> SaveOutcome:
        """A known instanceID: byte-identical XML of the current version adds missing attachments."""
        with self._tx() as cur:
            self._add_missing(cur, instance_id, xml, blobs)
        return SaveOutcome.duplicate

    def _add_missing(self, cur: psycopg.Cursor, instance_id: str, xml: bytes | None,
                     blobs: list[BlobRow]) -> None:
        cur.execute(
            "SELECT s.current, x.xml, s.attachments"
            " FROM submissions s JOIN submission_xml x USING (instance_id)"
            " WHERE s.instance_id = %s FOR UPDATE OF s",
            (instance_id,),
        )
        row = cur.fetchone()
        if row is None:
            raise Conflict(f"không có bản nộp / no submission {instance_id}")
        current, stored_xml, have = row
        if xml is not None:
            if not current:
                raise Conflict(
                    f"bản nộp {instance_id} đã được sửa bởi một phiên bản mới / "
                    f"submission {instance_id} was replaced by an edit"
                )
            if bytes(stored_xml) != xml:
                raise Conflict(
                    f"instanceID {instance_id} đã có với nội dung khác / "
                    f"instanceID {instance_id} already exists with different content"
                )
        missing = [b for b in blobs if b[0] not in have]
        if missing:
            self._insert_attachment_rows(cur, instance_id, missing)
            cur.execute(
                "UPDATE submissions SET attachments = %s WHERE instance_id = %s",
                (sorted({*have, *(b[0] for b in missing)}), instance_id),
            )

    def _save_edit(self, sub: Submission, xml: bytes, blobs: list[BlobRow]) -> SaveOutcome:
        """An edit names the version it replaces; that version is locked while the decision is made."""
        with self._tx() as cur:
            cur.execute(
                "SELECT current FROM submissions WHERE instance_id = %s FOR UPDATE", (sub.deprecated_id,)
            )
            row = cur.fetchone()
            if row is None:
                raise Conflict(
                    f"bản nộp được sửa {sub.deprecated_id} không tồn tại / "
                    f"edited submission {sub.deprecated_id} does not exist"
                )
            if not row[0]:  # already replaced: only a resend of the replacing version is acceptable
                cur.execute(
                    "SELECT 1 FROM submissions WHERE instance_id = %s AND deprecated_id = %s",
                    (sub.instance_id, sub.deprecated_id),
                )
                if cur.fetchone() is None:
                    raise Conflict(
                        f"bản nộp {sub.deprecated_id} đã được sửa trước đó / "
                        f"submission {sub.deprecated_id} was already replaced by another edit"
                    )
                self._add_missing(cur, sub.instance_id, xml, blobs)
                return SaveOutcome.duplicate
            # the new version holds exactly what was posted with it (as in the embedded store): a caller
            # wanting Central's carry-over passes the old version's files it still names
            rows = sorted(blobs)
            cur.execute(
                f"INSERT INTO submissions ({_SUB_COLS_SQL}) VALUES ({_SUB_PLACEHOLDERS})"
                " ON CONFLICT (instance_id) DO NOTHING RETURNING instance_id",
                self._sub_params(sub, [r[0] for r in rows]),
            )
            if cur.fetchone() is None:
                raise Conflict(
                    f"instanceID {sub.instance_id} đã tồn tại / instanceID {sub.instance_id} already exists"
                )
            cur.execute(
                "INSERT INTO submission_xml (instance_id, xml, md5) VALUES (%s, %s, %s)",
                (sub.instance_id, xml, sub.xml_md5),
            )
            self._insert_attachment_rows(cur, sub.instance_id, rows)
            cur.execute("UPDATE submissions SET current = false WHERE instance_id = %s", (sub.deprecated_id,))
        return SaveOutcome.created

    def add_attachment(self, instance_id: str, name: str, data: bytes) -> None:
        """Store a late attachment; a name already stored keeps its first bytes (as a resend would)."""
        safe_name(name, "attachment name")
        if self.get_submission(instance_id) is None:
            raise KeyError(f"Không có bản ghi / No submission {instance_id!r}")
        blobs = self._put_blobs({name: data})
        with self._tx() as cur:
            self._add_missing(cur, instance_id, None, blobs)

    def get_submission(self, instance_id: str) -> Submission | None:
        with self._cur() as cur:
            cur.execute(f"SELECT {_SUB_COLS_SQL} FROM submissions WHERE instance_id = %s", (instance_id,))
            row = cur.fetchone()
        return self._sub(row) if row else None

    def submission_xml(self, instance_id: str) -> bytes | None:
        with self._cur() as cur:
            cur.execute("SELECT xml FROM submission_xml WHERE instance_id = %s", (instance_id,))
            row = cur.fetchone()
        return bytes(row[0]) if row else None

    def attachment(self, instance_id: str, name: str) -> bytes | None:
        with self._cur() as cur:
            cur.execute(
                "SELECT blob_key FROM attachments WHERE instance_id = %s AND name = %s", (instance_id, name)
            )
            row = cur.fetchone()
        return self.blobs.get(row[0]) if row else None

    def attachment_info(self, instance_id: str) -> list[dict[str, Any]]:
        """Name, size, md5 and blob key of each stored attachment (verification, admin tools)."""
        with self._cur() as cur:
            cur.execute(
                "SELECT name, size, md5, blob_key FROM attachments"
                " WHERE instance_id = %s ORDER BY added_at, name",
                (instance_id,),
            )
            return [dict(zip(("name", "size", "md5", "blob_key"), r, strict=True)) for r in cur.fetchall()]

    @staticmethod
    def _where(query: SubmissionQuery | None) -> tuple[str, list[Any]]:
        q = query or SubmissionQuery()
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("form_id", q.form_id), ("form_version", q.form_version), ("round_id", q.round_id),
            ("collector_id", q.collector_id),
        ):
            if value is not None:
                clauses.append(f"{column} = %s")
                params.append(value)
        if q.unit_codes is not None:
            clauses.append("unit_code = ANY(%s)")
            params.append(list(q.unit_codes))
        if q.review_states is not None:
            clauses.append("review_state = ANY(%s)")
            params.append([ReviewState(s).value for s in q.review_states])
        if q.received_from is not None:
            clauses.append("received_at >= %s")
            params.append(q.received_from)
        if q.received_to is not None:
            clauses.append("received_at < %s")
            params.append(q.received_to)
        if q.current_only:
            clauses.append("current")
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def iter_submissions(self, query: SubmissionQuery | None = None) -> Iterator[Submission]:
        where, params = self._where(query)
        stmt = f"SELECT {_SUB_COLS_SQL} FROM submissions{where} ORDER BY received_at, seq"
        for row in self._stream(stmt, params):
            yield self._sub(row)

    def page_submissions(
        self,
        query: SubmissionQuery | None = None,
        *,
        limit: int,
        after: PageKey | None = None,
        descending: bool = False,
    ) -> list[Submission]:
        """A row-value comparison on ``(received_at, instance_id)`` that the ``submissions_page`` index
        serves; ``COLLATE "C"`` orders ids by code point, as Python and the embedded store do."""
        if limit <= 0:
            return []
        where, params = self._where(query)
        if after is not None:
            op = "<" if descending else ">"
            where += (" AND " if where else " WHERE ") + (
                f'(received_at, instance_id COLLATE "C") {op} (%s, %s::text COLLATE "C")'
            )
            params += [after.received_at, after.instance_id]
        way = "DESC" if descending else "ASC"
        stmt = (f"SELECT {_SUB_COLS_SQL} FROM submissions{where} "
                f'ORDER BY received_at {way}, instance_id COLLATE "C" {way} LIMIT %s')
        with self._read_pool.connection() as conn, conn.cursor() as cur:
            cur.execute(stmt, [*params, limit])
            return [self._sub(row) for row in cur.fetchall()]

    def iter_facts(self, query: SubmissionQuery | None, field_paths: Sequence[str]) -> Iterator[Fact]:
        """Indicator scans, no models and no order (the engine sums; as the embedded store's): each asked
        key is its own column, ``(fields -> key)::text`` (NULL when absent). A JSON string without a
        backslash is its text between the quotes, so most values need no JSON parse; anything else (a
        repeat's rows, an escaped string) is parsed. See benchmarks/README.md (Indicators) for figures."""
        paths = list(dict.fromkeys(field_paths))
        where, params = self._where(query)
        stmt = (
            "SELECT instance_id, round_id, unit_code, received_at, review_state"
            f"{', (fields -> %s)::text' * len(paths)} FROM submissions{where}"
        )
        for row in self._stream(stmt, [*paths, *params]):
            values = {}
            for path, value in zip(paths, row[5:], strict=True):
                if value is not None:
                    plain = value[0] == '"' and "\\" not in value
                    values[path] = value[1:-1] if plain else from_json(value)
            yield Fact(row[0], row[1], row[2], row[3], row[4], values)

    def _stream(self, stmt: str, params: list[Any]) -> Iterator[tuple]:
        """Rows through a server-side cursor, ``itersize`` at a time: memory stays flat for any size."""
        with (
            self._read_pool.connection() as conn,
            conn.transaction(),
            conn.cursor(name=f"rasoat_{uuid.uuid4().hex}") as cur,
        ):
            cur.itersize = self.itersize
            cur.execute(stmt, params)
            yield from cur

    def count_submissions(self, query: SubmissionQuery | None = None) -> int:
        where, params = self._where(query)
        with self._read_pool.connection() as conn, conn.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM submissions{where}", params)
            return int(_one(cur)[0])

    def set_review(self, instance_id: str, state: ReviewState, comment: str, actor: str) -> Submission:
        state = ReviewState(state)
        with self._tx() as cur:
            cur.execute(
                "SELECT review_state FROM submissions WHERE instance_id = %s FOR UPDATE", (instance_id,)
            )
            row = cur.fetchone()
            if row is None:
                raise KeyError(f"Không có bản ghi / No submission {instance_id!r}")
            entry = {"at": utcnow().isoformat(), "actor": actor, "from": row[0], "to": state.value,
                     "comment": comment}
            cur.execute(
                f"UPDATE submissions SET review_state = %s, review_history = review_history || %s"
                f" WHERE instance_id = %s RETURNING {_SUB_COLS_SQL}",
                (state.value, Jsonb([entry]), instance_id),
            )
            return self._sub(_one(cur))

    def put_many_submissions(self, items: Iterable[tuple[Submission, bytes, dict[str, bytes]]]) -> int:
        """Bulk load with COPY, ``_BULK_BATCH`` rows per transaction; edits and resends go one by one."""
        created = 0
        batch: list[tuple[Submission, bytes, dict[str, bytes]]] = []
        for item in items:
            if item[0].deprecated_id:  # an edit needs the version it replaces to be stored first
                created += self._bulk(batch)
                batch = []
                created += self.save_submission(*item) is SaveOutcome.created
                continue
            batch.append(item)
            if len(batch) >= _BULK_BATCH:
                created += self._bulk(batch)
                batch = []
        return created + self._bulk(batch)

    def _bulk(self, batch: list[tuple[Submission, bytes, dict[str, bytes]]]) -> int:
        if not batch:
            return 0
        first: dict[str, BulkItem] = {}
        later: list[tuple[Submission, bytes, dict[str, bytes]]] = []
        for sub, xml, atts in batch:
            if sub.xml_md5 != md5_hex(xml):
                raise ValueError(f"xml_md5 {sub.xml_md5!r} of {sub.instance_id} is not the md5 of its XML")
            safe_name(sub.instance_id, "instanceID")
            for name in atts:
                safe_name(name, "attachment name")
            if sub.instance_id in first:
                later.append((sub, xml, atts))
            else:
                first[sub.instance_id] = (sub, bytes(xml), atts, [])
        # durable blob writes wait on the disk, not the CPU: several at once
        with_files = [v for v in first.values() if v[2]]
        if with_files:
            with ThreadPoolExecutor(max_workers=8) as pool:
                for (_sub, _xml, _atts, rows), blobs in zip(
                    with_files, pool.map(self._put_blobs, [v[2] for v in with_files]), strict=True
                ):
                    rows.extend(blobs)
        for attempt in range(3):  # two bulk loads sharing instanceIDs may deadlock: PostgreSQL aborts one
            try:
                new_ids = self._bulk_insert(first)
                break
            except psycopg.errors.DeadlockDetected:
                if attempt == 2:
                    raise
        # stored before this batch, or sent twice within it: the one-by-one rules decide (and may raise)
        for iid, (sub, xml, atts, _blobs) in first.items():
            if iid not in new_ids:
                self.save_submission(sub, xml, atts)
        for sub, xml, atts in later:
            self.save_submission(sub, xml, atts)
        return len(new_ids)

    def _bulk_insert(self, first: dict[str, BulkItem]) -> set[str]:
        """One transaction: COPY into a staging table, claim the new instanceIDs, add XML and attachments."""
        with self._tx() as cur:
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS rasoat_bulk_staging"
                " (ord integer, LIKE submissions INCLUDING DEFAULTS, xml bytea, xml_hash text)"
                " ON COMMIT DELETE ROWS"
            )
            staging = f"COPY rasoat_bulk_staging (ord, {_SUB_COLS_SQL}, xml, xml_hash) FROM STDIN"
            with cur.copy(staging) as copy:
                for n, (sub, xml, _atts, blobs) in enumerate(first.values()):
                    names = sorted(b[0] for b in blobs)
                    copy.write_row((n, *self._sub_params(sub, names), xml, sub.xml_md5))
            cur.execute(
                f"INSERT INTO submissions ({_SUB_COLS_SQL}) SELECT {_SUB_COLS_SQL} FROM rasoat_bulk_staging"
                " ORDER BY ord ON CONFLICT (instance_id) DO NOTHING RETURNING instance_id"
            )
            new_ids = {r[0] for r in cur.fetchall()}
            cur.execute(
                "INSERT INTO submission_xml (instance_id, xml, md5)"
                " SELECT instance_id, xml, xml_hash FROM rasoat_bulk_staging WHERE instance_id = ANY(%s)",
                (list(new_ids),),
            )
            with cur.copy("COPY attachments (instance_id, name, blob_key, size, md5) FROM STDIN") as copy:
                for iid in new_ids:
                    for blob in first[iid][3]:
                        copy.write_row((iid, *blob))
        return new_ids

    # --- audit ---------------------------------------------------------------------------
    def append_audit(self, event: AuditEvent) -> None:
        with self._cur() as cur:
            cur.execute(
                "INSERT INTO audit (at, actor, action, target, details) VALUES (%s, %s, %s, %s, %s)",
                (event.at, event.actor, event.action, event.target,
                 Jsonb(event.model_dump(mode="json", include={"details"})["details"])),
            )

    def iter_audit(self, since: datetime | None = None, actor: str | None = None) -> Iterator[AuditEvent]:
        clauses: list[str] = []
        params: list[Any] = []
        if since is not None:
            clauses.append("at >= %s")
            params.append(since)
        if actor is not None:
            clauses.append("actor = %s")
            params.append(actor)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        for at, who, action, target, details in self._stream(
            f"SELECT at, actor, action, target, details FROM audit{where} ORDER BY seq", params
        ):
            yield AuditEvent(at=at, actor=who, action=action, target=target, details=details)

    # --- kv ------------------------------------------------------------------------------
    def kv_get(self, namespace: str, key: str) -> Any | None:
        with self._cur() as cur:
            cur.execute(
                "SELECT value FROM kv WHERE namespace = %s AND key = %s"
                " AND (expires_at IS NULL OR expires_at > now())",
                (namespace, key),
            )
            row = cur.fetchone()
        return row[0] if row else None

    def kv_put(self, namespace: str, key: str, value: Any, ttl_seconds: int | None = None) -> None:
        with self._cur() as cur:
            cur.execute(
                "INSERT INTO kv (namespace, key, value, expires_at)"
                " VALUES (%s, %s, %s, now() + make_interval(secs => %s::double precision))"
                " ON CONFLICT (namespace, key)"
                " DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
                (namespace, key, Jsonb(value), ttl_seconds),
            )
        self._kv_puts += 1
        if self._kv_puts % 500 == 0:
            self.purge_expired_kv()

    def iter_durable_kv(self) -> Iterator[tuple[str, str, Any]]:
        with self._cur() as cur:
            cur.execute("SELECT namespace, key, value FROM kv WHERE expires_at IS NULL"
                        " ORDER BY namespace, key")
            rows = cur.fetchall()  # a few settings per project, never a big table
        yield from rows

    def kv_delete(self, namespace: str, key: str) -> None:
        with self._cur() as cur:
            cur.execute("DELETE FROM kv WHERE namespace = %s AND key = %s", (namespace, key))

    def kv_cas(
        self, namespace: str, key: str, expected: Any | None, new: Any, ttl_seconds: int | None = None
    ) -> bool:
        """One statement: a concurrent writer of the same key waits on the row lock, and then sees
        the row changed (READ COMMITTED re-checks the WHERE on the new version), so one of two wins."""
        with self._cur() as cur:
            if expected is None:  # absent, or present but expired
                cur.execute(
                    "INSERT INTO kv (namespace, key, value, expires_at)"
                    " VALUES (%s, %s, %s, now() + make_interval(secs => %s::double precision))"
                    " ON CONFLICT (namespace, key)"
                    " DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at"
                    " WHERE kv.expires_at IS NOT NULL AND kv.expires_at <= now()",
                    (namespace, key, Jsonb(new), ttl_seconds),
                )
            else:
                cur.execute(
                    "UPDATE kv SET value = %s,"
                    " expires_at = now() + make_interval(secs => %s::double precision)"
                    " WHERE namespace = %s AND key = %s AND value = %s"
                    " AND (expires_at IS NULL OR expires_at > now())",
                    (Jsonb(new), ttl_seconds, namespace, key, Jsonb(expected)),
                )
            return cur.rowcount == 1

    def purge_expired_kv(self, limit: int = 10_000) -> int:
        """Remove expired entries (they are already invisible); called now and then by ``kv_put``."""
        with self._cur() as cur:
            cur.execute(
                "DELETE FROM kv WHERE ctid IN (SELECT ctid FROM kv WHERE expires_at <= now() LIMIT %s)",
                (limit,),
            )
            return cur.rowcount
