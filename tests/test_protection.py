"""Person records protected at rest (core.protection, issue 18): the XLSForm declaration, the
key-encryption key outside the data directory, the keyed pseudonym, and the split of a record into
sealed identifying values and clear statistics. Stores on both backends."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from rasoat.core import protection
from rasoat.core.protection import (
    PROTECTED,
    PSEUDONYM_FIELD,
    Declaration,
    ProtectionError,
    check_declaration,
    form_declaration,
    identifying_fields,
    keyring,
    open_sealed,
    protect,
    reveal,
)
from rasoat.core.storage.base import Store
from rasoat.core.storage.opening import open_store

NAME, ID_NUMBER = "Nguyễn Thị Hồng Nhung", "001203004567"


def _schema(*rows: dict) -> dict:
    return {"name": "data", "type": "survey", "children": list(rows)}


def _q(name: str, kind: str = "text", mark: str | None = None, **extra: object) -> dict:
    node: dict = {"name": name, "type": kind, **extra}
    if mark is not None:
        node["bind"] = {"rasoat:identifying": mark}
    return node


PERSON = _schema(
    _q("commune", "select one"),
    _q("full_name", mark="yes"),
    _q("id_number", mark="id"),
    _q("category", "select one"),
    _q("sex", "select one", mark="no"),
    {"name": "relatives", "type": "repeat", "children": [_q("relative_name", mark="yes"), _q("relation")]},
    {"name": "contact", "type": "group", "bind": {"rasoat:identifying": "yes"},
     "children": [_q("phone"), _q("address")]},
)


@pytest.fixture
def store(tmp_path: Path, backend_url: str | None) -> Store:
    s = open_store(tmp_path / "data", backend_url)
    yield s
    s.close()


def test_declaration_lists_identifying_paths_as_fields_keys_them() -> None:
    declared = form_declaration(PERSON)
    assert declared.identifying == {
        "full_name", "id_number", "relatives/relative_name", "contact/phone", "contact/address"}
    assert declared.id_field == "id_number"
    assert identifying_fields(_schema(_q("category", "select one"))) == frozenset()


@pytest.mark.parametrize(
    ("rows", "read", "expected"),
    [
        ((_q("intro", "note", mark="yes"),), {}, "note"),
        ((_q("commune", "select one", mark="yes"),), {"commune": ("việc xếp đơn vị", "the unit placement")},
         "unit placement"),
        ((_q("a", mark="id"), _q("b", mark="id")), {}, "only one"),
        ((_q("a", mark="maybe"),), {}, "invalid rasoat:identifying value 'maybe'"),
        ((_q("a", mark="yes"), _q(PSEUDONYM_FIELD)), {}, "reserved"),
    ],
)
def test_bad_marks_are_refused_naming_the_field(rows: tuple, read: dict, expected: str) -> None:
    problems = check_declaration(_schema(*rows), read)
    assert problems, "the mark should be refused"
    assert expected in problems[0][2]
    assert problems[0][1]  # Vietnamese first


def test_an_unmarked_form_has_nothing_to_check() -> None:
    assert check_declaration(_schema(_q("commune"), _q(PSEUDONYM_FIELD)), {"commune": ("x", "x")}) == []


def test_key_file_is_created_outside_the_data_directory_with_owner_only_permissions(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "keys"
    monkeypatch.setenv("RASOAT_KEY_DIR", str(keys))
    ring = keyring(store)
    path = keys / f"{ring.kid}.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert base64.b64decode(path.read_text()) == ring.kek
    assert "Back it up SEPARATELY" in capsys.readouterr().err
    stored = store.kv_get("protection", "keyring")
    assert ring.kek.hex() not in repr(stored) and base64.b64encode(ring.kek).decode() not in repr(stored)
    protection.forget(store)
    assert keyring(store, create=False).index_key == ring.index_key  # loaded again from the file by id
    assert [e.action for e in store.iter_audit()] == ["protection.key_create"]


def test_a_key_inside_the_data_directory_is_refused(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RASOAT_KEK_FILE", str(tmp_path / "data" / "kek.key"))
    with pytest.raises(ProtectionError, match="must not lie inside the data directory"):
        keyring(store)
    monkeypatch.delenv("RASOAT_KEK_FILE")
    monkeypatch.setenv("RASOAT_KEY_DIR", str(tmp_path / "data" / "keys"))
    with pytest.raises(ProtectionError, match="must not lie inside the data directory"):
        keyring(store)
    assert store.kv_get("protection", "keyring") is None
    assert not (tmp_path / "data" / "keys").exists()


def test_kek_from_the_environment_or_a_command_and_a_wrong_one_is_named(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kek = os.urandom(32)
    monkeypatch.setenv("RASOAT_KEK", base64.b64encode(kek).decode())
    ring = keyring(store)
    assert ring.kek == kek
    protection.forget(store)
    monkeypatch.delenv("RASOAT_KEK")
    script = tmp_path / "kms.sh"
    script.write_text(f"#!/bin/sh\necho {kek.hex()}\n")
    script.chmod(0o700)
    monkeypatch.setenv("RASOAT_KEK_COMMAND", str(script))
    assert keyring(store, create=False).index_key == ring.index_key
    protection.forget(store)
    monkeypatch.setenv("RASOAT_KEK_COMMAND", f"echo {os.urandom(32).hex()}")
    with pytest.raises(ProtectionError, match=f"is not this store's \\(id {ring.kid}\\)"):
        keyring(store, create=False)


def test_pseudonym_is_keyed_stable_and_normalised(store: Store, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RASOAT_KEY_DIR", str(tmp_path / "keys"))
    ring = keyring(store)
    alias = protection.pseudonym(ring, ID_NUMBER)
    assert alias == protection.pseudonym(ring, "001 203 004 567")
    assert alias != protection.pseudonym(ring, "001203004568")
    assert ID_NUMBER not in alias and len(alias) == 64
    assert protection.pseudonym(ring, "") == ""
    other = protection.Keyring("0" * 16, os.urandom(32), os.urandom(32))
    assert other.pseudonym(ID_NUMBER) != alias  # without the store's index key it cannot be recomputed


def test_protect_seals_identifying_values_xml_and_files_and_reveal_restores_them() -> None:
    ring = protection.Keyring("ab" * 8, os.urandom(32), os.urandom(32))
    fields = {"commune": "05563", "full_name": NAME, "id_number": ID_NUMBER, "category": "addict",
              "relatives": [{"relative_name": "Trần Văn Bố", "relation": "father"}, {"relation": "mother"}],
              "contact/phone": "0912345678"}
    xml = f"<data><full_name>{NAME}</full_name></data>".encode()
    done = protect(ring, "uuid:1", fields, xml, {"a.jpg": b"photo bytes"}, form_declaration(PERSON))
    clear = done.fields
    assert clear["commune"] == "05563" and clear["category"] == "addict"
    assert "full_name" not in clear and "id_number" not in clear and "contact/phone" not in clear
    assert clear["relatives"] == [{"relation": "father"}, {"relation": "mother"}]
    assert clear[PSEUDONYM_FIELD] == ring.pseudonym(ID_NUMBER)
    everything = repr(clear).encode() + done.xml + b"".join(done.attachments.values())
    for secret in (NAME, ID_NUMBER, "Trần Văn Bố", "0912345678", "photo bytes"):
        assert secret.encode() not in everything
    assert reveal(ring, "uuid:1", clear) == {**fields, PSEUDONYM_FIELD: clear[PSEUDONYM_FIELD]}
    assert open_sealed(ring, "uuid:1", "submission.xml", done.xml) == xml
    assert open_sealed(ring, "uuid:1", "a.jpg", done.attachments["a.jpg"]) == b"photo bytes"
    with pytest.raises(ProtectionError, match="damaged or swapped"):
        open_sealed(ring, "uuid:2", "a.jpg", done.attachments["a.jpg"])  # bound to its record and name
    again = protect(ring, "uuid:1", fields, xml, {}, form_declaration(PERSON))
    assert again.xml != done.xml  # a fresh data key each time ...
    assert again.fields[PROTECTED]["digest"] == clear[PROTECTED]["digest"]  # ... one keyed identity


def test_a_record_opens_with_a_retired_kek_only_when_that_key_is_at_hand() -> None:
    old = protection.Keyring("cd" * 8, os.urandom(32), os.urandom(32))
    done = protect(old, "uuid:1", {"full_name": NAME}, b"<x/>", {}, Declaration(frozenset({"full_name"})))
    new = protection.Keyring("ef" * 8, os.urandom(32), old.index_key)
    with pytest.raises(ProtectionError, match="cdcdcdcdcdcdcdcd"):
        reveal(new, "uuid:1", done.fields)
    new.retired[old.kid] = old.kek
    assert reveal(new, "uuid:1", done.fields)["full_name"] == NAME


# --- on arrival (core.ingest), the ODK rules, migration and rotation: stores on both backends -------


def _publish_marked(store: Store, version: str) -> None:
    """The server tests' form ``tform`` again, with ``name`` declared identifying (the schema's bind)."""
    import hashlib

    from rasoat.core.models import FormVersion
    from server_support import compile_test_form

    xml, schema = compile_test_form("tform", version)
    for node in schema["children"]:
        if node["name"] == "name":
            node.setdefault("bind", {})["rasoat:identifying"] = "yes"
    form = FormVersion(form_id="tform", version=version, title="Biểu thử", md5=hashlib.md5(xml).hexdigest(),
                       source="test")
    store.put_form(form, xml, schema, {})


@pytest.fixture
def seeded(store: Store) -> tuple[Store, object]:
    from server_support import seed

    seeded = seed(store)
    return store, store.get_user(seeded.user_id)


def _accept(store: Store, user: object, xml: bytes, files: dict[str, bytes] | None = None):
    from rasoat.core.ingest import ShapeCache, accept

    return accept(store, user, xml, files or {}, ShapeCache())


def _found(store: Store, tmp_path: Path, secret: str) -> list[str]:
    """Where ``secret`` (UTF-8) is found: files of the data directory (searched by grep in another
    process: reading a live SQLite file here would drop its locks) and, on either backend, the rows and
    bytes the store returns."""
    import subprocess

    from rasoat.core.storage.base import SubmissionQuery

    grep = subprocess.run(["grep", "-rlaF", secret, str(tmp_path / "data")], capture_output=True, text=True)
    places = grep.stdout.split()
    for sub in store.iter_submissions(SubmissionQuery(current_only=False)):
        stored = sub.model_dump_json().encode() + (store.submission_xml(sub.instance_id) or b"")
        stored += b"".join(store.attachment(sub.instance_id, n) or b"" for n in sub.attachments)
        if secret.encode() in stored:
            places.append(sub.instance_id)
    return places


def test_a_record_is_sealed_on_arrival_and_the_odk_rules_still_hold(seeded, tmp_path: Path) -> None:
    from rasoat.core.ingest import IngestError, Refusal
    from rasoat.core.storage.base import SaveOutcome
    from server_support import instance_xml

    store, user = seeded
    _publish_marked(store, "2")
    iid, xml = instance_xml(version="2", name=NAME, photo="a.jpg")
    first = _accept(store, user, xml)  # Collect splits a large upload: the photo comes in a later POST
    assert first.outcome is SaveOutcome.created
    again = _accept(store, user, xml, {"a.jpg": b"JPEG of " + NAME.encode()})
    assert again.outcome is SaveOutcome.duplicate
    with pytest.raises(IngestError) as refused:
        _accept(store, user, xml.replace(NAME.encode(), "Người Khác".encode()))
    assert refused.value.reason is Refusal.conflict

    stored = store.get_submission(iid)
    assert stored is not None and stored.unit_code == "05563" and "name" not in stored.fields
    assert stored.attachments == ["a.jpg"]
    ring = keyring(store, create=False)
    assert reveal(ring, iid, stored.fields)["name"] == NAME
    assert open_sealed(ring, iid, "submission.xml", store.submission_xml(iid) or b"") == xml
    photo = store.attachment(iid, "a.jpg") or b""
    assert open_sealed(ring, iid, "a.jpg", photo) == b"JPEG of " + NAME.encode()
    assert _found(store, tmp_path, NAME) == []

    edit_id, edit = instance_xml(version="2", name=NAME + " (sửa)", photo="a.jpg", deprecated_id=iid)
    assert _accept(store, user, edit).outcome is SaveOutcome.created  # the edit carries the photo over
    assert open_sealed(ring, edit_id, "a.jpg", store.attachment(edit_id, "a.jpg") or b"").startswith(b"JPEG")
    assert _found(store, tmp_path, NAME) == []


def test_existing_records_are_sealed_by_the_migration_verified_and_a_rerun_changes_nothing(
    seeded, tmp_path: Path
) -> None:
    from rasoat.core.protect_records import protect_existing
    from server_support import instance_xml

    store, user = seeded
    ids = []
    for n in range(2):
        iid, xml = instance_xml(version="1", name=f"{NAME} {n}", photo="a.jpg")
        _accept(store, user, xml, {"a.jpg": f"JPEG {NAME} {n}".encode()})
        ids.append(iid)
    assert _found(store, tmp_path, NAME)  # before: in clear, as they came
    _publish_marked(store, "2")  # the form now declares the name identifying

    report = protect_existing(store, actor="tester")
    assert sorted(r["instance_id"] for r in report.converted) == sorted(ids) and report.failed == []
    ring = keyring(store, create=False)
    assert {r["digest"] for r in report.converted} == {
        ring.digest(open_sealed(ring, i, "submission.xml", store.submission_xml(i) or b"")) for i in ids}
    for n, iid in enumerate(ids):
        sub = store.get_submission(iid)
        assert sub is not None and reveal(ring, iid, sub.fields)["name"] == f"{NAME} {n}"
    assert _found(store, tmp_path, NAME) == []  # the plaintext photos deleted, the database rewritten

    rerun = protect_existing(store, actor="tester")
    assert rerun.converted == [] and rerun.already == 2
    audit = [e for e in store.iter_audit() if e.action == "protection.migrate"]
    assert [e.details["converted"] for e in audit] == [2, 0]
    assert NAME not in repr([e.model_dump() for e in audit])


def test_rotating_the_kek_rewraps_every_record_and_is_safe_to_rerun(seeded, tmp_path: Path) -> None:
    from rasoat.core.protect_records import rotate_kek
    from server_support import instance_xml

    store, user = seeded
    _publish_marked(store, "2")
    iid, xml = instance_xml(version="2", name=NAME, photo="a.jpg")
    _accept(store, user, xml, {"a.jpg": b"JPEG"})
    old = keyring(store)
    kid, path, n = rotate_kek(store, actor="tester")
    assert n == 1 and kid != old.kid and path is not None and path.is_file()
    (protection.key_dir() / f"{old.kid}.key").unlink()  # the old key is gone: the records still open
    protection.forget(store)
    ring = keyring(store, create=False)
    assert ring.kid == kid and ring.index_key == old.index_key  # pseudonyms do not change
    sub = store.get_submission(iid)
    assert sub is not None and reveal(ring, iid, sub.fields)["name"] == NAME
    assert open_sealed(ring, iid, "a.jpg", store.attachment(iid, "a.jpg") or b"") == b"JPEG"
    assert open_sealed(ring, iid, "submission.xml", store.submission_xml(iid) or b"") == xml
    kid2, _, n2 = rotate_kek(store, actor="tester")  # again: another key, everything re-wrapped once more
    protection.forget(store)
    assert n2 == 1 and keyring(store, create=False).kid == kid2
    assert [e.action for e in store.iter_audit() if e.action.startswith("protection.key_rotate")] == [
        "protection.key_rotate", "protection.key_rotate"]


def test_sealed_entity_values_are_counted_by_key_and_a_rotation_rewraps_them(
    store: Store, tmp_path: Path, backend_url: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Entity properties (issue 23) are sealed one by one under the KEK; ``protection show`` counts them
    per key (the entity and its version 1), and a rotation re-wraps them: none is left under the old key."""
    import json

    from entity_support import new_uuid, publish
    from rasoat.core.cli import main
    from rasoat.core.protect_records import entity_values_by_kek, records_by_kek, rotate_kek
    from rasoat.core.protection import seal_entity_label, seal_entity_values
    from server_support import store_args

    publish(store, "register")  # the list "persons", full_name identifying
    ring = keyring(store)
    eid = new_uuid()
    store.write_entity("persons", eid, label=seal_entity_label(ring, eid, f"{NAME} 1990"),
                       data=seal_entity_values(ring, eid, {"full_name": NAME}, {"full_name"}), actor="test")
    assert entity_values_by_kek(store) == {ring.kid: 4}  # the value and the label, in the entity and v1
    kid, _, n = rotate_kek(store, actor="tester", settle=0)
    assert n == 2 and records_by_kek(store) == {} and entity_values_by_kek(store) == {kid: 4}
    where = store_args(tmp_path / "data", backend_url)
    assert main(["protection", "show", "--json", *where]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["kek_id"] == kid and shown["entity_values_by_kek"] == {kid: 4}
    assert main(["protection", "rotate-kek", "--finish", *where]) == 0
    assert "sealed entity values" not in capsys.readouterr().out
