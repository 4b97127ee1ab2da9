"""ODK encrypted forms end to end: a record encrypted exactly as ODK Collect does it (RSA-OAEP-SHA256 key
wrap, AES-256-CFB with PKCS#7 padding, IVs from md5(instanceID ‖ key), the signature element) goes
through the real server, which stores it unreadable; ``rasoat export --passphrase-file`` decrypts it in
memory; a wrong passphrase is a clear error and the audit log holds no secret and no plaintext."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path
from types import SimpleNamespace

import openpyxl
import pytest
from cryptography.hazmat.decrepit.ciphers.modes import CFB
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import padding as sympad
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from rasoat.core.models import FormVersion, Round, RoundState
from rasoat.core.storage.opening import open_store
from server_support import COMMUNE, CollectClient, opened_store, run_cli, serving

PASSPHRASE = "cụm mật khẩu của tỉnh 2026"
SECRET_NAME = "Nguyễn Văn Mật"
PHOTO = b"\xff\xd8\xff\xe0 a portrait that must stay private " * 40
AUDIT_CSV = b"event,node,start\nform start,,1700000000000\n"

FORM_MD = """
| survey |
| | type | name | label |
| | text | commune | Xã |
| | text | name | Họ tên |
| | image | photo | Ảnh |
| | audit | audit | |
| settings |
| | form_id | version | form_title | public_key |
| | tenc | 1 | Biểu mật | {key} |
"""

OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


# --- what ODK Collect does (EncryptionUtils.java), written from the reference, independent of core.crypto --


def collect_encrypt(
    public_b64: str, form_id: str, version: str, instance_id: str, xml: bytes, media: list[tuple[str, bytes]]
) -> tuple[bytes, dict[str, bytes]]:
    """(envelope XML, {part name: bytes}) exactly as Collect uploads an encrypted record."""
    pub = serialization.load_der_public_key(base64.b64decode(public_b64))
    key = os.urandom(32)
    wrapped = base64.b64encode(pub.encrypt(key, OAEP)).decode()
    seed = bytearray(hashlib.md5(instance_id.encode("utf-8") + key).digest())
    counter = 0

    def encrypt(data: bytes) -> bytes:
        nonlocal counter
        seed[counter % 16] = (seed[counter % 16] + 1) & 0xFF
        counter += 1
        padder = sympad.PKCS7(128).padder()
        padded = padder.update(data) + padder.finalize()  # padded even though CFB is a stream mode
        enc = Cipher(algorithms.AES(key), CFB(bytes(seed))).encryptor()
        return enc.update(padded) + enc.finalize()

    files: dict[str, bytes] = {}
    for name, data in media:  # media first, in order, then the XML last
        files[f"{name}.enc"] = encrypt(data)
    files["submission.xml.enc"] = encrypt(xml)
    lines = [form_id, version, wrapped, instance_id]
    lines += [f"{name}::{hashlib.md5(data).hexdigest()}" for name, data in media]
    lines.append(f"submission.xml::{hashlib.md5(xml).hexdigest()}")
    digest = hashlib.md5("".join(f"{line}\n" for line in lines).encode()).digest()
    signature = base64.b64encode(pub.encrypt(digest, OAEP)).decode()
    media_xml = "".join(f"<media><file>{name}.enc</file></media>" for name, _ in media)
    envelope = (
        f'<data id="{form_id}" version="{version}" encrypted="yes" '
        'xmlns="http://www.opendatakit.org/xforms/encrypted">'
        f"<base64EncryptedKey>{wrapped}</base64EncryptedKey>"
        '<orx:meta xmlns:orx="http://openrosa.org/xforms">'
        f"<orx:instanceID>{instance_id}</orx:instanceID></orx:meta>"
        f"{media_xml}<encryptedXmlFile>submission.xml.enc</encryptedXmlFile>"
        f"<base64EncryptedElementSignature>{signature}</base64EncryptedElementSignature></data>"
    )
    return envelope.encode(), files


def plain_instance(instance_id: str, name: str = SECRET_NAME) -> bytes:
    return (
        '<?xml version=\'1.0\' ?><data id="tenc" version="1" xmlns:orx="http://openrosa.org/xforms">'
        f"<commune>{COMMUNE}</commune><name>{name}</name><photo>photo.jpg</photo>"
        f"<meta><audit>audit.csv</audit><instanceID>{instance_id}</instanceID></meta></data>"
    ).encode()


# --- a running server with an encrypted form ----------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from pyxform.xls2xform import convert
    from rasoat.core.collectors import create_collector
    from rasoat.core.crypto import create_project_key, public_key

    root = tmp_path_factory.mktemp("enc")
    data_dir = root / "data"
    with opened_store(data_dir) as store:
        create_project_key(store, PASSPHRASE, actor="admin")
        pub = public_key(store)
        result = convert(xlsform=FORM_MD.format(key=pub), file_type=".md", form_name="data")
        xml = result.xform.encode()
        assert f'base64RsaPublicKey="{pub}"'.encode() in xml
        store.put_form(
            FormVersion(
                form_id="tenc",
                version="1",
                title="Biểu mật",
                md5=hashlib.md5(xml).hexdigest(),
                encrypted=True,
                source="test",
            ),
            xml,
            result._survey.to_json_dict(),
            {},
        )
        store.put_round(
            Round(
                id="r-enc",
                name="Rà soát",
                period="2026",
                form_ids=["tenc"],
                unit_codes=[COMMUNE],
                state=RoundState.open,
            )
        )
        user, token = create_collector(store, "Người thu", [COMMUNE], ["r-enc"])
        with serving(store) as server:
            client = CollectClient(f"{server.url}/v1/key/{token}/projects/1")
            (root / "pass.txt").write_text(PASSPHRASE + "\n")
            (root / "wrong.txt").write_text("not the passphrase at all\n")
            yield SimpleNamespace(store=store, data_dir=data_dir, client=client, pub=pub, root=root,
                                  url=server.url)
            client.close()


def submit(world, name: str = SECRET_NAME) -> str:
    iid = f"uuid:{uuid.uuid4()}"
    envelope, files = collect_encrypt(
        world.pub,
        "tenc",
        "1",
        iid,
        plain_instance(iid, name),
        [("photo.jpg", PHOTO), ("audit.csv", AUDIT_CSV)],
    )
    resp = world.client.submit(envelope, files)
    assert resp.status_code == 201, resp.text
    return iid


def test_server_stores_what_collect_sends_without_reading_it(world) -> None:
    iid = submit(world)
    sub = world.store.get_submission(iid)
    assert sub.encrypted and sub.unit_code == COMMUNE
    assert sorted(sub.attachments) == ["audit.csv.enc", "photo.jpg.enc", "submission.xml.enc"]
    stored = [world.store.submission_xml(iid)] + [world.store.attachment(iid, n) for n in sub.attachments]
    blob = b"".join(stored)
    assert SECRET_NAME.encode() not in blob and b"private" not in blob
    assert "name" not in sub.fields and SECRET_NAME not in json.dumps(sub.fields, ensure_ascii=False)
    # on disk too: nothing under the data dir holds the plaintext. Read in another process: closing
    # a descriptor of the live SQLite files here drops this process's locks (sqlite.org/howtocorrupt.html)
    found = subprocess.run(
        [sys.executable, "-c", "import sys, pathlib\n"
         "for p in pathlib.Path(sys.argv[1]).rglob('*'):\n"
         "    if p.is_file() and any(s.encode() in p.read_bytes() for s in sys.argv[2:]): print(p)",
         str(world.data_dir), SECRET_NAME, "a portrait that must"],
        capture_output=True, text=True, check=True,
    )
    assert found.stdout == "", found.stdout


def test_plaintext_for_an_encrypted_form_is_refused(world) -> None:
    iid = f"uuid:{uuid.uuid4()}"
    resp = world.client.submit(plain_instance(iid))
    assert resp.status_code == 400 and "must be sent encrypted" in resp.text
    assert world.store.get_submission(iid) is None


def test_decryptor_opens_a_record_in_memory(world) -> None:
    from rasoat.core.crypto import WrongPassphrase, open_decryptor

    iid = submit(world, "Trần Thị Kín")
    opener = open_decryptor(world.store, PASSPHRASE, actor="tester")
    opened = opener.open(world.store.get_submission(iid))
    assert opened is not None
    sub, plain = opened
    assert sub.fields["name"] == "Trần Thị Kín" and sub.fields["commune"] == COMMUNE
    assert sorted(sub.attachments) == ["audit.csv", "photo.jpg"]
    assert plain.files["photo.jpg"] == PHOTO and plain.files["audit.csv"] == AUDIT_CSV
    assert b"Tr\xe1\xba\xa7n" in plain.xml
    assert world.store.get_submission(iid).encrypted  # the real store still holds only ciphertext
    assert world.store.attachment(iid, "photo.jpg") is None  # under its .enc name only
    with pytest.raises(WrongPassphrase):
        open_decryptor(world.store, "sai cụm mật khẩu rồi", actor="tester")


def test_tampered_record_fails_its_signature(world) -> None:
    from rasoat.core.crypto import DecryptionError, decrypt_submission, unlock

    iid = f"uuid:{uuid.uuid4()}"
    envelope, files = collect_encrypt(
        world.pub, "tenc", "1", iid, plain_instance(iid), [("photo.jpg", PHOTO)]
    )
    other_id = f"uuid:{uuid.uuid4()}"
    _, other = collect_encrypt(
        world.pub, "tenc", "1", other_id, plain_instance(other_id), [("photo.jpg", b"x")]
    )
    files["photo.jpg.enc"] = other["photo.jpg.enc"]  # a swapped attachment
    assert world.client.submit(envelope, files).status_code == 201  # the server cannot tell
    keys = unlock(world.store, PASSPHRASE, actor="tester")
    sub = world.store.get_submission(iid)
    stored = {n: world.store.attachment(iid, n) for n in sub.attachments}
    with pytest.raises(DecryptionError):
        decrypt_submission(keys, sub, stored)


def _cells(path: Path) -> set[str]:
    wb = openpyxl.load_workbook(path, read_only=True)
    return {str(c) for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for c in row if c}


def _audit_bytes(data_dir: Path) -> bytes:
    """The audit log as JSON lines, as the store holds it (the CLI's writes included)."""
    store = open_store(data_dir)
    try:
        return b"".join(e.model_dump_json().encode() + b"\n" for e in store.iter_audit())
    finally:
        store.close()


@pytest.mark.slow
def test_export_with_the_passphrase_and_a_wrong_one(world) -> None:
    iid = submit(world, "Lê Văn Xuất")
    data = str(world.data_dir)
    out = world.root / "tenc.xlsx"
    r = run_cli(
        "export",
        "tenc",
        "-o",
        str(out),
        "--include-personal",
        "-q",
        "--data",
        data,
        "--passphrase-file",
        str(world.root / "pass.txt"),
    )
    assert r.returncode == 0, r.stderr
    cells = _cells(out)
    assert "Lê Văn Xuất" in cells and iid in cells and "photo.jpg" in cells
    zipped = world.root / "tenc.zip"  # the CSV zip decrypts the same way
    r = run_cli("export", "tenc", "-o", str(zipped), "--include-personal", "-q", "--data", data,
                "--passphrase-file", str(world.root / "pass.txt"))
    assert r.returncode == 0, r.stderr
    with zipfile.ZipFile(zipped) as z:
        text = z.read("tenc.csv").decode("utf-8-sig")
    assert "Lê Văn Xuất" in text and iid in text

    before = _audit_bytes(world.data_dir)
    bad = world.root / "bad.xlsx"
    r = run_cli(
        "export", "tenc", "-o", str(bad), "--data", data, "--passphrase-file", str(world.root / "wrong.txt")
    )
    assert r.returncode == 1 and "Wrong passphrase" in r.stderr and "Traceback" not in r.stderr
    assert not bad.exists()
    r = run_cli("export", "tenc", "-o", str(bad), "--data", data)  # no passphrase, no terminal to ask on
    assert r.returncode == 1 and "encrypted" in r.stderr and not bad.exists()
    r = run_cli("export", "tenc", "-o", str(world.root / "bad.zip"), "--data", data)
    assert r.returncode == 1 and "encrypted" in r.stderr and not (world.root / "bad.zip").exists()

    audit = _audit_bytes(world.data_dir)
    assert audit.startswith(before)  # append-only
    for secret in (PASSPHRASE, "not the passphrase", SECRET_NAME, "Lê Văn Xuất", "Trần Thị Kín"):
        assert secret.encode() not in audit and json.dumps(secret).encode() not in audit
    events = [json.loads(line) for line in audit.splitlines()]
    decrypts = [e for e in events if e["action"] == "key.decrypt"]
    assert len(decrypts) == 2  # the workbook and the CSV zip
    for decrypt in decrypts:
        assert decrypt["target"] == "tenc" and decrypt["details"]["decrypted"] >= 3
        assert decrypt["details"]["failed"] == 1  # the tampered record is left out and counted
    assert any(e["action"] == "key.unlock_failed" for e in events)
    exports = [e for e in events if e["action"] == "export.raw" and e["target"] == "tenc"]
    formats = {e["details"].get("format") for e in exports}
    assert formats == {"xlsx", "csv"}


@pytest.mark.slow
def test_keys_commands_and_rotation(world, tmp_path) -> None:
    from rasoat.core.crypto import open_decryptor

    iid = submit(world, "Phạm Cũ")
    data = str(world.data_dir)
    shown = json.loads(run_cli("keys", "show", "--json", "--data", data).stdout)
    assert shown["key"]["public_key"] == world.pub
    assert shown["encrypted_forms"] == []  # no catalogue form is ODK-encrypted by default (issue 18)
    assert "PRIVATE" not in json.dumps(shown)
    new = tmp_path / "new.txt"
    new.write_text("một cụm mật khẩu mới hơn\n")
    r = run_cli(
        "keys",
        "passphrase",
        "--passphrase-file",
        str(world.root / "pass.txt"),
        "--new-passphrase-file",
        str(new),
        "--data",
        data,
    )
    assert r.returncode == 0, r.stderr
    r = run_cli("keys", "rotate", "--passphrase-file", str(new), "--data", data)
    assert r.returncode == 0, r.stderr
    opened = open_decryptor(world.store, "một cụm mật khẩu mới hơn").open(world.store.get_submission(iid))
    assert opened is not None and opened[0].fields["name"] == "Phạm Cũ"  # retired key still opens old records
    assert (
        json.loads(run_cli("keys", "show", "--json", "--data", data).stdout)["key"]["public_key"] != world.pub
    )
    r = run_cli("keys", "init", "--passphrase-file", str(new), "--data", data)
    assert r.returncode == 1 and "already has a key" in r.stderr
    actions = [e.action for e in world.store.iter_audit() if e.action.startswith("key.")]
    assert {"key.create", "key.change_passphrase", "key.rotate"} <= set(actions)


def test_api_refuses_to_export_an_encrypted_form(world) -> None:
    import httpx
    from rasoat.core.users import create_user, new_api_token

    create_user(world.store, "xa-enc", "mật-khẩu-dài-1", "commune_officer", [COMMUNE])
    token = new_api_token(world.store, "xa-enc")
    resp = httpx.get(
        f"{world.url}/api/v1/forms/tenc/export.xlsx", headers={"Authorization": f"Bearer {token}"}
    )
    assert resp.status_code == 409 and "encrypted" in resp.json()["error"]
    resp = httpx.get(
        f"{world.url}/api/v1/forms/tenc/export.csv.zip", headers={"Authorization": f"Bearer {token}"}
    )
    assert resp.status_code == 409 and "encrypted" in resp.json()["error"]
    # the records are still listed (Central's API: metadata only; OData: see the test below), unreadable
    iid = submit(world)
    resp = httpx.get(
        f"{world.url}/v1/projects/1/forms/tenc/submissions", headers={"Authorization": f"Bearer {token}"}
    )
    assert resp.status_code == 200 and iid in {s["instanceId"] for s in resp.json()}
    assert SECRET_NAME not in resp.text


def test_catalogue_publishes_f1_encrypted_only_with_a_project_key(tmp_path) -> None:
    """A province that chooses ODK encryption for F1 (``rasoat keys forms f1_person``; none by default)."""
    from rasoat.core.crypto import create_project_key, public_key, set_encrypted_form_ids
    from rasoat.core.formreg import publish_catalogue

    store = open_store(tmp_path / "data")
    try:
        set_encrypted_form_ids(store, ["f1_person"])
        first = {f.form_id for f in publish_catalogue(store)}
        assert "f2_pledge" in first and "f1_person" not in first  # withheld: no key yet
        create_project_key(store, PASSPHRASE)
        again = {f.form_id: f for f in publish_catalogue(store)}
        assert set(again) == {"f1_person"} and again["f1_person"].encrypted
        xml = store.form_xml("f1_person", again["f1_person"].version)
        assert f'base64RsaPublicKey="{public_key(store)}"'.encode() in xml
        assert not store.get_form("f2_pledge").encrypted
    finally:
        store.close()


def test_envelope_rules(world) -> None:
    iid = f"uuid:{uuid.uuid4()}"
    envelope, files = collect_encrypt(world.pub, "tenc", "9", iid, plain_instance(iid), [])
    resp = world.client.submit(envelope, files)
    assert resp.status_code == 404  # unknown version, even though the server cannot read the record
    head, rest = envelope.replace(b'version="9"', b'version="1"').split(b"<base64EncryptedKey>")
    no_key = head + b"<base64EncryptedKey></base64EncryptedKey>" + rest.split(b"</base64EncryptedKey>")[1]
    resp = world.client.submit(no_key, files)
    assert (
        resp.status_code == 400 and "base64EncryptedKey" in resp.text and b"<OpenRosaResponse" in resp.content
    )


def test_plaintext_of_an_old_unencrypted_version_is_refused_once_the_form_is_encrypted(world) -> None:
    """Version 1 without encryption, version 2 with it: a phone still holding version 1 posts plaintext."""
    from pyxform.xls2xform import convert

    store = world.store
    encrypted_md = FORM_MD.format(key=world.pub).replace("tenc |", "tenc_old |")
    plain_md = encrypted_md.replace("| public_key |", "|").replace(f"| {world.pub} |", "|")
    for version, encrypted in (("1", False), ("2", True)):
        md = encrypted_md if encrypted else plain_md
        result = convert(xlsform=md.replace("| 1 |", f"| {version} |"), file_type=".md", form_name="data")
        xml = result.xform.encode()
        assert (b"base64RsaPublicKey" in xml) is encrypted
        store.put_form(
            FormVersion(form_id="tenc_old", version=version, title="Biểu mật",
                        md5=hashlib.md5(xml).hexdigest(), encrypted=encrypted, source="test"),
            xml, result._survey.to_json_dict(), {},
        )
    rnd = store.get_round("r-enc")
    store.put_round(rnd.model_copy(update={"form_ids": [*rnd.form_ids, "tenc_old"]}))
    iid = f"uuid:{uuid.uuid4()}"
    old_version = plain_instance(iid).replace(b'id="tenc" version="1"', b'id="tenc_old" version="1"')
    resp = world.client.submit(old_version, {"photo.jpg": PHOTO, "audit.csv": AUDIT_CSV})
    assert resp.status_code == 400, resp.text
    assert "must be sent encrypted" in resp.text and "phải được gửi đã mã hoá" in resp.text
    assert store.get_submission(iid) is None


def test_odata_lists_encrypted_records_with_metadata_and_status_only(world) -> None:
    """As Central: a record the server cannot read is a row with ``__id`` and ``__system`` (status
    ``notDecrypted``); the plaintext never appears, the repeat-free table still counts it."""
    import httpx
    from rasoat.core.storage.base import SubmissionQuery
    from rasoat.core.users import create_user, new_api_token

    iid = submit(world)
    create_user(world.store, "xa-enc-odata", "mật-khẩu-dài-2", "commune_officer", [COMMUNE])
    token = new_api_token(world.store, "xa-enc-odata")
    resp = httpx.get(
        f"{world.url}/v1/projects/1/forms/tenc.svc/Submissions",
        params={"$count": "true"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    row = next(r for r in body["value"] if r["__id"] == iid)
    assert set(row) == {"__id", "__system"}
    assert row["__system"]["status"] == "notDecrypted"
    assert row["__system"]["attachmentsPresent"] == 3
    assert body["@odata.count"] == world.store.count_submissions(SubmissionQuery(form_id="tenc"))
    assert SECRET_NAME not in resp.text
