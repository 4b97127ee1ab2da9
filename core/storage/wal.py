"""Write-ahead log of the embedded store's submission changes: one flush makes a batch of saves durable.

Every change to submission files (a new submission, late attachments, a review, an edit marking the
old version replaced) is first appended here **with the bytes of every file it will write**, and the
log is flushed — one ``fdatasync`` for all the saves waiting at that moment (group commit). Only then
are the files published (renamed into place, with no fsync of their own). Hence:

- a save that returned survives ``kill -9`` and a power cut: after ``kill -9`` the next lock holder
  redoes the records its writer did not mark ``done``; after a reboot every record since the last
  checkpoint is redone (its files rewritten where they differ) before anything is read;
- nothing is visible that is not durable: a change is published only after its record was flushed;
- the log stays small: past ``MAX_BYTES`` the active segment is sealed, one ``syncfs`` makes every
  published file durable, and the sealed segments are deleted (a checkpoint).

Layout: ``wal/<NNNNNNNN>.log``; writers append to the newest segment. A record is framed as
``b"RW01" | u32 header length | u32 body length | header JSON | body | u32 crc32(header + body)`` so a
torn tail (a writer killed mid-append, a power cut) is recognised and cut off. Headers:
``{"t": token, "ids": [instanceIDs], "f": [[path relative to the data dir, size], ...]}`` (the body is
those files' bytes in order; a record without files is one whose files were fsync'd by themselves),
``{"done": [tokens]}`` and ``{"abort": [tokens]}``. Every append and every read happens under the
store's submissions lock, so a record without its ``done`` belongs to a writer that died or failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rasoat.core.storage.files import datasync, ensure_dir, fsync_dir, read_bytes

MAGIC = b"RW01"
_PREFIX = struct.Struct("<4sII")
_CRC = struct.Struct("<I")
SUFFIX = ".log"


@dataclass
class Record:
    """One change: the submissions it touches and the files (path relative to the data dir, bytes)."""

    token: str
    ids: list[str]
    files: list[tuple[str, bytes]] = field(default_factory=list)


def frame(header: dict, body: bytes = b"") -> bytes:
    head = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode()
    crc = zlib.crc32(body, zlib.crc32(head))
    return b"".join((_PREFIX.pack(MAGIC, len(head), len(body)), head, body, _CRC.pack(crc)))


def encode(rec: Record) -> bytes:
    header = {"t": rec.token, "ids": rec.ids, "f": [[rel, len(data)] for rel, data in rec.files]}
    return frame(header, b"".join(data for _, data in rec.files))


def parse(raw: bytes, start: int = 0) -> Iterator[tuple[int, dict, bytes]]:
    """(end offset, header, body) of each whole record from ``start``; stops at the first torn one."""
    pos, size = start, len(raw)
    while pos + _PREFIX.size <= size:
        magic, hlen, blen = _PREFIX.unpack_from(raw, pos)
        end = pos + _PREFIX.size + hlen + blen + _CRC.size
        if magic != MAGIC or end > size:
            return
        head = raw[pos + _PREFIX.size : pos + _PREFIX.size + hlen]
        body = raw[pos + _PREFIX.size + hlen : end - _CRC.size]
        if zlib.crc32(body, zlib.crc32(head)) != _CRC.unpack_from(raw, end - _CRC.size)[0]:
            return
        try:
            header = json.loads(head)
        except ValueError:
            return
        yield end, header, body
        pos = end


def to_record(header: dict, body: bytes) -> Record:
    files: list[tuple[str, bytes]] = []
    pos = 0
    for rel, size in header.get("f", ()):
        files.append((rel, body[pos : pos + size]))
        pos += size
    return Record(header["t"], list(header.get("ids", ())), files)


def segment_name(number: int) -> str:
    return f"{number:08d}{SUFFIX}"


class Wal:
    """The log's segments, as one process sees them. Every method is called with the lock held."""

    MAX_BYTES = 16 * 1024 * 1024

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self._number = 0  # the newest segment, which this process appends to ...
        self._fd: int | None = None  # ... open for appending (None: not looked yet)
        self._ino: int | None = None
        self._end = 0  # ... and how far it has been read
        # records read (or written) without their done/abort: token -> (segment number, record)
        self._pending: dict[str, tuple[int, Record]] = {}

    # --- segments -------------------------------------------------------------------------------
    def numbers(self) -> list[int]:
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        stems = (n[: -len(SUFFIX)] for n in names if n.endswith(SUFFIX))
        return sorted(int(stem) for stem in stems if stem.isdigit())

    def _path(self, number: int) -> Path:
        return self.dir / segment_name(number)

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self._ino = None, None

    def _open(self, number: int, offset: int) -> None:
        """Append to segment ``number`` (created, its directory entry made durable, if missing)."""
        self._close_fd()
        path = self._path(number)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        except FileNotFoundError:
            ensure_dir(self.dir)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            fsync_dir(self.dir)
        self._fd, self._ino, self._number, self._end = fd, os.fstat(fd).st_ino, number, offset

    def _current(self) -> bool:
        """Whether our open segment is still the newest (no other process sealed or removed it)."""
        if self._fd is None or os.path.exists(self._path(self._number + 1)):
            return False
        try:
            return os.stat(self._path(self._number)).st_ino == self._ino
        except FileNotFoundError:
            return False

    # --- reading ------------------------------------------------------------------------------------
    def _scan(self, number: int, start: int) -> int:
        """Read segment ``number`` from ``start`` into the pending records; cut a torn tail; return
        the end of its last whole record."""
        path = self._path(number)
        try:
            with open(path, "rb") as fh:
                fh.seek(start)
                raw = fh.read()
        except FileNotFoundError:
            return start
        end = 0
        for rec_end, header, body in parse(raw):
            end = rec_end
            if "t" in header:
                self._pending[header["t"]] = (number, to_record(header, body))
            for token in (*header.get("done", ()), *header.get("abort", ())):
                self._pending.pop(token, None)
        if end != len(raw):  # a torn record: nothing follows it (appends happen under the lock)
            os.truncate(path, start + end)
            fd = os.open(path, os.O_WRONLY)
            try:
                os.fsync(fd)  # else the torn bytes could come back after a power cut, ahead of new records
            finally:
                os.close(fd)
        return start + end

    def unfinished(self) -> list[Record]:
        """Records that no writer marked done or aborted: left by a writer that died, or whose
        publishing failed. Reads only what was appended since the last call (one ``stat`` when
        nothing was), and follows other processes to the newest segment."""
        if self._current():
            size = os.fstat(self._fd).st_size  # type: ignore[arg-type]
            if size != self._end:
                self._end = self._scan(self._number, self._end)
        else:
            known = self._fd is not None
            numbers = [n for n in self.numbers() if n >= self._number] if known else self.numbers()
            if known and self._number not in numbers:  # removed by a checkpoint, which redid them first
                self._pending = {t: nr for t, nr in self._pending.items() if nr[0] != self._number}
            end = 0
            for n in numbers:
                end = self._scan(n, self._end if known and n == self._number else 0)
            if numbers:
                self._open(numbers[-1], end)
            else:
                self._open(max(self._number + 1, 1), 0)
        return [rec for _, rec in self._pending.values()]

    def everything(self) -> list[Record]:
        """Every record in every segment, oldest first, except aborted ones (to redo after a reboot)."""
        records: list[Record] = []
        aborted: set[str] = set()
        for n in self.numbers():
            for _, header, body in parse(read_bytes(self._path(n)) or b""):
                if "t" in header:
                    records.append(to_record(header, body))
                aborted.update(header.get("abort", ()))
        return [r for r in records if r.token not in aborted]

    # --- writing --------------------------------------------------------------------------------------
    def append(self, records: list[Record]) -> None:
        """Append records in one write (durable only after ``flush``); a failed write is cut off."""
        if not self._current():
            self.unfinished()  # the caller recovered already: this only moves to the newest segment
        start = self._end
        data = b"".join(encode(r) for r in records)
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]  # type: ignore[arg-type]
        except BaseException:
            with contextlib.suppress(OSError):
                os.truncate(self._path(self._number), start)
            raise
        self._end = start + len(data)
        for rec in records:
            self._pending[rec.token] = (self._number, rec)

    def flush(self) -> None:
        """Make everything appended so far durable (one ``fdatasync``, whoever appended it)."""
        if self._fd is not None:
            datasync(self._fd)

    def settle(self, done: list[str], aborted: list[str] | None = None) -> None:
        """Mark records finished (``done``: published; ``aborted``: never to be published). Not flushed:
        after a reboot everything since the checkpoint is redone anyway. Records appended and neither
        done nor aborted stay pending: ``unfinished`` returns them to the next lock holder."""
        header: dict = {}
        if done:
            header["done"] = done
        if aborted:
            header["abort"] = aborted
        if not header:
            return
        data = frame(header)
        os.write(self._fd, data)  # type: ignore[arg-type]
        self._end += len(data)
        for token in (*done, *(aborted or ())):
            self._pending.pop(token, None)

    def size(self) -> int:
        """Bytes in the active segment."""
        return self._end

    def rotate(self) -> list[Path]:
        """Seal the active segment and start the next one; returns every segment up to the sealed one,
        to delete once a ``syncfs`` begun after this call returned (none while a record is pending)."""
        if self._pending:
            return []
        sealed = [self._path(n) for n in self.numbers() if n <= self._number]
        self._open(self._number + 1, 0)
        return sealed

    @staticmethod
    def remove(paths: list[Path]) -> None:
        """Delete sealed segments, oldest first (a later one never outlives an earlier one's deletion)."""
        for path in sorted(paths):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def reset(self) -> None:
        """Delete every segment and start an empty one (after a ``syncfs`` made every change durable)."""
        numbers = self.numbers()
        last = max([self._number, *numbers])
        self._close_fd()
        self.remove([self._path(n) for n in numbers])
        self._pending.clear()
        self._open(last + 1, 0)

    def close(self) -> None:
        self._close_fd()


def legacy_journal_ids(path: Path) -> list[str]:
    """Ids named in a journal.log of the store's earlier format (replayed once, then the file goes)."""
    ids: list[str] = []
    for line in (read_bytes(path) or b"").split(b"\n"):
        try:
            ids.extend(json.loads(line).get("ids", ()))
        except (ValueError, AttributeError, TypeError):
            continue
    return ids
