"""A commune officer reads only their commune, through every route of a real running server: the list,
one submission, its attachments, the Excel export and the indicators of the JSON API. Revoked collectors
and disabled officers are refused; Basic logins are throttled."""

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
from rasoat.core.storage import open_store
from rasoat.core.users import MAX_USER_FAILURES, create_user, new_api_token
from server_support import COMMUNE, OTHER_COMMUNE, CollectClient, ThreadServer, instance_xml, seed

PASSWORD = "mật-khẩu-cán-bộ-1"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from rasoat.server.app import ServerSettings, create_app

    data_dir = tmp_path_factory.mktemp("scope") / "data"
    store = open_store(data_dir)
    seeded = seed(store)
    create_user(store, "xa-phuong-tien", PASSWORD, "commune_officer", [COMMUNE])
    create_user(store, "xa-tan-cuong", PASSWORD, "commune_officer", [OTHER_COMMUNE])
    create_user(store, "tinh-19", PASSWORD, "province_manager", ["19"])
    create_user(store, "chi-xem", PASSWORD, "viewer", [COMMUNE])
    tokens = {
        name: new_api_token(store, name) for name in ("xa-phuong-tien", "xa-tan-cuong", "tinh-19", "chi-xem")
    }
    server = ThreadServer(create_app(store, ServerSettings(max_body_bytes=5_000_000))).start()
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
    yield SimpleNamespace(url=server.url, store=store, seeded=seeded, tokens=tokens, mine=mine, theirs=theirs)
    server.stop()
    store.close()


def api(world, path: str, user: str | None = None, **kw) -> httpx.Response:
    headers = {"Authorization": f"Bearer {world.tokens[user]}"} if user else {}
    headers.update(kw.pop("headers", {}))
    return httpx.get(f"{world.url}/api/v1{path}", headers=headers, timeout=60, **kw)


def basic(username: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def test_list_shows_only_the_officers_commune(world) -> None:
    body = api(world, "/submissions?form_id=tform", "xa-phuong-tien").json()
    assert {i["instance_id"] for i in body["items"]} == set(world.mine) and body["total"] == 2
    body = api(world, "/submissions?form_id=tform", "xa-tan-cuong").json()
    assert {i["instance_id"] for i in body["items"]} == set(world.theirs)
    # asking for the other commune explicitly gives nothing, not an error that confirms it exists
    body = api(world, f"/submissions?unit={OTHER_COMMUNE}&fields=true", "xa-phuong-tien").json()
    assert body == {"total": 0, "offset": 0, "items": [], "after": None}
    body = api(world, "/submissions?form_id=tform", "tinh-19").json()
    assert {i["instance_id"] for i in body["items"]} == set(world.mine + world.theirs)
    assert "fields" not in body["items"][0]  # metadata only unless asked


def test_single_submission_and_attachment_are_scoped_and_audited(world) -> None:
    mine, theirs = world.mine[0], world.theirs[0]
    resp = api(world, f"/submissions/{mine}", "xa-phuong-tien")
    assert resp.status_code == 200 and resp.json()["fields"]["commune"] == COMMUNE
    assert api(world, f"/submissions/{theirs}", "xa-phuong-tien").status_code == 404
    assert api(world, f"/submissions/{mine}/attachments/p.jpg", "xa-phuong-tien").content.endswith(b"05563")
    assert api(world, f"/submissions/{theirs}/attachments/p.jpg", "xa-phuong-tien").status_code == 404
    assert api(world, f"/submissions/{mine}", "chi-xem").status_code == 403  # viewers see no personal data
    assert api(world, "/submissions?fields=true", "chi-xem").status_code == 403
    views = [e for e in world.store.iter_audit(actor="xa-phuong-tien") if e.action.startswith("view.")]
    seen = {(e.action, e.details.get("count")) for e in views}
    assert seen >= {("view.submission", 1), ("view.attachment", 1), ("view.submissions", 0)}
    assert all(theirs not in str(e.details) for e in views)


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
    me = api(world, "/me", "xa-phuong-tien").json()
    assert me["role"] == "commune_officer" and "manage_users" not in me["permissions"]
    assert [r["id"] for r in api(world, "/rounds", "xa-phuong-tien").json()] == ["r-open", "r-closed"]
    assert api(world, "/me").status_code == 401
    assert "Basic" in api(world, "/me").headers["www-authenticate"]
    assert api(world, "/me", headers={"Authorization": "Bearer " + "x" * 43}).status_code == 403


def test_collector_tokens_do_not_open_the_officer_api(world) -> None:
    resp = httpx.get(
        f"{world.url}/api/v1/submissions",
        headers={"Authorization": f"Bearer {world.seeded.token}"},
        timeout=30,
    )
    assert resp.status_code == 403


def test_api_pages_with_after_stay_inside_the_officers_units(world) -> None:
    auth = {"Authorization": f"Bearer {world.tokens['xa-phuong-tien']}"}
    seen, after, pages = [], None, 0
    while True:
        params = {"limit": 1, **({"after": after} if after else {})}
        resp = httpx.get(f"{world.url}/api/v1/submissions", params=params, headers=auth, timeout=30)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["total"] == len(world.mine)
        seen += [item["instance_id"] for item in body["items"]]
        pages += 1
        after = body["after"]
        if after is None:
            break
    assert seen == world.mine and pages == len(world.mine)  # oldest first, each once, none of theirs
    bad = httpx.get(f"{world.url}/api/v1/submissions", params={"after": "not-a-position"}, headers=auth,
                    timeout=30)
    assert bad.status_code == 400 and "invalid page position" in bad.text


@pytest.mark.slow
def test_basic_login_and_throttling_over_the_api(world) -> None:
    resp = httpx.get(f"{world.url}/api/v1/me", headers=basic("chi-xem", PASSWORD), timeout=30)
    assert resp.status_code == 200 and resp.json()["username"] == "chi-xem"
    create_user(world.store, "bi-doan", PASSWORD, "viewer", [COMMUNE])
    for _ in range(MAX_USER_FAILURES):
        resp = httpx.get(f"{world.url}/api/v1/me", headers=basic("bi-doan", "doan-mo-123"), timeout=30)
        assert resp.status_code == 401
    resp = httpx.get(f"{world.url}/api/v1/me", headers=basic("bi-doan", PASSWORD), timeout=30)
    assert resp.status_code == 429 and int(resp.headers["retry-after"]) > 0
    assert "Too many failed logins" in resp.json()["error"]
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
    assert httpx.get(f"{world.url}/api/v1/me", headers=bearer).status_code == 200
    disable_user(world.store, "nghi-viec")
    assert httpx.get(f"{world.url}/api/v1/me", headers=bearer).status_code == 403
    resp = httpx.get(f"{world.url}/api/v1/me", headers=basic("nghi-viec", PASSWORD))
    assert resp.status_code == 403 and "disabled" in resp.json()["error"]


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
