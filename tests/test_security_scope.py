"""A commune officer reads only their commune, through every route of a real running server: the list,
one submission and its attachments (ODK Central's API and OData, the only way to read them), the Excel
export, rounds and indicators of the JSON API. Revoked collectors and disabled officers are refused; Basic
logins are throttled."""

from __future__ import annotations

import base64
import hashlib
import io
import subprocess
import sys
from types import SimpleNamespace

import httpx
import openpyxl
import pytest
from rasoat.core.users import MAX_USER_FAILURES, create_user, new_api_token
from server_support import COMMUNE, OTHER_COMMUNE, CollectClient, instance_xml, seeded_store, serving

PASSWORD = "mật-khẩu-cán-bộ-1"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with seeded_store(tmp_path_factory.mktemp("scope") / "data") as (store, seeded):
        create_user(store, "xa-phuong-tien", PASSWORD, "commune_officer", [COMMUNE])
        create_user(store, "xa-tan-cuong", PASSWORD, "commune_officer", [OTHER_COMMUNE])
        create_user(store, "tinh-19", PASSWORD, "province_manager", ["19"])
        create_user(store, "chi-xem", PASSWORD, "viewer", [COMMUNE])
        tokens = {
            name: new_api_token(store, name)
            for name in ("xa-phuong-tien", "xa-tan-cuong", "tinh-19", "chi-xem")
        }
        with serving(store, max_body_bytes=5_000_000) as server:
            mine, theirs = [], []
            senders = ((seeded.token, COMMUNE, mine), (seeded.other_commune_token, OTHER_COMMUNE, theirs))
            for token, commune, out in senders:
                client = CollectClient(f"{server.url}/v1/key/{token}/projects/1")
                for n in range(2):
                    iid, xml = instance_xml(commune=commune, name=f"Người {commune}-{n}", photo="p.jpg")
                    resp = client.submit(xml, {"p.jpg": b"\xff\xd8 photo " + commune.encode()})
                    assert resp.status_code == 201, resp.text
                    out.append(iid)
                client.close()
            yield SimpleNamespace(url=server.url, store=store, seeded=seeded, tokens=tokens, mine=mine,
                                  theirs=theirs)


def api(world, path: str, user: str | None = None, **kw) -> httpx.Response:
    headers = {"Authorization": f"Bearer {world.tokens[user]}"} if user else {}
    headers.update(kw.pop("headers", {}))
    return httpx.get(f"{world.url}/api/v1{path}", headers=headers, timeout=60, **kw)


def central(world, path: str, user: str | None = None, **kw) -> httpx.Response:
    headers = {"Authorization": f"Bearer {world.tokens[user]}"} if user else {}
    headers.update(kw.pop("headers", {}))
    return httpx.get(f"{world.url}/v1{path}", headers=headers, timeout=60, **kw)


SUBS = "/projects/1/forms/tform/submissions"
ODATA = "/projects/1/forms/tform.svc/Submissions"


def basic(username: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def test_list_shows_only_the_officers_commune(world) -> None:
    def listed(user: str) -> set[str]:
        resp = central(world, SUBS, user)
        assert resp.status_code == 200, resp.text
        return {s["instanceId"] for s in resp.json()}

    assert listed("xa-phuong-tien") == set(world.mine)
    assert listed("xa-tan-cuong") == set(world.theirs)
    assert listed("tinh-19") == set(world.mine + world.theirs)
    # OData: the same cut, counted in the store; nothing of the other commune in the answer
    resp = central(world, ODATA, "xa-phuong-tien", params={"$count": "true"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert {r["__id"] for r in body["value"]} == set(world.mine) and body["@odata.count"] == len(world.mine)
    assert OTHER_COMMUNE not in resp.text and not any(iid in resp.text for iid in world.theirs)
    assert "Người 05563-0" in resp.text  # field values for a role with view_personal


def test_single_submission_and_attachment_are_scoped_and_audited(world) -> None:
    mine, theirs = world.mine[0], world.theirs[0]
    resp = central(world, f"{SUBS}/{mine}.xml", "xa-phuong-tien")
    assert resp.status_code == 200 and f"<commune>{COMMUNE}</commune>" in resp.text
    assert central(world, f"{SUBS}/{mine}", "xa-phuong-tien").json()["instanceId"] == mine
    # another commune's record is "not found", exactly as an unknown id: its existence is not disclosed
    for path in (f"{SUBS}/{theirs}.xml", f"{SUBS}/{theirs}", f"{SUBS}/{theirs}/attachments/p.jpg",
                 f"{ODATA}('{theirs}')"):
        resp = central(world, path, "xa-phuong-tien")
        assert resp.status_code == 404 and resp.json()["code"] == 404.1, path
    assert central(world, f"{SUBS}/{mine}/attachments/p.jpg", "xa-phuong-tien").content.endswith(b"05563")
    # viewers see no personal data: no XML, no attachment (OData nulls the fields marked personal:
    # test_central_odata.py::test_a_viewer_reads_personal_fields_as_null_and_an_officer_reads_them_audited)
    assert central(world, f"{SUBS}/{mine}.xml", "chi-xem").status_code == 403
    assert central(world, f"{SUBS}/{mine}/attachments/p.jpg", "chi-xem").status_code == 403
    resp = central(world, ODATA, "chi-xem")
    assert resp.status_code == 200 and {r["__id"] for r in resp.json()["value"]} == set(world.mine)
    views = [e for e in world.store.iter_audit(actor="xa-phuong-tien") if e.action.startswith("view.")]
    seen = {(e.action, e.details.get("count")) for e in views}
    assert seen >= {("view.submission", 1), ("view.attachment", 1)}
    assert "view.submissions" in {e.action for e in views}  # the OData read
    assert all(theirs not in str(e.details) for e in views)
    assert not [e for e in world.store.iter_audit(actor="chi-xem") if e.action.startswith("view.")]


def _cells(content: bytes) -> set[str]:
    wb = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
    return {str(c) for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for c in row if c}


def test_export_is_cut_to_the_officers_units(world) -> None:
    resp = api(world, "/forms/tform/export.xlsx", "xa-phuong-tien")
    assert resp.status_code == 200, resp.text
    cells = _cells(resp.content)
    assert set(world.mine) <= cells and not set(world.theirs) & cells
    assert api(world, f"/forms/tform/export.xlsx?unit={OTHER_COMMUNE}", "xa-phuong-tien").status_code == 403
    assert api(world, "/forms/tform/export.xlsx?personal=true", "chi-xem").status_code == 403
    cells = _cells(api(world, "/forms/tform/export.xlsx", "tinh-19").content)
    assert set(world.mine + world.theirs) <= cells
    [event] = [e for e in world.store.iter_audit(actor="xa-phuong-tien") if e.action == "export.raw"]
    assert event.details["submissions"] == 2 and COMMUNE in event.details["filters"]


def test_indicators_are_cut_to_the_officers_units(world) -> None:
    resp = api(world, "/indicators?period=2026", "xa-phuong-tien")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["unit"] == COMMUNE
    assert body["results"] and all(r["unit_code"].startswith(COMMUNE) for r in body["results"])
    assert api(world, f"/indicators?unit={OTHER_COMMUNE}", "xa-phuong-tien").status_code == 403
    assert api(world, "/indicators?unit=19", "xa-phuong-tien").status_code == 403
    rows = api(world, "/indicators?unit=19&period=2026", "tinh-19").json()["results"]
    assert {r["unit_code"] for r in rows} >= {"19", COMMUNE, OTHER_COMMUNE}


def test_rounds_and_me(world) -> None:
    me = central(world, "/users/current", "xa-phuong-tien").json()
    assert me["email"] == "xa-phuong-tien" and me["rasoat"]["role"] == "commune_officer"
    assert "view" in me["rasoat"]["permissions"] and "manage_users" not in me["rasoat"]["permissions"]
    assert [r["id"] for r in api(world, "/rounds", "xa-phuong-tien").json()] == ["r-open", "r-closed"]
    resp = central(world, "/users/current")
    assert resp.status_code == 401 and resp.json()["code"] == 401.2
    assert api(world, "/rounds").status_code == 401
    assert "Basic" in api(world, "/rounds").headers["www-authenticate"]
    wrong = {"Authorization": "Bearer " + "x" * 43}
    assert api(world, "/rounds", headers=wrong).status_code == 403
    assert central(world, "/users/current", headers=wrong).status_code == 401
    # reading submissions has one way: the retired /api/v1 duplicates of Central's calls are gone
    for path in ("/me", "/submissions", f"/submissions/{world.mine[0]}"):
        assert api(world, path, "xa-phuong-tien").status_code in (404, 405), path


def test_collector_tokens_do_not_open_the_officer_api(world) -> None:
    collector = {"Authorization": f"Bearer {world.seeded.token}"}
    assert central(world, SUBS, headers=collector).status_code == 401
    assert central(world, ODATA, headers=collector).status_code == 401
    assert api(world, "/rounds", headers=collector).status_code == 403


def test_odata_pages_stay_inside_the_officers_units(world) -> None:
    auth = {"Authorization": f"Bearer {world.tokens['xa-phuong-tien']}"}
    seen: list[str] = []
    url: str | None = f"{world.url}/v1{ODATA}?$top=1&$count=true"
    while url:
        resp = httpx.get(url, headers=auth, timeout=30)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["@odata.count"] == len(world.mine)
        seen += [row["__id"] for row in body["value"]]
        url = body.get("@odata.nextLink")
    assert seen == world.mine[::-1]  # newest first, as Central; each once, none of theirs
    bad = central(world, ODATA, "xa-phuong-tien", params={"$skiptoken": "not-a-position"})
    assert bad.status_code == 400 and bad.json()["code"] == 400.35 and "skiptoken" in bad.text


@pytest.mark.slow
def test_basic_login_and_throttling_over_the_api(world) -> None:
    resp = central(world, "/users/current", headers=basic("chi-xem", PASSWORD))
    assert resp.status_code == 200 and resp.json()["email"] == "chi-xem"
    create_user(world.store, "bi-doan", PASSWORD, "viewer", [COMMUNE])
    for _ in range(MAX_USER_FAILURES):
        resp = central(world, "/users/current", headers=basic("bi-doan", "doan-mo-123"))
        assert resp.status_code == 401 and resp.json()["code"] == 401.2
    resp = central(world, "/users/current", headers=basic("bi-doan", PASSWORD))
    assert resp.status_code == 429 and int(resp.headers["retry-after"]) > 0
    assert "Too many failed logins" in resp.json()["message"]
    # the JSON API checks credentials with the same code: the lock holds there too
    assert api(world, "/rounds", headers=basic("bi-doan", PASSWORD)).status_code == 429
    actions = [e.action for e in world.store.iter_audit(actor="bi-doan")]
    assert actions.count("login.failed") == MAX_USER_FAILURES and "login.throttled" in actions


def test_revoked_collector_is_refused(world) -> None:
    from rasoat.core.collectors import create_collector, revoke_collector

    user, token = create_collector(world.store, "Sắp nghỉ", [COMMUNE], ["r-open"])
    assert len(token) == 64  # 48 random bytes, as long as ODK Central's
    # the user records as stored (read by another process, through SQLite: a descriptor of the live
    # database closed in this process would drop its locks; sqlite.org/howtocorrupt.html)
    at_rest = subprocess.run(
        [sys.executable, "-c", "import sqlite3, sys; sys.stdout.write(repr(sqlite3.connect(sys.argv[1])"
         ".execute('SELECT * FROM users').fetchall()))", str(world.store.root / "rasoat.sqlite3")],
        capture_output=True, check=True,
    ).stdout
    assert token.encode() not in at_rest and hashlib.sha256(token.encode()).hexdigest().encode() in at_rest
    client = CollectClient(f"{world.url}/v1/key/{token}/projects/1")
    assert client.get("/formList").status_code == 200
    revoke_collector(world.store, user.id)
    assert client.get("/formList").status_code == 403
    _, xml = instance_xml()
    resp = client.submit(xml)
    assert resp.status_code == 403 and "revoked" in resp.text
    client.close()


def test_disabled_officer_is_refused_at_once(world) -> None:
    from rasoat.core.users import disable_user

    create_user(world.store, "nghi-viec", PASSWORD, "province_manager", ["19"])
    token = new_api_token(world.store, "nghi-viec")
    bearer = {"Authorization": f"Bearer {token}"}
    assert central(world, "/users/current", headers=bearer).status_code == 200
    disable_user(world.store, "nghi-viec")
    assert central(world, "/users/current", headers=bearer).status_code == 401
    assert api(world, "/rounds", headers=bearer).status_code == 403
    resp = central(world, "/users/current", headers=basic("nghi-viec", PASSWORD))
    assert resp.status_code == 403 and "disabled" in resp.json()["message"]


def test_edits_from_phones_are_audited(world) -> None:
    client = CollectClient(f"{world.url}/v1/key/{world.seeded.token}/projects/1")
    first, xml = instance_xml(name="Bản đầu")
    assert client.submit(xml).status_code == 201
    edit, xml = instance_xml(name="Bản sửa", deprecated_id=first)
    assert client.submit(xml).status_code == 201
    client.close()
    [event] = [e for e in world.store.iter_audit() if e.action == "submission.edit" and e.target == edit]
    assert event.details["replaces"] == first and event.details["unit"] == COMMUNE
    assert "Bản sửa" not in str(event.details)


def test_digest_logins_are_throttled_too(world) -> None:
    from rasoat.core.collectors import create_collector
    from rasoat.server.digest import set_password

    create_collector(world.store, "Người dùng Digest", [COMMUNE], ["r-open"], username="digest-doan")
    set_password(world.store, "digest-doan", "mật-khẩu-đúng")
    base = f"{world.url}/v1/projects/1"
    for _ in range(MAX_USER_FAILURES):
        wrong = CollectClient(base, "digest-doan", "đoán-mò")
        assert wrong.get("/formList").status_code == 401
        wrong.close()
    right = CollectClient(base, "digest-doan", "mật-khẩu-đúng")
    resp = right.get("/formList")
    assert resp.status_code == 429 and int(resp.headers["retry-after"]) > 0
    assert b"Too many failed logins" in resp.content and b"<OpenRosaResponse" in resp.content
    right.close()
    actions = [e.action for e in world.store.iter_audit(actor="digest-doan")]
    assert actions.count("login.failed") == MAX_USER_FAILURES and "login.throttled" in actions
    ok = CollectClient(base, world.seeded.digest_user, world.seeded.digest_password)  # others are not locked
    assert ok.get("/formList").status_code == 200
    ok.close()


def test_every_permission_refused_is_named_in_words() -> None:
    """A refusal says what the account may not do in words, for every permission (a permission without a
    name was a 500 error page instead of the 403)."""
    from rasoat.core import scope
    from rasoat.core.models import Role, User

    phone = User(id="c", username="may-thu", role=Role.collector)  # a collector may do none of them
    for permission in scope.ALL_PERMISSIONS:
        with pytest.raises(scope.ScopeError) as refused:
            scope.require(phone, permission)
        assert refused.value.status == 403 and permission not in refused.value.text("vi")
