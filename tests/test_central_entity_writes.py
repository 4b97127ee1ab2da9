"""Writing entity lists through Central's REST API, and OData's $filter and $orderby on them (issue 23,
gap 2), with pyodk 1.3.0 unmodified against a real server on both backends: an officer creates, bulk
creates, updates (with a current and a stale base version, and forced) and deletes persons, and the
phones of that commune see each change in their ``persons.csv``, its manifest hash and the integrity
endpoint, while the other commune's phones see nothing change. Writes go through the store's entity
rules (versions, audit in the same transaction, names sealed at rest) and stay inside the officer's
units. References: shared/reference/entities.md §4, central_api.md §1.5 and §2.6."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from entity_support import (
    OFFICER_PASSWORD,
    A,
    B,
    manifest_entry,
    new_uuid,
    officers_server,
    persons_csv,
    register_xml,
)
from pyodk.client import Client
from pyodk.errors import PyODKError
from rasoat.core.entities import SEALED, SEALED_LABEL
from server_support import pyodk_client

pytestmark = pytest.mark.slow
LOG = logging.getLogger("test")


@pytest.fixture(scope="module", params=["embedded", "postgres"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SimpleNamespace]:
    with officers_server(request.param, tmp_path_factory.mktemp("entity-writes") / "data") as served:
        yield served


def client(served: SimpleNamespace, tmp_path: Path, username: str = "xa-a") -> Client:
    return pyodk_client(served.url, tmp_path, username, OFFICER_PASSWORD)


def call(c: Client, method: str, path: str, **kw: object) -> tuple[int, dict]:
    """A raw call through pyodk's session: (status, JSON body)."""
    resp = c.session.request(method, c.session.urlformat(path), **kw)
    return resp.status_code, resp.json()


def csv_rows(phone: object) -> dict[str, dict[str, str]]:
    return {r["name"]: r for r in persons_csv(phone)}


def test_create_update_delete_reach_the_communes_phones(served: SimpleNamespace, tmp_path: Path) -> None:
    hash_a, hash_b = manifest_entry(served.a)["hash"], manifest_entry(served.b)["hash"]
    with client(served, tmp_path) as c:
        person = {"full_name": "Phạm Văn Mới", "birth_year": "1991", "status": "quản lý"}
        made = c.entities.create(label="Phạm Văn Mới 1991", entity_list_name="persons", data=person)
        eid = made.uuid
        assert made.currentVersion.version == 1 and made.currentVersion.label == "Phạm Văn Mới 1991"
        assert made.currentVersion.data == person
        rows = csv_rows(served.a)
        assert rows[eid]["label"] == "Phạm Văn Mới 1991" and rows[eid]["full_name"] == "Phạm Văn Mới"
        assert rows[eid]["__version"] == "1"
        hash_1 = manifest_entry(served.a)["hash"]
        assert hash_1 != hash_a and manifest_entry(served.b)["hash"] == hash_b
        assert eid not in csv_rows(served.b)

        stored = served.store.get_entity(eid)  # protected at rest as a phone's registration is
        assert stored.unit_code == A and SEALED in stored.properties["full_name"]
        assert stored.label.startswith(SEALED_LABEL) and stored.properties["status"] == "quản lý"

        updated = c.entities.update(eid, entity_list_name="persons", base_version=1,
                                    data={"status": "cai nghiện tại nhà"})
        assert updated.currentVersion.version == 2 and updated.conflict is None
        assert updated.currentVersion.data["full_name"] == "Phạm Văn Mới"  # the rest kept
        assert csv_rows(served.a)[eid]["status"] == "cai nghiện tại nhà"
        hash_2 = manifest_entry(served.a)["hash"]
        assert hash_2 != hash_1 and manifest_entry(served.b)["hash"] == hash_b

        with pytest.raises(PyODKError) as stale:  # read version 1, the server is at 2
            c.entities.update(eid, entity_list_name="persons", base_version=1, data={"status": "chuyển đi"})
        assert "409.15" in str(stale.value)
        assert served.store.get_entity(eid).version == 2 and manifest_entry(served.a)["hash"] == hash_2

        forced = c.entities.update(eid, entity_list_name="persons", force=True, label="Phạm Văn Mới 1992",
                                   data={"birth_year": "1992"})
        assert forced.currentVersion.version == 3 and forced.currentVersion.label == "Phạm Văn Mới 1992"
        assert csv_rows(served.a)[eid]["birth_year"] == "1992"
        versions = c.get(f"projects/1/datasets/persons/entities/{eid}/versions").json()
        assert [(v["version"], v["baseVersion"]) for v in versions] == [(1, None), (2, 1), (3, 2)]
        assert versions[1]["dataReceived"] == {"status": "cai nghiện tại nhà"}
        assert {v["source"]["action"] for v in versions[1:]} == {"update"}

        entry = manifest_entry(served.a)
        assert c.entities.delete(eid, entity_list_name="persons") is True
        assert eid not in csv_rows(served.a) and manifest_entry(served.a)["hash"] != entry["hash"]
        integrity = served.a.get(f"{entry['integrity']}?id={eid}")
        assert re.search(rf'<entity id="{eid}"><deleted>true</deleted></entity>', integrity.text)
        assert eid not in {e.uuid for e in c.entities.list("persons")}
        assert served.store.get_entity(eid).deleted  # soft: kept with its history
        status, body = call(c, "PATCH", f"projects/1/datasets/persons/entities/{eid}?force=true",
                            json={"data": {"status": "x"}})
        assert (status, body["code"]) == (404, 404.1)
        assert manifest_entry(served.b)["hash"] == hash_b

    actions = [e.action for e in served.store.iter_audit(actor="xa-a")
               if e.action.startswith("entity.") and e.target == eid]
    assert actions == ["entity.create", "entity.update", "entity.update", "entity.delete"]  # not the stale


def test_create_many_in_one_transaction(served: SimpleNamespace, tmp_path: Path) -> None:
    before = set(csv_rows(served.a))
    with client(served, tmp_path) as c:
        rows = [{"label": f"Người nhập {i}", "birth_year": str(1980 + i), "status": "quản lý"}
                for i in range(3)]
        assert c.entities.create_many(rows, entity_list_name="persons", create_source="danh-sach.csv") is True
        added = {k: v for k, v in csv_rows(served.a).items() if k not in before}
        assert sorted(r["label"] for r in added.values()) == ["Người nhập 0", "Người nhập 1", "Người nhập 2"]
        assert {r["__version"] for r in added.values()} == {"1"}

        taken = next(iter(added))
        status, body = call(c, "POST", "projects/1/datasets/persons/entities", json={
            "entities": [{"label": "Người mới", "data": {}}, {"uuid": taken, "label": "Trùng", "data": {}}],
            "source": {"name": "x"}})
        assert (status, body["code"]) == (409, 409.3)  # one id is taken: nothing was created
        assert len(csv_rows(served.a)) == len(before) + 3
        status, body = call(c, "POST", "projects/1/datasets/persons/entities",
                            json={"label": "Người", "data": {"no_such": "1"}})
        assert (status, body["code"]) == (400, 400.28)
        status, body = call(c, "POST", "projects/1/datasets/persons/entities",
                            json={"label": "Người", "data": {"birth_year": 1990}})
        assert (status, body["code"]) == (400, 400.11)
        status, body = call(c, "POST", "projects/1/datasets/persons/entities",
                            json={"label": " ", "data": {}})
        assert (status, body["code"]) == (400, 400.8)
        # the body's model (server.central.bodies), checked before anything is written
        for wrong, code in [({"entities": [], "label": "Người"}, 400.31),
                            ({"label": "X", "source": {}}, 400.31),
                            ({"entities": [{"label": "X", "ten": "Y"}]}, 400.31),
                            ({"entities": "X"}, 400.11), ([{"label": "X"}], 400.1)]:
            status, body = call(c, "POST", "projects/1/datasets/persons/entities", json=wrong)
            assert (status, body["code"]) == (400, code), wrong
        status, body = call(c, "POST", "projects/1/datasets/persons/entities", data=b"{label",
                            headers={"Content-Type": "application/json"})
        assert (status, body["code"]) == (400, 400.1)
    bulk = [e for e in served.store.iter_audit(actor="xa-a") if e.action == "entity.bulk_create"]
    assert [(e.details["count"], e.details["source"], e.details["unit"]) for e in bulk] == [
        (3, "danh-sach.csv", A)]


def test_an_officer_writes_only_inside_their_units(served: SimpleNamespace, tmp_path: Path) -> None:
    eid = new_uuid()
    assert served.a.submit(register_xml(eid, "Người của A")[1]).status_code == 201
    with client(served, tmp_path, "xa-b") as c:
        status, body = call(c, "PATCH", f"projects/1/datasets/persons/entities/{eid}?baseVersion=1",
                            json={"data": {"status": "giả mạo"}})
        assert (status, body["code"]) == (403, 403.1)
        status, _ = call(c, "DELETE", f"projects/1/datasets/persons/entities/{eid}")
        assert status == 403
        status, _ = call(c, "POST", "projects/1/datasets/persons/entities",
                         json={"label": "Người lạ", "data": {}, "unit": A})
        assert status == 403
        made = c.entities.create(label="Người của B", data={}, entity_list_name="persons")
        assert served.store.get_entity(made.uuid).unit_code == B  # the officer's only unit
    with client(served, tmp_path, "xem-a") as c:  # a viewer may read, not write
        status, body = call(c, "POST", "projects/1/datasets/persons/entities",
                            json={"label": "X", "data": {}})
        assert (status, body["code"]) == (403, 403.1)
    stored = served.store.get_entity(eid)
    assert (stored.version, stored.deleted, stored.properties["status"]) == (1, False, "quản lý")
    assert eid in csv_rows(served.a) and made.uuid in csv_rows(served.b)


def test_odata_filter_and_orderby(served: SimpleNamespace, tmp_path: Path) -> None:
    with client(served, tmp_path, "xa-b") as c:  # commune B: only the persons written here
        ids = []
        for year, status in (("1970", "quản lý"), ("1985", "cai nghiện tại nhà"), ("1999", "quản lý")):
            ids.append(c.entities.create(label=f"Người {year}", entity_list_name="persons",
                                         data={"birth_year": year, "status": status}).uuid)
        c.entities.update(ids[2], entity_list_name="persons", base_version=1, data={"status": "chuyển đi"})
        gone = c.entities.create(label="Người đã xoá", entity_list_name="persons", data={}).uuid
        c.entities.delete(gone, entity_list_name="persons")

        def table(**kw: object) -> list[str]:
            return [r["__id"] for r in c.entities.get_table("persons", **kw)["value"] if r["__id"] in ids]

        def raw(**params: str) -> tuple[int, dict]:
            return call(c, "GET", "projects/1/datasets/persons.svc/Entities", params=params)

        assert set(table(filter="status eq 'quản lý'")) == {ids[0]}
        assert set(table(filter="status ne 'quản lý' and birth_year gt 1980")) == {ids[1], ids[2]}
        assert set(table(filter="birth_year lt '1980' or status eq 'chuyển đi'")) == {ids[0], ids[2]}
        assert table(filter="__system/version gt 1") == [ids[2]]
        assert set(table(filter=f"__id eq '{ids[1]}' or (birth_year eq '1970' and not (status ne 'quản lý'))")
                   ) == {ids[0], ids[1]}
        since = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert set(table(filter=f"__system/createdAt gt {since} and __system/conflict eq null")) == set(ids)
        got = c.entities.get_table("persons", filter="__system/deletedAt ne null", count=True)
        assert [r["__id"] for r in got["value"]] == [gone] and got["@odata.count"] == 1
        counted = c.entities.get_table("persons", filter="status eq 'quản lý'", count=True)
        assert counted["@odata.count"] == len(counted["value"]) == 1
        page = c.entities.get_table("persons", filter="birth_year ge 1970", top=1, count=True)
        assert (len(page["value"]), page["@odata.count"]) == (1, 3)  # counted past the page
        seen = [r["__id"] for r in page["value"]]
        while "@odata.nextLink" in page:  # a $skiptoken each, $top kept
            page = c.get(page["@odata.nextLink"]).json()
            assert page["@odata.count"] == 3
            seen += [r["__id"] for r in page["value"]]
        assert sorted(seen) == sorted(ids)

        status, body = raw(**{"$orderby": "__system/createdAt desc"})
        assert status == 200
        assert [r["__id"] for r in body["value"] if r["__id"] in ids] == ids[::-1]
        status, body = raw(**{"$orderby": "__system/updatedAt desc,__id", "$top": "1"})
        assert [r["__id"] for r in body["value"]] == [ids[2]]  # the one updated last
        assert "%24skip=1" in body["@odata.nextLink"]

        status, body = raw(**{"$filter": "full_name eq 'Ai đó'"})  # sealed at rest: cannot be compared
        assert (status, body["code"]) == (400, 400.18) and "full_name" in body["message"]
        status, body = raw(**{"$filter": "label eq 'x'"})  # the label is built from the name: sealed too
        assert (status, body["code"]) == (400, 400.18)
        status, body = raw(**{"$filter": "status eq"})
        assert (status, body["code"]) == (400, 400.18)
        status, body = raw(**{"$search": "Người"})
        assert (status, body["code"]) == (501, 501.1) and "$search" in body["message"]
        status, body = raw(**{"$orderby": "status"})
        assert (status, body["code"]) == (501, 501.5)


def test_pyodk_merge_creates_and_updates_by_label(served: SimpleNamespace, tmp_path: Path) -> None:
    with client(served, tmp_path) as c:
        first = [{"label": "Người gộp 1", "status": "quản lý", "birth_year": "1960"},
                 {"label": "Người gộp 2", "status": "quản lý"}]
        done = c.entities.merge(first, entity_list_name="persons")
        assert len(done.to_insert) == 2 and not done.to_update
        done = c.entities.merge([{"label": "Người gộp 1", "status": "chuyển đi"}], entity_list_name="persons")
        assert len(done.to_update) == 1
        with pytest.raises(PyODKError) as new_column:  # a property no form saves: it could not be sealed
            c.entities.merge([{"label": "Người gộp 3", "ho_ten_khac": "Ai đó"}], entity_list_name="persons")
        assert "400.28" in str(new_column.value) and "ho_ten_khac" in str(new_column.value)
    rows = {r["label"]: r for r in csv_rows(served.a).values()}
    assert (rows["Người gộp 1"]["status"], rows["Người gộp 1"]["birth_year"]) == ("chuyển đi", "1960")
    assert rows["Người gộp 1"]["__version"] == "2" and rows["Người gộp 2"]["__version"] == "1"
    assert "Người gộp 3" not in rows


def test_a_conflict_resolved_through_the_api(served: SimpleNamespace, tmp_path: Path) -> None:
    from entity_support import visit_xml

    eid = new_uuid()
    for xml in (register_xml(eid, "Người xung đột")[1], visit_xml(eid, 1, status="a")[1],
                visit_xml(eid, 1, status="b")[1]):  # two visits from version 1: a hard conflict
        assert served.a.submit(xml).status_code == 201
    path = f"projects/1/datasets/persons/entities/{eid}"
    with client(served, tmp_path) as c:
        assert c.get(path).json()["conflict"] == "hard"
        status, body = call(c, "PATCH", f"{path}?resolve=true&baseVersion=2", json={})
        assert (status, body["code"]) == (409, 409.15)  # resolved on what the officer last read
        status, body = call(c, "PATCH", f"{path}?resolve=true&baseVersion=3", json={})
        assert status == 200 and body["conflict"] is None and body["currentVersion"]["version"] == 3
        status, body = call(c, "PATCH", f"{path}?resolve=true&baseVersion=3", json={})
        assert (status, body["code"]) == (400, 400.32)
    assert [e.action for e in served.store.iter_audit(actor="xa-a") if e.target == eid
            and e.action.startswith("entity.")] == ["entity.resolve"]
