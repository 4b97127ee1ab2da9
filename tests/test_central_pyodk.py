"""pyodk 1.3.0, unmodified, against a real rasoat server (embedded and PostgreSQL): every call it makes is
answered in the shape its models need, and what it reads back is what rasoat stored."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from pyodk._endpoints.project_app_users import ProjectAppUser
from pyodk.client import Client
from pyodk.errors import PyODKError
from rasoat.core.models import ReviewState
from rasoat.core.storage.base import SubmissionQuery
from rasoat.core.users import create_user
from server_support import COMMUNE, OTHER_COMMUNE, instance_xml, pyodk_client
from test_server_publish import write_xlsform

ADMIN = ("admin", "mật-khẩu-quản-trị")
PASSWORD = "mật-khẩu-cán-bộ-22"


@pytest.fixture
def live_server(live_server_any):
    return live_server_any


@pytest.fixture
def officers(live_server) -> dict[str, tuple[str, str]]:
    """A commune officer of COMMUNE and a viewer, new for each test (names unique on the shared server)."""
    tag = uuid.uuid4().hex[:6]
    store = live_server.store
    create_user(store, f"xa-{tag}", PASSWORD, "commune_officer", [COMMUNE], actor="test")
    create_user(store, f"xem-{tag}", PASSWORD, "viewer", [COMMUNE], actor="test")
    return {"commune": (f"xa-{tag}", PASSWORD), "viewer": (f"xem-{tag}", PASSWORD)}


def client(live_server, tmp_path: Path, who: tuple[str, str]) -> Client:
    return pyodk_client(live_server.url, tmp_path, *who)


def new_submission(c: Client, commune: str = COMMUNE, **kw) -> str:
    iid, xml = instance_xml(commune=commune, **kw)
    c.submissions.create(xml=xml.decode("utf-8"), form_id="tform")
    return iid


def test_login_projects_forms_and_form_xml(live_server, tmp_path) -> None:
    store = live_server.store
    with client(live_server, tmp_path, ADMIN) as c:
        assert c.session.headers["Authorization"].startswith("Bearer ")
        assert [p.id for p in c.projects.list()] == [1]
        assert c.projects.get(1).name == "rasoat"
        listed = {f.xmlFormId: f for f in c.forms.list()}
        stored = {f.form_id: f for f in store.list_forms()}
        assert set(listed) == set(stored)
        for form_id, form in stored.items():
            assert (listed[form_id].version, listed[form_id].hash, listed[form_id].name) == (
                form.version,
                form.md5,
                form.title,
            )
        assert listed["tform"].state == "open" and listed["tclosed"].state == "closed"
        assert c.forms.get("tform").hash == stored["tform"].md5
        assert c.forms.get_xml("tform").encode("utf-8") == store.form_xml("tform", "1")
        app_users = [ProjectAppUser(**u) for u in c.get("projects/1/app-users").json()]
        collectors = {u.display_name for u in store.list_users() if u.role.value == "collector" and u.active}
        assert {u.displayName for u in app_users} == collectors and all(u.token is None for u in app_users)
        me = c.get("users/current").json()
        assert me["email"] == "admin" and me["rasoat"]["role"] == "admin"
    # a second client reuses the cached session token (pyodk checks it with GET users/current)
    again = client(live_server, tmp_path, ADMIN)
    assert again.projects.list()[0].id == 1


def test_create_get_review_comment_edit_and_attachments(live_server, tmp_path) -> None:
    store = live_server.store
    photo = tmp_path / "anh.jpg"
    photo.write_bytes(b"\xff\xd8\xff fake jpeg " + uuid.uuid4().bytes)
    with client(live_server, tmp_path, ADMIN) as c:
        iid, xml = instance_xml(photo="anh.jpg", name="Nguyễn Thị Hoa")
        created = c.submissions.create(xml=xml.decode("utf-8"), form_id="tform", attachments=[str(photo)])
        assert created.instanceId == iid
        sub = store.get_submission(iid)
        assert sub is not None and sub.fields["name"] == "Nguyễn Thị Hoa"
        assert store.attachment(iid, "anh.jpg") == photo.read_bytes()
        assert [a["name"] for a in c.get(f"projects/1/forms/tform/submissions/{iid}/attachments").json()] == [
            "anh.jpg"
        ]
        downloaded = c.get(f"projects/1/forms/tform/submissions/{iid}/attachments/anh.jpg")
        assert downloaded.content == photo.read_bytes()
        got = c.submissions.get(iid, form_id="tform")
        assert (got.instanceId, got.reviewState) == (iid, None)
        assert c.get(f"projects/1/forms/tform/submissions/{iid}.xml").content == store.submission_xml(iid)

        c.submissions.review(iid, "approved", form_id="tform", comment="Đủ thông tin")
        assert c.submissions.get(iid, form_id="tform").reviewState == "approved"
        assert store.get_submission(iid).review_state is ReviewState.approved
        comment = c.submissions.add_comment(iid, "Gọi lại xác minh", form_id="tform")
        assert comment.body == "Gọi lại xác minh"
        bodies = [x.body for x in c.submissions.list_comments(iid, form_id="tform")]
        assert bodies == ["Gọi lại xác minh", "Đủ thông tin"]
        assert [h["comment"] for h in store.get_submission(iid).review_history][-2:] == [
            "Đủ thông tin",
            "Gọi lại xác minh",
        ]

        new_id, edited = instance_xml(deprecated_id=iid, name="Nguyễn Thị Hoà", photo="anh.jpg")
        c.submissions.edit(iid, edited.decode("utf-8"), form_id="tform")
        assert c.submissions.get(new_id, form_id="tform").reviewState == "edited"
        assert store.get_submission(iid).current is False
        assert store.get_submission(new_id).fields["name"] == "Nguyễn Thị Hoà"
        assert store.attachment(new_id, "anh.jpg") == photo.read_bytes()  # carried over by the edit
        with pytest.raises(PyODKError) as stale:  # a second edit of the replaced version
            c.submissions.edit(iid, instance_xml(deprecated_id=iid)[1].decode(), form_id="tform")
        assert stale.value.is_central_error("409.9")
        with pytest.raises(PyODKError) as twice:
            c.submissions.create(xml=xml.decode("utf-8"), form_id="tform")
        assert twice.value.is_central_error("409.3")


def test_get_table_filter_expand_count_paging_and_a_repeat_table(live_server, tmp_path) -> None:
    store = live_server.store
    with client(live_server, tmp_path, ADMIN) as c:
        mine = [new_submission(c, ages=tuple(str(20 + i + k) for k in range(i % 3 + 1))) for i in range(5)]
        c.submissions.review(mine[1], "approved", form_id="tform")
        c.submissions.review(mine[3], "approved", form_id="tform")
        current = list(store.iter_submissions(SubmissionQuery(form_id="tform")))
        newest_first = [
            s.instance_id for s in sorted(current, key=lambda s: (s.received_at, s.instance_id), reverse=True)
        ]

        table = c.submissions.get_table(form_id="tform", count=True)
        assert [r["__id"] for r in table["value"]] == newest_first
        assert (
            table["@odata.count"] == len(current) == store.count_submissions(SubmissionQuery(form_id="tform"))
        )
        row = next(r for r in table["value"] if r["__id"] == mine[0])
        assert row["name"] == "Nguyễn Văn A" and row["commune"] == COMMUNE
        assert row["meta"]["instanceID"] == mine[0]
        assert row["__system"]["reviewState"] is None and row["__system"]["formVersion"] == "1"
        assert row["member@odata.navigationLink"] == f"Submissions('{mine[0].replace(':', '%3A')}')/member"
        assert "member" not in row

        approved = c.submissions.get_table(form_id="tform", filter="__system/reviewState eq 'approved'")
        in_store = {s.instance_id for s in current if s.review_state is ReviewState.approved}
        assert {r["__id"] for r in approved["value"]} == in_store >= {mine[1], mine[3]}
        first = store.get_submission(mine[0])
        since = first.received_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        later = c.submissions.get_table(
            form_id="tform",
            filter=f"__system/submissionDate gt {since} and __system/reviewState ne 'approved'",
        )
        assert [r["__id"] for r in later["value"]] == [mine[4], mine[2]]
        either = c.submissions.get_table(
            form_id="tform", filter=f"__id eq '{mine[0]}' or not (__system/reviewState ne 'approved')"
        )
        assert {r["__id"] for r in either["value"]} == in_store | {mine[0]}

        expanded = c.submissions.get_table(
            form_id="tform", expand="*", filter=f"__system/submissionDate ge {since}"
        )
        by_id = {r["__id"]: r for r in expanded["value"]}
        for iid in mine:
            stored = store.get_submission(iid).fields["member"]
            assert [m["age"] for m in by_id[iid]["member"]] == [int(m["age"]) for m in stored]

        seen, page = [], c.submissions.get_table(form_id="tform", top=2, count=True)
        pages = 1
        while True:
            assert len(page["value"]) <= 2 and page["@odata.count"] == len(current)
            seen += [r["__id"] for r in page["value"]]
            if "@odata.nextLink" not in page:
                break
            page = c.session.get(page["@odata.nextLink"]).json()
            pages += 1
        assert seen == newest_first and pages == (len(current) + 1) // 2

        members = c.submissions.get_table(form_id="tform", table_name="Submissions.member", count=True)
        expected = [
            (s.instance_id, int(m["age"]))
            for s in sorted(current, key=lambda s: (s.received_at, s.instance_id), reverse=True)
            for m in s.fields["member"]
        ]
        assert [(r["__Submissions-id"], r["age"]) for r in members["value"]] == expected
        assert members["@odata.count"] == len(expected)
        assert len({r["__id"] for r in members["value"]}) == len(expected)
        paged, top = [], c.submissions.get_table(form_id="tform", table_name="Submissions.member", top=3)
        while True:
            paged += [r["__id"] for r in top["value"]]
            if "@odata.nextLink" not in top:
                break
            top = c.session.get(top["@odata.nextLink"]).json()
        assert paged == [r["__id"] for r in members["value"]]


def test_a_commune_officer_sees_only_its_commune(live_server, tmp_path, officers) -> None:
    store = live_server.store
    with client(live_server, tmp_path, ADMIN) as admin:
        here = new_submission(admin, COMMUNE)
        there = new_submission(admin, OTHER_COMMUNE)
    with client(live_server, tmp_path, officers["commune"]) as c:
        rows = c.submissions.get_table(form_id="tform", count=True)
        ids = {r["__id"] for r in rows["value"]}
        assert here in ids and there not in ids
        assert {store.get_submission(i).unit_code for i in ids} == {COMMUNE}
        assert rows["@odata.count"] == len(ids)
        assert {s.instanceId for s in c.submissions.list(form_id="tform")} == ids
        with pytest.raises(PyODKError) as hidden:
            c.submissions.get(there, form_id="tform")
        assert hidden.value.is_central_error("404.1")
        own = new_submission(c, COMMUNE)  # officers may submit in their units
        assert store.get_submission(own).unit_code == COMMUNE
        with pytest.raises(PyODKError) as outside:
            new_submission(c, OTHER_COMMUNE)
        assert outside.value.is_central_error("403.1")


def test_a_viewer_can_read_but_not_create_or_review(live_server, tmp_path, officers) -> None:
    with client(live_server, tmp_path, ADMIN) as admin:
        iid = new_submission(admin, COMMUNE, name="Lê Thị Riêng")
    with client(live_server, tmp_path, officers["viewer"]) as c:
        rows = c.submissions.get_table(form_id="tform")["value"]
        assert iid in {r["__id"] for r in rows}
        for call in (
            lambda: new_submission(c, COMMUNE),
            lambda: c.submissions.review(iid, "approved", form_id="tform"),
            lambda: c.submissions.add_comment(iid, "không được", form_id="tform"),
        ):
            with pytest.raises(PyODKError) as refused:
                call()
            assert refused.value.is_central_error("403.1")
    assert live_server.store.get_submission(iid).review_state is ReviewState.received


def test_wrong_password_gets_centrals_401(live_server, tmp_path) -> None:
    resp = httpx.post(f"{live_server.url}/v1/sessions", json={"email": "admin", "password": "sai"})
    assert resp.status_code == 401
    assert resp.json() == {"message": resp.json()["message"], "code": 401.2}
    assert "WWW-Authenticate" not in resp.headers
    with pytest.raises(PyODKError) as failed:
        client(live_server, tmp_path, ("admin", "sai")).projects.list()
    assert "401" in str(failed.value)
    none = httpx.get(f"{live_server.url}/v1/projects", headers={"Authorization": "Bearer nope"})
    assert none.status_code == 401 and none.json()["code"] == 401.2
    missing = httpx.post(f"{live_server.url}/v1/sessions", json={"email": "admin"})
    assert missing.status_code == 400 and missing.json()["code"] == 400.3
    huge = httpx.post(f"{live_server.url}/v1/sessions", json={"email": "admin", "password": "x" * 1_100_000})
    assert huge.status_code == 413 and huge.json()["code"] == 413.1


def test_draft_upload_and_publish(live_server, tmp_path) -> None:
    store = live_server.store
    form_id = f"pyodk_{uuid.uuid4().hex[:6]}"
    first = write_xlsform(tmp_path / "first.xlsx", form_id, "2026120701")
    with client(live_server, tmp_path, ADMIN) as c:
        made = c.forms.create(definition=str(first))
        assert made.xmlFormId == form_id and made.version == "2026120701"
        stored = store.get_form(form_id)
        assert stored is not None and stored.version == "2026120701"
        assert c.forms.get(form_id).hash == stored.md5
        second = write_xlsform(tmp_path / "second.xlsx", form_id, "2026120702", extra_label="Ghi chú mới")
        c.forms.update(form_id, definition=str(second))
        assert store.get_form(form_id).version == "2026120702"
        assert [v["version"] for v in c.get(f"projects/1/forms/{form_id}/versions").json()] == [
            "2026120702",
            "2026120701",
        ]
        # a draft of the published version with new media, published under pyodk's new version
        communes = tmp_path / "communes.csv"
        communes.write_text("name,label\n05563,Xã Phượng Tiến\n", encoding="utf-8")
        c.forms.update(form_id, attachments=[str(communes)], version_updater=lambda _old: "2026120703")
        newest = store.get_form(form_id)
        assert newest.version == "2026120703"
        assert store.form_media(form_id, "2026120703", "communes.csv") == communes.read_bytes()
        assert newest.md5 != store.get_form(form_id, "2026120702").md5
        other = write_xlsform(tmp_path / "other.xlsx", "not_this_one", "1")
        with pytest.raises(PyODKError) as mismatch:
            c.forms.update(form_id, definition=str(other))
        assert mismatch.value.is_central_error("400.8")


def test_a_draft_without_a_definition_needs_a_form_published_through_the_api(live_server) -> None:
    """pyodk's ``forms.update(id)`` without a definition asks for a draft copied from the published form:
    an unknown form is 404.1; a form published elsewhere (the test seed, as the CLI does) has no XLSForm
    kept to copy, Central's 501.1, its reason said once in each language."""
    token = httpx.post(f"{live_server.url}/v1/sessions", json={"email": ADMIN[0], "password": ADMIN[1]})
    bearer = {"Authorization": f"Bearer {token.json()['token']}"}
    unknown = httpx.post(f"{live_server.url}/v1/projects/1/forms/khong_co_bieu/draft", headers=bearer)
    assert unknown.status_code == 404 and unknown.json()["code"] == 404.1
    seeded = httpx.post(f"{live_server.url}/v1/projects/1/forms/tform/draft", headers=bearer)
    assert seeded.status_code == 501 and seeded.json()["code"] == 501.1
    vi, en = seeded.json()["message"].split(" / ")
    assert "tform" in vi and "XLSForm" in vi and "Form tform was not published through this API" in en
