"""Migrating ODK-encrypted F1 records to protection at rest (issue 18, item 5), on both backends.

Three persons of Xã Phượng Tiến (one new user, one addict, one post-rehab) are sent ODK-encrypted exactly
as Collect sends them, through ``core.ingest`` (the one way in). Their figures are unknown ("3 encrypted
records not counted"). ``rasoat protection migrate`` without the passphrase opens nothing and says so;
with ``--passphrase-file`` it decrypts each in memory and stores it as a plaintext arrival of a form with
identifying fields is stored: statistical fields in clear (counted 1/1/1 from then on, with no
passphrase), the identifying ones, the XML and the attachments sealed under the key-encryption key, each
record read back and compared before it counts as converted. A rerun changes nothing; no name, ID number
or passphrase is left in clear in the store, its files or the audit log."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from rasoat.core.plugins import set_manager
from rasoat.core.protection import (
    PSEUDONYM_FIELD,
    is_protected,
    keyring,
    open_sealed,
    plain_attachment,
    reveal_stored,
)
from rasoat.core.storage.base import SubmissionQuery
from rasoat.core.storage.opening import open_store
from server_support import COMMUNE
from test_encryption import collect_encrypt
from test_encryption_counting import BY_CATEGORY, PERSONS, cli, encrypted_f1_round, person_xml

pytestmark = pytest.mark.slow

PASSPHRASE = "cụm mật khẩu chuyển đổi 2026"
PHOTO = b"\xff\xd8\xff\xe0 JPEG of a person"


@pytest.fixture
def world(tmp_path: Path, backend_url: str | None) -> Iterator[SimpleNamespace]:
    from rasoat.core.crypto import public_key
    from rasoat.core.ingest import ShapeCache, accept

    data_dir = tmp_path / "data"
    store = open_store(data_dir, backend_url)
    f1 = encrypted_f1_round(store, PASSPHRASE, "r-f1")
    w = SimpleNamespace(store=store, data_dir=data_dir, url=backend_url, version=f1.version,
                        today=f1.today.isoformat(), year=str(f1.today.year), ids=[], plain={}, tmp=tmp_path)
    shapes = ShapeCache()
    for n, (name, id_number, category) in enumerate(PERSONS, start=1):
        iid = f"uuid:{uuid.uuid4()}"
        xml = person_xml(w, iid, name, id_number, category, f"P{n}")
        envelope, files = collect_encrypt(public_key(store) or "", "f1_person", w.version, iid, xml,
                                          [("anh.jpg", PHOTO + name.encode())] if n == 1 else [])
        accept(store, f1.user, envelope, files, shapes)
        w.ids.append(iid)
        w.plain[iid] = xml
    try:
        yield w
    finally:
        set_manager(None)
        w.store.close()


def figures(w: SimpleNamespace) -> dict[str, tuple[object, object]]:
    done = cli(w, "indicators", "--unit", COMMUNE, "--period", w.year, "--json")
    assert done.returncode == 0, done.stderr
    rows = {r["indicator_id"]: r for r in json.loads(done.stdout) if r["unit_code"] == COMMUNE}
    return {i: (rows[i]["value"], rows[i]["uncounted_encrypted"]) for i in BY_CATEGORY.values()}


def in_clear(w: SimpleNamespace, secret: str) -> list[str]:
    """Where ``secret`` is readable: the data directory's files (grep, in another process) and every row,
    XML and attachment the store returns."""
    grep = subprocess.run(["grep", "-rlaF", secret, str(w.data_dir)], capture_output=True, text=True)
    found = grep.stdout.split()
    for sub in w.store.iter_submissions(SubmissionQuery(current_only=False)):
        stored = sub.model_dump_json().encode() + (w.store.submission_xml(sub.instance_id) or b"")
        stored += b"".join(w.store.attachment(sub.instance_id, n) or b"" for n in sub.attachments)
        if secret.encode() in stored:
            found.append(sub.instance_id)
    return found


def test_odk_encrypted_f1_records_are_migrated_with_the_passphrase(world: SimpleNamespace) -> None:
    w = world
    assert figures(w) == dict.fromkeys(BY_CATEGORY.values(), (None, 3))  # unknown: 3 not counted

    without = cli(w, "protection", "migrate", "--json")
    assert without.returncode == 0, without.stderr
    report = json.loads(without.stdout)
    assert (report["converted"], report["encrypted_without_key"], report["failed"]) == (0, 3, [])
    assert all(w.store.get_submission(i).encrypted for i in w.ids)  # untouched

    secret = w.tmp / "cum-mat-khau.txt"
    secret.write_text(PASSPHRASE + "\n", encoding="utf-8")
    done = cli(w, "protection", "migrate", "--passphrase-file", str(secret), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["forms"] == ["f1_person"] and report["failed"] == [] and report["converted"] == 3
    ring = keyring(w.store, create=False)
    assert sorted(r["instance_id"] for r in report["records"]) == sorted(w.ids)
    for rec in report["records"]:  # verified: the keyed digest of the very XML Collect encrypted
        iid = rec["instance_id"]
        assert rec["digest"] == ring.digest(w.plain[iid])
        assert open_sealed(ring, iid, "submission.xml", w.store.submission_xml(iid) or b"") == w.plain[iid]

    for iid, (name, id_number, category) in zip(w.ids, PERSONS, strict=True):
        sub = w.store.get_submission(iid)
        assert sub is not None and not sub.encrypted and is_protected(sub.fields)
        # statistical fields in clear, the pseudonym of the ID number beside them …
        assert sub.fields["category"] == category and sub.fields["sex"] == "male"
        assert sub.fields["commune"] == COMMUNE and sub.unit_code == f"{COMMUNE}-01"
        assert sub.fields[PSEUDONYM_FIELD] == ring.pseudonym(id_number)
        # … identifying ones sealed, opened in memory for a reader allowed to see them
        assert {"full_name", "id_number", "birth_date", "address_text"}.isdisjoint(sub.fields)
        opened = reveal_stored(w.store, iid, sub.fields)
        assert (opened["full_name"], opened["id_number"]) == (name, id_number)
    photo = w.store.get_submission(w.ids[0])
    assert photo is not None and photo.attachments == ["anh.jpg"]  # .enc parts replaced by the sealed photo
    assert plain_attachment(w.store, w.ids[0], "anh.jpg", w.store.attachment(w.ids[0], "anh.jpg") or b"") == (
        PHOTO + PERSONS[0][0].encode())
    for name, id_number, _ in PERSONS:
        assert in_clear(w, name) == [] and in_clear(w, id_number) == []

    assert figures(w) == dict.fromkeys(BY_CATEGORY.values(), (1, 0))  # counted, with no passphrase

    rerun = cli(w, "protection", "migrate", "--passphrase-file", str(secret), "--json")
    assert rerun.returncode == 0, rerun.stderr
    again = json.loads(rerun.stdout)
    assert (again["converted"], again["already_protected"], again["encrypted_without_key"]) == (0, 3, 0)
    assert figures(w) == dict.fromkeys(BY_CATEGORY.values(), (1, 0))

    audit = [e for e in w.store.iter_audit() if e.action == "protection.migrate"]
    assert [e.details["converted"] for e in audit] == [0, 3, 0]
    text = json.dumps([e.model_dump(mode="json") for e in w.store.iter_audit()], ensure_ascii=False)
    assert PASSPHRASE not in text and all(name not in text for name, _, _ in PERSONS)
