"""OData as Excel, Power BI and OData libraries read it: an independent client (python-odata) parses
``$metadata`` and reads a form with a repeat over Basic authentication; query options and errors as
Central answers them."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
import requests
from odata import ODataService
from rasoat.core.storage.base import SubmissionQuery
from rasoat.server.central.shapes import actor_id
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
    # what Power Query sends is never refused for its headers; only an explicit $format the table lacks
    excel = {
        "Accept": "application/json;odata.metadata=minimal;q=1.0,application/xml;q=0.5",
        "OData-MaxVersion": "4.0",
        "OData-Version": "4.0",
    }
    assert httpx.get(f"{base}/Submissions", params={"$top": "1"}, headers=excel, auth=auth).status_code == 200
    meta = httpx.get(f"{base}/$metadata", headers={"Accept": "application/json,*/*"}, auth=auth)
    assert meta.status_code == 200 and meta.headers["content-type"].startswith("application/xml")
    assert get("/Submissions", **{"$format": "atom"}).json()["code"] == 406.1
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
    admin = live_server.store.get_user_by_name("admin")
    by_admin = get(
        "/Submissions", **{"$filter": f"__system/submitterId eq {actor_id(admin.id)}", "$count": "true"}
    ).json()
    stored_by_admin = live_server.store.count_submissions(
        SubmissionQuery(form_id="tform", collector_id=admin.id)
    )
    assert by_admin["@odata.count"] == len(by_admin["value"]) == stored_by_admin >= 1
    assert {r["__system"]["submitterId"] for r in by_admin["value"]} == {str(actor_id(admin.id))}
    this_year = get("/Submissions", **{"$filter": "year(__system/submissionDate) eq year(now())"}).json()
    assert iid in {r["__id"] for r in this_year["value"]}
    assert get("/Submissions", **{"$expand": "member"}).json()["code"] == 501.6
    assert get("/Submissions", **{"$filter": "name eq 'x'"}).json()["code"] == 501.5
    assert get("/Submissions", **{"$filter": "__system/reviewState eq"}).json()["code"] == 400.18
    assert get("/Submissions", **{"$select": "nope"}).json()["code"] == 400.23
    assert get("/Submissions", **{"$skiptoken": "zz"}).json()["code"] == 400.35
    for option, bad in (("$top", "-1"), ("$skip", "x"), ("$count", "maybe")):  # checked by litestar
        refused = get("/Submissions", **{option: bad})
        assert refused.status_code == 400 and refused.json()["code"] == 400.11, option
    assert get("/Nope").json()["code"] == 404.1
    assert httpx.get(f"{live_server.url}/v1/projects/1/forms/nope.svc", auth=auth).json()["code"] == 404.1
    wrong = httpx.get(f"{base}/Submissions", auth=(ADMIN[0], "sai"))
    assert wrong.status_code == 401 and wrong.json()["code"] == 401.2
    gone = get(f"/Submissions('uuid:{uuid.uuid4()}')")
    assert gone.status_code == 404 and gone.json()["code"] == 404.1


def test_a_viewer_reads_personal_fields_as_null_and_an_officer_reads_them_audited(live_server) -> None:
    """Identity follows the reader's permission: fields marked personal (P/S) are null for a viewer."""
    import hashlib

    from rasoat.core.models import FormVersion, Submission
    from rasoat.core.users import create_user, new_api_token
    from server_support import compile_test_form

    store = live_server.store
    form_id = f"tpersonal_{uuid.uuid4().hex[:6]}"
    xml, schema = compile_test_form(form_id)
    for node in schema["children"]:
        if node["name"] == "name":
            node["bind"] = {"rasoat:sensitive": "S"}
    store.put_form(
        FormVersion(form_id=form_id, version="1", title="Biểu riêng tư", md5=hashlib.md5(xml).hexdigest()),
        xml,
        schema,
        {},
    )
    iid, body = instance_xml(form_id=form_id, name="Hoàng Văn Kín")
    store.save_submission(
        Submission(
            instance_id=iid,
            form_id=form_id,
            form_version="1",
            unit_code=COMMUNE,
            xml_md5=hashlib.md5(body).hexdigest(),
            fields={
                "commune": COMMUNE,
                "name": "Hoàng Văn Kín",
                "member": [{"age": "40"}],
                "meta/instanceID": iid,
            },
        ),
        body,
        {},
    )
    tag = uuid.uuid4().hex[:6]
    create_user(store, f"xem-{tag}", "mật-khẩu-xem-22", "viewer", [COMMUNE], actor="test")
    create_user(store, f"xa-{tag}", "mật-khẩu-xa-22", "commune_officer", [COMMUNE], actor="test")
    url = f"{live_server.url}/v1/projects/1/forms/{form_id}.svc/Submissions"
    seen = {}
    for who in ("xem", "xa"):
        token = new_api_token(store, f"{who}-{tag}", actor="test")
        seen[who] = httpx.get(url, headers={"Authorization": f"Bearer {token}"}).json()["value"][0]
    assert seen["xem"]["name"] is None and seen["xem"]["commune"] == COMMUNE
    assert "Hoàng Văn Kín" not in json.dumps(seen["xem"], ensure_ascii=False)
    assert seen["xa"]["name"] == "Hoàng Văn Kín"
    views = [e for e in store.iter_audit(actor=f"xa-{tag}") if e.action == "view.submissions"]
    assert views and views[-1].target == form_id
    assert not [e for e in store.iter_audit(actor=f"xem-{tag}") if e.action == "view.submissions"]
