"""The embedded default store: one SQLite database in the data directory, attachments as files beside it.

``<data dir>/rasoat.sqlite3`` holds everything but attachment bytes, in the same tables as the
PostgreSQL backend (``sqlite_migrations`` mirrors ``pg_migrations``); attachments are content-addressed
files under ``<data dir>/attachments`` (``FileBlobStore``), written and fsync'd before the row that
names them commits. SQLite runs in WAL mode with ``synchronous=FULL``: a commit returns only once its
log frames are on the disk, so an acknowledged submission survives ``kill -9`` and a power cut, and
readers never wait for the writer. Writers serialise on ``BEGIN IMMEDIATE`` (across threads and
processes: a CLI command and the server may share a data directory), which makes the duplicate and
edit decisions of ``core.storage.rules`` atomic.

Writers of one process queue on a lock rather than on SQLite's busy handler (which polls with sleeps),
and new submissions are committed in groups: the first thread to find no commit running inserts every
claim queued meanwhile in one transaction (a savepoint each), so uploads that arrive together share
one flush. Each thread has its own connection; a streaming read (``iter_submissions``, ``iter_facts``,
``iter_audit``) takes a connection of its own for its lifetime, so it sees one consistent snapshot and
the thread may write meanwhile. A data directory in the earlier file format (before SQLite) is converted
on first open by ``core.storage.legacy``, verified, and its old files are left where they are.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rasoat.core.models import Submission, utcnow
from rasoat.core.problems import Problem
from rasoat.core.storage import legacy
from rasoat.core.storage.base import SubmissionQuery
from rasoat.core.storage.blobs import BlobStore, FileBlobStore
from rasoat.core.storage.migrations import migration_files
from rasoat.core.storage.rules import BlobRow
from rasoat.core.storage.sql import Dialect, SqlStore, ts

DB_NAME = "rasoat.sqlite3"
MIGRATIONS_PACKAGE = "rasoat.core.storage.sqlite_migrations"
BUSY_TIMEOUT_MS = 60_000
_FETCH = 2000
#: an indicator scan reads the whole table when the form holds more than 1/_SCAN_SHARE of its rows
_SCAN_SHARE = 8


class EmbeddedStore(SqlStore):
    """A :class:`Store` in one SQLite file; safe for several threads and processes at once."""

    dialect = Dialect()  # SQLite's: the statements themselves are SqlStore's

    def __init__(self, data_dir: Path, *, blobs: BlobStore | None = None, convert: bool = True) -> None:
        self.root = Path(data_dir)
        self.root.mkdir(parents=True, exist_ok=True)
        self.files_dir = self.root
        self.path = self.root / DB_NAME
        self.blobs = blobs or FileBlobStore(self.root / "attachments")
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_mutex = threading.Lock()
        self._idle_readers: list[sqlite3.Connection] = []
        self._write_lock = threading.RLock()
        self._gc = threading.Condition(threading.Lock())  # group commit of claims
        self._claims: list[_Claim] = []
        self._leading = False
        self._migrate()
        if convert and legacy.needs_conversion(self, self.root):  # resumes a conversion that was interrupted
            try:
                legacy.convert(self.root, self)
            except BaseException:
                self.close()
                raise

    # --- connections and schema ----------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                               timeout=BUSY_TIMEOUT_MS / 1000)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")  # a commit is on the disk when it returns
        conn.execute("PRAGMA foreign_keys = ON")
        # freed content is overwritten with zeros: plaintext replaced by its sealed form (core.protection)
        # does not linger in free pages of the file
        conn.execute("PRAGMA secure_delete = ON")
        with self._conns_mutex:
            self._conns.append(conn)
        return conn

    @property
    def _db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: ``BEGIN IMMEDIATE`` takes the database's write lock at once (waiting for
        another writer, in any process), so what is read inside it stays true until COMMIT."""
        with self._write_lock:
            conn = self._db
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextlib.contextmanager
    def _wx(self) -> Iterator[sqlite3.Connection]:
        with self._write_lock:
            yield self._db

    def purge_freed(self) -> None:
        """Rewrite the file and empty the write-ahead log, whose older frames may still hold replaced
        rows (secure_delete clears free pages of the file itself, not the log)."""
        with self._write_lock:
            conn = self._db
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def claim(self, sub: Submission, xml: bytes, blobs: list[BlobRow]) -> bool:
        """Insert a new submission unless its instanceID exists, committed with the claims of other
        threads that arrive meanwhile (group commit: one flush for all of them)."""
        op = _Claim(sub, xml, blobs)
        with self._gc:
            self._claims.append(op)
            while self._leading and not op.done:
                self._gc.wait()
            if op.done:
                return op.outcome()
            self._leading = True
        try:
            while not op.done:
                with self._gc:
                    batch, self._claims = self._claims, []
                self._commit_claims(batch)
                with self._gc:
                    for o in batch:
                        o.done = True
                    self._gc.notify_all()
        finally:
            with self._gc:
                self._leading = False
                self._gc.notify_all()
        return op.outcome()

    def _commit_claims(self, batch: list[_Claim]) -> None:
        results: list[tuple[_Claim, bool]] = []
        try:
            with self._tx() as conn:
                for op in batch:
                    conn.execute("SAVEPOINT claim")
                    try:
                        results.append((op, self._insert(conn, op.sub, op.xml, op.blobs)))
                    except Exception as exc:  # this claim's own error; the others go on
                        conn.execute("ROLLBACK TO claim")
                        op.error = exc
                    conn.execute("RELEASE claim")
        except BaseException as exc:  # nothing was committed: every claim of the batch failed
            for op in batch:
                op.error = op.error or exc
            return
        for op, inserted in results:
            op.result = inserted

    @contextlib.contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        """A connection for one streaming read, returned to a small pool afterwards."""
        with self._conns_mutex:
            conn = self._idle_readers.pop() if self._idle_readers else None
        if conn is None:
            conn = self._connect()
        try:
            yield conn
        finally:
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            with self._conns_mutex:
                self._idle_readers.append(conn)

    def _scan_hint(self, query: SubmissionQuery | None) -> str:
        """SQLite keeps no statistics here, so it reads a form's rows through an index and looks each
        row up in the table: when they are much of the table (a province's pledges) reading the table
        straight through costs about half the CPU (benchmarks/README.md, Indicators). The rows of the
        form (in the units asked for) are counted on an index first, about a fiftieth of the scan."""
        q = query or SubmissionQuery()
        if q.form_id is None or q.touched_above is not None:  # a few new rows: through the index
            return ""
        where, params = "form_id = ?", [q.form_id]
        if q.unit_codes is not None:
            where += " AND " + self.dialect.in_list("unit_code")
            params.append(self.dialect.list_param(list(q.unit_codes)))
        with self._cx() as cx:
            total = cx.execute("SELECT max(seq) FROM submissions").fetchone()[0] or 0
            (rows,) = cx.execute(f"SELECT count(*) FROM submissions WHERE {where}", params).fetchone()
        return " NOT INDEXED" if rows * _SCAN_SHARE > total else ""

    def _batches(self, stmt: str, params: Sequence[Any]) -> Iterator[Sequence[tuple]]:
        with self._reader() as conn:
            conn.execute("BEGIN")  # one snapshot for the whole read
            cur = conn.execute(stmt, params)
            while rows := cur.fetchmany(_FETCH):
                yield rows
            cur.close()

    def _migrate(self) -> None:
        files = migration_files(MIGRATIONS_PACKAGE)
        with self._tx() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,"
                " name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            current = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
            if current > len(files):
                raise Problem("storage.schema_newer", current=current, known=len(files))
            for number, name, text in files[current:]:
                for statement in _statements(text):
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version VALUES (?, ?, ?)", (number, name, ts(utcnow())))

    def snapshot(self, target: Path) -> int:
        """Copy the database, as one consistent moment, to a new file (SQLite's online backup: writers
        go on meanwhile); returns how many submissions the copy holds."""
        dest = sqlite3.connect(target)
        try:
            with self._reader() as conn:
                conn.backup(dest)
            return int(dest.execute("SELECT count(*) FROM submissions").fetchone()[0])
        finally:
            dest.close()

    def schema_version(self) -> int:
        return int(self._db.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0])

    def close(self) -> None:
        with self._conns_mutex:
            conns, self._conns, self._idle_readers = self._conns, [], []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()

    def __enter__(self) -> EmbeddedStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the engine: connections ----------------------------------------------------------------
    @contextlib.contextmanager
    def _cx(self) -> Iterator[sqlite3.Connection]:
        yield self._db


class _Claim:
    """A claim waiting for its group commit."""

    __slots__ = ("sub", "xml", "blobs", "result", "error", "done")

    def __init__(self, sub: Submission, xml: bytes, blobs: list[BlobRow]) -> None:
        self.sub, self.xml, self.blobs = sub, xml, blobs
        self.result = False
        self.error: BaseException | None = None
        self.done = False

    def outcome(self) -> bool:
        if self.error is not None:
            raise self.error
        return self.result


def _statements(script: str) -> Iterator[str]:
    """The statements of a migration file, whole (a trigger's body holds semicolons of its own)."""
    buf = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--") and not buf.strip():
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                yield buf
            buf = ""
    if buf.strip():
        yield buf
