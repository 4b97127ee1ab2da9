"""One writer at a time, across threads and processes: a re-entrant thread lock plus ``flock``
(``msvcrt.locking`` on Windows).

TinyDB and our append-only segments are not safe for two writers, and the server and a CLI command
(or a second server) may share one data directory. Every write takes the lock of the area it touches;
readers take none (files are replaced atomically, appends end with a newline a reader waits for).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]
    import msvcrt


def _lock_fd(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    while True:  # msvcrt's blocking mode gives up after 10 s; wait as long as it takes
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return
        except OSError:
            time.sleep(0.005)


def _unlock_fd(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
    else:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


class InterProcessLock:
    """An exclusive lock on ``path`` held by at most one thread of one process at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._pid = os.getpid()
        self._owner: int | None = None  # thread holding it

    def _file(self) -> int:
        if self._fd is None or self._pid != os.getpid():  # reopen after fork: flock is per open file
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            self._pid = os.getpid()
        return self._fd

    def acquire(self) -> bool:
        """Take the lock; True when this is the outermost acquisition (the caller may refresh state)."""
        self._thread_lock.acquire()
        if self._depth == 0:
            try:
                _lock_fd(self._file())
            except BaseException:
                self._thread_lock.release()
                raise
        self._depth += 1
        self._owner = threading.get_ident()
        return self._depth == 1

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._owner = None
            if self._fd is not None:
                _unlock_fd(self._fd)
        self._thread_lock.release()

    def held_by_me(self) -> bool:
        """Whether the calling thread holds the lock (it must not then wait for another thread that
        needs it)."""
        return self._owner == threading.get_ident()

    @contextmanager
    def held(self) -> Iterator[bool]:
        outermost = self.acquire()
        try:
            yield outermost
        finally:
            self.release()

    def close(self) -> None:
        with self._thread_lock:
            if self._fd is not None and self._depth == 0:
                os.close(self._fd)
                self._fd = None
