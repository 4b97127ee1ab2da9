"""The embedded default store: submission files as the source of truth, small TinyDB files, one data dir.

Why this shape (TinyDB rewrites its whole file on every write — 69 ms/insert at 1,000 documents):

- **Submissions** live in ``submissions/<aa>/<bb>/<instanceID>/`` (``aa/bb`` from a hash of the
  instanceID, so no directory grows past a few dozen entries): ``submission.xml``, ``att.<name>`` files and
  ``meta.json`` (the Submission record and where its index line lives). A new submission is written
  completely in ``staging/`` before the lock is taken and published by one rename of the whole
  directory: it exists completely or not at all. Client names are encoded by ``files.safe_name`` (path
  syntax and NUL are refused with ValueError).
- **Durability comes from a write-ahead log** (``wal``): a change to submission files is appended to
  the log with the bytes of every file it writes, and the log is flushed before anything is published.
  Saves are committed in groups: the first waiting thread leads — takes the lock, makes the
  duplicate/edit decision of every queued save, appends their records in one write, flushes once
  (``fdatasync``), publishes them all — while the others wait for their outcome. So a save costs one
  flush at concurrency 1 and a fraction of one under load (it was five or six: each file, the staging
  and target directories, a journal line). The published files get no fsync of their own: every
  ``Wal.MAX_BYTES`` of log a checkpoint makes them all durable with one ``syncfs`` and drops the log.
  After ``kill -9`` the next lock holder redoes the records its writer left unfinished; after a
  reboot (a new boot id) every record since the checkpoint is redone before anything is read. A
  submission whose files exceed ``inline_max`` (large photos) is not copied into the log: its files
  are fsync'd themselves, as is the rename that publishes them.
- **The index** (``subindex``) is a set of small append-only segments partitioned by form, month and
  commune; a save appends one line (cost independent of the number stored), listings stream segment by
  segment and filter on a text prefix without parsing JSON, counts come from per-segment summaries.
  It is derived data: redoing a log record also puts its submissions' lines right, and
  ``rebuild_index()`` (run automatically when the index is missing or a rebuild was interrupted)
  recreates it from every ``meta.json``.
- **Small records** (forms metadata, rounds, users in 16 buckets, key-value buckets per namespace) are
  TinyDB files that stay small by construction, written atomically and fsync'd (``tinyfile``). Form XML,
  schema and media, and round snapshots are plain files. The audit log is append-only JSON lines, one
  file per day, so it never becomes one growing table.
- **Concurrency**: each area has an inter-process lock (``flock`` + a thread lock) held by writers;
  readers take none and always read the current files (caches are keyed on file identity; the users'
  on one stamp file replaced at every change), so the server sees a CLI command's write at once. The
  duplicate/edit decision runs under the submissions lock, so it is atomic across threads and processes.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from pydantic_core import from_json
from rasoat.core.models import AuditEvent, FormVersion, ReviewState, Round, Submission, User, utcnow
from rasoat.core.storage import subindex as ix
from rasoat.core.storage import wal
from rasoat.core.storage.base import Conflict, Fact, PageKey, SaveOutcome, Store, SubmissionQuery
from rasoat.core.storage.files import (
    SYNCS_WHOLE_FS,
    atomic_write,
    boot_id,
    clean_stale_tmp,
    datasync,
    ensure_dir,
    fsync_dir,
    read_bytes,
    remove_tree,
    safe_name,
    sync_filesystem,
    tmp_path,
    unsafe_name,
    write_file,
)
from rasoat.core.storage.lock import InterProcessLock
from rasoat.core.storage.tinyfile import ChangeStamp, TinyFile
from tinydb import Query

log = logging.getLogger(__name__)

FORMAT = 1
XML_NAME = "submission.xml"
META_NAME = "meta.json"
ATT_PREFIX = "att."
USER_BUCKETS = 16
KV_BUCKETS = 64


def _h(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


@dataclass
class _Change:
    """What one operation will do, decided under the lock: the files it writes (path relative to the
    data dir, bytes), copied into the log, and how to publish it once the log is flushed."""

    ids: list[str]
    files: list[tuple[str, bytes]]
    apply: Callable[[], Iterable[Path]]  # returns the index segments it appended to


class _Op:
    """A write waiting for its group commit; ``decide`` runs under the lock and returns
    (result, change or None when nothing needs writing), or raises (Conflict, KeyError)."""

    __slots__ = ("ids", "decide", "result", "error", "finished")

    def __init__(self, ids: Iterable[str], decide: Callable[[], tuple[Any, _Change | None]]) -> None:
        self.ids = set(ids)
        self.decide = decide
        self.result: Any = None
        self.error: BaseException | None = None
        self.finished = False

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result


class EmbeddedStore(Store):
    """Everything in one data directory; safe for several threads and processes at once."""

    #: Submissions whose files total more than this are not copied into the log (fsync'd themselves).
    inline_max = 1024 * 1024

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir)
        ensure_dir(self.root)
        self._check_format()
        self.subs_dir = self.root / "submissions"
        self.index_dir = self.root / "index"
        self.staging = self.root / "staging"
        for d in (self.subs_dir, self.staging, self.root / "locks"):
            ensure_dir(d)
        self._locks = {
            a: InterProcessLock(self.root / "locks" / f"{a}.lock")
            for a in ("submissions", "forms", "rounds", "users", "kv", "audit")
        }
        db = self.root / "db"
        self._forms = TinyFile(db / "forms.json", self._locks["forms"])
        self._rounds = TinyFile(db / "rounds.json", self._locks["rounds"])
        self._users = [
            TinyFile(db / "users" / f"{i:02x}.json", self._locks["users"]) for i in range(USER_BUCKETS)
        ]
        self._users_stamp = ChangeStamp(db / "users.stamp", self._locks["users"])
        self._kv: dict[tuple[str, int], TinyFile] = {}
        self._kv_mutex = threading.Lock()
        self._users_cache: tuple[Any, dict[str, dict[str, User]]] | None = None
        # partition -> (open segment number, lines, size), a hint checked against the file at append
        self._parts: dict[str, tuple[int, int, int]] = {}
        self._audit_sizes: dict[str, int] = {}
        self._wal = wal.Wal(self.root / "wal")
        self._counter = ix.Counter()
        # group commit: queued operations, and whether a thread is leading a commit now
        self._gc = threading.Condition(threading.Lock())
        self._queue: list[_Op] = []
        self._leading = False
        # only where no syncfs/sync exists: what the next checkpoint must fsync one by one
        self._unsynced: set[Path] = set()
        self._checkpoint_paths: set[Path] = set()
        self._ckpt_mutex = threading.Lock()
        self._ckpt_sealed: list[Path] = []
        self._ckpt_thread: threading.Thread | None = None
        self._open_index()

    # --- opening, recovery, rebuild ---------------------------------------------------------------
    def _check_format(self) -> None:
        marker = self.root / "store.json"
        raw = read_bytes(marker)
        if raw is None:
            atomic_write(marker, json.dumps({"kind": "embedded", "format": FORMAT}).encode())
            return
        info = json.loads(raw)
        if info.get("format", 0) > FORMAT:
            raise RuntimeError(
                f"Dữ liệu mới hơn phiên bản này / Data dir {self.root} has format {info.get('format')}, "
                f"this rasoat reads up to {FORMAT}; upgrade rasoat"
            )

    @property
    def _ready_marker(self) -> Path:
        return self.root / "index.ready"

    def _open_index(self) -> None:
        for small in (self.root, self.root / "db", self.root / "db" / "users", self.root / "snapshots"):
            clean_stale_tmp(small)  # atomic writes a killed process left half-done
        self._users_stamp.create()
        with self._locks["submissions"].held():
            index_ready = self._ready_marker.exists() and (self.index_dir / "subs").is_dir()
            rebooted = self._rebooted()
            # the files first: what the log holds is redone before the index is looked at or rebuilt
            records = self._wal.everything() if rebooted else self._wal.unfinished()
            if records:
                self._wal.flush()
                for rec in records:
                    self._redo_files(rec.files)
            clean_stale_tmp(self.staging)
            if not index_ready:
                self.rebuild_index()  # ends with a checkpoint: the log is empty after it
            else:
                legacy = self.root / "journal.log"  # the store's earlier intent journal
                ids = wal.legacy_journal_ids(legacy) if legacy.exists() else []
                durable = (rebooted and bool(records)) or legacy.exists()  # many at once: one sync
                self._reconcile([*ids, *(i for rec in records for i in rec.ids)], sync=not durable)
                if durable:
                    sync_filesystem(self.root, self._unsynced)
                    self._unsynced.clear()
                    self._wal.reset()
                    with contextlib.suppress(FileNotFoundError):
                        legacy.unlink()
                elif records:
                    self._wal.settle([rec.token for rec in records])
            if rebooted:
                self._mark_boot()

    def _rebooted(self) -> bool:
        """Whether the machine (re)started since the store was last opened: a power cut may have lost
        any write that was not flushed, so everything the log holds is redone."""
        boot = boot_id()
        return boot is not None and read_bytes(self.root / "boot.id") != boot.encode()

    def _mark_boot(self) -> None:
        boot = boot_id()
        if boot is not None:
            atomic_write(self.root / "boot.id", boot.encode())

    def _sub_lock(self) -> contextlib.AbstractContextManager[bool]:
        return _RecoveringLock(self)

    def _recover(self) -> None:
        """Redo what a writer (this process or another, now dead) left between flushing its log records
        and publishing them. Called with the lock held."""
        records = self._wal.unfinished()
        if not records:
            return
        self._wal.flush()  # the writer may have died before its flush: durable before published
        for rec in records:
            self._redo_files(rec.files)
        self._reconcile(i for rec in records for i in rec.ids)
        self._wal.settle([rec.token for rec in records])

    def _redo_files(self, files: list[tuple[str, bytes]]) -> None:
        """Write a log record's files where they are missing or differ; a submission directory that
        does not exist is created whole (in staging, then one rename), ``meta.json`` always last."""
        by_dir: dict[Path, list[tuple[str, bytes]]] = {}
        for rel, data in files:
            path = self.root / rel
            if ".." in Path(rel).parts or Path(rel).is_absolute():
                log.warning("Bỏ qua đường dẫn lạ trong nhật ký / Skipping odd log path %r", rel)
                continue
            by_dir.setdefault(path.parent, []).append((path.name, data))
        for directory, entries in by_dir.items():
            entries.sort(key=lambda e: e[0] == META_NAME)
            if not SYNCS_WHOLE_FS:
                self._unsynced.update([directory, *(directory / n for n, _ in entries)])
            if not directory.is_dir():
                stage = tmp_path(self.staging)
                stage.mkdir()
                try:
                    for name, data in entries:
                        write_file(stage / name, data, sync=False)
                    os.makedirs(directory.parent, exist_ok=True)
                    os.rename(stage, directory)
                finally:
                    if stage.exists():
                        remove_tree(stage)
                continue
            for name, data in entries:
                if read_bytes(directory / name) != data:
                    atomic_write(directory / name, data, sync=False)

    def _reconcile(self, ids: Iterable[str], sync: bool = True) -> None:
        """Make the index (and derived meta fields) agree with the files of these submissions; each
        segment is rewritten once (fsync'd unless ``sync`` is False: the caller syncs the file system)."""
        updates: dict[Path, dict[str, bytes]] = {}

        def update(loc: str, sub: Submission) -> None:
            updates.setdefault(self.index_dir / "subs" / loc, {})[ix.line_id(sub)] = ix.encode_line(sub)

        for iid in dict.fromkeys(ids):
            path = self._sub_path(iid)
            clean_stale_tmp(path)  # a meta.json rewrite the dead writer left half-done
            loc_sub = self._read_meta_or_warn(path)
            if loc_sub is None:
                continue
            loc, sub = loc_sub
            clean_stale_tmp((self.index_dir / "subs" / loc).parent)
            stored = self._stored_attachments(path)
            if set(sub.attachments) != stored:
                sub = sub.model_copy(update={"attachments": sorted(stored)})
                self._write_meta(path, loc, sub)
            update(loc, sub)
            old_path = self._sub_path(sub.deprecated_id) if sub.deprecated_id else None
            old = self._read_meta_or_warn(old_path) if old_path else None
            if old_path and old and old[1].current:  # the edited version is no longer current
                replaced = old[1].model_copy(update={"current": False})
                self._write_meta(old_path, old[0], replaced)
                update(old[0], replaced)
        for seg, lines in updates.items():
            self._rewrite_segment(seg, lines, sync)
        self._parts.clear()

    def rebuild_index(self) -> int:
        """Recreate the index from every submission's ``meta.json``; returns how many were indexed."""
        with self._sub_lock():
            with contextlib.suppress(FileNotFoundError):
                self._ready_marker.unlink()
                fsync_dir(self.root)
            new = self.root / "index.new"
            remove_tree(new)
            count = 0
            replaced: list[str] = []
            overflow: dict[str, int] = {}
            touched: set[Path] = set()
            for path in self._iter_sub_dirs():
                clean_stale_tmp(path)
                loc_sub = self._read_meta_or_warn(path)
                if loc_sub is None:
                    continue
                loc, sub = loc_sub
                stored = self._stored_attachments(path)
                part = ix.partition_of(sub)
                if not loc.startswith(part + "/") or not loc.endswith(ix.SEG_SUFFIX):
                    n = overflow.get(part, 0)
                    overflow[part] = n + 1
                    loc = f"{part}/{ix.seg_name(900000 + n // ix.SEG_MAX_LINES)}"
                    self._write_meta(path, loc, sub)
                if set(sub.attachments) != stored:
                    sub = sub.model_copy(update={"attachments": sorted(stored)})
                    self._write_meta(path, loc, sub)
                if sub.deprecated_id:
                    replaced.append(sub.deprecated_id)
                seg = new / "subs" / loc
                ensure_dir(seg.parent)
                with open(seg, "ab") as fh:
                    fh.write(ix.encode_line(sub))
                touched.add(seg)
                count += 1
            for iid in replaced:
                loc_sub = self._read_meta(self._sub_path(iid))
                if loc_sub and loc_sub[1].current:
                    loc, old = loc_sub
                    old = old.model_copy(update={"current": False})
                    self._write_meta(self._sub_path(iid), loc, old)
                    self._rewrite_segment(new / "subs" / loc, {ix.line_id(old): ix.encode_line(old)}, False)
            for seg in touched:  # received order within a segment
                lines = ix.read_segment(seg)
                lines.sort(key=itemgetter(ix.C_TS))
                atomic_write(seg, "".join("\t".join(p) + "\n" for p in lines).encode(), sync=False)
            ensure_dir(new / "subs")
            if count or self._unsynced:  # files, meta fixes and new segments durable before the swap
                sync_filesystem(self.root, [*self._unsynced, *touched, *{s.parent for s in touched}])
                self._unsynced.clear()
            self._wal.reset()  # no log record may be redone over what was just rebuilt
            with contextlib.suppress(FileNotFoundError):
                (self.root / "journal.log").unlink()
            old_index = self.root / "index.old"
            remove_tree(old_index)
            if self.index_dir.exists():
                os.rename(self.index_dir, old_index)
            os.rename(new, self.index_dir)
            fsync_dir(self.root)
            remove_tree(old_index)
            self._parts.clear()
            self._mark_boot()
            atomic_write(
                self._ready_marker, json.dumps({"format": FORMAT, "at": utcnow().isoformat()}).encode()
            )
            return count

    def _iter_sub_dirs(self) -> Iterator[Path]:
        for a in sorted(os.listdir(self.subs_dir)):
            if a.startswith("."):
                continue
            for b in sorted(os.listdir(self.subs_dir / a)):
                if b.startswith("."):
                    continue
                shard = self.subs_dir / a / b
                clean_stale_tmp(shard)
                for name in sorted(os.listdir(shard)):
                    if not name.startswith("."):
                        yield shard / name

    # --- submission files ---------------------------------------------------------------------------
    def _sub_path(self, instance_id: str) -> Path:
        name = safe_name(instance_id, "instanceID")
        h = _h(instance_id)
        return self.subs_dir / h[:2] / h[2:4] / name

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    @staticmethod
    def _att_file(name: str) -> str:
        return ATT_PREFIX + safe_name(name, "attachment name")

    @staticmethod
    def _stored_attachments(path: Path) -> set[str]:
        try:
            names = os.listdir(path)
        except FileNotFoundError:
            return set()
        return {unsafe_name(n[len(ATT_PREFIX) :]) for n in names if n.startswith(ATT_PREFIX)}

    @staticmethod
    def _read_meta(path: Path) -> tuple[str, Submission] | None:
        raw = read_bytes(path / META_NAME)
        if raw is None:
            return None
        doc = json.loads(raw)
        return doc["loc"], Submission.model_validate(doc["sub"])

    def _read_meta_or_warn(self, path: Path) -> tuple[str, Submission] | None:
        """For recovery: an unreadable meta.json is reported and skipped, never fatal (nor deleted)."""
        try:
            return self._read_meta(path)
        except (ValueError, KeyError) as exc:
            log.warning("Bỏ qua bản ghi hỏng / Skipping unreadable %s: %s", path / META_NAME, exc)
            return None

    @staticmethod
    def _meta_bytes(loc: str, sub: Submission) -> bytes:
        return ('{"loc":' + json.dumps(loc) + ',"sub":' + sub.model_dump_json() + "}").encode()

    def _write_meta(self, path: Path, loc: str, sub: Submission) -> None:
        """Rewrite a meta.json outside the log (recovery, rebuild): fsync'd, a checkpoint or the
        rebuild's sync makes the rename durable."""
        atomic_write(path / META_NAME, self._meta_bytes(loc, sub), sync_dir=False)

    # --- index maintenance (callers hold the submissions lock) -------------------------------------------
    def _assign_segment(self, part: str) -> str:
        """The segment a new submission of ``part`` goes to (may run without the lock: a segment may
        then exceed its size by the number of concurrent writers, which is harmless)."""
        state = self._parts.get(part)
        if state is None:
            pdir = self.index_dir / "subs" / part
            segs = [s for s in ix.list_segments(pdir) if int(s[: -len(ix.SEG_SUFFIX)]) < 900000]
            if not segs:
                state = (0, 0, 0)
            else:
                raw = read_bytes(pdir / segs[-1]) or b""
                # size up to the last newline: a torn tail then differs and is repaired at append
                state = (int(segs[-1][: -len(ix.SEG_SUFFIX)]), raw.count(b"\n"), raw.rfind(b"\n") + 1)
            self._parts[part] = state
        segno, lines, size = state
        if lines >= ix.SEG_MAX_LINES or size >= ix.SEG_MAX_BYTES:
            segno, lines, size = segno + 1, 0, 0
            self._parts[part] = (segno, lines, size)
        return f"{part}/{ix.seg_name(segno)}"

    @staticmethod
    def _repair_tail(seg: Path) -> tuple[int, int]:
        """(lines, size) of a segment, cutting a torn last line left by a writer that was killed."""
        raw = read_bytes(seg) or b""
        end = raw.rfind(b"\n") + 1
        if end != len(raw):
            os.truncate(seg, end)
            fd = os.open(seg, os.O_WRONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        return raw.count(b"\n", 0, end), end

    def _append_line(self, loc: str, line: bytes) -> Path:
        """Append a new submission's line (caller holds the lock; not fsync'd: redoing the submission's
        log record restores it after a power cut, and a checkpoint makes it durable)."""
        seg = self.index_dir / "subs" / loc
        part, name = loc.rsplit("/", 1)
        state = self._parts.get(part)
        known = state[2] if state and ix.seg_name(state[0]) == name else None
        try:
            actual: int | None = os.stat(seg).st_size
        except FileNotFoundError:
            actual = None
        if actual is None:
            os.makedirs(seg.parent, exist_ok=True)
            fd = os.open(seg, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            lines = 0
        else:
            # another process appended, or a killed writer left a torn line: look at the file
            lines = self._repair_tail(seg)[0] if actual != known or state is None else state[1]
            fd = os.open(seg, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, line)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if state is None or ix.seg_name(state[0]) <= name:
            self._parts[part] = (int(name[: -len(ix.SEG_SUFFIX)]), lines + 1, size)
        return seg

    def _rewrite_segment(self, seg: Path, lines: dict[str, bytes], sync: bool = True) -> None:
        """Replace (or add) the lines of these ids in a segment, atomically (no write if unchanged).
        The new bytes are fsync'd (unless the caller syncs the file system itself), so a power cut
        leaves the old segment or the new one, whole; the lines that changed are put right again by
        redoing the log."""
        raw = read_bytes(seg)
        out: list[bytes] = []
        for parts in ix.parse_segment(raw):
            new = lines.pop(parts[ix.C_ID], None)
            out.append(new if new is not None else ("\t".join(parts) + "\n").encode())
        out.extend(lines.values())
        data = b"".join(out)
        if data == raw:
            return
        os.makedirs(seg.parent, exist_ok=True)
        atomic_write(seg, data, sync=sync, sync_dir=False)
        if not SYNCS_WHOLE_FS:
            self._unsynced.add(seg.parent)

    def _index_update(self, loc: str, sub: Submission) -> None:
        self._rewrite_segment(self.index_dir / "subs" / loc, {ix.line_id(sub): ix.encode_line(sub)})
        self._parts.pop(loc.rsplit("/", 1)[0], None)

    # --- group commit -----------------------------------------------------------------------------
    def _commit(self, op: _Op) -> Any:
        """Run ``op`` in the next group commit and return its result (or raise its error).

        The first thread to find no commit running leads: it takes the lock, decides every queued
        operation, appends their log records in one write, flushes once and publishes them, while the
        threads that queued meanwhile wait; it leads again as long as its own operation is not done
        (an operation touching an instanceID that an earlier one in the batch touches waits for the
        next batch, so decisions never depend on unpublished changes)."""
        if self._locks["submissions"].held_by_me():  # e.g. called under the lock: never wait for others
            self._run_batch([op])
            return op.outcome()
        with self._gc:
            self._queue.append(op)
            while self._leading and not op.finished:
                self._gc.wait()
            if op.finished:
                return op.outcome()
            self._leading = True
        sealed: list[Path] = []
        try:
            while not op.finished:
                with self._gc:
                    batch, self._queue = self._queue, []
                try:
                    deferred, more = self._run_batch(batch)
                except BaseException as exc:  # the lock or recovery failed: every waiting save fails
                    deferred, more = [], []
                    for o in batch:
                        if o.error is None and o.result is None:
                            o.error = exc
                sealed += more
                waiting = {id(o) for o in deferred}
                with self._gc:
                    for o in batch:
                        o.finished = id(o) not in waiting
                    self._queue[:0] = deferred
                    self._gc.notify_all()
        finally:
            with self._gc:
                self._leading = False
                self._gc.notify_all()
        if sealed:
            self._checkpoint_soon(sealed)
        return op.outcome()

    def _run_batch(self, batch: list[_Op]) -> tuple[list[_Op], list[Path]]:
        """Decide, log, flush and publish ``batch``; returns (operations for the next batch, log
        segments a checkpoint may delete)."""
        deferred: list[_Op] = []
        planned: list[tuple[_Op, _Change, wal.Record]] = []
        touched: set[str] = set()
        with self._sub_lock():
            for op in batch:
                if not touched.isdisjoint(op.ids):
                    deferred.append(op)
                    continue
                touched |= op.ids
                try:
                    op.result, change = op.decide()
                except Exception as exc:  # Conflict, KeyError, ...: this operation's answer
                    op.error = exc
                    continue
                if change is not None:
                    planned.append((op, change, wal.Record(secrets.token_hex(8), change.ids, change.files)))
            if not planned:
                return deferred, []
            records = [rec for _, _, rec in planned]
            try:
                self._wal.append(records)
                self._wal.flush()
            except BaseException as exc:
                with contextlib.suppress(OSError):
                    self._wal.settle([], [rec.token for rec in records])
                for op, _, _ in planned:
                    op.error = exc
                return deferred, []
            done: list[str] = []
            for op, change, rec in planned:
                try:
                    segs = change.apply()
                except Exception as exc:  # left pending: the next lock holder redoes it from the log
                    op.error = exc
                    continue
                done.append(rec.token)
                if not SYNCS_WHOLE_FS:
                    self._unsynced.update(segs)
                    self._unsynced.update(self.root / r for r, _ in change.files)
            self._wal.settle(done)
            if self._wal.size() <= self._wal.MAX_BYTES:
                return deferred, []
            sealed = self._wal.rotate()
            if sealed and not SYNCS_WHOLE_FS:
                self._checkpoint_paths, self._unsynced = self._unsynced, set()
            return deferred, sealed

    def _checkpoint_soon(self, sealed: list[Path]) -> None:
        """Checkpoint in a background thread: a ``syncfs`` after 16 MiB of log takes 0.1–0.3 s on this
        kind of disk, and no save should wait for it."""
        with self._ckpt_mutex:
            self._ckpt_sealed += sealed
            if self._ckpt_thread is None:
                self._ckpt_thread = threading.Thread(
                    target=self._checkpointer, name="rasoat-checkpoint", daemon=True
                )
                self._ckpt_thread.start()

    def _checkpointer(self) -> None:
        while True:
            with self._ckpt_mutex:
                sealed, self._ckpt_sealed = self._ckpt_sealed, []
                if not sealed:
                    self._ckpt_thread = None
                    return
            self._checkpoint(sealed)

    def _checkpoint(self, sealed: list[Path]) -> None:
        """Make every published change durable with one flush of the file system, then delete the
        sealed log segments (outside the lock: saves go on meanwhile in the new segment). Should the
        process die first, the segments stay, and the next checkpoint deletes them too."""
        paths, self._checkpoint_paths = self._checkpoint_paths, set()
        try:
            sync_filesystem(self.root, paths)
        except OSError:
            log.exception("Checkpoint không thành công / Checkpoint failed; the log is kept")
            return
        wal.Wal.remove(sealed)

    # --- submissions ----------------------------------------------------------------------------------
    def save_submission(self, sub: Submission, xml: bytes, attachments: dict[str, bytes]) -> SaveOutcome:
        target = self._sub_path(sub.instance_id)
        att_files = {name: self._att_file(name) for name in attachments}
        if sub.deprecated_id is not None:
            self._sub_path(sub.deprecated_id)  # validates the name
        md5 = hashlib.md5(xml).hexdigest()
        if sub.xml_md5 != md5:
            raise ValueError(f"xml_md5 {sub.xml_md5!r} is not the md5 of the XML ({md5})")
        record = self._new_record(sub, attachments)
        part = ix.partition_of(record)  # also validates form id and unit code as names
        loc = self._assign_segment(part)
        files = [
            (XML_NAME, xml),
            *((att_files[name], data) for name, data in attachments.items()),
            (META_NAME, self._meta_bytes(loc, record)),
        ]
        inline = sum(len(data) for _, data in files) <= self.inline_max
        stage = tmp_path(self.staging)
        stage.mkdir()
        try:
            # Written before the lock is taken, so concurrent saves overlap it; fsync'd only when the
            # files are too big to be copied into the log.
            for name, data in files:
                write_file(stage / name, data, sync=not inline)
            if not inline:
                fsync_dir(stage)
            new_atts = {name: (att_files[name], data) for name, data in attachments.items()}

            def decide() -> tuple[SaveOutcome, _Change | None]:
                existing = self._read_meta(target)
                if existing is not None:
                    change = self._attach_change(target, existing, md5, new_atts, stage, inline, current=True)
                    return SaveOutcome.duplicate, change
                return SaveOutcome.created, self._create_change(record, loc, target, stage, files, inline)

            ids = [sub.instance_id, *([sub.deprecated_id] if sub.deprecated_id else [])]
            return self._commit(_Op(ids, decide))
        finally:
            if stage.exists():
                remove_tree(stage)

    def _create_change(
        self,
        record: Submission,
        loc: str,
        target: Path,
        stage: Path,
        files: list[tuple[str, bytes]],
        inline: bool,
    ) -> _Change:
        """A new submission (or an edit, which must name the current version: else Conflict)."""
        logged = [(self._rel(target / name), data) for name, data in files] if inline else []
        ids = [record.instance_id]
        replaced: tuple[Path, str, Submission, bytes] | None = None
        if record.deprecated_id is not None:
            old_path = self._sub_path(record.deprecated_id)
            found = self._read_meta(old_path)
            dep = record.deprecated_id
            if found is None:
                raise Conflict(f"deprecatedID {dep} không tồn tại / is not a stored submission")
            if not found[1].current:
                raise Conflict(f"deprecatedID {dep} đã bị sửa / is not the current version (already edited)")
            old = found[1].model_copy(update={"current": False})
            old_meta = self._meta_bytes(found[0], old)
            if inline:  # else redoing must not mark it replaced unless the new version was published
                logged.append((self._rel(old_path / META_NAME), old_meta))
            ids.append(record.deprecated_id)
            replaced = (old_path, found[0], old, old_meta)

        def apply() -> list[Path]:
            if inline:
                os.makedirs(target.parent, exist_ok=True)
                os.rename(stage, target)
            else:  # its files are not in the log: they and the rename must be durable by themselves
                ensure_dir(target.parent)
                os.rename(stage, target)
                fsync_dir(target.parent)
            seg = self._append_line(loc, ix.encode_line(record))
            if replaced is not None:
                old_path, old_loc, old, old_meta = replaced
                atomic_write(old_path / META_NAME, old_meta, sync=not inline, sync_dir=False)
                self._index_update(old_loc, old)
            return [seg]

        return _Change(ids, logged, apply)

    def _attach_change(
        self,
        target: Path,
        existing: tuple[str, Submission],
        md5: str,
        new_atts: dict[str, tuple[str, bytes]],
        stage: Path,
        inline: bool,
        current: bool,
    ) -> _Change | None:
        """An identical resend, or a late attachment: attachments not stored yet are added (a name
        already stored keeps its bytes). A resend (``current``) of a version an edit has replaced is a
        Conflict, whether its XML is identical or not (ODK Central; openrosa.md §4.6)."""
        loc, stored = existing
        if stored.xml_md5 != md5:
            raise Conflict(
                f"instanceID {stored.instance_id} đã có với nội dung khác / already stored with different XML"
            )
        if current and not stored.current:
            raise Conflict(
                f"bản nộp {stored.instance_id} đã được thay bằng một bản sửa / "
                f"submission {stored.instance_id} was replaced by an edit"
            )
        have = set(stored.attachments) | self._stored_attachments(target)
        missing = [name for name in new_atts if name not in have]
        if not missing and have == set(stored.attachments):
            return None
        record = stored.model_copy(update={"attachments": sorted(have | set(missing))})
        meta = self._meta_bytes(loc, record)
        logged = [(self._rel(target / new_atts[n][0]), new_atts[n][1]) for n in missing] if inline else []
        logged.append((self._rel(target / META_NAME), meta))

        def apply() -> list[Path]:
            for name in missing:
                os.rename(stage / new_atts[name][0], target / new_atts[name][0])
            if missing and not inline:
                fsync_dir(target)
            atomic_write(target / META_NAME, meta, sync=False)
            self._index_update(loc, record)
            return []

        return _Change([stored.instance_id], logged, apply)

    def put_many_submissions(self, items: Iterable[tuple[Submission, bytes, dict[str, bytes]]]) -> int:
        """Bulk load in batches: files written without per-file fsync, one file-system sync before and
        one after the renames of a batch, one log record per batch. Same rules and outcome as
        one-by-one saves."""
        created = 0
        batch: list[tuple[Submission, bytes, dict[str, bytes]]] = []
        for item in items:
            batch.append(item)
            if len(batch) >= 500:
                created += self._put_batch(batch)
                batch = []
        if batch:
            created += self._put_batch(batch)
        return created

    def _put_batch(self, items: list[tuple[Submission, bytes, dict[str, bytes]]]) -> int:
        staged: list[tuple[Submission, Path, Path, str]] = []
        one_by_one: list[tuple[Submission, bytes, dict[str, bytes]]] = []
        created = 0
        for sub, xml, attachments in items:  # refuse a bad batch before writing any of it
            for name in attachments:
                self._att_file(name)
            ix.partition_of(sub)
            self._sub_path(sub.instance_id)
            if sub.xml_md5 != hashlib.md5(xml).hexdigest():
                raise ValueError(f"xml_md5 of {sub.instance_id} is not the md5 of its XML")
        try:
            for sub, xml, attachments in items:
                target = self._sub_path(sub.instance_id)
                att_files = {name: self._att_file(name) for name in attachments}
                if sub.deprecated_id is not None or target.exists():
                    one_by_one.append((sub, xml, attachments))
                    continue
                record = self._new_record(sub, attachments)
                loc = self._assign_segment(ix.partition_of(record))
                stage = tmp_path(self.staging)
                stage.mkdir()
                staged.append((record, target, stage, loc))
                write_file(stage / XML_NAME, xml, sync=False)
                for name, data in attachments.items():
                    write_file(stage / att_files[name], data, sync=False)
                write_file(stage / META_NAME, self._meta_bytes(loc, record), sync=False)
            # every staged file durable first (their bytes are not copied into the log)
            sync_filesystem(self.root, (st / n for _, _, st, _ in staged for n in os.listdir(st)))
            with self._sub_lock():
                fresh: list[tuple[Submission, Path, Path, str]] = []
                seen: set[Path] = set()
                for rec, target, stage, loc in staged:
                    if target in seen or (target / META_NAME).exists():
                        one_by_one.append(next(i for i in items if i[0].instance_id == rec.instance_id))
                    else:
                        seen.add(target)
                        fresh.append((rec, target, stage, loc))
                if fresh:
                    entry = wal.Record(secrets.token_hex(8), [rec.instance_id for rec, *_ in fresh])
                    self._wal.append([entry])
                    self._wal.flush()
                    segs = set()
                    for rec, target, stage, loc in fresh:
                        ensure_dir(target.parent)
                        os.rename(stage, target)
                        segs.add(self._append_line(loc, ix.encode_line(rec)))
                    # the renames and index lines durable before returning
                    sync_filesystem(self.root, [*segs, *{t.parent for _, t, _, _ in fresh}])
                    self._wal.settle([entry.token])
                    created += len(fresh)
        finally:
            for _, _, stage, _ in staged:
                if stage.exists():
                    remove_tree(stage)
        for sub, xml, attachments in one_by_one:
            if self.save_submission(sub, xml, attachments) is SaveOutcome.created:
                created += 1
        return created

    @staticmethod
    def _new_record(sub: Submission, attachments: dict[str, bytes]) -> Submission:
        update: dict[str, Any] = {
            "received_at": ix.utc(sub.received_at),
            "attachments": sorted(attachments),
            "current": True,
        }
        if sub.deprecated_id is not None and sub.review_state is ReviewState.received:
            update["review_state"] = ReviewState.edited
        return sub.model_copy(update=update)

    def add_attachment(self, instance_id: str, name: str, data: bytes) -> None:
        target = self._sub_path(instance_id)
        fname = self._att_file(name)
        inline = len(data) <= self.inline_max
        stage = tmp_path(self.staging)
        stage.mkdir()
        try:
            write_file(stage / fname, data, sync=not inline)
            if not inline:
                fsync_dir(stage)

            def decide() -> tuple[None, _Change | None]:
                existing = self._read_meta(target)
                if existing is None:
                    raise KeyError(f"Không có bản ghi / No submission {instance_id!r}")
                md5 = existing[1].xml_md5
                return None, self._attach_change(
                    target, existing, md5, {name: (fname, data)}, stage, inline, current=False
                )

            self._commit(_Op([instance_id], decide))
        finally:
            remove_tree(stage)

    def get_submission(self, instance_id: str) -> Submission | None:
        loc_sub = self._read_meta(self._sub_path(instance_id))
        return loc_sub[1] if loc_sub else None

    def submission_xml(self, instance_id: str) -> bytes | None:
        path = self._sub_path(instance_id)
        if not (path / META_NAME).exists():
            return None
        return read_bytes(path / XML_NAME)

    def attachment(self, instance_id: str, name: str) -> bytes | None:
        path = self._sub_path(instance_id)
        if not (path / META_NAME).exists():
            return None
        return read_bytes(path / self._att_file(name))

    def _matching_lines(
        self, query: SubmissionQuery, ordered: bool = True, descending: bool = False, prune: bool = False
    ) -> Iterator[list[str]]:
        """Index lines in received order (month by month, partitions merged on time; newest first with
        ``descending``), or unordered. ``prune``: skip segments outside the time range by their cached
        summaries (worth it for pages that resume deep in a partition)."""
        flt = ix.LineFilter(query)
        subs = self.index_dir / "subs"
        months = list(ix.partitions(subs, query).values())
        for parts in reversed(months) if descending else months:
            streams = [
                ix.partition_lines(subs / p, flt, descending,
                                   self._counter.segments_in_time(subs / p, flt) if prune else None)
                for p in parts
            ]
            if len(streams) == 1 or not ordered:
                for stream in streams:
                    yield from stream
            else:
                yield from heapq.merge(*streams, key=itemgetter(ix.C_TS), reverse=descending)

    def page_submissions(
        self,
        query: SubmissionQuery | None = None,
        *,
        limit: int,
        after: PageKey | None = None,
        descending: bool = False,
    ) -> list[Submission]:
        """Resume at ``after`` by narrowing the time range (so whole months and segments before it are
        never read), then order each run of equal receipt times by instanceID."""
        q = query or SubmissionQuery()
        key: tuple[str, str] | None = None
        if after is not None:
            at = ix.utc(after.received_at)
            key = (ix.ts(at), after.instance_id)
            if descending:
                hi = at + timedelta(microseconds=1)
                hi = min(hi, ix.utc(q.received_to)) if q.received_to else hi
                q = q.model_copy(update={"received_to": hi})
            else:
                lo = max(at, ix.utc(q.received_from)) if q.received_from else at
                q = q.model_copy(update={"received_from": lo})
        out: list[Submission] = []
        if limit <= 0:
            return out
        validate = Submission.model_validate_json
        lines = self._matching_lines(q, descending=descending, prune=after is not None)
        for stamp, run in groupby(lines, key=itemgetter(ix.C_TS)):
            for iid, parts in sorted(((unquote(p[ix.C_ID]), p) for p in run), key=itemgetter(0),
                                     reverse=descending):
                if key is not None and ((stamp, iid) >= key if descending else (stamp, iid) <= key):
                    continue
                out.append(validate(parts[ix.C_JSON]))
                if len(out) >= limit:
                    return out
        return out

    def iter_submissions(self, query: SubmissionQuery | None = None) -> Iterator[Submission]:
        validate = Submission.model_validate_json
        for parts in self._matching_lines(query or SubmissionQuery()):
            yield validate(parts[ix.C_JSON])

    def count_submissions(self, query: SubmissionQuery | None = None) -> int:
        query = query or SubmissionQuery()
        flt = ix.LineFilter(query)
        subs = self.index_dir / "subs"
        return sum(
            self._counter.count(subs / p, flt) for parts in ix.partitions(subs, query).values() for p in parts
        )

    def iter_facts(self, query: SubmissionQuery | None, field_paths: Sequence[str]) -> Iterator[Fact]:
        """Facts straight from the index lines: no Submission models, one JSON parse per line, and no
        time-ordered merge across partitions (the indicator engine sums; it needs no order)."""
        paths = tuple(field_paths)
        parse_ts = datetime.fromisoformat
        for p in self._matching_lines(query or SubmissionQuery(), ordered=False):
            doc = from_json(p[ix.C_JSON])
            f = doc["fields"]
            yield Fact(
                doc["instance_id"],
                doc["round_id"],
                doc["unit_code"],
                parse_ts(p[ix.C_TS]),
                p[ix.C_STATE],
                {k: f[k] for k in paths if k in f},
            )

    def set_review(self, instance_id: str, state: ReviewState, comment: str, actor: str) -> Submission:
        path = self._sub_path(instance_id)
        new_state = ReviewState(state)

        def decide() -> tuple[Submission, _Change]:
            loc_sub = self._read_meta(path)
            if loc_sub is None:
                raise KeyError(f"Không có bản ghi / No submission {instance_id!r}")
            loc, sub = loc_sub
            entry = {
                "at": utcnow().isoformat(),
                "actor": actor,
                "from": sub.review_state.value,
                "to": new_state.value,
                "comment": comment,
            }
            sub = sub.model_copy(
                update={"review_state": new_state, "review_history": [*sub.review_history, entry]}
            )
            meta = self._meta_bytes(loc, sub)

            def apply() -> list[Path]:
                atomic_write(path / META_NAME, meta, sync=False)
                self._index_update(loc, sub)
                return []

            return sub, _Change([instance_id], [(self._rel(path / META_NAME), meta)], apply)

        return self._commit(_Op([instance_id], decide))

    # --- forms ------------------------------------------------------------------------------------------
    def _form_dir(self, form_id: str, version: str) -> Path:
        return self.root / "forms" / safe_name(form_id, "form id") / safe_name(version, "form version")

    def put_form(
        self, form: FormVersion, xml: bytes, schema: dict[str, Any], media: dict[str, bytes]
    ) -> None:
        fdir = self._form_dir(form.form_id, form.version)
        media_files = {name: safe_name(name, "media file name") for name in media}
        md5 = hashlib.md5(xml).hexdigest()
        if form.md5 != md5:
            raise ValueError(f"form md5 {form.md5!r} is not the md5 of the XForm ({md5})")
        schema_bytes = json.dumps(schema, ensure_ascii=False).encode()
        with self._locks["forms"].held():
            existing = self.get_form(form.form_id, form.version)
            if existing is not None and existing.md5 != form.md5:
                raise Conflict(
                    f"Biểu mẫu {form.form_id} phiên bản {form.version} đã có với nội dung khác / "
                    "this version is already published with a different XForm; change the version"
                )
            if not (fdir / "form.xml").exists():
                stage = tmp_path(self.staging)
                (stage / "media").mkdir(parents=True)
                try:
                    write_file(stage / "form.xml", xml)
                    write_file(stage / "schema.json", schema_bytes)
                    for name, data in media.items():
                        write_file(stage / "media" / media_files[name], data)
                    fsync_dir(stage / "media")
                    fsync_dir(stage)
                    ensure_dir(fdir.parent)
                    remove_tree(fdir)  # a leftover without form.xml
                    os.rename(stage, fdir)
                    fsync_dir(fdir.parent)
                finally:
                    remove_tree(stage)
            else:
                atomic_write(fdir / "schema.json", schema_bytes)
                ensure_dir(fdir / "media")
                for name, data in media.items():
                    atomic_write(fdir / "media" / media_files[name], data)
            doc = form.model_dump(mode="json")
            q = Query()
            self._forms.write(
                lambda t: t.upsert(doc, (q.form_id == form.form_id) & (q.version == form.version))
            )

    def _form_docs(self) -> list[FormVersion]:
        return [FormVersion.model_validate(d) for d in self._forms.docs()]

    def get_form(self, form_id: str, version: str | None = None) -> FormVersion | None:
        versions = [f for f in self._form_docs() if f.form_id == form_id]
        if version is not None:
            return next((f for f in versions if f.version == version), None)
        return max(versions, key=lambda f: f.published_at, default=None)

    def list_forms(self, all_versions: bool = False) -> list[FormVersion]:
        forms = sorted(self._form_docs(), key=lambda f: (f.form_id, f.published_at))
        if all_versions:
            return forms
        latest: dict[str, FormVersion] = {}
        for f in forms:
            latest[f.form_id] = f
        return list(latest.values())

    def form_xml(self, form_id: str, version: str) -> bytes:
        data = read_bytes(self._form_dir(form_id, version) / "form.xml")
        if data is None:
            raise KeyError(f"Không có biểu mẫu / No form {form_id} version {version}")
        return data

    def form_schema(self, form_id: str, version: str) -> dict[str, Any]:
        data = read_bytes(self._form_dir(form_id, version) / "schema.json")
        if data is None:
            raise KeyError(f"Không có biểu mẫu / No form {form_id} version {version}")
        return json.loads(data)

    def form_media(self, form_id: str, version: str, name: str) -> bytes | None:
        return read_bytes(self._form_dir(form_id, version) / "media" / safe_name(name, "media file name"))

    # --- rounds and snapshots ---------------------------------------------------------------------------
    def put_round(self, rnd: Round) -> None:
        doc = rnd.model_dump(mode="json")
        self._rounds.write(lambda t: t.upsert(doc, Query().id == rnd.id))

    def get_round(self, round_id: str) -> Round | None:
        doc = next((d for d in self._rounds.docs() if d["id"] == round_id), None)
        return Round.model_validate(doc) if doc else None

    def list_rounds(self) -> list[Round]:
        return sorted(
            (Round.model_validate(d) for d in self._rounds.docs()), key=lambda r: (r.created_at, r.id)
        )

    def _snapshot_path(self, round_id: str) -> Path:
        return self.root / "snapshots" / f"{safe_name(round_id, 'round id')}.json"

    def put_snapshot(self, round_id: str, data: dict[str, Any]) -> None:
        path = self._snapshot_path(round_id)
        ensure_dir(path.parent)
        atomic_write(path, json.dumps(data, ensure_ascii=False).encode())

    def get_snapshot(self, round_id: str) -> dict[str, Any] | None:
        raw = read_bytes(self._snapshot_path(round_id))
        return json.loads(raw) if raw is not None else None

    # --- users --------------------------------------------------------------------------------------------
    def _user_maps(self) -> dict[str, dict[str, User]]:
        """{"id": …, "name": …, "token": …} maps over every bucket, rebuilt when any user changed.

        Every token lookup (each request of a collector) comes here: one ``stat`` of the users' stamp,
        which ``put_user`` replaces after each change in any process, says whether the maps still hold
        (it was one per bucket). The stamp is read before the buckets, so a change racing this read
        is seen at the next one."""
        key = self._users_stamp.key()
        cached = self._users_cache
        if key is not None and cached is not None and cached[0] == key:
            return cached[1]
        buckets = [b.docs() for b in self._users]
        if key is None:  # no stamp (removed by hand): fall back to the bucket files' identities
            key = ("buckets", tuple(b.generation for b in self._users))
            if cached is not None and cached[0] == key:
                return cached[1]
        maps: dict[str, dict[str, User]] = {"id": {}, "name": {}, "token": {}}
        for docs in buckets:
            for d in docs:
                u = User.model_validate(d)
                maps["id"][u.id] = u
                maps["name"][u.username] = u
                if u.token_hash:
                    maps["token"][u.token_hash] = u
        self._users_cache = (key, maps)
        return maps

    def put_user(self, user: User) -> None:
        doc = user.model_dump(mode="json")
        with self._locks["users"].held():
            maps = self._user_maps()
            other = maps["name"].get(user.username)
            if other is not None and other.id != user.id:
                raise Conflict(f"Tên đăng nhập đã dùng / Username {user.username!r} is taken")
            other = maps["token"].get(user.token_hash) if user.token_hash else None
            if other is not None and other.id != user.id:
                raise Conflict("Mã truy cập trùng / Token already belongs to another user")
            bucket = self._users[int(_h(user.id)[:2], 16) % USER_BUCKETS]
            bucket.write(lambda t: t.upsert(doc, Query().id == user.id))
            self._users_stamp.bump()  # after the bucket: a reader that sees the new stamp sees the user

    def get_user(self, user_id: str) -> User | None:
        return self._user_maps()["id"].get(user_id)

    def get_user_by_name(self, username: str) -> User | None:
        return self._user_maps()["name"].get(username)

    def get_user_by_token_hash(self, token_hash: str) -> User | None:
        return self._user_maps()["token"].get(token_hash)

    def list_users(self) -> list[User]:
        return sorted(self._user_maps()["id"].values(), key=lambda u: (u.created_at, u.id))

    # --- audit --------------------------------------------------------------------------------------------
    def append_audit(self, event: AuditEvent) -> None:
        day = ix.utc(event.at).strftime("%Y-%m-%d")
        path = self.root / "audit" / f"{day}.jsonl"
        line = (event.model_dump_json() + "\n").encode()
        with self._locks["audit"].held():
            ensure_dir(path.parent)
            size = self._audit_sizes.get(day)
            try:
                actual = os.stat(path).st_size
            except FileNotFoundError:
                actual = None
            if actual is not None and size != actual:
                self._repair_tail(path)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, line)
                datasync(fd)
                self._audit_sizes[day] = os.fstat(fd).st_size
            finally:
                os.close(fd)
            if actual is None:
                fsync_dir(path.parent)

    def iter_audit(self, since: datetime | None = None, actor: str | None = None) -> Iterator[AuditEvent]:
        adir = self.root / "audit"
        try:
            names = sorted(n for n in os.listdir(adir) if n.endswith(".jsonl"))
        except FileNotFoundError:
            return
        since_utc = ix.utc(since) if since is not None else None
        first_day = since_utc.strftime("%Y-%m-%d") if since_utc else ""
        for name in names:
            if name[: -len(".jsonl")] < first_day:
                continue
            raw = read_bytes(adir / name) or b""
            end = raw.rfind(b"\n")
            for line in raw[: end + 1].splitlines():
                try:
                    event = AuditEvent.model_validate_json(line)
                except ValueError:
                    continue
                if since_utc is not None and ix.utc(event.at) < since_utc:
                    continue
                if actor is not None and event.actor != actor:
                    continue
                yield event

    # --- key-value with expiry ------------------------------------------------------------------------------
    def _kv_file(self, namespace: str, key: str) -> TinyFile:
        bucket = int(_h(key)[:4], 16) % KV_BUCKETS
        ident = (namespace, bucket)
        with self._kv_mutex:
            tf = self._kv.get(ident)
            if tf is None:
                path = self.root / "kv" / safe_name(namespace, "namespace") / f"{bucket:02d}.json"
                tf = self._kv[ident] = TinyFile(path, self._locks["kv"])
            return tf

    def kv_get(self, namespace: str, key: str) -> Any | None:
        now = time.time()
        for d in self._kv_file(namespace, key).docs():
            if d["k"] == key:
                return None if d.get("exp") is not None and d["exp"] <= now else d["v"]
        return None

    def kv_put(self, namespace: str, key: str, value: Any, ttl_seconds: int | None = None) -> None:
        now = time.time()
        doc = {"k": key, "v": value, "exp": now + ttl_seconds if ttl_seconds is not None else None}
        json.dumps(doc)  # fail before locking when the value is not JSON

        def change(t: Any) -> None:
            t.remove(lambda d: d.get("exp") is not None and d["exp"] <= now)
            t.upsert(doc, Query().k == key)

        self._kv_file(namespace, key).write(change)

    def kv_cas(
        self, namespace: str, key: str, expected: Any | None, new: Any, ttl_seconds: int | None = None
    ) -> bool:
        now = time.time()
        doc = {"k": key, "v": new, "exp": now + ttl_seconds if ttl_seconds is not None else None}
        json.dumps(doc)  # fail before locking when the value is not JSON
        tf = self._kv_file(namespace, key)
        with tf.lock.held():  # the kv lock: the read and the write are one step for every process
            current = next((d for d in tf.docs() if d["k"] == key), None)
            if current is not None and current.get("exp") is not None and current["exp"] <= now:
                current = None
            if (current["v"] if current is not None else None) != expected:
                return False

            def change(t: Any) -> None:
                t.remove(lambda d: d.get("exp") is not None and d["exp"] <= now)
                t.upsert(doc, Query().k == key)

            tf.write(change)
            return True

    def iter_durable_kv(self) -> Iterator[tuple[str, str, Any]]:
        root = self.root / "kv"
        namespaces = sorted(unquote(d.name) for d in root.iterdir() if d.is_dir()) if root.is_dir() else []
        for namespace in namespaces:
            for bucket in range(KV_BUCKETS):
                ident = (namespace, bucket)
                with self._kv_mutex:
                    tf = self._kv.get(ident)
                    if tf is None:
                        path = root / safe_name(namespace, "namespace") / f"{bucket:02d}.json"
                        if not path.exists():
                            continue
                        tf = self._kv[ident] = TinyFile(path, self._locks["kv"])
                for d in sorted(tf.docs(), key=itemgetter("k")):
                    if d.get("exp") is None:
                        yield namespace, d["k"], d["v"]

    def kv_delete(self, namespace: str, key: str) -> None:
        tf = self._kv_file(namespace, key)
        if any(d["k"] == key for d in tf.docs()):
            tf.write(lambda t: t.remove(Query().k == key))

    def close(self) -> None:
        """Release files. The log stays: a reopen redoes only what a writer left unfinished (and, after
        a reboot, what the last checkpoint did not make durable)."""
        with self._ckpt_mutex:
            checkpointer = self._ckpt_thread
        if checkpointer is not None:
            checkpointer.join()
        self._wal.close()
        for tf in [self._forms, self._rounds, *self._users, *self._kv.values()]:
            tf.close()
        self._users_stamp.close()
        for lock in self._locks.values():
            lock.close()


class _RecoveringLock:
    """The submissions lock; on first acquisition, replays what a dead writer left unfinished."""

    def __init__(self, store: EmbeddedStore) -> None:
        self.store = store
        self.lock = store._locks["submissions"]

    def __enter__(self) -> bool:
        outermost = self.lock.acquire()
        if outermost:
            try:
                self.store._recover()
            except BaseException:
                self.lock.release()
                raise
        return outermost

    def __exit__(self, *exc: object) -> None:
        self.lock.release()
