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
``count_submissions``, the indicator totals of ``aggregate``) go to a read replica, so exports and
indicators do not load the primary; they may then lag the primary by the replication delay. Everything
else reads and writes the primary.
"""

from __future__ import annotations

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
from rasoat.core.models import Submission
from rasoat.core.problems import Problem
from rasoat.core.storage import migrations, rules
from rasoat.core.storage.base import SaveOutcome
from rasoat.core.storage.blobs import BlobStore, FileBlobStore
from rasoat.core.storage.rules import BlobRow, safe_name
from rasoat.core.storage.sql import SUB_COLS, SUB_COLS_SQL, Dialect, SqlStore

MIGRATIONS_PACKAGE = "rasoat.core.storage.pg_migrations"
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

_SUB_PLACEHOLDERS = ", ".join(["%s"] * len(SUB_COLS))
_BULK_BATCH = 1000

# a submission in a bulk batch: (record, XML, attachments as given, their blob rows once written)
BulkItem = tuple[Submission, bytes, dict[str, bytes], list[BlobRow]]


class StoreUnavailable(Problem):
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


def _one(cur: psycopg.Cursor) -> tuple[Any, ...]:
    """The row of a statement that always returns one (an aggregate, RETURNING of a row locked before)."""
    row = cur.fetchone()
    if row is None:
        raise RuntimeError("PostgreSQL returned no row where one was certain")
    return row


def migration_files() -> list[tuple[int, str, str]]:
    """(number, file name, SQL) of every shipped migration, in order."""
    return migrations.migration_files(MIGRATIONS_PACKAGE)


class PgDialect(Dialect):
    """What PostgreSQL does differently from SQLite (see ``core.storage.sql``)."""

    mark = "%s"
    now = "now()"
    for_update = " FOR UPDATE"
    pages_by_count = False
    binary = ' COLLATE "C"'
    binary_param = '::text COLLATE "C"'
    entity_rev = "nextval('entity_rev')"
    # Central's advisory lock per entity UUID: two creates of one id, or an offline update held while its
    # predecessor commits, wait for each other instead of racing (no row to lock yet)
    entity_lock = "SELECT pg_advisory_xact_lock(hashtextextended('entity:' || ?, 0))"

    def expires(self) -> str:
        return "now() + make_interval(secs => ?::double precision)"

    def json(self, value: Any) -> Any:
        return Json(value)

    def jsonb(self, value: Any) -> Any:
        return Jsonb(value, dumps=to_json)  # to_json: what model_dump(mode="json") writes, faster

    def ordered_json(self, value: Any) -> Any:
        return Json(value)  # the json type keeps pyxform's key order as written

    def array(self, names: list[str]) -> Any:
        return names

    def load(self, raw: Any) -> Any:
        return raw  # JSON, JSONB and arrays arrive parsed (psycopg, with from_json as its loader)

    def flag(self, value: bool) -> Any:
        return bool(value)

    def time(self, value: datetime) -> Any:
        return value

    def time_load(self, raw: Any) -> datetime:
        return raw

    def in_list(self, column: str) -> str:
        return f"{column} = ANY(?)"

    def unindexed(self, column: str) -> str:
        return column  # not asked for (``pages_by_count``): the planner chooses

    def list_param(self, values: list[str]) -> Any:
        return values

    def member(self, key: str) -> tuple[str, Any] | None:
        return "(fields -> ?)::text", key

    def member_text(self, key: str) -> tuple[str, Any] | None:
        return "fields ->> ?", key

    find = "strpos"
    double = "double precision"
    materialized = "NOT MATERIALIZED"

    def plain_number(self, text: str) -> str:
        # {0,1}, not ?: statements are written with ? placeholders
        return f"({text} ~ '^-{{0,1}}([0-9]+\\.{{0,1}}[0-9]*|\\.[0-9]+)$')"

    def unique_violated(self, exc: Exception) -> str | None:
        if isinstance(exc, psycopg.errors.UniqueViolation):
            return exc.diag.constraint_name or "unique"
        return None


class PostgresStore(SqlStore):
    """A :class:`Store` on PostgreSQL (psycopg 3, a connection pool per process)."""

    dialect = PgDialect()

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
            raise StoreUnavailable("storage.postgres_refused", url=redact(url), reason=reason) from exc
        pool = ConnectionPool(
            url, min_size=min_size, max_size=max_size, kwargs={"autocommit": True}, configure=self._configure,
            open=False, name=f"rasoat-{self.schema or 'public'}-{role}",
        )
        try:
            pool.open(wait=True, timeout=timeout)
        except PoolTimeout as exc:
            pool.close()
            raise StoreUnavailable("storage.postgres_timeout", url=redact(url)) from exc
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

    _cx = _cur

    @contextmanager
    def _read_cx(self) -> Iterator[psycopg.Cursor]:
        with self._read_pool.connection() as conn, conn.cursor() as cur:
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
                raise StoreUnavailable("storage.schema_newer", current=current, known=len(files))
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

    # --- submissions ---------------------------------------------------------------------
    # --- the engine's primitives for core.storage.rules -----------------------------------
    def claim(self, sub: Submission, xml: bytes, blobs: list[BlobRow]) -> bool:
        """Claim the instanceID and write the row, its XML and attachments in one atomic statement."""
        names = [b[0] for b in blobs]
        with self._cur() as cur:
            cur.execute(
                f"WITH ins AS (INSERT INTO submissions ({SUB_COLS_SQL}) VALUES ({_SUB_PLACEHOLDERS})"
                "  ON CONFLICT (instance_id) DO NOTHING RETURNING instance_id),"
                " x AS (INSERT INTO submission_xml (instance_id, xml, md5)"
                "  SELECT instance_id, %s, %s FROM ins),"
                " a AS (INSERT INTO attachments (instance_id, name, blob_key, size, md5)"
                "  SELECT ins.instance_id, t.name, t.key, t.size, t.md5 FROM ins,"
                "  unnest(%s::text[], %s::text[], %s::bigint[], %s::text[]) AS t(name, key, size, md5))"
                " SELECT count(*) FROM ins",
                (
                    *self._sub_params(sub, names), xml, sub.xml_md5,  # rules.prepare checked it
                    names, [b[1] for b in blobs], [b[2] for b in blobs], [b[3] for b in blobs],
                ),
            )
            return _one(cur)[0] == 1

    def purge_freed(self) -> None:
        """Old row versions (replaced by ``rewrite_payload``) stay in the table files until a vacuum;
        VACUUM FULL rewrites the tables without them (the server's WAL archive is the operator's)."""
        with self._cur() as cur:
            cur.execute("VACUUM FULL submissions, submission_xml")

    def _batches(self, stmt: str, params: Sequence[Any]) -> Iterator[Sequence[tuple]]:
        """Rows through a server-side cursor, ``itersize`` at a time: memory stays flat for any size."""
        with (
            self._read_pool.connection() as conn,
            conn.transaction(),
            conn.cursor(name=f"rasoat_{uuid.uuid4().hex}") as cur,
        ):
            cur.execute(stmt, params)
            while rows := cur.fetchmany(self.itersize):
                yield rows

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
        for item_sub, xml, atts in batch:
            sub = rules.prepare(item_sub, bytes(xml))
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
            staging = f"COPY rasoat_bulk_staging (ord, {SUB_COLS_SQL}, xml, xml_hash) FROM STDIN"
            with cur.copy(staging) as copy:
                for n, (sub, xml, _atts, blobs) in enumerate(first.values()):
                    names = sorted(b[0] for b in blobs)
                    copy.write_row((n, *self._sub_params(sub, names), xml, sub.xml_md5))
            cur.execute(
                f"INSERT INTO submissions ({SUB_COLS_SQL}) SELECT {SUB_COLS_SQL} FROM rasoat_bulk_staging"
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

    def purge_expired_kv(self, limit: int = 10_000) -> int:
        """Remove expired entries (they are already invisible); called now and then by ``kv_put``."""
        with self._cur() as cur:
            cur.execute(
                "DELETE FROM kv WHERE ctid IN (SELECT ctid FROM kv WHERE expires_at <= now() LIMIT %s)",
                (limit,),
            )
            return cur.rowcount

