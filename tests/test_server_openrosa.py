"""The OpenRosa server as ODK Collect sees it: a real uvicorn server, httpx speaking like Collect."""

from __future__ import annotations

import hashlib
import logging
import xml.etree.ElementTree as ET

import httpx
import pytest
from rasoat.core.collectors import create_collector, revoke_collector
from server_support import COMMUNE, OTHER_COMMUNE, CollectClient, instance_xml

XF = "{http://openrosa.org/xforms/xformsList}"
MF = "{http://openrosa.org/xforms/xformsManifest}"
OR = "{http://openrosa.org/http/response}"


@pytest.fixture
def live_server(live_server_any):
    """Every test here runs twice: on the embedded store and on PostgreSQL (tests/conftest.py)."""
    return live_server_any


@pytest.fixture
def collect(live_server):
    client = CollectClient(f"{live_server.url}/v1/key/{live_server.seeded.token}/projects/1")
    yield client
    client.close()


@pytest.fixture
def digest_collect(live_server):
    s = live_server.seeded
    client = CollectClient(f"{live_server.url}/v1/projects/1", s.digest_user, s.digest_password)
    yield client
    client.close()


def assert_openrosa_xml(resp: httpx.Response) -> None:
    assert "text/xml" in resp.headers["content-type"]
    assert resp.headers["x-openrosa-version"] == "1.0"
    assert len(resp.headers.get_list("date")) == 1


def message(resp: httpx.Response) -> str:
    root = ET.fromstring(resp.content)
    assert root.tag == f"{OR}OpenRosaResponse"
    return root.find(f"{OR}message").text or ""


def forms_in(resp: httpx.Response) -> dict[str, dict[str, str]]:
    root = ET.fromstring(resp.content)
    assert root.tag == f"{XF}xforms"
    out = {}
    for xf in root.findall(f"{XF}xform"):
        item = {child.tag.removeprefix(XF): child.text or "" for child in xf}
        out[item["formID"]] = item
    return out


# --- form list, download, manifest ------------------------------------------------------------


def test_form_list_is_valid_and_hashes_match_the_bytes_served(collect: CollectClient) -> None:
    resp = collect.get("/formList")
    assert resp.status_code == 200
    assert_openrosa_xml(resp)
    forms = forms_in(resp)
    assert "tform" in forms and not {"tclosed", "tother"} & set(forms)  # closed round, unassigned form
    entry = forms["tform"]
    assert entry["name"] == "Biểu thử" and entry["version"] == "1"
    assert entry["hash"].startswith("md5:")
    form = collect.get(entry["downloadUrl"])
    assert form.status_code == 200
    assert entry["hash"] == "md5:" + hashlib.md5(form.content).hexdigest()
    # formID and version equal the XForm's primary instance root attributes
    root = ET.fromstring(form.content)
    data = root.find(".//{http://www.w3.org/2002/xforms}instance/{http://www.w3.org/2002/xforms}data")
    assert data is not None and data.get("id") == "tform" and data.get("version") == "1"
    # conditional GET: Collect's HTTP cache sends the ETag back
    again = collect.get(entry["downloadUrl"], headers={"If-None-Match": form.headers["etag"]})
    assert again.status_code == 304
    # Central's versioned URL serves the same bytes
    versioned = collect.get("/forms/tform/versions/1.xml")
    assert versioned.status_code == 200 and versioned.content == form.content


def test_manifest_lists_media_cut_to_the_collectors_commune(collect: CollectClient) -> None:
    entry = forms_in(collect.get("/formList"))["tform"]
    resp = collect.get(entry["manifestUrl"])
    assert resp.status_code == 200
    assert_openrosa_xml(resp)
    root = ET.fromstring(resp.content)
    assert root.tag == f"{MF}manifest"
    files = {}
    for mf in root.findall(f"{MF}mediaFile"):
        name = mf.find(f"{MF}filename").text
        got = collect.get(mf.find(f"{MF}downloadUrl").text)
        assert got.status_code == 200
        assert mf.find(f"{MF}hash").text == "md5:" + hashlib.md5(got.content).hexdigest()
        files[name] = got.content
    assert set(files) == {"provinces.csv", "communes.csv", "hamlets.csv", "logo.png"}
    communes = files["communes.csv"].decode().splitlines()
    assert communes == ["name,label,province", f"{COMMUNE},Xã Phượng Tiến,19"]
    assert files["provinces.csv"].decode().splitlines()[1].startswith("19,")
    assert files["logo.png"] == b"\x89PNG fake logo"


def test_unassigned_collector_gets_a_truly_empty_list(live_server) -> None:
    client = CollectClient(f"{live_server.url}/v1/key/{live_server.seeded.stranger_token}/projects/1")
    resp = client.get("/formList")
    assert resp.status_code == 200 and forms_in(resp) == {}
    assert client.get("/forms/tform.xml").status_code == 404
    client.close()


def test_digest_challenge_then_authenticated_requests(digest_collect: CollectClient, live_server) -> None:
    bare = httpx.get(f"{live_server.url}/v1/projects/1/formList", headers={"X-OpenRosa-Version": "1.0"})
    assert bare.status_code == 401
    challenge = bare.headers["www-authenticate"]
    assert challenge.startswith("Digest ") and 'qop="auth"' in challenge and "nonce=" in challenge
    resp = digest_collect.get("/formList")
    assert resp.status_code == 200 and "tform" in forms_in(resp)
    assert digest_collect.challenges == 1
    # later requests reuse the nonce pre-emptively: no new challenge
    entry = forms_in(resp)["tform"]
    assert entry["downloadUrl"].startswith(f"{live_server.url}/v1/projects/1/forms/")
    assert digest_collect.get(entry["downloadUrl"]).status_code == 200
    assert digest_collect.head("/submission").status_code == 204
    assert digest_collect.challenges == 1


def test_digest_wrong_password_and_replay_are_refused(live_server) -> None:
    s = live_server.seeded
    wrong = CollectClient(f"{live_server.url}/v1/projects/1", s.digest_user, "not-the-password")
    assert wrong.get("/formList").status_code == 401
    wrong.close()
    good = CollectClient(f"{live_server.url}/v1/projects/1", s.digest_user, s.digest_password)
    assert good.get("/formList").status_code == 200
    good._nc -= 1  # send the same nc again: a replay
    from rasoat.server.digest import authorization_header

    url = good.url("/formList")
    header = authorization_header(
        "GET", httpx.URL(url).raw_path.decode(), s.digest_user, s.digest_password, good._challenge, good._nc
    )
    replay = httpx.get(url, headers={"Authorization": header})
    assert replay.status_code == 401 and "stale=true" in replay.headers["www-authenticate"]
    good.close()


def test_head_and_get_submission_preflight(collect: CollectClient) -> None:
    for method in ("HEAD", "GET"):
        resp = collect.request(method, "/submission")
        assert resp.status_code == 204
        assert resp.headers["x-openrosa-accept-content-length"] == "100000000"
        assert resp.headers["x-openrosa-version"] == "1.0"


# --- submissions ------------------------------------------------------------------------------


def test_submission_is_stored_with_server_side_fields(collect: CollectClient, live_server) -> None:
    store = live_server.store
    iid, xml = instance_xml(photo="1714551234567.jpg", audit="audit.csv", hamlet="")
    resp = collect.submit(
        xml,
        {
            "1714551234567.jpg": b"JPEGDATA",
            "audit.csv": b"event,node,start,end\n",
            "stray.txt": b"not referenced",
        },
    )
    assert resp.status_code == 201, resp.text
    assert_openrosa_xml(resp)
    assert "Đã nhận" in message(resp)
    sub = store.get_submission(iid)
    assert sub is not None
    assert (sub.form_id, sub.form_version, sub.round_id, sub.unit_code) == ("tform", "1", "r-open", COMMUNE)
    assert sub.collector_id == live_server.seeded.user_id
    assert sub.fields["name"] == "Nguyễn Văn A"
    assert sub.fields["member"] == [{"age": "34"}, {"age": "7"}]
    assert sorted(sub.attachments) == ["1714551234567.jpg", "audit.csv"]  # the stray part is ignored
    assert store.attachment(iid, "1714551234567.jpg") == b"JPEGDATA"
    assert store.submission_xml(iid) == xml


def test_duplicate_is_201_and_conflict_is_409_without_changes(collect: CollectClient, live_server) -> None:
    store = live_server.store
    iid, xml = instance_xml(photo="p.jpg")
    assert collect.submit(xml).status_code == 201
    # identical resend carrying the missing photo: 201, photo added
    again = collect.submit(xml, {"p.jpg": b"PHOTO"})
    assert again.status_code == 201
    assert store.attachment(iid, "p.jpg") == b"PHOTO"
    # same instanceID, different XML: 409, nothing changes
    _, changed = instance_xml(instance_id=iid, name="Người khác", photo="p.jpg")
    conflict = collect.submit(changed, {"p.jpg": b"OTHER"})
    assert conflict.status_code == 409
    assert iid in message(conflict)
    assert store.submission_xml(iid) == xml
    assert store.attachment(iid, "p.jpg") == b"PHOTO"


def test_deprecated_id_edit_of_current_then_of_old_version(collect: CollectClient, live_server) -> None:
    store = live_server.store
    old_id, old_xml = instance_xml(photo="a.jpg")
    assert collect.submit(old_xml, {"a.jpg": b"A"}).status_code == 201
    new_id, new_xml = instance_xml(deprecated_id=old_id, name="Đã sửa", photo="a.jpg")
    resp = collect.submit(new_xml)
    assert resp.status_code == 201, resp.text
    new = store.get_submission(new_id)
    assert new is not None and new.current and new.deprecated_id == old_id
    assert store.attachment(new_id, "a.jpg") == b"A"  # carried over from the old version
    assert not store.get_submission(old_id).current
    # a second edit of the old (no longer current) version
    other_id, other_xml = instance_xml(deprecated_id=old_id, name="Sửa lần nữa")
    late = collect.submit(other_xml)
    assert late.status_code == 409
    assert store.get_submission(other_id) is None
    # resending the accepted edit is still fine (a retried upload)
    assert collect.submit(new_xml).status_code == 201


def test_edit_of_unknown_submission_is_404(collect: CollectClient, live_server) -> None:
    iid, xml = instance_xml(deprecated_id="uuid:never-seen")
    resp = collect.submit(xml)
    assert resp.status_code == 404 and "uuid:never-seen" in message(resp)
    assert live_server.store.get_submission(iid) is None


def test_split_upload_with_is_incomplete(collect: CollectClient, live_server) -> None:
    store = live_server.store
    iid, xml = instance_xml(photo="big.jpg", audit="audit.csv")
    first = collect.submit(xml, {"big.jpg": b"x" * 300_000}, incomplete=True)
    assert first.status_code == 201
    assert store.get_submission(iid).attachments == ["big.jpg"]
    last = collect.submit(xml, {"audit.csv": b"event,node,start,end\n"})
    assert last.status_code == 201
    assert sorted(store.get_submission(iid).attachments) == ["audit.csv", "big.jpg"]
    assert store.attachment(iid, "big.jpg") == b"x" * 300_000


def test_plugin_check_messages_store_with_has_issues(live_server, collect: CollectClient) -> None:
    from rasoat.core import hookimpl
    from rasoat.core.models import ReviewState

    class Checker:
        @hookimpl
        def check_submission(self, form_id, fields):
            if fields.get("name") == "KIỂM TRA":
                return ["Tên chưa đúng / Name looks wrong"]
            return None

    import pluggy
    from rasoat.core import hookspecs
    from rasoat.core.hooks import PROJECT

    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(Checker())
    state = live_server.app.state["rasoat"]
    old = state.settings.plugin_manager
    state.settings.plugin_manager = pm
    try:
        iid, xml = instance_xml(name="KIỂM TRA")
        resp = collect.submit(xml)
    finally:
        state.settings.plugin_manager = old
    assert resp.status_code == 201
    assert "Name looks wrong" in message(resp)
    sub = live_server.store.get_submission(iid)
    assert sub.review_state is ReviewState.has_issues
    assert "Name looks wrong" in sub.review_history[-1]["comment"]


# --- bad input: right status, OpenRosa message, nothing stored ----------------------------------


BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    b'<data id="tform" version="1"><name>&lol3;</name><meta><instanceID>uuid:lol</instanceID></meta></data>'
)
EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b'<data id="tform" version="1"><name>&xxe;</name><meta><instanceID>uuid:xxe</instanceID></meta></data>'
)


def _count(store) -> int:
    return store.count_submissions()


@pytest.mark.parametrize(
    ("case", "xml", "files", "status", "words"),
    [
        ("malformed", b"<data id='tform' version='1'><name>", None, 400, "Malformed XML"),
        ("not xml", b"just some text", None, 400, "Malformed XML"),
        ("billion laughs", BILLION_LAUGHS, None, 400, "entity"),
        ("external entity", EXTERNAL_ENTITY, None, 400, "entity"),
        ("unknown form", instance_xml(form_id="nope")[1], None, 404, "no form nope"),
        ("unknown version", instance_xml(version="99")[1], None, 404, "version 99"),
        ("no root id", b"<data><meta><instanceID>uuid:x</instanceID></meta></data>", None, 400, "form id"),
        (
            "missing instanceID",
            b'<data id="tform" version="1"><name>A</name></data>',
            None,
            400,
            "instanceID",
        ),
        ("dot-dot name", instance_xml(photo="p.jpg")[1], {"../x.jpg": b"x"}, 400, "no paths"),
        ("absolute name", instance_xml(photo="p.jpg")[1], {"/etc/passwd": b"x"}, 400, "no paths"),
        ("NUL in name", instance_xml(photo="p.jpg")[1], {"a\x00b.jpg": b"x"}, 400, "no paths"),
        ("path in XML", instance_xml(photo="../../x.jpg")[1], None, 400, "Invalid attachment name"),
        (
            "instanceID with a path",
            instance_xml(instance_id="../../x")[1],
            None,
            400,
            "Invalid meta/instanceID",
        ),
        ("instanceID too long", instance_xml(instance_id="uuid:" + "x" * 300)[1], None, 400, "Invalid"),
        (
            "instanceID too long once encoded",
            instance_xml(instance_id="uuid:" + "ữ" * 80)[1],
            None,
            400,
            "Invalid",
        ),
        (
            "deprecatedID with a path",
            instance_xml(deprecated_id="a/b")[1],
            None,
            400,
            "Invalid meta/deprecatedID",
        ),
        ("closed round", instance_xml(form_id="tclosed")[1], None, 403, "not in any open round"),
        ("unassigned form", instance_xml(form_id="tother")[1], None, 403, "not in any open round"),
        ("unit outside scope", instance_xml(commune=OTHER_COMMUNE)[1], None, 403, "outside your units"),
        (
            "hamlet outside scope",
            instance_xml(hamlet=f"{OTHER_COMMUNE}-01")[1],
            None,
            403,
            "outside your units",
        ),
    ],
)
def test_bad_submissions_are_refused_and_change_nothing(
    collect: CollectClient, live_server, case, xml, files, status, words
) -> None:
    store = live_server.store
    before = _count(store)
    resp = collect.submit(xml, files)
    assert resp.status_code == status, (case, resp.text)
    assert_openrosa_xml(resp)
    text = message(resp)
    assert words in text and " / " in text, text
    assert ET.fromstring(resp.content).find(f"{OR}message").get("nature") == "error"
    assert _count(store) == before


def test_body_without_xml_part_or_not_multipart(collect: CollectClient, live_server) -> None:
    before = _count(live_server.store)
    resp = collect.submit(None, {"a.jpg": b"x"})
    assert resp.status_code == 400 and "xml_submission_file" in message(resp)
    raw = collect.request("POST", "/submission", content=b"<data/>", headers={"Content-Type": "text/xml"})
    assert raw.status_code == 400 and "multipart" in message(raw)
    broken = collect.request(
        "POST",
        "/submission",
        content=b"--nope\r\n",
        headers={"Content-Type": "multipart/form-data; boundary=zzz"},
    )
    assert broken.status_code == 400
    assert _count(live_server.store) == before


def test_body_over_the_limit_is_413(collect: CollectClient, live_server) -> None:
    before = _count(live_server.store)
    iid, xml = instance_xml(photo="huge.jpg")
    resp = collect.submit(xml, {"huge.jpg": b"x" * 6_000_000})  # the test server allows 5 MB
    assert resp.status_code == 413 and "too large" in message(resp)
    assert live_server.store.get_submission(iid) is None
    assert _count(live_server.store) == before


def test_revoked_token_stops_at_once(live_server) -> None:
    store = live_server.store
    user, token = create_collector(store, "Sẽ bị thu hồi", [COMMUNE], ["r-open"])
    client = CollectClient(f"{live_server.url}/v1/key/{token}/projects/1")
    assert client.get("/formList").status_code == 200
    revoke_collector(store, user.id)
    resp = client.get("/formList")
    assert resp.status_code == 403 and "revoked" in message(resp)
    _, xml = instance_xml()
    before = _count(store)
    assert client.submit(xml).status_code == 403
    assert client.head("/submission").status_code == 403
    assert _count(store) == before
    client.close()


def test_unknown_token_and_unknown_project(live_server) -> None:
    bad = CollectClient(f"{live_server.url}/v1/key/{'x' * 64}/projects/1")
    assert bad.get("/formList").status_code == 403
    bad.close()
    wrong_project = CollectClient(f"{live_server.url}/v1/key/{live_server.seeded.token}/projects/2")
    assert wrong_project.get("/formList").status_code == 404
    wrong_project.close()


# --- operations -----------------------------------------------------------------------------------


def test_health(live_server) -> None:
    resp = httpx.get(f"{live_server.url}/health")
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "ok" and body["store"] == "ok"
    assert body["time"].endswith("+07:00")


def test_access_log_masks_tokens_and_leaves_out_personal_data(
    collect: CollectClient, live_server, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="rasoat.access")
    _, xml = instance_xml(name="Tên Riêng Tư")
    collect.submit(xml)
    collect.get("/formList")
    lines = [r.getMessage() for r in caplog.records if r.name == "rasoat.access"]
    assert any("POST /v1/key/***/projects/1/submission 201" in line for line in lines), lines
    joined = "\n".join(lines)
    assert live_server.seeded.token not in joined
    assert "deviceID" not in joined and "collect" not in joined and "Tên Riêng Tư" not in joined
    assert all("+07:00" in line for line in lines)


def test_form_list_filter_and_unknown_addresses(collect: CollectClient) -> None:
    assert list(forms_in(collect.get("/formList?formID=tform"))) == ["tform"]
    assert forms_in(collect.get("/formList?formID=nope")) == {}
    missing = collect.get("/forms/tform/attachments/nothing.csv")
    assert missing.status_code == 404 and "nothing.csv" in message(missing)
    unknown = collect.get("/no-such-endpoint")
    assert unknown.status_code == 404 and " / " in message(unknown)


def test_resend_after_the_round_closed_completes_but_new_records_are_refused(live_server) -> None:
    from rasoat.core.models import Round, RoundState
    from server_support import publish_test_form

    store, s = live_server.store, live_server.seeded
    publish_test_form(store, "tlate", "1", "Biểu đợt sắp đóng")
    store.put_round(
        Round(
            id="r-late",
            name="Đợt sắp đóng",
            period="2026-Q2",
            form_ids=["tlate"],
            unit_codes=[COMMUNE],
            collector_ids=[s.user_id],
            state=RoundState.open,
        )
    )
    client = CollectClient(f"{live_server.url}/v1/key/{s.token}/projects/1")
    iid, xml = instance_xml(form_id="tlate", photo="late.jpg")
    assert client.submit(xml, incomplete=True).status_code == 201  # first part of a split upload
    rnd = store.get_round("r-late")
    store.put_round(rnd.model_copy(update={"state": RoundState.closed}))
    rest = client.submit(xml, {"late.jpg": b"LATE"})  # the phone finishes its upload after the close
    assert rest.status_code == 201
    assert store.attachment(iid, "late.jpg") == b"LATE"
    _, new = instance_xml(form_id="tlate")
    refused = client.submit(new)
    assert refused.status_code == 403 and "not in any open round" in message(refused)
    client.close()


def test_digest_account_submits_like_collect(digest_collect: CollectClient, live_server) -> None:
    assert digest_collect.head("/submission").status_code == 204  # 401 challenge first, then 204
    iid, xml = instance_xml(name="Gửi qua Digest")
    resp = digest_collect.submit(xml)  # pre-emptive Digest with the next nc
    assert resp.status_code == 201, resp.text
    sub = live_server.store.get_submission(iid)
    user = live_server.store.get_user_by_name(live_server.seeded.digest_user)
    assert sub.collector_id == user.id and sub.round_id == "r-open"
    assert digest_collect.challenges == 1
