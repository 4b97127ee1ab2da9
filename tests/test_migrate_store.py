"""``rasoat migrate-store``: an embedded store with every kind of record moves to PostgreSQL whole,
the verification proves it, and catches a corrupted attachment or a missing record."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from pg_support import fresh_schema
from rasoat.core.cli import main as cli_main
from rasoat.core.models import AuditEvent, ReviewState, Role, Round, RoundState, User
from rasoat.core.storage.base import Store, SubmissionQuery
from rasoat.core.storage.blobs import blob_key
from rasoat.core.storage.copy import copy_store, verify_stores
from rasoat.core.storage.embedded import EmbeddedStore
from rasoat.core.storage.postgres import PostgresStore
from storage_contract import T0, make_form, make_sub

ALL = SubmissionQuery(current_only=False)


def fill(store: Store) -> None:
    """One of everything: form versions with media, rounds with a snapshot, users, submissions with
    attachments, an edit chain, a late attachment, reviews, the audit log and (not copied) kv."""
    for version, at in (("1", T0), ("2", T0 + timedelta(days=1))):
        form, xml = make_form(version=version, at=at)
        store.put_form(form, xml, {"type": "survey", "children": [{"name": "commune"}], "v": version},
                       {"hamlets.csv": f"name,label,commune\n05563-01,Thôn {version},05563\n".encode()})
    person, pxml = make_form("f1_person", "2025")
    store.put_form(person, pxml, {"type": "survey"}, {})
    closed = Round(id="r2024", name="Cam kết 2024", period="2024", form_ids=["f2_pledge"],
                   unit_codes=["05563"], state=RoundState.closed, created_at=T0 - timedelta(days=365))
    store.put_round(closed)
    store.put_round(Round(id="r2025", name="Cam kết 2025", period="2025", form_ids=["f2_pledge"],
                          unit_codes=["05563"], collector_ids=["c1"], state=RoundState.open, created_at=T0))
    store.put_snapshot("r2024", {"05563": {"pledges": 41, "households": 120}, "note": "Xã Phượng Tiến"})
    store.put_user(User(id="u1", username="lan", display_name="Nguyễn Thị Lan", role=Role.commune_officer,
                        unit_codes=["05563"], password_hash="$argon2id$v=19$x"))
    store.put_user(User(id="c1", username="thu-thap-1", role=Role.collector, unit_codes=["05563-01"],
                        token_hash="ab" * 32))
    for i in range(30):
        sub, xml = make_sub(f"uuid:{i:03d}", received_at=T0 + timedelta(minutes=i),
                            unit_code=f"05563-0{i % 3 + 1}",
                            fields={"commune": "05563", "hh": [{"name": f"Hộ {i}", "signed": "yes"}]})
        sub = sub.model_copy(update={"expected_attachments": ["photo.jpg", "sign.png"]})
        atts = {"photo.jpg": f"jpeg {i}".encode()} if i % 2 == 0 else {}
        store.save_submission(sub, xml, atts)
    store.add_attachment("uuid:000", "sign.png", b"png 0")
    edit, exml = make_sub("uuid:edit-1", body="<fixed/>", deprecated_id="uuid:004",
                          received_at=T0 + timedelta(hours=2))
    edit = edit.model_copy(update={"expected_attachments": ["photo.jpg"]})
    store.save_submission(edit, exml, {"photo.jpg": b"new jpeg"})
    edit2, exml2 = make_sub("uuid:edit-2", body="<fixed again/>", deprecated_id="uuid:edit-1",
                            received_at=T0 + timedelta(hours=3))
    edit2 = edit2.model_copy(update={"expected_attachments": ["photo.jpg"]})
    store.save_submission(edit2, exml2, {"photo.jpg": b"new jpeg"})  # the same photo sent again
    store.set_review("uuid:001", ReviewState.approved, "Đúng", "lan")
    store.set_review("uuid:002", ReviewState.has_issues, "Thiếu chữ ký", "lan")
    for n in range(5):
        store.append_audit(AuditEvent(at=T0 + timedelta(hours=n), actor="lan", action="view.submission",
                                      target=f"uuid:{n:03d}", details={"n": n}))
    store.kv_put("sessions", "s1", {"user": "u1"}, ttl_seconds=3600)


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[EmbeddedStore]:
    s = EmbeddedStore(tmp_path / "commune")
    fill(s)
    yield s
    s.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_schema() as (url, _schema):
        yield url


def test_copy_moves_every_record_and_verify_proves_it(embedded: EmbeddedStore, pg_url: str,
                                                     tmp_path: Path) -> None:
    pg = PostgresStore(pg_url, tmp_path / "pgfiles")
    try:
        assert copy_store(embedded, pg, quiet=True) == []
        report = verify_stores(embedded, pg, quiet=True)
        assert report.problems == [] and report.ok
        assert report.source == {"settings": 0, "forms": 3, "form_media": 2, "rounds": 2, "snapshots": 1,
                                 "users": 2, "submissions": 32, "attachments": 18, "audit": 5,
                                 "entities": 0, "entity_versions": 0, "entities_held": 0}
        # the edit chain, reviews and late attachments came across as they were
        assert not pg.get_submission("uuid:004").current and not pg.get_submission("uuid:edit-1").current
        in_hamlet = [s.instance_id for s in pg.iter_submissions(SubmissionQuery(unit_codes=["05563-01"]))]
        assert "uuid:004" not in in_hamlet and in_hamlet[-1] == "uuid:edit-2"
        assert pg.get_submission("uuid:000").attachments == ["photo.jpg", "sign.png"]
        history = embedded.get_submission("uuid:002").review_history
        assert pg.get_submission("uuid:002").review_history == history and len(history) == 1
        assert pg.get_form("f2_pledge").version == "2"
        assert pg.get_user_by_token_hash("ab" * 32).username == "thu-thap-1"
        assert pg.kv_get("sessions", "s1") is None  # short-lived state stays behind
        # running again resumes: nothing is duplicated
        assert copy_store(embedded, pg, quiet=True) == []
        assert pg.count_submissions(ALL) == 32 and len(list(pg.iter_audit())) == 5
        assert verify_stores(embedded, pg, quiet=True).ok
    finally:
        pg.close()


def test_verify_catches_a_corrupted_attachment_and_a_missing_record(embedded: EmbeddedStore, pg_url: str,
                                                                   tmp_path: Path) -> None:
    pg = PostgresStore(pg_url, tmp_path / "pgfiles")
    try:
        copy_store(embedded, pg, quiet=True)
        blob = tmp_path / "pgfiles" / "attachments" / blob_key(b"jpeg 6")
        blob.write_bytes(b"jpeg 7")  # bit rot on the shared disk
        embedded.append_audit(AuditEvent(actor="minh", action="export.raw"))  # written after the copy
        report = verify_stores(embedded, pg, quiet=True)
        assert not report.ok
        md5 = hashlib.md5(b"jpeg 6").hexdigest()
        bad = hashlib.md5(b"jpeg 7").hexdigest()
        assert f"submission uuid:006: attachment 'photo.jpg' md5 {md5} ≠ {bad}" in report.problems
        assert report.source["audit"] == 6 and report.dest["audit"] == 5
    finally:
        pg.close()


def test_pg_to_embedded_copy_round_trips(embedded: EmbeddedStore, pg_url: str, tmp_path: Path) -> None:
    """Generic: any store to any store (a province database back to a commune's laptop)."""
    pg = PostgresStore(pg_url, tmp_path / "pgfiles")
    back = EmbeddedStore(tmp_path / "back")
    try:
        copy_store(embedded, pg, quiet=True)
        assert copy_store(pg, back, quiet=True) == []
        assert verify_stores(embedded, back, quiet=True).ok
    finally:
        back.close()
        pg.close()


def test_cli_copies_verifies_and_fails_on_mismatch(embedded: EmbeddedStore, pg_url: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    embedded.close()
    files = tmp_path / "server-data"
    src = str(embedded.root)
    assert cli_main(["migrate-store", "--from", src, "--to", pg_url, "--data", str(files), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"submissions +32", out) and "Everything matches" in out
    assert (files / "attachments").is_dir()

    assert cli_main(["migrate-store", "--from", src, "--to", pg_url, "--data", str(files), "--verify-only",
                     "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["destination"]["attachments"] == 18

    (files / "attachments" / blob_key(b"new jpeg")).write_bytes(b"tampered")
    assert cli_main(["migrate-store", "--from", src, "--database", pg_url, "--data", str(files),
                     "--verify-only"]) == 1  # --to defaults to --database
    captured = capsys.readouterr()
    assert "✗ submission uuid:edit-1: attachment 'photo.jpg'" in captured.out
    # one file on disk, two submissions naming it: both are reported
    assert "✗ submission uuid:edit-2: attachment 'photo.jpg'" in captured.out
    assert "verification failed: 2 difference(s)" in captured.err


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nowhere = "postgresql://x@127.0.0.1:1/db"
    assert cli_main(["migrate-store", "--from", str(tmp_path)]) == 1
    assert "--to is required" in capsys.readouterr().err
    assert cli_main(["migrate-store", "--from", str(tmp_path / "none"), "--to", nowhere]) == 1
    assert "none is not a rasoat data directory" in capsys.readouterr().err
    EmbeddedStore(tmp_path / "d").close()
    assert cli_main(["migrate-store", "--from", str(tmp_path / "d"), "--to", nowhere,
                     "--data", str(tmp_path / "f")]) == 1
    assert "cannot connect to PostgreSQL" in capsys.readouterr().err


def test_entity_lists_move_whole(embedded: EmbeddedStore, pg_url: str, tmp_path: Path) -> None:
    """Entities (issue 23) with their versions, conflicts, deletions, the backlog and the approval flag;
    sealed values move sealed (the same key opens them) and a rerun duplicates nothing."""
    from entity_support import new_uuid, publish
    from rasoat.core.entities import EntityBlock
    from rasoat.core.protection import keyring, seal_entity_values

    publish(embedded, "register")
    publish(embedded, "visit")
    ring = keyring(embedded)
    ids = [new_uuid() for _ in range(3)]
    for eid in ids:
        embedded.write_entity("persons", eid, label=f"Người {eid[:4]}", actor="lan", unit_code="05563",
                              data=seal_entity_values(ring, eid, {"full_name": "Tên", "status": "a"},
                                                      {"full_name"}))
    embedded.write_entity("persons", ids[0], label=None, data={"status": "b"}, actor="lan", base_version=1)
    embedded.write_entity("persons", ids[0], label=None, data={"status": "c"}, actor="lan", base_version=1)
    embedded.delete_entity(ids[1], "lan")
    embedded.set_entity_list("persons", approval_required=True)
    held = EntityBlock(dataset="persons", uuid=ids[2], create=False, update=True, label=None,
                       data={"status": "x"}, base_version=3, trunk_version=1, branch_id=new_uuid())
    from rasoat.core.storage.entity_rules import Source

    with embedded.entity_transaction() as tx:
        tx.hold("branch", held, Source("uuid:held", "lan", "05563", T0, scope=("05563",)))
    pg = PostgresStore(pg_url, tmp_path / "pgfiles")
    try:
        assert copy_store(embedded, pg, quiet=True) == []
        copy_store(embedded, pg, quiet=True)  # a rerun adds nothing
        report = verify_stores(embedded, pg, quiet=True)
        assert report.problems == [] and report.ok
        dest = report.dest
        assert (dest["entities"], dest["entity_versions"], dest["entities_held"]) == (3, 5, 1)
        assert pg.get_entity(ids[0]).conflict == "hard" and pg.get_entity(ids[1]).deleted
        assert pg.get_entity_list("persons").approval_required
        assert pg.entity_backlog()[0].scope == ("05563",)
    finally:
        pg.close()
