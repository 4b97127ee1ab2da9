"""A data directory written by the embedded engine before SQLite (tests/fixtures/legacy_store, made by
tests/fixtures/make_legacy_store.py with that engine) is converted on first open: every submission,
attachment, audit line, review state, form, round, user and session comes back, verified by md5, and the
old files are left where they were."""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rasoat.core.models import ReviewState
from rasoat.core.storage.base import SubmissionQuery
from rasoat.core.storage.embedded import EmbeddedStore
from rasoat.core.storage.legacy import MARK_KEY, MARK_NS, ConversionError
from rasoat.core.storage.opening import open_store

FIXTURE = Path(__file__).parent / "fixtures" / "legacy_store"
T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
ALL = SubmissionQuery(current_only=False)


@pytest.fixture
def old_dir(tmp_path: Path) -> Path:
    """The fixture as the old engine left it on this machine since its last boot (no reboot since: the
    engine redoes only the log records its writer left unfinished). The fixture's ``boot.id`` is the
    boot it was written in; any other machine would otherwise see a reboot and redo the whole log."""
    data = tmp_path / "data"
    shutil.copytree(FIXTURE, data)
    (data / "boot.id").write_bytes(Path("/proc/sys/kernel/random/boot_id").read_text().strip().encode())
    return data


def _files(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*") if p.is_file()}


def test_first_open_converts_everything_and_keeps_the_old_files(old_dir: Path) -> None:
    before = _files(old_dir)
    store = open_store(old_dir)
    try:
        assert isinstance(store, EmbeddedStore)
        subs = {s.instance_id: s for s in store.iter_submissions(ALL)}
        assert sorted(subs) == ["uuid:000", "uuid:001", "uuid:002", "uuid:003", "uuid:003-e", "uuid:004",
                                "uuid:005"]
        for i in range(6):
            iid = f"uuid:{i:03d}"
            assert subs[iid].received_at == T0 + timedelta(minutes=i)
            assert subs[iid].unit_code == f"0556{3 + i % 2}-01"
            assert subs[iid].fields["tên"] == "Nguyễn Văn A"
            assert subs[iid].fields["hh"] == [{"a": 1}, {"a": 2}]
            xml = store.submission_xml(iid)
            assert xml is not None and f"<instanceID>{iid}</instanceID>".encode() in xml
            assert hashlib.md5(xml).hexdigest() == subs[iid].xml_md5
            if i % 2 == 0:
                assert store.attachment(iid, "ảnh 1.jpg") == bytes([i]) * 3000
                assert store.attachment(iid, "audit.csv") == f"event\n{i}\n".encode()
        assert subs["uuid:001"].attachments == ["late.jpg"]
        assert store.attachment("uuid:001", "late.jpg") == b"late bytes"
        # the edit chain and review states
        assert subs["uuid:003"].current is False
        edit = subs["uuid:003-e"]
        assert edit.current and edit.deprecated_id == "uuid:003" and edit.review_state is ReviewState.edited
        assert store.attachment("uuid:003-e", "new.jpg") == b"edited"
        assert subs["uuid:000"].review_state is ReviewState.approved
        assert subs["uuid:000"].review_history[-1]["comment"] == "Đúng / ok"
        assert [h["to"] for h in subs["uuid:002"].review_history] == ["has_issues", "rejected"]
        assert store.count_submissions() == 6  # current versions
        # forms, media, rounds, snapshot, users, audit, sessions
        assert [(f.form_id, f.version) for f in store.list_forms(all_versions=True)] == [
            ("f2_pledge", "1"), ("f2_pledge", "2")]
        assert store.get_form("f2_pledge").version == "2"
        assert store.form_media("f2_pledge", "1", "logo.png") == b"\x89PNG fake"
        assert store.form_schema("f2_pledge", "1") == {"name": "data", "children": []}
        assert store.get_round("r2025").period == "2025"
        assert store.get_snapshot("r2025") == {"counts": {"05563": 3}}
        assert store.get_user_by_token_hash("ab" * 32).username == "lan"
        assert {u.username for u in store.list_users()} == {"lan", "minh"}
        audit = list(store.iter_audit())
        assert [(e.action, e.details) for e in audit] == [
            (f"act{n}", {"n": n, "ghi chú": "Việt"}) for n in range(3)]
        assert store.kv_get("sessions", "s1") == {"u": "u2"}
        report = store.kv_get(MARK_NS, MARK_KEY)
        assert report["ok"] and report["source"]["attachments"] == 8
    finally:
        store.close()
    after = _files(old_dir)
    assert {k: v for k, v in after.items() if k in before} == before  # the old files, untouched
    # a second open converts nothing again
    again = EmbeddedStore(old_dir)
    assert again.count_submissions(ALL) == 7 and len(list(again.iter_audit())) == 3
    again.close()


def _wal_frame(header: dict, body: bytes = b"") -> bytes:
    head = json.dumps(header).encode()
    return (struct.pack("<4sII", b"RW01", len(head), len(body)) + head + body
            + struct.pack("<I", zlib.crc32(body, zlib.crc32(head))))


def test_a_change_the_old_engine_logged_but_did_not_publish_is_converted(old_dir: Path) -> None:
    """kill -9 between the old engine's log flush and its renames: the change is in the log only."""
    meta_path = next(old_dir.glob("submissions/*/*/uuid%3A004/meta.json"))
    meta = json.loads(meta_path.read_bytes())
    meta["sub"]["review_state"] = "approved"
    rel = meta_path.relative_to(old_dir).as_posix()
    body = json.dumps(meta).encode()
    with open(old_dir / "wal" / "00000001.log", "ab") as fh:
        fh.write(_wal_frame({"t": "deadbeef", "ids": ["uuid:004"], "f": [[rel, len(body)]]}, body))
    with EmbeddedStore(old_dir) as store:
        assert store.get_submission("uuid:004").review_state is ReviewState.approved


def test_after_a_reboot_a_record_is_taken_from_the_old_engines_log(old_dir: Path) -> None:
    """After a reboot the old engine redid its whole log: a published file lost in the power cut (here the
    XML of uuid:002, which the log holds) is converted from the log."""
    xml = next(old_dir.glob("submissions/*/*/uuid%3A002/submission.xml"))
    expected = xml.read_bytes()
    xml.unlink()
    (old_dir / "boot.id").write_bytes(b"an-earlier-boot")
    with EmbeddedStore(old_dir) as store:
        assert store.submission_xml("uuid:002") == expected


def test_a_conversion_that_does_not_verify_is_refused_and_retried(old_dir: Path) -> None:
    xml = next(old_dir.glob("submissions/*/*/uuid%3A002/submission.xml"))
    xml.unlink()  # a record whose XML is gone cannot be converted whole
    meta_path = xml.parent / "meta.json"
    with pytest.raises(ConversionError, match="the old files are untouched"):
        EmbeddedStore(old_dir)
    assert json.loads(meta_path.read_bytes())["sub"]["instance_id"] == "uuid:002"
    with pytest.raises(ConversionError):  # no half-converted store is ever opened
        EmbeddedStore(old_dir)
