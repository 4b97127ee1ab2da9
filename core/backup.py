"""Backups of everything rasoat keeps, and restoring them into an empty place.

A backup is one ``.tar.gz`` with ``rasoat-backup.json`` first: what kind of store it holds, when it was
taken, and the SHA-256 of every file, so a restore proves that every submission and attachment came back
byte for byte.

- **Embedded store** (the data directory): SQLite's online backup copies the database as one
  consistent moment while a server goes on writing (``EmbeddedStore.snapshot``), then the other files
  of the data directory follow (attachments are written before the rows that name them and never
  change, so every file the snapshot refers to is there). The live database files, a stale ``staging``
  and ``locks`` of the earlier format, and the demo passphrase file are left out.
- **PostgreSQL**: ``pg_dump --format=custom`` (a consistent snapshot by itself) as ``database.dump``,
  then the attachment files. Attachments are written before the rows that name them and never change,
  so copying them after the dump gives every file the dump refers to. Restoring runs ``pg_restore``
  into an empty database.

``restore`` refuses a target that is not empty, refuses archive members that are not plain files or
folders or whose names leave the target (absolute paths, ``..``), checks every file's hash, and only
then moves the result into place.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rasoat.core.models import AuditEvent, utcnow
from rasoat.core.problems import Problem
from rasoat.core.storage.base import Store, SubmissionQuery
from rasoat.core.storage.embedded import DB_NAME, EmbeddedStore
from rasoat.core.storage.opening import open_store

MANIFEST = "rasoat-backup.json"
FORMAT = 1
SKIP_TOP = {"locks", "staging", "index.new", "index.old", "boot.id"}
DEMO_PASSPHRASE = re.compile(r"demo-key-passphrase(-\d+)?\.txt")
ALL = SubmissionQuery(current_only=False)  # versions replaced by an edit are kept too


class BackupError(Problem, RuntimeError):
    """A backup or restore that cannot be done; one bilingual line."""


@dataclass
class BackupInfo:
    path: Path
    kind: str
    files: int
    bytes: int
    submissions: int
    created_at: str
    extra: dict[str, Any] = field(default_factory=dict)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _files_under(root: Path, skip_top: set[str]) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        if rel_dir == Path("."):
            dirnames[:] = sorted(d for d in dirnames if d not in skip_top)
            # every demo passphrase file (a second store on the folder gets demo-key-passphrase-2.txt)
            filenames = [f for f in filenames if f not in skip_top and not DEMO_PASSPHRASE.fullmatch(f)]
        else:
            dirnames.sort()
        for name in sorted(filenames):
            if name.endswith(".tmp") or ".tmp-" in name:
                continue  # an atomic write in progress elsewhere never belongs in a backup
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                yield path


def _write_archive(
    target: Path,
    manifest: dict[str, Any],
    members: list[tuple[str, Path]],
    progress: Callable[[int], object] | None,
) -> int:
    """Write the archive to a temporary file beside ``target``, then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".rasoat-backup-", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        with tarfile.open(tmp, "w:gz", compresslevel=1) as tar:  # photos do not compress; JSON does
            data = json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8")
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime, info.mode = len(data), int(utcnow().timestamp()), 0o600
            tar.addfile(info, io.BytesIO(data))
            for arcname, path in members:
                tar.add(path, arcname=arcname, recursive=False)
                if progress:
                    progress(1)
        os.chmod(tmp, 0o600)  # a backup holds everything, ciphertext and all: owner only
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target.stat().st_size


def backup_embedded(
    store: Store, target: Path, actor: str = "cli", progress: Callable[[int], object] | None = None
) -> BackupInfo:
    """A consistent archive of an embedded store's data directory (see the module notes)."""

    if not isinstance(store, EmbeddedStore):
        raise BackupError("backup.not_embedded")
    root = store.root.resolve()
    target = Path(target).resolve()
    if root in target.parents:
        raise BackupError("backup.inside_data_dir")

    live = {DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", f"{DB_NAME}-journal"}
    with tempfile.TemporaryDirectory(prefix="rasoat-backup-") as tmp:
        snap = Path(tmp) / DB_NAME
        submissions = store.snapshot(snap)  # first: every file it names already exists
        files = list(_files_under(root, SKIP_TOP | live))
        members = [(DB_NAME, snap), *((str(p.relative_to(root)), p) for p in files)]
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "kind": "embedded",
            "created_at": utcnow().isoformat(),
            "submissions": submissions,
            "files": {rel: _sha256(p) for rel, p in members},
        }
        size = _write_archive(target, manifest, [(f"data/{rel}", p) for rel, p in members], progress)
        files = [p for _, p in members]
    store.append_audit(
        AuditEvent(
            actor=actor,
            action="backup.create",
            target=target.name,
            details={"files": len(files), "bytes": size},
        )
    )
    return BackupInfo(target, "embedded", len(files), size, manifest["submissions"], manifest["created_at"])


def backup_postgres(
    store: Store,
    database_url: str,
    target: Path,
    actor: str = "cli",
    progress: Callable[[int], object] | None = None,
) -> BackupInfo:
    """``pg_dump`` of the database, then the attachment files (see the module notes)."""
    files_dir = Path(store.files_dir).resolve()  # type: ignore[attr-defined]
    target = Path(target).resolve()
    with tempfile.TemporaryDirectory(prefix="rasoat-pgdump-") as tmp:
        dump = Path(tmp) / "database.dump"
        _run(
            [
                "pg_dump",
                "--format=custom",
                "--no-owner",
                "--no-privileges",
                "-f",
                str(dump),
                *_libpq(database_url),
            ]
        )
        files = list(_files_under(files_dir, set()))
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "kind": "postgres",
            "created_at": utcnow().isoformat(),
            "submissions": store.count_submissions(ALL),
            "database": {"database.dump": _sha256(dump)},
            "files": {str(p.relative_to(files_dir)): _sha256(p) for p in files},
        }
        members = [("database.dump", dump), *((f"files/{p.relative_to(files_dir)}", p) for p in files)]
        size = _write_archive(target, manifest, members, progress)
    store.append_audit(
        AuditEvent(
            actor=actor,
            action="backup.create",
            target=target.name,
            details={"files": len(files), "bytes": size, "kind": "postgres"},
        )
    )
    return BackupInfo(target, "postgres", len(files), size, manifest["submissions"], manifest["created_at"])


def _libpq(database_url: str) -> list[str]:
    """pg_dump/pg_restore arguments for a rasoat database URL (its ``schema=`` parameter is rasoat's own:
    the dump then holds that schema only, and a restore recreates it under the same name)."""
    # psycopg and its pool are loaded only by a deployment that names a database
    from rasoat.core.storage.postgres import split_schema

    url, schema = split_schema(database_url)
    return ["--dbname", url, *([f"--schema={schema}"] if schema else [])]


def _run(cmd: list[str]) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        raise BackupError("backup.tool_missing", cmd=cmd[0]) from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
        raise BackupError("backup.tool_failed", cmd=cmd[0], detail=tail[0])


# --- restore ---------------------------------------------------------------------------------------


def read_manifest(archive: Path) -> dict[str, Any]:
    try:
        with tarfile.open(archive, "r:*") as tar:
            first = tar.next()
            if first is None or first.name != MANIFEST or not first.isfile():
                raise BackupError("backup.not_a_backup", name=archive.name)
            fh = tar.extractfile(first)
            assert fh is not None
            manifest = json.loads(fh.read())
    except (tarfile.TarError, OSError, ValueError) as exc:
        raise BackupError("backup.unreadable", name=archive.name, detail=exc) from None
    if manifest.get("format", 0) > FORMAT:
        raise BackupError("backup.newer")
    return manifest


def _safe_members(tar: tarfile.TarFile, prefix: str) -> Iterator[tuple[tarfile.TarInfo, Path]]:
    """Members under ``prefix`` with their path below it; any member anywhere that is not a plain file or
    folder, or whose name could leave the target, stops the restore."""
    for member in tar:
        if member.name == MANIFEST:
            continue
        rel = Path(member.name)
        if rel.is_absolute() or ".." in rel.parts or "\\" in member.name:
            raise BackupError("backup.unsafe_name", name=repr(member.name))
        if not (member.isfile() or member.isdir()):
            raise BackupError("backup.not_a_file", name=repr(member.name))
        if member.name.startswith(prefix) and len(rel.parts) > 1:
            yield member, Path(*rel.parts[1:])


def _extract(archive: Path, prefix: str, dest: Path, progress: Callable[[int], object] | None) -> None:
    with tarfile.open(archive, "r:*") as tar:
        for member, rel in _safe_members(tar, prefix):
            out = dest / rel
            if member.isdir():
                out.mkdir(parents=True, exist_ok=True)
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            src = tar.extractfile(member)
            assert src is not None
            with src, open(out, "wb") as fh:
                shutil.copyfileobj(src, fh, 1 << 20)
            os.chmod(out, 0o600)
            if progress:
                progress(1)


def _verify(root: Path, expected: dict[str, str]) -> None:
    bad = [
        rel for rel, digest in expected.items() if not (root / rel).is_file() or _sha256(root / rel) != digest
    ]
    if bad:
        raise BackupError("backup.files_differ", count=len(bad), files=', '.join(bad[:3]))


def _empty_target(path: Path) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise BackupError("backup.target_not_empty", path=path)


def restore(
    archive: Path,
    data_dir: Path,
    database_url: str | None = None,
    actor: str = "cli",
    progress: Callable[[int], object] | None = None,
) -> BackupInfo:
    """Restore ``archive`` into an empty data directory (and, for a PostgreSQL backup, an empty database)."""
    archive, data_dir = Path(archive), Path(data_dir).resolve()
    manifest = read_manifest(archive)
    kind = manifest.get("kind")
    _empty_target(data_dir)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{data_dir.name}.restore-", dir=data_dir.parent))
    try:
        if kind == "embedded":
            if database_url:
                raise BackupError("backup.embedded_not_postgres")
            _extract(archive, "data/", work, progress)
            _verify(work, manifest["files"])
        elif kind == "postgres":
            if not database_url:
                raise BackupError("backup.database_needed")
            _extract(archive, "files/", work, progress)
            _verify(work, manifest["files"])
            with tempfile.TemporaryDirectory(prefix="rasoat-pgrestore-") as tmp:
                _extract_one(archive, "database.dump", Path(tmp) / "database.dump")
                _verify(Path(tmp), manifest["database"])
                _run(
                    [
                        "pg_restore",
                        "--no-owner",
                        "--no-privileges",
                        "--exit-on-error",
                        *_libpq(database_url)[:2],  # the dump names its schema itself
                        str(Path(tmp) / "database.dump"),
                    ]
                )
        else:
            raise BackupError("backup.unknown_kind", kind=repr(kind))
        if data_dir.exists():
            data_dir.rmdir()  # empty, checked above
        os.replace(work, data_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise

    store = open_store(data_dir, database_url)
    try:
        count = store.count_submissions(ALL)
        store.append_audit(
            AuditEvent(
                actor=actor,
                action="restore",
                target=archive.name,
                details={"kind": kind, "backup_created_at": manifest.get("created_at"), "submissions": count},
            )
        )
    finally:
        store.close()
    if count != manifest.get("submissions", count):
        raise BackupError("backup.count_differs", count=count, submissions=manifest['submissions'])
    return BackupInfo(
        data_dir,
        str(kind),
        len(manifest["files"]),
        archive.stat().st_size,
        count,
        str(manifest.get("created_at")),
    )


def _extract_one(archive: Path, name: str, out: Path) -> None:
    with tarfile.open(archive, "r:*") as tar:
        member = tar.getmember(name)
        if not member.isfile():
            raise BackupError("backup.not_a_file", name=repr(name))
        src = tar.extractfile(member)
        assert src is not None
        with src, open(out, "wb") as fh:
            shutil.copyfileobj(src, fh, 1 << 20)
