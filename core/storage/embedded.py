"""The embedded default store: submission files as the source of truth, small TinyDB files, one data dir.

Why this shape (TinyDB rewrites its whole file on every write — 69 ms/insert at 1,000 documents):

- **Submissions** live in ``submissions/<aa>/<bb>/<instanceID>/`` (``aa/bb`` from a hash of the
  instanceID, so no directory grows past a few dozen entries): ``submission.xml``, ``att.<name>`` files and
  ``meta.json`` (the Submission record and where its index line lives). A new submission is written
  completely in ``staging/`` (every file fsync'd) before the lock is taken; under the lock only the
  duplicate/edit decision, one fsync'd journal line, the rename that publishes the whole directory at
  once (parent fsync'd) and the index append remain. It exists completely or not at all. Client names
  are encoded by ``files.safe_name`` (path syntax and NUL are refused with ValueError).
- **The index** (``subindex``) is a set of small append-only segments partitioned by form, month and
  commune; a save appends one line (cost independent of the number stored), listings stream segment by
  segment and filter on a text prefix without parsing JSON, counts come from per-segment summaries.
  It is derived data: the intent journal lets any process replay an operation a dead writer left
  unfinished, from the files; ``rebuild_index()`` (run automatically when the index is missing or a
  rebuild was interrupted) recreates it from every ``meta.json``.
- **Small records** (forms metadata, rounds, users in 16 buckets, key-value buckets per namespace) are
  TinyDB files that stay small by construction, written atomically and fsync'd (``tinyfile``). Form XML,
  schema and media, and round snapshots are plain files. The audit log is append-only JSON lines, one
  file per day, so it never becomes one growing table.
- **Concurrency**: each area has an inter-process lock (``flock`` + a thread lock) held by writers;
  readers take none and always read the current files (caches are keyed on file identity), so the
  server sees a CLI command's write at once. The duplicate/edit decision runs under the submissions lock,
  so it is atomic across threads and processes.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from operator import itemgetter
from pathlib import Path
from typing import Any

from pydantic_core import from_json
from tinydb import Query

from core.models import AuditEvent, FormVersion, ReviewState, Round, Submission, User, utcnow
from core.storage import subindex as ix
from core.storage.base import Conflict, Fact, SaveOutcome, Store, SubmissionQuery
from core.storage.files import (
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
from core.storage.lock import InterProcessLock
from core.storage.tinyfile import TinyFile

log = logging.getLogger(__name__)

FORMAT = 1
XML_NAME = "submission.xml"
META_NAME = "meta.json"
ATT_PREFIX = "att."
USER_BUCKETS = 16
KV_BUCKETS = 64


def _h(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


class EmbeddedStore(Store):
    """Everything in one data directory; safe for several threads and processes at once."""

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
        self._kv: dict[tuple[str, int], TinyFile] = {}
        self._kv_mutex = threading.Lock()
        self._users_cache: tuple[tuple, dict[str, dict[str, User]]] | None = None
        # partition -> (open segment number, lines, size), a hint checked against the file at append
        self._parts: dict[str, tuple[int, int, int]] = {}
        self._audit_sizes: dict[str, int] = {}
        self._journal = ix.Journal(self.root / "journal.log")
        self._counter = ix.Counter()
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
        with self._locks["submissions"].held():
            clean_stale_tmp(self.staging)
            if not self._ready_marker.exists() or not (self.index_dir / "subs").is_dir():
                self.rebuild_index()
            else:
                self._recover()
                self._after_reboot()

    def _after_reboot(self) -> None:
        """First open since the machine (re)started: replay every journalled operation, done or not,
        since index appends are not fsync'd one by one (they are at each journal reset and close)."""
        boot = boot_id()
        marker = self.root / "boot.id"
        if boot is None or read_bytes(marker) == boot.encode():
            return
        self._reconcile(self._journal.all_intents())
        self._journal.reset()
        atomic_write(marker, boot.encode())

    def _sub_lock(self) -> contextlib.AbstractContextManager[bool]:
        return _RecoveringLock(self)

    def _recover(self) -> None:
        """Replay operations a writer (this process before a crash, or another one) left unfinished."""
        ids = self._journal.unfinished()
        if ids:
            self._reconcile(ids)
            self._journal.settle(lambda iid: (self._sub_path(iid) / META_NAME).exists())
        if self._journal.large():
            self._journal.reset()

    def _reconcile(self, ids: Iterable[str]) -> None:
        """Make the index (and derived meta fields) agree with the files of these submissions."""
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
            if sub.deprecated_id:
                self._mark_replaced(sub.deprecated_id)
            self._index_update(loc, sub)

    def rebuild_index(self) -> int:
        """Recreate the index from every submission's ``meta.json``; returns how many were indexed."""
        with self._locks["submissions"].held():
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
                    self._rewrite_segment(new / "subs" / loc, {ix.line_id(old): ix.encode_line(old)})
            for seg in touched:  # received order within a segment, and durable before the swap
                lines = ix.read_segment(seg)
                lines.sort(key=itemgetter(ix.C_TS))
                atomic_write(seg, "".join("\t".join(p) + "\n" for p in lines).encode())
            ensure_dir(new / "subs")
            old_index = self.root / "index.old"
            remove_tree(old_index)
            if self.index_dir.exists():
                os.rename(self.index_dir, old_index)
            os.rename(new, self.index_dir)
            fsync_dir(self.root)
            remove_tree(old_index)
            self._parts.clear()
            self._journal.reset()
            boot = boot_id()
            if boot is not None:
                atomic_write(self.root / "boot.id", boot.encode())
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
        atomic_write(path / META_NAME, self._meta_bytes(loc, sub))

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
        """Append a new submission's line (caller holds the lock; durable through the journal)."""
        seg = self.index_dir / "subs" / loc
        part, name = loc.rsplit("/", 1)
        state = self._parts.get(part)
        known = state[2] if state and ix.seg_name(state[0]) == name else None
        try:
            actual: int | None = os.stat(seg).st_size
        except FileNotFoundError:
            actual = None
        if actual is None:
            ensure_dir(seg.parent)
            fd = os.open(seg, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            fsync_dir(seg.parent)
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

    def _rewrite_segment(self, seg: Path, lines: dict[str, bytes]) -> None:
        """Replace (or add) the lines of these ids in a segment, atomically (no write if unchanged)."""
        raw = read_bytes(seg)
        out: list[bytes] = []
        for parts in ix.parse_segment(raw):
            new = lines.pop(parts[ix.C_ID], None)
            out.append(new if new is not None else ("\t".join(parts) + "\n").encode())
        out.extend(lines.values())
        data = b"".join(out)
        if data == raw:
            return
        ensure_dir(seg.parent)
        atomic_write(seg, data)

    def _index_update(self, loc: str, sub: Submission) -> None:
        self._rewrite_segment(self.index_dir / "subs" / loc, {ix.line_id(sub): ix.encode_line(sub)})
        self._parts.pop(loc.rsplit("/", 1)[0], None)

    def _mark_replaced(self, instance_id: str) -> None:
        """The edited (deprecated) version is no longer current."""
        path = self._sub_path(instance_id)
        loc_sub = self._read_meta(path)
        if loc_sub is None or not loc_sub[1].current:
            return
        loc, old = loc_sub
        old = old.model_copy(update={"current": False})
        self._write_meta(path, loc, old)
        self._index_update(loc, old)

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
        stage = tmp_path(self.staging)
        stage.mkdir()
        try:
            # Every fsync before taking the lock (concurrent saves overlap them); under it only the
            # duplicate/edit decision, the rename that publishes the whole directory, the index append.
            write_file(stage / XML_NAME, xml)
            for name, data in attachments.items():
                write_file(stage / att_files[name], data)
            write_file(stage / META_NAME, self._meta_bytes(loc, record))
            fsync_dir(stage)
            ids = [sub.instance_id] + ([sub.deprecated_id] if sub.deprecated_id else [])
            token, ino = self._journal.begin(ids)
            published = False
            with self._sub_lock():
                try:
                    self._journal.confirm(token, ids, ino)
                    existing = self._read_meta(target)
                    if existing is not None:
                        self._duplicate(target, existing, md5, stage, att_files)
                        outcome = SaveOutcome.duplicate
                        self._journal.done(token)
                    else:
                        self._check_edit(sub.deprecated_id)
                        ensure_dir(target.parent)
                        os.rename(stage, target)
                        published = True
                        seg = self._append_line(loc, ix.encode_line(record))
                        if sub.deprecated_id is not None:
                            self._mark_replaced(sub.deprecated_id)
                        outcome = SaveOutcome.created
                        self._journal.done(token, [seg])
                except BaseException:
                    if not published:  # nothing of ours is visible: the intent is void
                        self._journal.done(token)
                    raise  # else the next lock holder replays it from the files
            # The rename is durable before we answer (a duplicate may have raced the first save's fsync).
            fsync_dir(target.parent)
            return outcome
        finally:
            if stage.exists():
                remove_tree(stage)

    def put_many_submissions(self, items: Iterable[tuple[Submission, bytes, dict[str, bytes]]]) -> int:
        """Bulk load in batches: files written without per-file fsync, one ``sync`` before and one after
        the renames of a batch, one journal entry per batch. Same rules and outcome as one-by-one saves."""
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
            sync_filesystem(st / n for _, _, st, _ in staged for n in os.listdir(st))  # all staged files
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
                    token, _ = self._journal.begin([rec.instance_id for rec, *_ in fresh])
                    segs = set()
                    for rec, target, stage, loc in fresh:
                        ensure_dir(target.parent)
                        os.rename(stage, target)
                        segs.add(self._append_line(loc, ix.encode_line(rec)))
                    sync_filesystem([*segs, *{t.parent for _, t, _, _ in fresh}])  # renames and index lines
                    self._journal.done(token, segs)
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

    def _check_edit(self, deprecated_id: str | None) -> None:
        if deprecated_id is None:
            return
        old = self._read_meta(self._sub_path(deprecated_id))
        if old is None:
            raise Conflict(f"deprecatedID {deprecated_id} không tồn tại / is not a stored submission")
        if not old[1].current:
            raise Conflict(
                f"deprecatedID {deprecated_id} đã bị sửa / is not the current version (already edited)"
            )

    def _duplicate(
        self, target: Path, existing: tuple[str, Submission], md5: str, stage: Path, att_files: dict[str, str]
    ) -> None:
        loc, stored = existing
        if stored.xml_md5 != md5:
            raise Conflict(
                f"instanceID {stored.instance_id} đã có với nội dung khác / already stored with different XML"
            )
        have = set(stored.attachments) | self._stored_attachments(target)
        missing = [n for n in att_files if n not in have]
        if not missing and have == set(stored.attachments):
            return
        token, _ = self._journal.begin([stored.instance_id])
        for name in missing:
            os.rename(stage / att_files[name], target / att_files[name])
        fsync_dir(target)
        record = stored.model_copy(update={"attachments": sorted(have | set(missing))})
        self._write_meta(target, loc, record)
        self._index_update(loc, record)
        self._journal.done(token)

    def add_attachment(self, instance_id: str, name: str, data: bytes) -> None:
        target = self._sub_path(instance_id)
        fname = self._att_file(name)
        stage = tmp_path(self.staging)
        stage.mkdir()
        try:
            write_file(stage / fname, data)
            with self._sub_lock():
                existing = self._read_meta(target)
                if existing is None:
                    raise KeyError(f"Không có bản ghi / No submission {instance_id!r}")
                self._duplicate(target, existing, existing[1].xml_md5, stage, {name: fname})
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

    def _matching_lines(self, query: SubmissionQuery, ordered: bool = True) -> Iterator[list[str]]:
        """Index lines in received order (month by month, partitions merged on time), or unordered."""
        flt = ix.LineFilter(query)
        subs = self.index_dir / "subs"
        for parts in ix.partitions(subs, query).values():
            streams = [ix.partition_lines(subs / p, flt) for p in parts]
            if len(streams) == 1 or not ordered:
                for stream in streams:
                    yield from stream
            else:
                yield from heapq.merge(*streams, key=itemgetter(ix.C_TS))

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
        with self._sub_lock():
            loc_sub = self._read_meta(path)
            if loc_sub is None:
                raise KeyError(f"Không có bản ghi / No submission {instance_id!r}")
            loc, sub = loc_sub
            entry = {
                "at": utcnow().isoformat(),
                "actor": actor,
                "from": sub.review_state.value,
                "to": ReviewState(state).value,
                "comment": comment,
            }
            sub = sub.model_copy(
                update={"review_state": ReviewState(state), "review_history": [*sub.review_history, entry]}
            )
            token, _ = self._journal.begin([instance_id])
            self._write_meta(path, loc, sub)
            self._index_update(loc, sub)
            self._journal.done(token)
            return sub

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
        """{"id": …, "name": …, "token": …} maps over every bucket, rebuilt when any bucket file changed."""
        buckets = [b.docs() for b in self._users]
        key = tuple(b.generation for b in self._users)
        cached = self._users_cache
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

    def kv_delete(self, namespace: str, key: str) -> None:
        tf = self._kv_file(namespace, key)
        if any(d["k"] == key for d in tf.docs()):
            tf.write(lambda t: t.remove(Query().k == key))

    def close(self) -> None:
        """Make the index durable (a clean close leaves nothing to replay) and release files."""
        with contextlib.suppress(OSError), self._sub_lock():
            if not self._journal.unfinished() and self._journal.path.stat().st_size > 0:
                self._journal.reset()
        for tf in [self._forms, self._rounds, *self._users, *self._kv.values()]:
            tf.close()
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
