"""Reading a data directory of the earlier embedded format (files, TinyDB and a write-ahead log, before
SQLite), to convert it into the SQLite store on first open.

The earlier format kept each submission in ``submissions/<aa>/<bb>/<instanceID>/`` (``submission.xml``,
``att.<name>`` files, ``meta.json`` with the record), small TinyDB files under ``db/`` (forms metadata,
rounds, users), form files under ``forms/``, round snapshots under ``snapshots/``, the audit log as JSON
lines per day under ``audit/``, key-value entries under ``kv/`` and a write-ahead log under ``wal/``.
Names were percent-encoded (``urllib.parse.quote(name, safe="")``, a leading dot as ``%2E``).

A change the old engine logged but did not finish publishing (``kill -9`` between its flush and its
renames; after a reboot, anything since its last checkpoint) is read from the log, as the old engine
itself would have redone it. :func:`convert` copies everything through the ``Store`` interface
(``rasoat migrate-store``'s copy), verifies record by record and by md5, and marks the database
converted; an interrupted conversion resumes at the next open. The old files stay untouched until the
operator removes them (``docs/scaling.md``).
"""

from __future__ import annotations

import json
import logging
import struct
import time
import zlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from rasoat.core.models import AuditEvent, FormVersion, Round, Submission, User
from rasoat.core.problems import Problem
from rasoat.core.storage.base import Store, SubmissionQuery
from rasoat.core.storage.copy import copy_store, verify_stores

log = logging.getLogger(__name__)

MARK_NS, MARK_KEY = "rasoat.store", "legacy-conversion"
_WAL_PREFIX = struct.Struct("<4sII")
_WAL_CRC = struct.Struct("<I")


class ConversionError(Problem, RuntimeError):
    """The converted store does not match the old data directory; the old files are untouched."""


def is_legacy_dir(root: Path) -> bool:
    info = root / "store.json"
    if not info.is_file():
        return False
    try:
        return json.loads(info.read_bytes()).get("kind") == "embedded"
    except ValueError:
        return False


def encode(name: str) -> str:
    enc = quote(name, safe="")
    return "%2E" + enc[1:] if enc.startswith(".") else enc


def _wal_records(wal_dir: Path) -> tuple[list[tuple[str, list[tuple[str, bytes]]]], set[str], set[str]]:
    """(token, files) of every record in log order, and the tokens marked done, and aborted."""
    records: list[tuple[str, list[tuple[str, bytes]]]] = []
    done: set[str] = set()
    aborted: set[str] = set()
    for seg in sorted(wal_dir.glob("*.log")) if wal_dir.is_dir() else []:
        raw, pos = seg.read_bytes(), 0
        while pos + _WAL_PREFIX.size <= len(raw):  # a torn or corrupt tail ends the segment
            magic, hlen, blen = _WAL_PREFIX.unpack_from(raw, pos)
            end = pos + _WAL_PREFIX.size + hlen + blen + _WAL_CRC.size
            if magic != b"RW01" or end > len(raw):
                break
            head = raw[pos + _WAL_PREFIX.size : pos + _WAL_PREFIX.size + hlen]
            body = raw[pos + _WAL_PREFIX.size + hlen : end - _WAL_CRC.size]
            if zlib.crc32(body, zlib.crc32(head)) != _WAL_CRC.unpack_from(raw, end - _WAL_CRC.size)[0]:
                break
            header = json.loads(head)
            if "t" in header:
                files, at = [], 0
                for rel, size in header.get("f", ()):
                    files.append((rel, body[at : at + size]))
                    at += size
                records.append((header["t"], files))
            done.update(header.get("done", ()))
            aborted.update(header.get("abort", ()))
            pos = end
    return records, done, aborted


def _boot_id() -> bytes | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip().encode()
    except OSError:
        return None


class LegacyStore(Store):
    """The old data directory, read only, as a :class:`Store` (what ``migrate-store``'s copy reads)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        records, done, aborted = _wal_records(self.root / "wal")
        boot, marked = _boot_id(), self.root / "boot.id"
        # after a reboot the old engine redid every record (writes since its checkpoint may be lost);
        # otherwise only those its writer left unfinished
        rebooted = boot is not None and marked.is_file() and marked.read_bytes() != boot
        self._overlay: dict[str, bytes] = {}
        for token, files in records:
            if token in aborted or (token in done and not rebooted):
                continue
            for rel, data in files:
                if ".." not in Path(rel).parts and not Path(rel).is_absolute():
                    self._overlay[rel] = data
        self._subs = self._load_submissions()

    # --- files as the old engine would have left them once it redid its log ------------------
    def _read(self, rel: str) -> bytes | None:
        if rel in self._overlay:
            return self._overlay[rel]
        try:
            return (self.root / rel).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def _tiny(self, rel: str) -> list[dict[str, Any]]:
        raw = self._read(rel)
        if not raw:
            return []
        return [doc for table in json.loads(raw).values() for doc in table.values()]

    def _sub_dirs(self) -> set[str]:
        dirs = {rel.rsplit("/", 1)[0] for rel in self._overlay if rel.startswith("submissions/")}
        base = self.root / "submissions"
        if base.is_dir():
            dirs |= {p.parent.relative_to(self.root).as_posix() for p in base.glob("*/*/*/meta.json")}
        return dirs

    def _load_submissions(self) -> dict[str, tuple[str, Submission]]:
        """instanceID -> (its directory, record), attachments as the files say, edits applied."""
        out: dict[str, tuple[str, Submission]] = {}
        for rel_dir in self._sub_dirs():
            raw = self._read(f"{rel_dir}/meta.json")
            if raw is None:
                continue
            try:
                sub = Submission.model_validate(json.loads(raw)["sub"])
            except (ValueError, KeyError) as exc:
                log.warning("Bỏ qua bản ghi hỏng / Skipping unreadable %s/meta.json: %s", rel_dir, exc)
                continue
            names = {unquote(n[4:]) for n in self._names(rel_dir) if n.startswith("att.")}
            out[sub.instance_id] = (rel_dir, sub.model_copy(update={"attachments": sorted(names)}))
        for _rel, sub in list(out.values()):
            old = out.get(sub.deprecated_id or "")
            if old is not None and old[1].current:
                out[old[1].instance_id] = (old[0], old[1].model_copy(update={"current": False}))
        return out

    def _names(self, rel_dir: str) -> set[str]:
        names = {rel.rsplit("/", 1)[1] for rel in self._overlay if rel.rsplit("/", 1)[0] == rel_dir}
        d = self.root / rel_dir
        if d.is_dir():
            names |= {p.name for p in d.iterdir() if not p.name.startswith(".")}
        return names

    # --- forms, rounds, users --------------------------------------------------------------
    def list_forms(self, all_versions: bool = False) -> list[FormVersion]:
        forms = sorted((FormVersion.model_validate(d) for d in self._tiny("db/forms.json")),
                       key=lambda f: (f.form_id, f.published_at))
        return forms if all_versions else list({f.form_id: f for f in forms}.values())

    def get_form(self, form_id: str, version: str | None = None) -> FormVersion | None:
        forms = [f for f in self.list_forms(True) if f.form_id == form_id]
        if version is not None:
            return next((f for f in forms if f.version == version), None)
        return forms[-1] if forms else None

    def _form_file(self, form_id: str, version: str, name: str) -> bytes | None:
        return self._read(f"forms/{encode(form_id)}/{encode(version)}/{name}")

    def form_xml(self, form_id: str, version: str) -> bytes:
        data = self._form_file(form_id, version, "form.xml")
        if data is None:
            raise KeyError(f"{form_id}@{version}")
        return data

    def form_schema(self, form_id: str, version: str) -> dict[str, Any]:
        data = self._form_file(form_id, version, "schema.json")
        if data is None:
            raise KeyError(f"{form_id}@{version}")
        return json.loads(data)

    def form_media(self, form_id: str, version: str, name: str) -> bytes | None:
        return self._form_file(form_id, version, f"media/{encode(name)}")

    def list_rounds(self) -> list[Round]:
        return sorted((Round.model_validate(d) for d in self._tiny("db/rounds.json")),
                      key=lambda r: (r.created_at, r.id))

    def get_round(self, round_id: str) -> Round | None:
        return next((r for r in self.list_rounds() if r.id == round_id), None)

    def get_snapshot(self, round_id: str) -> dict[str, Any] | None:
        raw = self._read(f"snapshots/{encode(round_id)}.json")
        return json.loads(raw) if raw is not None else None

    def list_users(self) -> list[User]:
        users = [User.model_validate(d) for p in sorted((self.root / "db" / "users").glob("*.json"))
                 for d in self._tiny(p.relative_to(self.root).as_posix())]
        return sorted(users, key=lambda u: (u.created_at, u.id))

    def get_user(self, user_id: str) -> User | None:
        return next((u for u in self.list_users() if u.id == user_id), None)

    def get_user_by_name(self, username: str) -> User | None:
        return next((u for u in self.list_users() if u.username == username), None)

    def get_user_by_token_hash(self, token_hash: str) -> User | None:
        return next((u for u in self.list_users() if u.token_hash == token_hash), None)

    def kv_entries(self) -> Iterator[tuple[str, str, Any, float | None]]:
        """(namespace, key, value, expiry as unix time) of every live key-value entry."""
        now = time.time()
        base = self.root / "kv"
        for path in sorted(base.glob("*/*.json")) if base.is_dir() else []:
            for doc in self._tiny(path.relative_to(self.root).as_posix()):
                if doc.get("exp") is None or doc["exp"] > now:
                    yield unquote(path.parent.name), doc["k"], doc["v"], doc.get("exp")

    def iter_durable_kv(self) -> Iterator[tuple[str, str, Any]]:
        for ns, key, value, exp in sorted(self.kv_entries(), key=lambda e: (e[0], e[1])):
            if exp is None:
                yield ns, key, value

    # --- submissions and audit ------------------------------------------------------------------
    def _matches(self, sub: Submission, q: SubmissionQuery) -> bool:
        return not (q.current_only and not sub.current) and all(
            v is None or getattr(sub, k) == v
            for k, v in (("form_id", q.form_id), ("form_version", q.form_version), ("round_id", q.round_id),
                         ("collector_id", q.collector_id))
        ) and (q.unit_codes is None or sub.unit_code in q.unit_codes)

    def iter_submissions(self, query: SubmissionQuery | None = None) -> Iterator[Submission]:
        q = query or SubmissionQuery()
        subs = sorted((s for _, s in self._subs.values()), key=lambda s: (s.received_at, s.instance_id))
        return iter([s for s in subs if self._matches(s, q)])

    def count_submissions(self, query: SubmissionQuery | None = None) -> int:
        return sum(1 for _ in self.iter_submissions(query))

    def get_submission(self, instance_id: str) -> Submission | None:
        found = self._subs.get(instance_id)
        return found[1] if found else None

    def submission_xml(self, instance_id: str) -> bytes | None:
        found = self._subs.get(instance_id)
        return self._read(f"{found[0]}/submission.xml") if found else None

    def attachment(self, instance_id: str, name: str) -> bytes | None:
        found = self._subs.get(instance_id)
        return self._read(f"{found[0]}/att.{encode(name)}") if found else None

    def iter_audit(self, since: datetime | None = None, actor: str | None = None) -> Iterator[AuditEvent]:
        adir = self.root / "audit"
        for path in sorted(adir.glob("*.jsonl")) if adir.is_dir() else []:
            raw = path.read_bytes()
            for line in raw[: raw.rfind(b"\n") + 1].splitlines():  # a torn last line was never written
                try:
                    event = AuditEvent.model_validate_json(line)
                except ValueError:
                    continue
                if (since is None or event.at >= since) and (actor is None or event.actor == actor):
                    yield event

    # --- read only ---------------------------------------------------------------------------
    def _read_only(self, *_: Any, **__: Any) -> Any:
        raise RuntimeError("the earlier format is read only; it is converted, never written")

    put_form = put_round = put_snapshot = put_user = save_submission = add_attachment = _read_only
    set_review = append_audit = kv_put = kv_delete = _read_only

    def kv_get(self, namespace: str, key: str) -> Any | None:
        return next((v for ns, k, v, _ in self.kv_entries() if (ns, k) == (namespace, key)), None)


def needs_conversion(store: Store, root: Path) -> bool:
    return is_legacy_dir(root) and store.kv_get(MARK_NS, MARK_KEY) is None


def convert(root: Path, store: Store) -> dict[str, Any]:
    """Copy the old data directory into ``store``, verify every record and md5, and mark it done."""
    src = LegacyStore(root)
    log.warning("Chuyển dữ liệu định dạng cũ sang SQLite / Converting the earlier data format in %s", root)
    try:
        problems = copy_store(src, store, quiet=True)
    except (ValueError, KeyError) as exc:  # CopyError is a ValueError  # e.g. a record whose XML file is gone
        raise ConversionError("storage.conversion_failed", detail=exc) from exc
    for ns, key, value, exp in src.kv_entries():  # durable ones too: copy_store may not know them yet
        store.kv_put(ns, key, value, None if exp is None else max(1, int(exp - time.time())))
    report = verify_stores(src, store, quiet=True)
    if problems or not report.ok:
        raise ConversionError(
            "storage.conversion_differs", problems='; '.join([*problems, *report.problems][:5])
        )
    summary = {"at": time.time(), **report.as_dict()}
    store.kv_put(MARK_NS, MARK_KEY, summary)
    return summary
