"""Entities through the real server as ODK Collect speaks to it (issue 23), on both backends: a register
form creates persons, a visit form updates them (with ``baseVersion``, offline branches out of order),
phones of a commune receive that commune's persons only (``persons.csv`` in the manifest, its hash, the
CSV, the integrity endpoint), and identifying properties are sealed at rest. References:
shared/reference/entities.md §2 (serving) and §3 (processing)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from entity_support import (
    A,
    B,
    decision_xml,
    manifest_entry,
    new_uuid,
    officers_server,
    persons_csv,
    publish_national,
    register_xml,
    visit_xml,
)
from server_support import CollectClient

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["embedded", "postgres"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SimpleNamespace]:
    """The round over communes A and B with a phone in each (entity_support.officers_server)."""
    with officers_server(request.param, tmp_path_factory.mktemp("entities") / "data") as served:
        served.data_dir = store_dir(served.store)
        yield served


def store_dir(store: object) -> Path:
    return Path(store.files_dir)


def submit(phone: CollectClient, xml: bytes) -> None:
    resp = phone.submit(xml)
    assert resp.status_code == 201, resp.text


def test_register_and_visit_through_collect_with_a_conflict(served: SimpleNamespace) -> None:
    store = served.store
    eid = new_uuid()
    submit(served.a, register_xml(eid, "Nguyễn Văn Bình", "1988")[1])
    e = store.get_entity(eid)
    assert e is not None and e.version == 1 and e.unit_code == A
    assert isinstance(e.properties["full_name"], dict)  # sealed at rest
    assert e.properties["birth_year"] == "1988"  # statistics in clear
    submit(served.a, visit_xml(eid, 1, status="cai nghiện tại nhà")[1])
    submit(served.a, visit_xml(eid, 1, note="lần thăm trên máy khác")[1])  # stale base, no overlap
    e = store.get_entity(eid)
    assert e is not None and e.version == 3 and e.conflict == "soft"
    submit(served.a, visit_xml(eid, 2, status="ngừng")[1])  # base 2: status unchanged since → soft stays
    submit(served.a, visit_xml(eid, 1, status="chuyển đi")[1])  # base 1: status changed since → hard
    e = store.get_entity(eid)
    assert e is not None and e.conflict == "hard" and e.properties["status"] == "chuyển đi"
    rows = {r["name"]: r for r in persons_csv(served.a)}
    assert rows[eid]["full_name"] == "Nguyễn Văn Bình" and rows[eid]["__version"] == "5"
    assert rows[eid]["label"] == "Nguyễn Văn Bình 1988" and rows[eid]["status"] == "chuyển đi"


def test_offline_chain_out_of_order_is_held_then_applied(served: SimpleNamespace) -> None:
    store = served.store
    eid = new_uuid()
    submit(served.a, register_xml(eid, "Lê Thị Cúc")[1])
    branch = new_uuid()
    submit(served.a, visit_xml(eid, 2, note="thăm 2", trunk_version=1, branch_id=branch)[1])
    assert store.get_entity(eid).version == 1
    assert [h.branch_base_version for h in store.entity_backlog("persons") if h.uuid == eid] == [2]
    submit(served.a, visit_xml(eid, 1, status="thăm 1", trunk_version=1, branch_id=branch)[1])
    e = store.get_entity(eid)
    assert e is not None and e.version == 3 and e.conflict is None
    assert e.properties["status"] == "thăm 1" and e.properties["visit_note"] == "thăm 2"
    assert [h for h in store.entity_backlog("persons") if h.uuid == eid] == []


def test_a_commune_gets_its_own_persons_and_its_hash_follows_only_them(served: SimpleNamespace) -> None:
    in_a, in_b = new_uuid(), new_uuid()
    submit(served.a, register_xml(in_a, "Người xã A", commune=A)[1])
    submit(served.b, register_xml(in_b, "Người xã B", commune=B)[1])
    names_a = {r["name"] for r in persons_csv(served.a)}
    names_b = {r["name"] for r in persons_csv(served.b)}
    assert in_a in names_a and in_b not in names_a
    assert in_b in names_b and in_a not in names_b
    assert "Người xã A" not in served.b.get(manifest_entry(served.b)["url"]).text
    hash_a = manifest_entry(served.a)["hash"]
    hash_b = manifest_entry(served.b)["hash"]
    assert manifest_entry(served.a)["type"] == "entityList"
    submit(served.b, visit_xml(in_b, 1, status="đổi ở B", commune=B)[1])
    assert manifest_entry(served.a)["hash"] == hash_a
    assert manifest_entry(served.b)["hash"] != hash_b
    submit(served.a, visit_xml(in_a, 1, status="đổi ở A")[1])
    assert manifest_entry(served.a)["hash"] != hash_a
    # a phone of B cannot update a person of A by knowing the id
    submit(served.b, visit_xml(in_a, 2, status="giả mạo", commune=B)[1])
    assert served.store.get_entity(in_a).properties["status"] == "đổi ở A"


def test_integrity_reports_deleted_and_outside_entities(served: SimpleNamespace) -> None:
    kept, gone, other = new_uuid(), new_uuid(), new_uuid()
    for eid in (kept, gone):
        submit(served.a, register_xml(eid, "Người A")[1])
    submit(served.b, register_xml(other, "Người B", commune=B)[1])
    before = manifest_entry(served.a)
    served.store.delete_entity(gone, "officer")
    after = manifest_entry(served.a)
    assert after["hash"] != before["hash"]
    resp = served.a.get(f"{after['integrity']}?id={kept},{gone}&id={other},{new_uuid()}")
    assert resp.status_code == 200 and resp.headers["X-OpenRosa-Version"] == "1.0"
    found = dict(re.findall(r'<entity id="([0-9a-f-]+)"><deleted>(true|false)</deleted></entity>', resp.text))
    assert found == {kept: "false", gone: "true", other: "true"}
    assert gone not in {r["name"] for r in persons_csv(served.a)}
    bad = served.a.get(after["integrity"].replace("/persons/", "/nothing/") + f"?id={kept}")
    assert bad.status_code == 404


def test_identifying_properties_are_sealed_in_the_database(served: SimpleNamespace) -> None:
    eid = new_uuid()
    submit(served.a, register_xml(eid, "Đặng Thị Riêng Tư")[1])
    if served.backend == "embedded":
        raw = (served.data_dir / "rasoat.sqlite3").read_bytes()
        for path in served.data_dir.glob("rasoat.sqlite3*"):
            raw += path.read_bytes()
        assert "Riêng Tư".encode() not in raw
    else:
        import psycopg

        url = served.store._pool.conninfo  # type: ignore[attr-defined]
        with psycopg.connect(url) as conn:
            conn.execute(f"SET search_path TO {served.store.schema}")  # type: ignore[attr-defined]
            dump = conn.execute("SELECT properties::text FROM entities WHERE uuid = %s", (eid,)).fetchone()
            versions = conn.execute("SELECT string_agg(data::text, '') FROM entity_versions").fetchone()
        assert "Riêng Tư" not in dump[0] and "Riêng Tư" not in (versions[0] or "")
    assert "Đặng Thị Riêng Tư" in served.a.get(manifest_entry(served.a)["url"]).text


def test_a_key_rotation_rewraps_sealed_entity_values(served: SimpleNamespace) -> None:
    from rasoat.core import protection
    from rasoat.core.protect_records import records_by_kek, rotate_kek

    store = served.store
    eid = new_uuid()
    submit(served.a, register_xml(eid, "Hoàng Văn Xoay Khoá")[1])
    old = protection.keyring(store, create=False, current=True)
    kid, _path, _n = rotate_kek(store, actor="tester", settle=0)
    (protection.key_dir() / f"{old.kid}.key").unlink()  # the old key is gone: entities still open
    protection.forget(store)
    assert set(records_by_kek(store)) == {kid} and set(store.entity_seal_keys()) == {kid}
    rows = {r["name"]: r for r in persons_csv(served.a)}
    assert rows[eid]["full_name"] == "Hoàng Văn Xoay Khoá"
    assert rows[eid]["label"] == "Hoàng Văn Xoay Khoá 1990"


def test_a_transfer_moves_the_person_to_the_receiving_communes_phones(served: SimpleNamespace) -> None:
    """F11's transfer (Mẫu 08) sent by commune A's phone for a person of A to commune B: in the same
    transaction the person's entity is filed under B (a version, an ``entity.move`` audit line), B's phone
    list gains the person with the name opened for it, A's loses them (both hashes change; A's integrity
    check says the person is gone, so Collect drops them offline), only B may update them now, B's officer
    reads the whole history on the person's page and A's officer no longer opens it."""
    from rasoat.core.users import create_user
    from web_support import ACCOUNTS, http_login

    store = served.store
    publish_national(store, "f11_management")
    manifest = served.a.get("/forms/f11_management/manifest").text  # the receiving commune's picker
    lists = {name: served.a.get(url).text for name, url in re.findall(
        r"<filename>([^<]+)</filename><hash>[^<]+</hash><downloadUrl>([^<]+)</downloadUrl>", manifest)}
    assert f"\n{B},Xã Tân Cương,19" in lists["all_communes.csv"] and f"\n{B}," not in lists["communes.csv"]
    assert "\n00004,Phường Ba Đình,01" in lists["all_communes.csv"]  # the whole country: Hà Nội too
    eid = new_uuid()
    submit(served.a, register_xml(eid, "Trịnh Văn Chuyển", "1991")[1])
    before_a, before_b = manifest_entry(served.a), manifest_entry(served.b)
    assert eid in {r["name"] for r in persons_csv(served.a)}

    iid, xml = decision_xml(eid, 1, B)
    submit(served.a, xml)
    moved = store.get_entity(eid)
    assert moved is not None and moved.unit_code == B and moved.version == 2
    assert moved.properties["commune"] == B and moved.properties["mgmt_status"] == "active"
    last = store.entity_versions(eid)[-1]
    assert (last.version, last.instance_id, last.data["commune"]) == (2, iid, B)
    [move] = [e for e in store.iter_audit() if e.action == "entity.move" and e.target == eid]
    assert (move.details["from"], move.details["to"], move.details["instance_id"]) == (A, B, iid)

    after_a, after_b = manifest_entry(served.a), manifest_entry(served.b)
    assert after_a["hash"] != before_a["hash"] and after_b["hash"] != before_b["hash"]
    rows_b = {r["name"]: r for r in persons_csv(served.b)}
    assert rows_b[eid]["full_name"] == "Trịnh Văn Chuyển" and rows_b[eid]["__version"] == "2"
    assert eid not in {r["name"] for r in persons_csv(served.a)}
    gone = served.a.get(f"{after_a['integrity']}?id={eid}")
    assert f'<entity id="{eid}"><deleted>true</deleted></entity>' in gone.text

    submit(served.a, visit_xml(eid, 2, status="A không còn quản lý")[1])  # A's phone: outside its units
    submit(served.b, visit_xml(eid, 2, status="đã đến xã B", commune=B)[1])
    now = store.get_entity(eid)
    assert now is not None and now.version == 3 and now.properties["status"] == "đã đến xã B"
    decision = store.get_submission(iid)
    assert decision is not None and decision.unit_code == f"{A}-01"  # A's decision stays A's record

    for username, (password, role, units, name) in ACCOUNTS.items():
        if username in ("xa.phuongtien", "xa.tancuong") and store.get_user_by_name(username) is None:
            create_user(store, username, password, role, units, display_name=name, actor="test")
    officer_b, officer_a = http_login(served.url, "xa.tancuong"), http_login(served.url, "xa.phuongtien")
    try:
        page_b = officer_b.get(f"/persons/{eid}")
        assert page_b.status_code == 200 and "Trịnh Văn Chuyển" in page_b.text
        assert "Người thu A" in page_b.text  # the versions A's phone made stay in the history B reads
        assert re.search(r'<li data-prop="commune">[^<]*Xã Tân Cương', page_b.text)  # the move, in words
        assert officer_a.get(f"/persons/{eid}").status_code == 404
        # the month's list of visits due follows the person: B's officers have it to do, A's no longer
        due_b, due_a = officer_b.get(f"/persons?commune={B}"), officer_a.get(f"/persons?commune={A}")
        assert due_b.status_code == due_a.status_code == 200 and 'id="visits"' in due_a.text
        assert f'data-person="{eid}"' in due_b.text and eid not in due_a.text
    finally:
        officer_a.close()
        officer_b.close()


@pytest.mark.parametrize("to", ["99999", "19", "05563-01"])
def test_a_transfer_to_a_unit_that_is_no_commune_of_the_registry_is_refused(
        served: SimpleNamespace, to: str) -> None:
    """A receiving commune unknown to the registry (or a province, or a hamlet) refuses the submission with
    a message naming it, so the collector can choose again; the person stays where they were."""
    publish_national(served.store, "f11_management")
    eid = new_uuid()
    submit(served.a, register_xml(eid, "Người ở lại")[1])
    iid, xml = decision_xml(eid, 1, to)
    resp = served.a.submit(xml)
    assert resp.status_code == 400 and f"'{to}'" in resp.text and "Xã nhận hồ sơ" in resp.text
    entity = served.store.get_entity(eid)
    assert entity is not None and entity.unit_code == A and entity.version == 1
    assert served.store.get_submission(iid) is None


def test_resolving_a_conflict_by_an_older_version_does_not_undo_a_transfer(served: SimpleNamespace) -> None:
    """A visit recorded on the receiving commune's phone from the list before the transfer arrived is a
    conflict; its officer choosing the older version's values restores the values, not the commune: the
    person stays with them (a move is a decision, Mẫu 08, made by a new one)."""
    from rasoat.core.users import create_user
    from web_support import ACCOUNTS, csrf_of, http_login

    store = served.store
    publish_national(store, "f11_management")
    eid = new_uuid()
    submit(served.a, register_xml(eid, "Lý Văn Xung Đột", status="quản lý")[1])
    submit(served.a, decision_xml(eid, 1)[1])  # version 2: managed in A, its commune A
    submit(served.a, decision_xml(eid, 2, B)[1])
    submit(served.b, visit_xml(eid, 2, status="đã đến", commune=B)[1])  # based on version 2: a conflict
    assert store.get_entity(eid).conflict is not None  # type: ignore[union-attr]
    password, role, units, name = ACCOUNTS["xa.tancuong"]
    if store.get_user_by_name("xa.tancuong") is None:
        create_user(store, "xa.tancuong", password, role, units, display_name=name, actor="test")
    officer = http_login(served.url, "xa.tancuong")
    try:
        token = csrf_of(officer.get(f"/persons/{eid}").text)
        resp = officer.post(f"/persons/{eid}/resolve", data={"csrf": token, "version": "2"})
        assert resp.status_code == 303, resp.text
    finally:
        officer.close()
    entity = store.get_entity(eid)
    assert entity is not None and entity.conflict is None and entity.unit_code == B
    assert entity.properties["status"] == "quản lý" and entity.properties["commune"] == B
