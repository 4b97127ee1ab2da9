"""Small TinyDB files, written atomically and durably, read through a cache that notices other writers.

TinyDB rewrites its whole file on every write, so each file here stays small by construction (forms,
rounds, a bucket of users, a bucket of one key-value namespace). Writes run under an inter-process
lock and replace the file atomically (``AtomicJSONStorage``); reads parse the file once and reuse the
result until the file's identity (inode, size, mtime) changes — so a write by another process is seen
by the very next read.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from rasoat.core.storage.files import atomic_write, ensure_dir
from rasoat.core.storage.lock import InterProcessLock
from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Table

T = TypeVar("T")
TABLE = "_default"


class AtomicJSONStorage(Storage):
    """TinyDB storage that replaces its file atomically and fsyncs it (never half-written)."""

    def __init__(self, path: str | Path, sync: bool = True) -> None:
        self.path = Path(path)
        self.sync = sync

    def read(self) -> dict[str, dict[str, Any]] | None:
        try:
            with open(self.path, "rb") as fh:
                raw = fh.read()
        except FileNotFoundError:
            return None
        return json.loads(raw) if raw else None

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        ensure_dir(self.path.parent)
        atomic_write(
            self.path, json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode(), self.sync
        )

    def close(self) -> None:
        pass


def _identity(st: os.stat_result) -> Any:
    """Which file this is: the inode (held open, so never reused); on Windows also size and mtime."""
    return (st.st_ino, st.st_size, st.st_mtime_ns) if os.name == "nt" else st.st_ino


class TinyFile:
    """One small TinyDB file: cached reads of its documents, locked atomic writes through TinyDB.

    The cache keeps the file it parsed open: as files are only ever replaced (never changed in
    place), "the path still names the inode we hold" means "nothing changed", and holding it open
    stops the file system from handing that inode number to a newer file.
    """

    def __init__(self, path: Path, lock: InterProcessLock, sync: bool = True) -> None:
        self.path = path
        self.lock = lock
        self.sync = sync
        self._ino: Any = None
        self._fd: int | None = None
        self._docs: list[dict[str, Any]] = []
        self._loaded = False
        self._mutex = threading.Lock()
        self.generation = 0  # bumped whenever a changed file was read, so derived caches can follow

    def docs(self) -> list[dict[str, Any]]:
        """The documents as stored now (shared list: callers must not mutate it)."""
        try:
            ino: Any = _identity(os.stat(self.path))
        except FileNotFoundError:
            ino = None
        with self._mutex:
            if self._loaded and ino == self._ino:
                return self._docs
            fd: int | None = None
            raw = b""
            if ino is not None:
                try:
                    fd = os.open(self.path, os.O_RDONLY)
                except FileNotFoundError:
                    fd = None
                else:
                    ino = _identity(os.fstat(fd))
                    with os.fdopen(os.dup(fd), "rb") as fh:
                        raw = fh.read()
                    if os.name == "nt":  # an open file cannot be replaced there
                        os.close(fd)
                        fd = -1
            if fd is None:
                ino = None
            data = json.loads(raw) if raw else {}
            if self._fd is not None and self._fd >= 0:
                os.close(self._fd)
            self._fd, self._ino, self._loaded = fd, ino, True
            self._docs = list(data.get(TABLE, {}).values())
            self.generation += 1
            return self._docs

    def close(self) -> None:
        with self._mutex:
            if self._fd is not None and self._fd >= 0:
                os.close(self._fd)
            self._fd, self._ino, self._loaded = None, None, False

    def write(self, change: Callable[[Table], T]) -> T:
        """Apply ``change`` to the table under the lock; TinyDB persists it atomically."""
        with self.lock.held():
            db = TinyDB(self.path, storage=AtomicJSONStorage, sync=self.sync)
            try:
                return change(db.table(TABLE, cache_size=0))
            finally:
                db.close()


class ChangeStamp:
    """A tiny file replaced after every change to a group of files (e.g. the user buckets), so a reader
    learns with one ``stat`` whether anything in the group changed, whichever process changed it.
    Like ``TinyFile`` it holds the file it last saw open, so that inode number cannot be reused."""

    def __init__(self, path: Path, lock: InterProcessLock) -> None:
        self.path = path
        self.lock = lock
        self._fd: int | None = None
        self._key: Any = None
        self._mutex = threading.Lock()

    def create(self) -> None:
        """Make sure the stamp exists (data dirs from before stamps have none)."""
        if not self.path.exists():
            with self.lock.held():
                if not self.path.exists():
                    self.bump()

    def bump(self) -> None:
        """Replace the stamp; call with the group's lock held, after the change. Not fsync'd: it only
        tells running processes to reread, and none survives a power cut."""
        ensure_dir(self.path.parent)
        atomic_write(self.path, secrets.token_hex(8).encode(), sync=False)

    def key(self) -> Any:
        """What the stamp is now (None when it is missing): equal keys mean nothing changed between."""
        try:
            ident = _identity(os.stat(self.path))
        except FileNotFoundError:
            return None
        with self._mutex:
            if ident == self._key:
                return ident
            if os.name == "nt":  # an open file cannot be replaced there; size and mtime are in the key
                self._key = ident
                return ident
            try:
                fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                return None
            if _identity(os.fstat(fd)) != ident:  # replaced again meanwhile: the next call catches up
                os.close(fd)
                return None
            if self._fd is not None:
                os.close(self._fd)
            self._fd, self._key = fd, ident
            return ident

    def close(self) -> None:
        with self._mutex:
            if self._fd is not None:
                os.close(self._fd)
            self._fd, self._key = None, None
