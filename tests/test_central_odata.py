"""OData as Excel, Power BI and OData libraries read it: an independent client (python-odata) parses
``$metadata`` and reads a form with a repeat over Basic authentication; query options and errors as
Central answers them."""

from __future__ import annotations

import uuid

import httpx
import pytest
import requests
from odata import ODataService
from rasoat.core.storage.base import SubmissionQuery
from server_support import COMMUNE, instance_xml

ADMIN = ("admin", "mật-khẩu-quản-trị")


@pytest.fixture
def live_server(live_server_any):
    return live_server_any


def submit(live_server, **kw) -> str:
    iid, xml = instance_xml(**kw)
    resp = httpx.post(
        f"{live_server.url}/v1/projects/1/forms/tform/submissions",
        content=xml,
        headers={"Authorization": f"Bearer {live_server.admin_token}", "Content-Type": "application/xml"},
    )
    assert resp.status_code == 200, resp.text
    return iid


def test_python_odata_reads_a_form_and_its_repeat_with_basic_auth(live_server) -> None:
    mine = {
        submit(live_server, name=f"Người {n}", ages=tuple(str(30 + n + k) for k in range(n + 1)))
        for n in range(3)
    }
    session = requests.Session()
    session.auth = (ADMIN[0], ADMIN[1].encode("utf-8"))
    service = ODataService(
        f"{live_server.url}/v1/projects/1/forms/tform.svc",
        session=session,
        reflect_entities=True,
        quiet_progress=True,
    )
    assert set(service.entities) == {"Submissions", "Submissions.member"}
    rows = {r.__id: r for r in service.query(service.entities["Submissions"])}
    stored = {s.instance_id: s for s in live_server.store.iter_submissions(SubmissionQuery(form_id="tform"))}
    assert set(rows) == set(stored) >= mine
    for iid in mine:
        assert (rows[iid].name, rows[iid].commune) == (stored[iid].fields["name"], COMMUNE)
    members = list(service.query(service.entities["Submissions.member"]))
    expected = sorted((s.instance_id, int(m["age"])) for s in stored.values() for m in s.fields["member"])
    assert sorted((getattr(m, "__Submissions-id"), m.age) for m in members) == expected


def test_query_options_and_errors(live_server) -> None:
    iid = submit(live_server)
    base = f"{live_server.url}/v1/projects/1/forms/tform.svc"
    auth = (ADMIN[0], ADMIN[1])

    def get(path: str, **params: str) -> httpx.Response:
        return httpx.get(f"{base}{path}", params=params, auth=auth)

    service = get("")
    assert service.headers["OData-Version"] == "4.0"
    assert [v["name"] for v in service.json()["value"]] == ["Submissions", "Submissions.member"]
    assert get("/$metadata").text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<edmx:Edmx')
    one = get(f"/Submissions('{iid}')", **{"$select": "__id,name,meta/instanceID"}).json()["value"]
    assert one == [{"__id": iid, "name": "Nguyễn Văn A", "meta": {"instanceID": iid}}]
    empty = get("/Submissions", **{"$top": "0", "$count": "True"}).json()
    assert empty["value"] == [] and empty["@odata.count"] == live_server.store.count_submissions(
        SubmissionQuery(form_id="tform")
    )
    oldest = get("/Submissions", **{"$orderby": "__system/submissionDate asc", "$top": "1"}).json()["value"][
        0
    ]
    first = min(
        live_server.store.iter_submissions(SubmissionQuery(form_id="tform")),
        key=lambda s: (s.received_at, s.instance_id),
    )
    assert oldest["__id"] == first.instance_id
    assert get("/Submissions", **{"$expand": "member"}).json()["code"] == 501.6
    assert get("/Submissions", **{"$filter": "name eq 'x'"}).json()["code"] == 501.5
    assert get("/Submissions", **{"$filter": "__system/reviewState eq"}).json()["code"] == 400.18
    assert get("/Submissions", **{"$select": "nope"}).json()["code"] == 400.23
    assert get("/Submissions", **{"$skiptoken": "zz"}).json()["code"] == 400.35
    assert get("/Nope").json()["code"] == 404.1
    assert httpx.get(f"{live_server.url}/v1/projects/1/forms/nope.svc", auth=auth).json()["code"] == 404.1
    wrong = httpx.get(f"{base}/Submissions", auth=(ADMIN[0], "sai"))
    assert wrong.status_code == 401 and wrong.json()["code"] == 401.2
    gone = get(f"/Submissions('uuid:{uuid.uuid4()}')")
    assert gone.status_code == 404 and gone.json()["code"] == 404.1
