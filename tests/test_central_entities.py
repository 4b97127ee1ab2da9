"""Entity lists through Central's REST API and OData (issue 23), read with pyodk 1.3.0 unmodified against
a real server on both backends: phones of two communes create and update persons as ODK Collect writes
entity blocks, and officers read the lists, entities, versions (with a conflict) and the OData feed,
scoped to their units as submissions are; names only for a role that may read identities, audited."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from entity_support import (
    OFFICER_PASSWORD,
    B,
    new_uuid,
    officers_server,
    register_xml,
    visit_xml,
)
from pyodk.client import Client
from pyodk.errors import PyODKError
from server_support import pyodk_client

PASSWORD = OFFICER_PASSWORD
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["embedded", "postgres"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SimpleNamespace]:
    """A server with the register and visit forms, two collectors (A, B) and their persons: in A, one
    registered then updated twice from the same version (a conflict) and one left as registered; in B,
    one. Officers: commune A, viewer A, commune B."""
    with officers_server(request.param, tmp_path_factory.mktemp("central-entities") / "data") as served:
        people = {"binh": new_uuid(), "cuc": new_uuid(), "dung": new_uuid()}
        for phone, xml in (
            (served.a, register_xml(people["binh"], "Nguyễn Văn Bình", "1988")[1]),
            (served.a, register_xml(people["cuc"], "Lê Thị Cúc", "1995")[1]),
            (served.b, register_xml(people["dung"], "Trần Văn Dũng", "1979", commune=B)[1]),
            (served.a, visit_xml(people["binh"], 1, status="cai nghiện tại nhà")[1]),
            (served.a, visit_xml(people["binh"], 1, status="chuyển đi")[1]),  # stale base: hard
        ):
            resp = phone.submit(xml)
            assert resp.status_code == 201, resp.text
        served.people = people
        yield served


def client(served: SimpleNamespace, tmp_path: Path, username: str) -> Client:
    return pyodk_client(served.url, tmp_path, username, PASSWORD)


def test_pyodk_reads_the_lists_and_the_entities_of_the_officers_units(served, tmp_path) -> None:
    p = served.people
    with client(served, tmp_path, "xa-a") as c:
        [lst] = c.entity_lists.list()
        assert (lst.name, lst.projectId, lst.approvalRequired) == ("persons", 1, False)
        listed = {e.uuid: e for e in c.entities.list("persons")}
        assert set(listed) == {p["binh"], p["cuc"]}  # Dũng is in commune B
        binh = listed[p["binh"]]
        assert binh.currentVersion.version == 3 and binh.conflict == "hard"
        assert binh.currentVersion.label == "Nguyễn Văn Bình 1988"  # the sealed label, opened for this role
        meta = c.get("projects/1/datasets/persons").json()
        assert [f["xmlFormId"] for f in meta["sourceForms"]] == ["ent_register", "ent_visit"]
        assert [f["xmlFormId"] for f in meta["linkedForms"]] == ["ent_visit"]
        props = {x["name"]: x["forms"] for x in meta["properties"]}
        assert props["full_name"] == ["ent_register"] and props["status"] == ["ent_register", "ent_visit"]
        extended = c.get("projects/1/datasets", headers={"X-Extended-Metadata": "true"}).json()
        assert (extended[0]["entities"], extended[0]["conflicts"]) == (2, 1)

        one = c.get(f"projects/1/datasets/persons/entities/{p['binh']}").json()
        data = one["currentVersion"]["data"]
        assert data["full_name"] == "Nguyễn Văn Bình" and data["birth_year"] == "1988"
        assert data["status"] == "chuyển đi"
        assert one["currentVersion"]["dataReceived"] == {"status": "chuyển đi"}
        assert one["currentVersion"]["baseVersion"] == 1
        assert one["currentVersion"]["conflictingProperties"] == ["status"]

        versions = c.get(f"projects/1/datasets/persons/entities/{p['binh']}/versions").json()
        assert [v["version"] for v in versions] == [1, 2, 3]
        assert [v["baseVersion"] for v in versions] == [None, 1, 1]
        assert [v["conflict"] for v in versions] == [None, None, "hard"]
        assert versions[2]["baseDiff"] == ["status"] and versions[2]["serverDiff"] == ["status"]
        assert versions[1]["data"]["status"] == "cai nghiện tại nhà"
        assert versions[2]["data"]["full_name"] == "Nguyễn Văn Bình" and versions[2]["current"]
        assert all(v["source"]["submission"]["instanceId"].startswith("uuid:") for v in versions)

        with pytest.raises(PyODKError):  # a person of commune B is not found, not disclosed
            c.session.response_or_error("GET", f"projects/1/datasets/persons/entities/{p['dung']}",
                                        logger=__import__("logging").getLogger("test"))
        with pytest.raises(PyODKError):
            c.entities.list("no_such_list")
    reads = [a for a in served.store.iter_audit(actor="xa-a") if a.action.startswith("entities.")]
    assert {a.action for a in reads} >= {"entities.list", "entities.read", "entities.versions"}
    assert all(a.details.get("count") for a in reads)


def test_the_odata_feed_pages_and_counts(served, tmp_path) -> None:
    p = served.people
    with client(served, tmp_path, "xa-a") as c:
        table = c.entities.get_table("persons", count=True)
        assert table["@odata.count"] == 2 and len(table["value"]) == 2
        rows = {r["__id"]: r for r in table["value"]}
        assert set(rows) == {p["binh"], p["cuc"]}
        cuc = rows[p["cuc"]]
        assert (cuc["full_name"], cuc["birth_year"]) == ("Lê Thị Cúc", "1995")
        assert cuc["label"] == "Lê Thị Cúc 1995"
        assert cuc["__system"]["version"] == 1 and cuc["__system"]["updates"] == 0
        assert cuc["__system"]["creatorName"] == "Người thu A" and cuc["visit_note"] == ""
        assert rows[p["binh"]]["__system"]["conflict"] == "hard"
        first = c.entities.get_table("persons", top=1, select="__id,status")
        assert len(first["value"]) == 1 and set(first["value"][0]) == {"__id", "status"}
        rest = httpx.get(first["@odata.nextLink"], headers=c.session.headers).json()
        assert {first["value"][0]["__id"], *(r["__id"] for r in rest["value"])} == {p["binh"], p["cuc"]}
        assert "@odata.nextLink" not in rest
        assert "__id" in c.get("projects/1/datasets/persons.svc/$metadata").text
        assert c.get("projects/1/datasets/persons.svc").json()["value"][0]["url"] == "Entities"
        assert c.get("projects/1/datasets/persons.svc/Entities", params={"$filter": "x"}).status_code == 501
    with client(served, tmp_path, "xa-b") as c:
        assert [r["__id"] for r in c.entities.get_table("persons")["value"]] == [p["dung"]]


def test_a_viewer_sees_no_names(served, tmp_path) -> None:
    p = served.people
    before = sum(1 for a in served.store.iter_audit(actor="xem-a") if a.action.startswith("entities."))
    with client(served, tmp_path, "xem-a") as c:
        listed = {e.uuid: e for e in c.entities.list("persons")}
        assert listed[p["cuc"]].currentVersion.label == f"Người {p['cuc'][:8]}"
        one = c.get(f"projects/1/datasets/persons/entities/{p['cuc']}").json()
        assert one["currentVersion"]["data"]["full_name"] is None
        assert one["currentVersion"]["data"]["birth_year"] == "1995"  # statistics stay readable
        rows = {r["__id"]: r for r in c.entities.get_table("persons")["value"]}
        assert rows[p["cuc"]]["full_name"] is None and "Lê Thị Cúc" not in str(rows)
    after = sum(1 for a in served.store.iter_audit(actor="xem-a") if a.action.startswith("entities."))
    assert after == before  # nothing identifying was read
