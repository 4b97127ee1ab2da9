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
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Table

from core.storage.files import atomic_write, ensure_dir
from core.storage.lock import InterProcessLock

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


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class TinyFile:
    """One small TinyDB file: cached reads of its documents, locked atomic writes through TinyDB."""

    def __init__(self, path: Path, lock: InterProcessLock, sync: bool = True) -> None:
        self.path = path
        self.lock = lock
        self.sync = sync
        self._cache: tuple[tuple[int, int, int] | None, list[dict[str, Any]]] | None = None
        self._mutex = threading.Lock()
        self.generation = 0  # bumped whenever a changed file was read, so derived caches can follow

    def docs(self) -> list[dict[str, Any]]:
        """The documents as stored now (shared list: callers must not mutate it)."""
        sig = _signature(self.path)
        with self._mutex:
            if self._cache is not None and self._cache[0] == sig:
                return self._cache[1]
        data = AtomicJSONStorage(self.path).read() if sig else None
        docs = list((data or {}).get(TABLE, {}).values())
        with self._mutex:
            self._cache = (sig, docs)
            self.generation += 1
        return docs

    def write(self, change: Callable[[Table], T]) -> T:
        """Apply ``change`` to the table under the lock; TinyDB persists it atomically."""
        with self.lock.held():
            db = TinyDB(self.path, storage=AtomicJSONStorage, sync=self.sync)
            try:
                return change(db.table(TABLE, cache_size=0))
            finally:
                db.close()
