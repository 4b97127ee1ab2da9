"""Editing officers and password-reset links over plain HTTP (tests/web_support.py's site): edits stay
within the editor's scope, a reset link is issued only by someone who manages the account, shown once,
works once, and stops working when it expires."""

from __future__ import annotations

import re

import httpx
import pytest
from rasoat.core.collectors import hash_token
from rasoat.core.users import RESET_NS
from server_support import COMMUNE
from web_support import PUBLIC_URL, csrf_of, http_login, start_site, stop_site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    site = start_site(tmp_path_factory.mktemp("web-accounts-http") / "data")
    yield site
    stop_site(site)


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
