"""Unlock and derive (issue 18, item 3), on both backends: with the passphrase the server derives the
statistical fields of records encrypted exactly as Collect does, and keeps them, so the figures count them
afterwards without the passphrase (a store opened anew, as after a restart); answers the form marks
personal are not kept; a form whose figures need answers it marks personal (F1 until its identifying
fields are protected at rest) is refused and its figures stay unknown; while the key is held, a record
arriving is derived as it comes; the audit names who and how many, never the passphrase."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from indicators_support import C1, run
from pyxform.xls2xform import convert
from rasoat.core.crypto import create_project_key, public_key
from rasoat.core.derive import forget, held_until, on_arrival, unlock_and_derive
from rasoat.core.indicators.models import Indicator, Measure, Status
from rasoat.core.instance import FormShape, parse_instance
from rasoat.core.models import FormVersion, Submission, unread
from rasoat.core.plugins import set_manager
from rasoat.core.protection import is_protected
from rasoat.core.storage.base import Store
from rasoat.core.storage.opening import open_store
from server_support import run_main, store_args
from test_encryption import collect_encrypt

PASSPHRASE = "cụm mật khẩu để tính số liệu"
FORM_MD = """
| survey |
| | type | name | label | {column} |
| | text | commune | Xã | |
| | text | full_name | Họ tên | {mark} |
| | select_one kind | kind | Loại | |
| | text | category | Nhóm | |
| | text | present | Có mặt | |
| choices |
| | list_name | name | label |
| | kind | a | A |
| | kind | b | B |
| settings |
| | form_id | version | form_title | public_key | namespaces |
| | {form_id} | 1 | Biểu đếm | {key} | rasoat="https://rasoat.vn/xforms" |
"""
KIND_A = Indicator(id="kind_a", name_vi="Loại A", name_en="Kind A", level="commune",
                   numerator=Measure(form="tcount", where={"kind": "a"}))


@pytest.fixture
def data(tmp_path: Path, backend_url: str | None) -> Iterator[tuple[Path, str | None]]:
    store = open_store(tmp_path / "data", backend_url)
    create_project_key(store, PASSPHRASE, actor="admin")
    # tcount marks the name personal; f1_person marks nothing, so the national list (all of F1) applies;
    # tprot declares the name identifying (core.protection)
    for form_id, column, mark in (("tcount", "bind::rasoat:sensitive", "S"),
                                  ("f1_person", "bind::rasoat:sensitive", ""),
                                  ("tprot", "bind::rasoat:identifying", "yes")):
        md = FORM_MD.format(form_id=form_id, key=public_key(store), column=column, mark=mark)
        result = convert(xlsform=md, file_type=".md", form_name="data")
        xml = result.xform.encode()
        store.put_form(FormVersion(form_id=form_id, version="1", title=form_id, encrypted=True, source="test",
                                   md5=hashlib.md5(xml).hexdigest()), xml, result._survey.to_json_dict(), {})
    store.close()
    yield tmp_path / "data", backend_url
    set_manager(None)


def send(store: Store, form_id: str, kind: str, name: str = "Nguyễn Thị Kín") -> str:
    """Store a record as the server does from Collect's encrypted upload: the envelope and the .enc files."""
    iid = f"uuid:{uuid.uuid4()}"
    plain = (f'<data id="{form_id}" version="1"><commune>{C1}</commune><full_name>{name}</full_name>'
             f"<kind>{kind}</kind><category>user</category><present>yes</present>"
             f"<meta><instanceID>{iid}</instanceID></meta></data>").encode()
    envelope, files = collect_encrypt(public_key(store) or "", form_id, "1", iid, plain, [])
    parsed = parse_instance(envelope, FormShape())
    assert parsed.encrypted
    store.save_submission(Submission(instance_id=iid, form_id=form_id, form_version="1", unit_code=C1,
                                     xml_md5=hashlib.md5(envelope).hexdigest(), fields=parsed.fields,
                                     attachments=sorted(files), encrypted=True), envelope, files)
    return iid


def test_an_unlock_derives_what_the_figures_need_and_keeps_it(data: tuple[Path, str | None]) -> None:
    path, url = data
    store = open_store(path, url)
    try:
        ids = [send(store, "tcount", "a"), send(store, "tcount", "b"), send(store, "f1_person", "a"),
               send(store, "tprot", "a")]
        before = run(store, "2026", indicators=[KIND_A], units=[C1])[(C1, "kind_a")]
        assert (before.status, before.uncounted_encrypted) == (Status.unknown, 2)
        done = unlock_and_derive(store, PASSPHRASE, actor="tinh.quanly")
        assert done.by_form == {"tcount": 2, "tprot": 1} and done.refused == {"f1_person": 1}
        assert not done.failed
        kept = store.get_submission(ids[0])
        assert kept is not None and not unread(kept) and kept.fields["kind"] == "a"
        assert "full_name" not in kept.fields  # marked personal: not kept in clear
        assert unread(store.get_submission(ids[2]))  # F1: its figures need answers it marks personal
        sealed = store.get_submission(ids[3])  # declared identifying: sealed as a plaintext arrival's is
        assert sealed is not None and is_protected(sealed.fields) and sealed.fields["kind"] == "a"
        assert "full_name" not in sealed.fields
        assert "Nguyễn Thị Kín" not in json.dumps(sealed.fields, ensure_ascii=False)
    finally:
        store.close()
    store = open_store(path, url)  # as after a restart: no key in memory, no passphrase
    try:
        after = run(store, "2026", indicators=[KIND_A], units=[C1])[(C1, "kind_a")]
        assert (after.value, after.status, after.uncounted_encrypted) == (1, Status.no_target, 0)
        users = run(store, "2026", units=[C1])[(C1, "nat_persons_users")]
        assert (users.status, users.uncounted_encrypted) == (Status.unknown, 1)
        audit = [e for e in store.iter_audit() if e.action in ("key.unlock", "key.derive")]
        assert [e.action for e in audit] == ["key.unlock", "key.derive"] and audit[1].actor == "tinh.quanly"
        assert audit[1].details["derived"] == {"tcount": 2, "tprot": 1}
        assert audit[1].details["refused"] == {"f1_person": 1}
        text = json.dumps([e.model_dump(mode="json") for e in store.iter_audit()], ensure_ascii=False)
        assert PASSPHRASE not in text and "Nguyễn Thị Kín" not in text
    finally:
        store.close()


def test_records_arriving_while_the_key_is_held_are_derived(data: tuple[Path, str | None]) -> None:
    path, url = data
    store = open_store(path, url)
    try:
        unlock_and_derive(store, PASSPHRASE, actor="tinh.quanly", minutes=15)
        assert (held_until(store) or 0) > 14 * 60
        iid = send(store, "tcount", "a")
        assert on_arrival(store, iid) and not unread(store.get_submission(iid))
        forget(store)
        late = send(store, "tcount", "a")
        assert held_until(store) is None and not on_arrival(store, late)
        assert unread(store.get_submission(late))
    finally:
        store.close()


def test_rasoat_keys_unlock(data: tuple[Path, str | None], tmp_path: Path) -> None:
    path, url = data
    store = open_store(path, url)
    try:
        send(store, "tcount", "a")
    finally:
        store.close()
    secret = tmp_path / "pass.txt"
    secret.write_text(PASSPHRASE + "\n", encoding="utf-8")
    done = run_main("keys", "unlock", "--passphrase-file", str(secret), "--by", "tinh.quanly",
                    *store_args(path, url))
    assert done.returncode == 0, done.stderr
    assert "tcount: đã tính 1 bản ghi mã hoá / tcount: 1 encrypted records derived" in done.stdout
