"""Editing officers and password-reset links over plain HTTP (tests/web_support.py's site): edits stay
within the editor's scope, a reset link is issued only by someone who manages the account, shown once,
works once, and stops working when it expires; a reset (link or administrator), an officer's own password
change and disabling an account end the officer's open sessions in every browser."""

from __future__ import annotations

import re

import httpx
from rasoat.core.collectors import hash_token
from rasoat.core.users import RESET_NS, create_user
from rasoat.core.users import set_password as admin_sets_password
from server_support import COMMUNE
from web_support import PUBLIC_URL, csrf_of, http_login


def issue_link(site, manager: str, username: str) -> str:
    """The link path the manager's page shows (the page gives it under the public URL)."""
    client = http_login(site.url, manager)
    page = client.get(f"/accounts/{username}")
    assert page.status_code == 200, page.text
    resp = client.post(f"/accounts/{username}/reset-link", data={"csrf": csrf_of(page.text)})
    assert resp.status_code == 200, resp.text
    url = re.search(r'value="(' + re.escape(PUBLIC_URL) + r'/password-reset/[^"]+)"', resp.text)
    assert url, resp.text
    return url.group(1).removeprefix(PUBLIC_URL)


def set_password(site, path: str, password: str) -> httpx.Response:
    anon = httpx.Client(base_url=site.url, follow_redirects=False)
    page = anon.get(path)
    if page.status_code != 200:
        return page
    return anon.post(path, data={"new": password, "repeat": password, "csrf": csrf_of(page.text)})


def logs_in(site, username: str, password: str) -> bool:
    client = httpx.Client(base_url=site.url, follow_redirects=False)
    page = client.get("/login")
    resp = client.post("/login", data={"username": username, "password": password, "csrf": csrf_of(page.text),
                                       "next": "/"})
    return resp.status_code == 303 and resp.headers["location"] == "/"


def test_reset_link_works_once(site) -> None:
    path = issue_link(site, "tinh.thainguyen", "xa.tancuong")
    token = path.rsplit("/", 1)[1]
    assert site.store.kv_get(RESET_NS, token) is None  # the store keeps only its hash
    assert site.store.kv_get(RESET_NS, hash_token(token)) is not None
    resp = set_password(site, path, "mật-khẩu-đặt-lại-01")
    assert resp.status_code == 303 and resp.headers["location"] == "/login?msg=password.reset_done"
    assert logs_in(site, "xa.tancuong", "mật-khẩu-đặt-lại-01")
    again = set_password(site, path, "mật-khẩu-lần-hai-002")
    assert again.status_code == 410 and "không còn dùng được" in again.text
    assert logs_in(site, "xa.tancuong", "mật-khẩu-đặt-lại-01")
    actions = [(e.actor, e.action) for e in site.store.iter_audit() if e.target == "xa.tancuong"]
    assert ("tinh.thainguyen", "user.reset_link") in actions
    assert ("xa.tancuong", "user.reset_link_used") in actions


def test_reset_link_expires(site) -> None:
    path = issue_link(site, "quantri", "nguoixem")
    key = hash_token(path.rsplit("/", 1)[1])
    entry = site.store.kv_get(RESET_NS, key)
    # the link was issued 25 hours ago
    site.store.kv_put(RESET_NS, key, {**entry, "expires": entry["expires"] - 25 * 3600}, ttl_seconds=3600)
    page = httpx.get(site.url + path)
    assert page.status_code == 410 and "hết hạn" in page.text and 'name="new"' not in page.text
    assert set_password(site, path, "mật-khẩu-quá-hạn-01").status_code == 410
    assert not logs_in(site, "nguoixem", "mật-khẩu-quá-hạn-01")


def test_only_a_manager_of_the_account_issues_a_link(site) -> None:
    manager = http_login(site.url, "tinh.thainguyen")
    token = csrf_of(manager.get("/accounts").text)
    assert manager.post("/accounts/quantri/reset-link", data={"csrf": token}).status_code == 403
    officer = http_login(site.url, "xa.phuongtien")
    token = csrf_of(officer.get("/").text)
    assert officer.post("/accounts/xa.tancuong/reset-link", data={"csrf": token}).status_code == 403
    assert not [e for e in site.store.iter_audit() if e.action == "user.reset_link" and e.target == "quantri"]


def test_edits_stay_within_the_editors_scope(site) -> None:
    client = http_login(site.url, "tinh.thainguyen")
    token = csrf_of(client.get("/accounts/xa.phuongtien").text)
    for data in ({"role": "province_manager", "units": [COMMUNE]},  # never a manager's role
                 {"role": "commune_officer", "units": ["01"]}):  # never Hà Nội
        resp = client.post("/accounts/xa.phuongtien", data={**data, "csrf": token})
        assert resp.status_code == 403, resp.text
        assert 'role="alert"' in resp.text
    user = site.store.get_user_by_name("xa.phuongtien")
    assert user is not None and user.role.value == "commune_officer" and user.unit_codes == [COMMUNE]
    resp = client.post("/accounts/xa.phuongtien", data={"role": "commune_officer", "csrf": token})
    assert resp.status_code == 403  # no unit is no scope to check: refused, nothing changed
    assert site.store.get_user_by_name("xa.phuongtien").unit_codes == [COMMUNE]
    assert client.get("/accounts/tinh.thainguyen").status_code == 403  # not one's own account here
    assert client.get("/accounts/quantri").status_code == 403


OLD = "mật-khẩu-phiên-cũ-01"


def signed_in(site, username: str, password: str) -> httpx.Client:
    """A browser of its own (its own cookie jar) logged in as ``username``."""
    client = httpx.Client(base_url=site.url, follow_redirects=False, timeout=30)
    page = client.get("/login")
    resp = client.post("/login", data={"username": username, "password": password,
                                       "csrf": csrf_of(page.text), "next": "/"})
    assert resp.status_code == 303 and resp.headers["location"] == "/", resp.text
    assert client.get("/submissions").status_code == 200
    return client


def sent_to_login(client: httpx.Client) -> bool:
    resp = client.get("/submissions")
    return resp.status_code == 303 and resp.headers["location"].startswith("/login")


def officer(site, username: str) -> str:
    create_user(site.store, username, OLD, "commune_officer", [COMMUNE], actor="test")
    return username


def test_a_reset_link_ends_the_officers_open_sessions(site) -> None:
    name = officer(site, "xa.phien.link")
    phone, desk = signed_in(site, name, OLD), signed_in(site, name, OLD)
    others = signed_in(site, "xa.phuongtien", "mật-khẩu-xã-00001")
    resp = set_password(site, issue_link(site, "tinh.thainguyen", name), "mật-khẩu-phiên-mới-1")
    assert resp.status_code == 303, resp.text
    assert sent_to_login(phone) and sent_to_login(desk)
    assert others.get("/submissions").status_code == 200  # another officer's session is not touched
    fresh = signed_in(site, name, "mật-khẩu-phiên-mới-1")
    assert fresh.get("/submissions").status_code == 200


def test_an_administrators_reset_ends_the_officers_open_sessions(site) -> None:
    name = officer(site, "xa.phien.quantri")
    phone, desk = signed_in(site, name, OLD), signed_in(site, name, OLD)
    admin_sets_password(site.store, name, "mật-khẩu-quản-trị-đặt", actor="quantri")  # rasoat users passwd
    assert sent_to_login(phone) and sent_to_login(desk)
    assert signed_in(site, name, "mật-khẩu-quản-trị-đặt").get("/").status_code == 200


def test_changing_ones_own_password_keeps_this_session_and_ends_the_others(site) -> None:
    name = officer(site, "xa.phien.tudoi")
    here, there = signed_in(site, name, OLD), signed_in(site, name, OLD)
    page = here.get("/account/password")
    resp = here.post("/account/password", data={"current": OLD, "new": "mật-khẩu-tự-đổi-001",
                                                 "repeat": "mật-khẩu-tự-đổi-001", "csrf": csrf_of(page.text)})
    assert resp.status_code == 303 and resp.headers["location"].startswith("/?msg="), resp.text
    assert here.get("/submissions").status_code == 200
    assert sent_to_login(there)


def test_disabling_an_account_ends_its_sessions_for_good(site) -> None:
    name = officer(site, "xa.phien.khoa")
    phone = signed_in(site, name, OLD)
    manager = http_login(site.url, "tinh.thainguyen")
    token = csrf_of(manager.get("/accounts").text)
    for active in ("0", "1"):  # disabled, then enabled again at once
        resp = manager.post(f"/accounts/{name}/active", data={"csrf": token, "active": active})
        assert resp.status_code == 303, resp.text
    assert sent_to_login(phone)  # re-enabling does not bring the old session back
    assert signed_in(site, name, OLD).get("/").status_code == 200
