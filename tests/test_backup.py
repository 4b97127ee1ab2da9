"""Back up, wipe, restore: every submission (edited versions too) and every attachment comes back byte for
byte, with users, rounds, forms, the project key and the audit log; a backup taken while a real server
takes uploads is consistent; restore refuses a non-empty target and hostile archives."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import threading
import uuid
from pathlib import Path

import pytest
from rasoat.core.models import Submission
from rasoat.core.storage.base import SubmissionQuery
from rasoat.core.storage.opening import open_store
from server_support import COMMUNE, CollectClient, instance_xml, run_cli, seed, seeded_store, serving

pytestmark = pytest.mark.slow  # backups and restores through the CLI

ALL = SubmissionQuery(current_only=False)


def fingerprint(store) -> dict[str, dict]:
    """Everything a restore must bring back, by instanceID: XML and attachment hashes, review, versions."""
    out = {}
    for sub in store.iter_submissions(ALL):
        atts = {
            n: hashlib.sha256(store.attachment(sub.instance_id, n) or b"").hexdigest()
            for n in sub.attachments
        }
        out[sub.instance_id] = {
            "xml": hashlib.sha256(store.submission_xml(sub.instance_id)).hexdigest(),
            "attachments": atts,
            "review": sub.review_state.value,
            "current": sub.current,
            "unit": sub.unit_code,
        }
    return out


def fill(store, n: int = 12) -> None:
    seed(store)
    for i in range(n):
        iid, xml = instance_xml(name=f"Người {i}", photo="p.jpg", commune=COMMUNE)
        sub = Submission(
            instance_id=iid,
            form_id="tform",
            form_version="1",
            unit_code=COMMUNE,
            xml_md5=hashlib.md5(xml).hexdigest(),
            attachments=["p.jpg"],
        )
        store.save_submission(sub, xml, {"p.jpg": f"ảnh {i} ".encode() * 500})
    first = next(iter(store.iter_submissions(ALL)))
    store.set_review(first.instance_id, "approved", "ok", "tester")
    edit_id, edit_xml = instance_xml(name="Người sửa", deprecated_id=first.instance_id)
    edit = Submission(
        instance_id=edit_id,
        form_id="tform",
        form_version="1",
        unit_code=COMMUNE,
        xml_md5=hashlib.md5(edit_xml).hexdigest(),
        deprecated_id=first.instance_id,
    )
    store.save_submission(edit, edit_xml, {})


def test_backup_wipe_restore_brings_everything_back(tmp_path) -> None:
    from rasoat.core.crypto import create_project_key, unlock
    from rasoat.core.users import authenticate, create_user

    data = tmp_path / "data"
    store = open_store(data)
    try:
        fill(store)
        create_user(store, "quan-tri", "mật-khẩu-dài-1", "admin")
        create_project_key(store, "cụm mật khẩu dự án")
        before = fingerprint(store)
        users = sorted(u.username for u in store.list_users())
        rounds = sorted(r.id for r in store.list_rounds())
        forms = sorted((f.form_id, f.version, f.md5) for f in store.list_forms(all_versions=True))
    finally:
        store.close()
    assert len(before) == 13 and sum(len(v["attachments"]) for v in before.values()) == 12

    archive = tmp_path / "backups" / "rasoat.tar.gz"
    r = run_cli("backup", "-o", str(archive), "--data", str(data), "-q", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["submissions"] == 13 and archive.stat().st_mode & 0o077 == 0
    assert run_cli("backup", "-o", str(archive), "--data", str(data), "-q").returncode == 1  # no overwrite

    shutil.rmtree(data)  # the disk died
    r = run_cli("restore", str(archive), "--data", str(data), "-q")
    assert r.returncode == 0, r.stderr
    assert "13" in r.stdout

    store = open_store(data)
    try:
        assert fingerprint(store) == before
        assert sorted(u.username for u in store.list_users()) == users
        assert sorted(r.id for r in store.list_rounds()) == rounds
        assert sorted((f.form_id, f.version, f.md5) for f in store.list_forms(all_versions=True)) == forms
        assert authenticate(store, "quan-tri", "mật-khẩu-dài-1", "127.0.0.1").username == "quan-tri"
        assert unlock(store, "cụm mật khẩu dự án")  # the key came back and still opens
        actions = [e.action for e in store.iter_audit()]
        assert "restore" in actions and "key.create" in actions  # the log came back, and says so
        assert store.count_submissions(SubmissionQuery(form_id="tform")) == 12  # the index works
    finally:
        store.close()

    r = run_cli("restore", str(archive), "--data", str(data), "-q")  # not into a directory in use
    assert r.returncode == 1 and "not empty" in r.stderr


def test_backup_while_the_server_takes_uploads_is_consistent(tmp_path) -> None:
    data = tmp_path / "live"
    sent: list[str] = []
    stop = threading.Event()
    with seeded_store(data) as (store, seeded), serving(store) as server:

        def upload() -> None:
            client = CollectClient(f"{server.url}/v1/key/{seeded.token}/projects/1")
            while not stop.is_set() and len(sent) < 200:
                iid, xml = instance_xml(photo="p.jpg")
                resp = client.submit(xml, {"p.jpg": uuid.uuid4().bytes * 2000})
                assert resp.status_code == 201
                sent.append(iid)
            client.close()

        thread = threading.Thread(target=upload)
        thread.start()
        try:
            while len(sent) < 10:
                threading.Event().wait(0.05)
            archive = tmp_path / "live.tar.gz"
            r = run_cli("backup", "-o", str(archive), "--data", str(data), "-q")
            assert r.returncode == 0, r.stderr
        finally:
            stop.set()
            thread.join(timeout=120)
    restored = tmp_path / "restored"
    r = run_cli("restore", str(archive), "--data", str(restored), "-q", "--json")
    assert r.returncode == 0, r.stderr
    count = json.loads(r.stdout)["submissions"]
    assert 10 <= count <= len(sent)
    store = open_store(restored)
    try:
        subs = list(store.iter_submissions(ALL))
        assert len(subs) == count and {s.instance_id for s in subs} <= set(sent)
        for sub in subs:  # each one whole: its XML and its attachment
            assert store.submission_xml(sub.instance_id) and store.attachment(sub.instance_id, "p.jpg")
    finally:
        store.close()


def _archive(tmp_path: Path, extra: tarfile.TarInfo, data: bytes = b"x") -> Path:
    path = tmp_path / "evil.tar.gz"
    manifest = json.dumps({"format": 1, "kind": "embedded", "submissions": 0, "files": {}}).encode()
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("rasoat-backup.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        extra.size = len(data) if extra.isfile() else 0
        tar.addfile(extra, io.BytesIO(data) if extra.isfile() else None)
    return path


@pytest.mark.parametrize(
    "name,kind",
    [
        ("data/../../escape.txt", tarfile.REGTYPE),
        ("/etc/escape", tarfile.REGTYPE),
        ("data/link", tarfile.SYMTYPE),
    ],
)
def test_restore_refuses_hostile_archives(tmp_path, name: str, kind: bytes) -> None:
    member = tarfile.TarInfo(name)
    member.type = kind
    if kind == tarfile.SYMTYPE:
        member.linkname = "/etc/passwd"
    archive = _archive(tmp_path, member)
    target = tmp_path / "target"
    r = run_cli("restore", str(archive), "--data", str(target), "-q")
    assert r.returncode == 1 and ("Unsafe name" in r.stderr or "Not a plain file" in r.stderr), r.stderr
    assert not target.exists() and not (tmp_path / "escape.txt").exists()
    assert not list(tmp_path.glob(".target.restore-*"))  # the work folder is cleaned up
    notbackup = tmp_path / "plain.tar.gz"
    with tarfile.open(notbackup, "w:gz") as tar:
        tar.addfile(tarfile.TarInfo("hello.txt"), io.BytesIO(b""))
    r = run_cli("restore", str(notbackup), "--data", str(target), "-q")
    assert r.returncode == 1 and "not a rasoat backup" in r.stderr


def test_postgres_backup_and_restore(tmp_path) -> None:
    from pg_support import fresh_schema

    if not (shutil.which("pg_dump") and shutil.which("pg_restore")):
        pytest.skip("pg_dump/pg_restore not installed (apt-get install postgresql-client)")

    from rasoat.core.storage.postgres import PostgresStore

    with fresh_schema() as (url, schema):
        files = tmp_path / "pgfiles"
        store = PostgresStore(url, files_dir=files)
        try:
            fill(store, n=5)
            before = fingerprint(store)
        finally:
            store.close()
        archive = tmp_path / "pg.tar.gz"
        r = run_cli("backup", "-o", str(archive), "--data", str(files), "--database", url, "-q")
        assert r.returncode == 0, r.stderr
        from pg_support import drop_schema

        drop_schema(schema)  # the database is lost
        shutil.rmtree(files)
        r = run_cli("restore", str(archive), "--data", str(files), "--database", url, "-q")
        assert r.returncode == 0, r.stderr
        store = PostgresStore(url, files_dir=files)
        try:
            assert fingerprint(store) == before and len(before) == 6
        finally:
            store.close()
