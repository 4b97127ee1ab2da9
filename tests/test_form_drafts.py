"""Form drafts through the real server, as ODK Central keeps them (core.drafts, server.draft_test,
server.web.pages_forms): an officer uploads an XLSForm on the forms page, it waits as a draft with its own
test code; ODK Collect set up with that code lists the draft alone, downloads it and sends a test
submission, which no figure, list or export counts; publishing makes the draft the form's next version
and discards the test submissions, and the old test code stops working. On both backends.
"""

from __future__ import annotations

import hashlib
import io
import re
import uuid
import xml.etree.ElementTree as ET
from html import unescape
from pathlib import Path

import httpx
import openpyxl
import pytest
from rasoat.core.drafts import draft_submissions, get_draft
from rasoat.core.storage.base import SubmissionQuery
from rasoat.core.users import create_user
from server_support import CollectClient

XF = "{http://openrosa.org/xforms/xformsList}"
ORX = "{http://openrosa.org/http/response}"
ADMIN_PASSWORD = "mật-khẩu-quản-trị"  # tests/conftest.py's live server
FORM_ID = "thu_nghiem_nhap"
pytestmark = pytest.mark.slow  # ODK Validate (Java) runs at upload or publish


@pytest.fixture
def live_server(live_server_any):
    return live_server_any


def write_xlsform(
    path: Path, version: str, extra: bool = False, broken: bool = False, form_id: str = FORM_ID
) -> Path:
    wb = openpyxl.Workbook()
    survey = wb.active
    survey.title = "survey"
    survey.append(["type", "name", "label", "bind::rasoat:identifying"])
    survey.append(["text", "ho_ten", "Họ và tên", "yes"])
    survey.append(["integer", "so_ho", "Số hộ", ""])
    if extra:
        survey.append(["text", "ghi_chu", "Ghi chú", ""])
    if broken:
        survey.append(["texxt", "dia_chi", "Địa chỉ", ""])  # row 4 or 5: no such question type
    settings = wb.create_sheet("settings")
    settings.append(["form_id", "version", "form_title", "namespaces"])
    settings.append([form_id, version, "Biểu thử bản nháp", 'rasoat="https://rasoat.vn/xforms"'])
    wb.save(path)
    return path


def login(url: str, username: str = "admin", password: str = ADMIN_PASSWORD) -> httpx.Client:
    client = httpx.Client(base_url=url, follow_redirects=False, timeout=120)
    page = client.get("/login")
    resp = client.post("/login", data={"username": username, "password": password, "csrf": csrf(page.text),
                                       "next": "/"})
    assert resp.status_code == 303, resp.text
    return client


def csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match
    return match.group(1)


def upload(client: httpx.Client, path: Path, validate: bool) -> httpx.Response:
    token = csrf(client.get("/forms").text)
    data = {"csrf": token, **({"validate": "1"} if validate else {})}
    with path.open("rb") as fh:
        return client.post("/forms", data=data, files={"file": (path.name, fh, "application/octet-stream")})


def publish(client: httpx.Client, round_id: str = "", form_id: str = FORM_ID, **more: str) -> httpx.Response:
    page = client.get(f"/forms/{form_id}/draft")
    return client.post(f"/forms/{form_id}/draft/publish",
                       data={"csrf": csrf(page.text), "round": round_id, **more})


def instance(version: str) -> tuple[str, bytes]:
    iid = f"uuid:{uuid.uuid4()}"
    xml = (f'<data id="{FORM_ID}" version="{version}"><ho_ten>Nguyễn Văn Thử</ho_ten><so_ho>7</so_ho>'
           f"<ghi_chu>thử</ghi_chu><meta><instanceID>{iid}</instanceID></meta></data>")
    return iid, xml.encode()


def test_a_draft_is_tested_on_a_phone_then_published_as_the_next_version(
    live_server, tmp_path, monkeypatch
) -> None:
    import pyxform.xls2json

    compiles = []
    real = pyxform.xls2json.workbook_to_json

    def counted(*args, **kwargs):
        compiles.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(pyxform.xls2json, "workbook_to_json", counted)
    store, officer = live_server.store, login(live_server.url)

    # version 1: uploaded as a draft (ODK Validate left for publishing), published into the open round
    resp = upload(officer, write_xlsform(tmp_path / "v1.xlsx", "2026120701"), validate=False)
    assert resp.status_code == 303 and resp.headers["location"].startswith(f"/forms/{FORM_ID}/draft")
    assert store.get_form(FORM_ID) is None  # a draft is not a form phones get
    resp = publish(officer, "r-open")
    assert resp.status_code == 303, resp.text
    assert store.get_form(FORM_ID).version == "2026120701" and FORM_ID in store.get_round("r-open").form_ids
    assert len(compiles) == 1  # compiled once, at upload; publishing stored those bytes
    collector = CollectClient(f"{live_server.url}/v1/key/{live_server.seeded.token}/projects/1")
    listed = ET.fromstring(collector.get("/formList").content)
    assert any(x.findtext(f"{XF}formID") == FORM_ID for x in listed.iter(f"{XF}xform"))

    # version 2 as a draft, with its test code
    resp = upload(officer, write_xlsform(tmp_path / "v2.xlsx", "2026120702", extra=True), validate=True)
    assert resp.status_code == 303
    page = officer.get(f"/forms/{FORM_ID}/draft")
    assert page.status_code == 200 and "<svg" in page.text and "2026120702" in page.text
    url = unescape(re.search(r'id="draft-url">([^<]+)<', page.text).group(1))
    token = get_draft(store, FORM_ID).token
    assert url == f"{live_server.url}/v1/test/{token}/projects/1/forms/{FORM_ID}/draft"
    central = httpx.get(f"{live_server.url}/v1/projects/1/forms/{FORM_ID}/draft",
                        headers={"Authorization": f"Bearer {live_server.admin_token}"})
    assert central.json()["draftToken"] == token and central.json()["version"] == "2026120702"

    # the phone, as Collect does: the draft alone in the list, its XForm by the list's URL and hash
    phone = CollectClient(url)
    forms = ET.fromstring(phone.get("/formList").content).findall(f"{XF}xform")
    assert [(x.findtext(f"{XF}formID"), x.findtext(f"{XF}version")) for x in forms] == [
        (FORM_ID, "2026120702")]
    xform = phone.get(forms[0].findtext(f"{XF}downloadUrl"))
    assert xform.status_code == 200
    assert "md5:" + hashlib.md5(xform.content).hexdigest() == forms[0].findtext(f"{XF}hash")
    assert b"ghi_chu" in xform.content
    assert phone.head("/submission").status_code == 204
    iid, xml = instance("2026120702")
    sent = phone.submit(xml)
    assert sent.status_code == 201, sent.text
    assert "không tính" in ET.fromstring(sent.content).findtext(f"{ORX}message")
    _, old = instance("2026120701")  # a record of the published version is not a test of this draft
    refused = phone.submit(old)
    assert refused.status_code == 400 and "2026120701" in refused.text
    # kept apart: no record, nothing in the Central API's list; the identifying answer was not kept
    assert store.page_submissions(SubmissionQuery(form_id=FORM_ID), limit=10) == []
    listed_api = httpx.get(f"{live_server.url}/v1/projects/1/forms/{FORM_ID}/submissions",
                           headers={"Authorization": f"Bearer {live_server.admin_token}"})
    assert listed_api.status_code == 200 and listed_api.json() == []
    [kept] = draft_submissions(store, FORM_ID)
    assert kept.instance_id == iid and kept.fields["so_ho"] == "7"
    assert kept.fields["ho_ten"] != "Nguyễn Văn Thử"  # marked identifying: not kept
    page = officer.get(f"/forms/{FORM_ID}/draft")
    assert iid in page.text and "Nguyễn Văn Thử" not in page.text

    # publishing: the next version, the test submission discarded, the old test code refused
    compiles.clear()
    assert publish(officer).status_code == 303
    assert store.get_form(FORM_ID).version == "2026120702" and not compiles
    assert draft_submissions(store, FORM_ID) == [] and get_draft(store, FORM_ID) is None
    listed = ET.fromstring(collector.get("/formList").content)
    versions = {x.findtext(f"{XF}formID"): x.findtext(f"{XF}version") for x in listed.iter(f"{XF}xform")}
    assert versions[FORM_ID] == "2026120702"
    stale = phone.get("/formList")
    assert stale.status_code == 403 and "quét mã QR mới" in stale.text
    assert phone.submit(instance("2026120702")[1]).status_code == 403
    events = [e for e in store.iter_audit() if e.target == FORM_ID]
    assert [e.action for e in events if e.action.startswith("form.")].count("form.draft.save") == 2
    last = [e for e in events if e.action == "form.publish"][-1]
    assert last.details["draft"] is True and last.details["test_submissions_discarded"] == 1
    assert last.details["via"] == "web" and last.actor == "admin"
    phone.close()
    collector.close()


def test_a_broken_upload_keeps_nothing_and_only_publishers_see_drafts(live_server, tmp_path) -> None:
    store, officer = live_server.store, login(live_server.url)
    resp = upload(officer, write_xlsform(tmp_path / "bieu_loi.xlsx", "9", broken=True), validate=False)
    assert resp.status_code == 422
    row = re.search(r'<tr class="form-error">(.*?)</tr>', resp.text, re.S).group(1)
    assert "bieu_loi.xlsx" in row and "survey" in row and ">4<" in row and "Loại câu hỏi không hợp lệ" in row
    assert get_draft(store, FORM_ID) is None or get_draft(store, FORM_ID).version != "9"

    name = f"xem.nhap.{live_server.backend}"
    create_user(store, name, "mật-khẩu-người-xem-1", "viewer", ["05563"], actor="test")
    viewer = login(live_server.url, name, "mật-khẩu-người-xem-1")
    assert viewer.get("/forms").status_code == 200
    resp = upload(viewer, write_xlsform(tmp_path / "v9.xlsx", "9"), validate=False)
    assert resp.status_code == 403
    assert viewer.get(f"/forms/{FORM_ID}/draft").status_code in (403, 404)


def test_a_draft_of_a_taken_version_is_published_under_the_version_the_officer_gives(
    live_server, tmp_path
) -> None:
    store, officer, form_id = live_server.store, login(live_server.url), "thu_nghiem_phien_ban"
    assert upload(officer, write_xlsform(tmp_path / "a.xlsx", "5", form_id=form_id), False).status_code == 303
    assert publish(officer, form_id=form_id).status_code == 303
    changed = write_xlsform(tmp_path / "b.xlsx", "5", extra=True, form_id=form_id)  # same version, more
    assert upload(officer, changed, validate=False).status_code == 303
    page = officer.get(f"/forms/{form_id}/draft")
    assert 'name="version"' in page.text and "đã được đăng với nội dung khác" in page.text
    refused = publish(officer, form_id=form_id)
    assert refused.status_code == 409 and store.get_form(form_id).version == "5"
    assert publish(officer, form_id=form_id, version="6").status_code == 303
    assert store.get_form(form_id).version == "6" and b"ghi_chu" in store.form_xml(form_id, "6")


def test_the_test_phone_gets_the_media_uploaded_with_the_draft_or_added_to_it(live_server, tmp_path) -> None:
    form_id = "thu_nghiem_tep"
    path = tmp_path / "tep.xlsx"
    wb = openpyxl.Workbook()
    wb.active.title = "survey"
    wb.active.append(["type", "name", "label"])
    wb.active.append(["select_one_from_file diem.csv", "diem", "Điểm"])
    wb.active.append(["select_one_from_file to.csv", "to", "Tổ"])
    wb.create_sheet("settings").append(["form_id", "version", "form_title"])
    wb["settings"].append([form_id, "1", "Biểu có tệp"])
    wb.save(path)
    listing = "name,label\nd1,Điểm một\nd2,Điểm hai\n".encode()
    groups = "name,label\nt1,Tổ 1\n".encode()
    officer = login(live_server.url)
    token = csrf(officer.get("/forms").text)
    with path.open("rb") as fh:
        resp = officer.post("/forms", data={"csrf": token}, files=[
            ("file", ("tep.xlsx", fh, "application/octet-stream")),
            ("media", ("diem.csv", listing, "text/csv")),
        ])
    assert resp.status_code == 303, resp.text
    page = officer.get(f"/forms/{form_id}/draft")
    assert 'id="add-media"' in page.text and "to.csv" in page.text  # the one still missing
    resp = officer.post(f"/forms/{form_id}/draft/media", data={"csrf": csrf(page.text)},
                        files=[("media", ("to.csv", groups, "text/csv"))])
    assert resp.status_code == 303 and 'id="add-media"' not in officer.get(f"/forms/{form_id}/draft").text
    draft = get_draft(live_server.store, form_id)
    phone = CollectClient(f"{live_server.url}/v1/test/{draft.token}/projects/1/forms/{form_id}/draft")
    [entry] = ET.fromstring(phone.get("/formList").content).findall(f"{XF}xform")
    manifest = ET.fromstring(phone.get(entry.findtext(f"{XF}manifestUrl")).content)
    ns = "{http://openrosa.org/xforms/xformsManifest}"
    files = {m.findtext(f"{ns}filename"): m for m in manifest.findall(f"{ns}mediaFile")}
    for name, data in [("diem.csv", listing), ("to.csv", groups)]:
        assert files[name].findtext(f"{ns}hash") == "md5:" + hashlib.md5(data).hexdigest()
        assert phone.get(files[name].findtext(f"{ns}downloadUrl")).content == data
    assert phone.get("/attachments/khac.csv").status_code == 404
    phone.close()


def test_a_province_officer_sees_and_tests_only_the_drafts_of_their_units(live_server, tmp_path) -> None:
    """Drafts are scoped as the rest of rasoat: Thái Nguyên's manager does not see, open (its test code),
    publish, discard or replace Lai Châu's draft; the administrator sees both, and their own draft, made
    for the whole country, is no province manager's."""
    store, suffix = live_server.store, live_server.backend
    officers = {}
    for name, role, units in ((f"tinh.tn.{suffix}", "province_manager", ["19"]),
                              (f"tinh.lc.{suffix}", "province_manager", ["12"])):
        create_user(store, name, "mật-khẩu-tỉnh-nháp-1", role, units, actor="test")
        officers[name] = login(live_server.url, name, "mật-khẩu-tỉnh-nháp-1")
    tn, lc = officers[f"tinh.tn.{suffix}"], officers[f"tinh.lc.{suffix}"]
    theirs, ours = f"nhap_lai_chau_{suffix}", f"nhap_thai_nguyen_{suffix}"
    assert upload(lc, write_xlsform(tmp_path / "lc.xlsx", "1", form_id=theirs), False).status_code == 303
    assert upload(tn, write_xlsform(tmp_path / "tn.xlsx", "1", form_id=ours), False).status_code == 303

    listed = tn.get("/forms").text
    assert f"/forms/{ours}/draft" in listed and f"/forms/{theirs}/draft" not in listed
    page = tn.get(f"/forms/{theirs}/draft")
    assert page.status_code == 403 and get_draft(store, theirs).token not in page.text  # no test code
    token = csrf(listed)
    for action in ("publish", "discard"):
        assert tn.post(f"/forms/{theirs}/draft/{action}", data={"csrf": token}).status_code == 403
    assert upload(tn, write_xlsform(tmp_path / "lc2.xlsx", "2", form_id=theirs), False).status_code == 403
    kept = get_draft(store, theirs)
    assert kept is not None and kept.version == "1" and kept.unit_codes == ["12"]
    assert store.get_form(theirs) is None

    admin = login(live_server.url).get("/forms").text
    assert f"/forms/{ours}/draft" in admin and f"/forms/{theirs}/draft" in admin
    assert lc.get(f"/forms/{theirs}/draft").status_code == 200
    assert lc.get(f"/forms/{ours}/draft").status_code == 403

    # the administrator's draft is for the whole country: no province manager's
    national = f"nhap_toan_quoc_{suffix}"
    assert upload(login(live_server.url), write_xlsform(tmp_path / "tq.xlsx", "1", form_id=national),
                  False).status_code == 303
    assert tn.get(f"/forms/{national}/draft").status_code == 403


def test_a_version_given_at_publish_is_refused_when_the_workbook_cannot_take_it(tmp_path) -> None:
    """Publishing under a new version rewrites the settings sheet; a workbook without a 'version' column or
    one openpyxl cannot write back is refused with a message of its own, in each language."""
    from rasoat.core.drafts import with_version
    from rasoat.core.publish import PublishError

    book = write_xlsform(tmp_path / "a.xlsx", "1")
    rewritten = openpyxl.load_workbook(io.BytesIO(with_version(book.read_bytes(), "7")))
    assert rewritten["settings"]["B2"].value == "7"
    wb = openpyxl.load_workbook(book)
    wb["settings"].delete_cols(2)  # the 'version' column
    wb.save(book)
    with pytest.raises(PublishError) as no_column:
        with_version(book.read_bytes(), "7")
    assert no_column.value.code == "draft.no_version_column"
    assert no_column.value.text("en") == "The settings sheet has no 'version' column"
    with pytest.raises(PublishError) as unreadable:
        with_version(b"not a workbook", "7")
    assert unreadable.value.code == "draft.version_unwritable"
    assert unreadable.value.text("vi").startswith("Không đổi được phiên bản trong tệp: ")
