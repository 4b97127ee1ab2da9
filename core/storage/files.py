"""Durable file primitives for the embedded store: atomic writes, directory fsyncs, safe names.

A file is never overwritten in place: bytes go to a temporary file in the same directory, are
fsync'd, renamed over the target and the directory is fsync'd, so a reader (or a reopened store after
``kill -9`` or a power cut) sees the old file or the new one, never half of one.

Names that come from clients (instanceIDs, attachment names) never become paths as given:
``safe_name`` rejects path syntax outright and percent-encodes everything but ``[A-Za-z0-9_.-~]``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import quote, unquote

MAX_NAME_BYTES = 200  # encoded; leaves room under the usual 255-byte file-name limit
TMP_PREFIX = ".tmp-"


_UNSAFE = re.compile(r"[^A-Za-z0-9_.~-]")


def pct(text: str) -> str:
    """``urllib.parse.quote(text, safe="")``, with a fast path for text that needs no quoting."""
    return quote(text, safe="") if _UNSAFE.search(text) else text


def safe_name(name: str, what: str = "name") -> str:
    """A file-system-safe encoding of ``name``; ValueError for path syntax, NUL or oversize names."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"Tên không hợp lệ / Invalid {what}: empty")
    if "\x00" in name:
        raise ValueError(f"Tên không hợp lệ / Invalid {what} {name!r}: contains NUL")
    if "/" in name or "\\" in name:
        raise ValueError(f"Tên không hợp lệ / Invalid {what} {name!r}: must not contain '/' or '\\'")
    if name in (".", ".."):
        raise ValueError(f"Tên không hợp lệ / Invalid {what} {name!r}: not a file name")
    encoded = pct(name)
    if encoded.startswith("."):  # hidden files and our temp files start with a dot
        encoded = "%2E" + encoded[1:]
    if len(encoded.encode()) > MAX_NAME_BYTES:
        raise ValueError(f"Tên quá dài / Invalid {what}: longer than {MAX_NAME_BYTES} bytes once encoded")
    return encoded


def unsafe_name(encoded: str) -> str:
    """The original name behind ``safe_name``."""
    return unquote(encoded)


#: fdatasync where the platform has it (not macOS or Windows), else fsync.
datasync = getattr(os, "fdatasync", os.fsync)


def _libc_syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None


_SYNCFS = _libc_syncfs()

#: Whether ``sync_filesystem`` can make a whole file system durable at once (else it fsyncs each path).
SYNCS_WHOLE_FS = _SYNCFS is not None or hasattr(os, "sync")


def syncfs(path: Path) -> None:
    """Flush every write to the file system holding ``path`` (Linux ``syncfs``; ``sync`` elsewhere):
    one flush makes thousands of files written without fsync durable at once."""
    if _SYNCFS is None:
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        if _SYNCFS(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    finally:
        os.close(fd)


def sync_filesystem(root: Path, paths: Iterable[Path] = ()) -> None:
    """Make files written under ``root`` durable: one ``syncfs``/``sync`` where the platform has one,
    else an fsync of each of ``paths`` (files and directories)."""
    if SYNCS_WHOLE_FS:
        syncfs(root)
        return
    for path in paths:
        if path.is_dir():
            fsync_dir(path)
            continue
        try:
            fd = os.open(path, os.O_RDWR)  # Windows fsyncs only descriptors open for writing
        except FileNotFoundError:
            continue
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def fsync_dir(directory: Path) -> None:
    """Make the entries of ``directory`` (creations, renames) durable."""
    if os.name == "nt":  # directories cannot be opened (NTFS journals the metadata itself)
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_dir(directory: Path) -> None:
    """Create ``directory`` and missing parents, fsyncing each parent that gained an entry."""
    if directory.is_dir():
        return
    ensure_dir(directory.parent)
    try:
        directory.mkdir()
    except FileExistsError:
        return
    fsync_dir(directory.parent)


def tmp_path(directory: Path, hint: str = "") -> Path:
    """A fresh temporary name in ``directory``; the pid lets start-up clean-up spare live writers."""
    return directory / f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(6)}{hint}"


def write_file(path: Path, data: bytes, sync: bool = True) -> None:
    """Write a new file (not atomic by itself: callers rename it into place)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, sync: bool = True, sync_dir: bool | None = None) -> None:
    """Replace ``path`` with ``data`` atomically (and durably when ``sync``). ``sync_dir=False`` keeps
    the fsync of the new bytes but not of the directory: after a power cut the file is then whole, old
    or new (for files whose change a write-ahead log can redo)."""
    tmp = tmp_path(path.parent)
    try:
        write_file(tmp, data, sync)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if sync if sync_dir is None else sync_dir:
        fsync_dir(path.parent)


def read_bytes(path: Path) -> bytes | None:
    """The file's bytes, or None when it does not exist."""
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def boot_id() -> str | None:
    """This boot of the machine (Linux); a change since the last open means a reboot, maybe a power cut."""
    raw = read_bytes(Path("/proc/sys/kernel/random/boot_id"))
    return raw.decode().strip() if raw else None


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (temp files of live writers must survive clean-up)."""
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would send CTRL+C there; rely on the age limit instead
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def tmp_owner_alive(name: str) -> bool:
    """For a ``.tmp-<pid>-…`` name: whether its writer may still be running."""
    try:
        pid = int(name[len(TMP_PREFIX) :].split("-", 1)[0])
    except ValueError:
        return False
    return pid == os.getpid() or pid_alive(pid)


def remove_tree(path: Path) -> None:
    """Remove a file or directory tree, ignoring what is already gone."""
    if path.is_dir() and not path.is_symlink():
        for child in path.iterdir():
            remove_tree(child)
        with contextlib.suppress(FileNotFoundError):
            path.rmdir()
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def clean_stale_tmp(directory: Path, max_age_s: float = 86400.0) -> int:
    """Remove temp files/dirs in ``directory`` left by writers that died (or older than a day)."""
    removed = 0
    now = time.time()
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if not entry.name.startswith(TMP_PREFIX):
            continue
        try:
            old = now - entry.stat(follow_symlinks=False).st_mtime > max_age_s
        except FileNotFoundError:
            continue
        if old or not tmp_owner_alive(entry.name):
            remove_tree(Path(entry.path))
            removed += 1
    return removed
