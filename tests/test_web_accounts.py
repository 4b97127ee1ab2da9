"""Officer accounts in Debian's headless chromium against a real server (tests/web_support.py): a province
manager creates, edits (role and units picked), disables and re-enables accounts within the province (and
no further) and issues a one-time password-reset link the officer uses on a phone; every officer changes
their own password. Each step is checked in the audit log and by logging in for real."""

from __future__ import annotations

import pytest
from rasoat.core.users import create_user
from server_support import COMMUNE, OTHER_COMMUNE
from web_support import PHONE, browser_tests, csrf_of, login, new_page, no_horizontal_overflow, shot

pytestmark = browser_tests()



def log_in_as(browser, site, username: str, password: str):
    page = new_page(browser, site)
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return page


def audit_actions(site, target: str) -> list[tuple[str, str]]:
    return [(e.actor, e.action) for e in site.store.iter_audit() if e.target == target]


def test_province_manager_creates_an_officer_who_can_log_in(browser, site) -> None:
    page = new_page(browser, site)
    login(page, "tinh.thainguyen")
    page.click("nav >> text=Tài khoản")
    assert page.inner_text("h1") == "Tài khoản cán bộ"
    listed = page.eval_on_selector_all("tr[data-account]", "rows => rows.map(r => r.dataset.account)")
    assert "xa.tancuong" in listed and "quantri" not in listed and "tinh.thainguyen" not in listed
    roles = page.eval_on_selector_all("select[name=role] option", "os => os.map(o => o.value)")
    assert roles == ["", "commune_officer", "viewer"]  # never an administrator or another manager
    page.fill("#create-account input[name=username]", "xa.tancuong2")
    page.fill("#create-account input[name=display_name]", "Trịnh Thị Ánh Tuyết")
    page.fill("#create-account input[name=password]", "mật-khẩu-mới-0001")
    page.select_option("#create-account select[name=role]", "commune_officer")
    page.select_option("#create-account select[name=units]", [OTHER_COMMUNE])
    page.click("#create-account button[type=submit]")
    page.wait_for_selector(".flash")
    assert "Đã tạo tài khoản" in page.inner_text(".flash")
    assert "Trịnh Thị Ánh Tuyết" in page.inner_text("tr[data-account='xa.tancuong2']")
    shot(page, "accounts-province")
    user = site.store.get_user_by_name("xa.tancuong2")
    assert user is not None and user.unit_codes == [OTHER_COMMUNE] and user.role.value == "commune_officer"
    assert ("tinh.thainguyen", "user.add") in audit_actions(site, "xa.tancuong2")
    other = log_in_as(browser, site, "xa.tancuong2", "mật-khẩu-mới-0001")
    assert "/login" not in other.url and "Trịnh Thị Ánh Tuyết" in other.inner_text("header")
    other.context.close()
    page.context.close()


def test_a_refused_account_comes_back_with_what_was_typed(browser, site) -> None:
    page = new_page(browser, site)
    login(page, "tinh.thainguyen")
    page.goto("/accounts")
    page.fill("#create-account input[name=username]", "xa.matkhaungan")
    page.fill("#create-account input[name=display_name]", "Hồ Văn Ngắn")
    page.fill("#create-account input[name=password]", "ngắn")
    page.evaluate("document.querySelector('#create-account [name=password]').removeAttribute('minlength')")
    page.select_option("#create-account select[name=role]", "viewer")
    page.select_option("#create-account select[name=units]", [COMMUNE])
    page.click("#create-account button[type=submit]")
    page.wait_for_selector("#create-account .error")
    assert "ít nhất 10 ký tự" in page.inner_text("#create-account .error")
    assert "The password" not in page.inner_text("#create-account .error")  # one language
    assert page.input_value("#create-account input[name=username]") == "xa.matkhaungan"
    assert page.input_value("#create-account input[name=display_name]") == "Hồ Văn Ngắn"
    assert page.input_value("#create-account select[name=role]") == "viewer"
    assert page.eval_on_selector("#create-account select[name=units]",
                                 "s => [...s.selectedOptions].map(o => o.value)") == [COMMUNE]
    assert site.store.get_user_by_name("xa.matkhaungan") is None
    page.context.close()


def test_province_manager_cannot_reach_beyond_the_province(browser, site) -> None:
    page = new_page(browser, site)
    login(page, "tinh.thainguyen")
    page.goto("/accounts")
    token = csrf_of(page.content())
    base = {"csrf": token, "password": "mật-khẩu-đủ-dài-01", "display_name": ""}
    as_admin = page.request.post("/accounts", form={**base, "username": "quantri2", "role": "admin"})
    assert as_admin.status == 403
    far = page.request.post("/accounts", form={**base, "username": "xa.xa", "role": "viewer",
                                                "units": "00004"})  # a Hà Nội ward
    assert far.status == 403
    disable_admin = page.request.post("/accounts/quantri/active", form={"csrf": token, "active": "0"})
    assert disable_admin.status == 403
    assert site.store.get_user_by_name("quantri2") is None and site.store.get_user_by_name("xa.xa") is None
    assert site.store.get_user_by_name("quantri").active
    page.context.close()


def test_disable_ends_the_session_and_re_enable_restores_it(browser, site) -> None:
    victim = log_in_as(browser, site, "xa.tancuong", "mật-khẩu-xã-00002")
    assert "/login" not in victim.url
    page = new_page(browser, site)
    login(page, "tinh.thainguyen")
    page.goto("/accounts")
    page.click("tr[data-account='xa.tancuong'] button:has-text('Khoá')")
    page.wait_for_selector(".flash")
    assert "Đã khoá" in page.inner_text("tr[data-account='xa.tancuong']")
    victim.goto("/submissions")
    assert "/login" in victim.url  # the open session stops at the next request
    again = log_in_as(browser, site, "xa.tancuong", "mật-khẩu-xã-00002")
    assert "/login" in again.url
    again.context.close()
    page.click("tr[data-account='xa.tancuong'] button:has-text('Mở lại')")
    page.wait_for_selector(".flash")
    back = log_in_as(browser, site, "xa.tancuong", "mật-khẩu-xã-00002")
    assert "/login" not in back.url
    back.context.close()
    victim.context.close()
    actions = audit_actions(site, "xa.tancuong")
    assert ("tinh.thainguyen", "user.disable") in actions and ("tinh.thainguyen", "user.enable") in actions
    page.context.close()


@pytest.mark.parametrize("username", ["xa.phuongtien", "nguoixem"])
def test_commune_officers_and_viewers_do_not_manage_accounts(browser, site, username) -> None:
    page = new_page(browser, site)
    login(page, username)
    assert page.locator("nav.nav a[href='/accounts']").count() == 0
    resp = page.goto("/accounts")
    assert resp is not None and resp.status == 403
    page.context.close()


def test_every_officer_changes_their_own_password(browser, site) -> None:
    create_user(site.store, "nguoixem.hai", "mật-khẩu-cũ-00001", "viewer", [COMMUNE], actor="test")
    page = log_in_as(browser, site, "nguoixem.hai", "mật-khẩu-cũ-00001")
    page.click("header a.user")
    assert page.inner_text("h1") == "Đổi mật khẩu"
    page.fill("input[name=current]", "sai-mật-khẩu-000")
    page.fill("input[name=new]", "mật-khẩu-mới-00002")
    page.fill("input[name=repeat]", "mật-khẩu-mới-00002")
    page.click("main button[type=submit]")
    assert "Mật khẩu hiện tại không đúng" in page.inner_text(".error")
    page.fill("input[name=current]", "mật-khẩu-cũ-00001")
    page.fill("input[name=new]", "mật-khẩu-mới-00002")
    page.fill("input[name=repeat]", "mật-khẩu-mới-00003")
    page.click("main button[type=submit]")
    assert "không khớp" in page.inner_text(".error")
    page.fill("input[name=current]", "mật-khẩu-cũ-00001")
    page.fill("input[name=new]", "mật-khẩu-mới-00002")
    page.fill("input[name=repeat]", "mật-khẩu-mới-00002")
    page.click("main button[type=submit]")
    page.wait_for_selector(".flash")
    assert "Đã đổi mật khẩu" in page.inner_text(".flash")
    page.context.close()
    assert "/login" in log_in_as(browser, site, "nguoixem.hai", "mật-khẩu-cũ-00001").url
    fresh = log_in_as(browser, site, "nguoixem.hai", "mật-khẩu-mới-00002")
    assert "/login" not in fresh.url
    fresh.context.close()
    assert ("nguoixem.hai", "user.set_password") in audit_actions(site, "nguoixem.hai")


def test_province_manager_edits_an_officers_role_and_units(browser, site) -> None:
    create_user(site.store, "xa.chuyen", "mật-khẩu-chuyển-01", "commune_officer", [COMMUNE], actor="test")
    page = new_page(browser, site)
    login(page, "tinh.thainguyen")
    page.goto("/accounts")
    page.click("tr[data-account='xa.chuyen'] a:has-text('Sửa')")
    assert page.locator("#edit-account select[name=role]").input_value() == "commune_officer"
    units = page.eval_on_selector_all("#edit-account select[name=units] option", "os => os.map(o => o.value)")
    assert OTHER_COMMUNE in units and "01" not in units  # picked from the province, never typed
    page.select_option("#edit-account select[name=role]", "viewer")
    page.select_option("#edit-account select[name=units]", [COMMUNE, OTHER_COMMUNE])
    page.click("#edit-account button[type=submit]")
    page.wait_for_selector(".flash")
    assert "Đã lưu vai trò và đơn vị" in page.inner_text(".flash")
    row = page.inner_text("tr[data-account='xa.chuyen']")
    assert "Người xem" in row and "Xã Tân Cương" in row
    user = site.store.get_user_by_name("xa.chuyen")
    assert user is not None and user.role.value == "viewer"
    assert sorted(user.unit_codes) == sorted([COMMUNE, OTHER_COMMUNE])
    assert ("tinh.thainguyen", "user.set_role") in audit_actions(site, "xa.chuyen")
    shot(page, "accounts-edited")
    page.context.close()


def test_reset_link_is_issued_used_once_and_refused_again(browser, site) -> None:
    create_user(site.store, "xa.quenmk", "mật-khẩu-đã-quên-1", "commune_officer", [OTHER_COMMUNE],
                actor="test")
    page = new_page(browser, site)
    login(page, "tinh.thainguyen")
    page.goto("/accounts/xa.quenmk")
    page.click("#reset-account button[type=submit]")
    page.wait_for_selector("#reset-link")
    assert "chỉ hiện nó một lần" in page.inner_text("#reset-link")
    link = page.input_value("#reset-url")
    shot(page, "accounts-reset-link")
    page.context.close()
    path = link[link.index("/password-reset/"):]
    officer = new_page(browser, site, viewport=PHONE)  # the officer opens it on a phone, not logged in
    officer.goto(path)
    assert "xa.quenmk" in officer.inner_text("main")
    assert no_horizontal_overflow(officer)
    shot(officer, "password-reset-phone")
    officer.fill("input[name=new]", "mật-khẩu-mới-đặt-lại")
    officer.fill("input[name=repeat]", "mật-khẩu-mới-đặt-lại")
    officer.click("main button[type=submit]")
    officer.wait_for_url(lambda url: "/login" in url)
    assert "Đã đặt mật khẩu mới" in officer.inner_text(".notice")
    officer.fill("input[name=username]", "xa.quenmk")
    officer.fill("input[name=password]", "mật-khẩu-mới-đặt-lại")
    officer.click("button[type=submit]")
    officer.wait_for_url(lambda url: "/login" not in url)
    again = officer.goto(path)
    assert again is not None and again.status == 410
    assert "không còn dùng được" in officer.inner_text(".error")
    assert officer.locator("input[name=new]").count() == 0
    officer.context.close()
    assert ("xa.quenmk", "user.reset_link_used") in audit_actions(site, "xa.quenmk")


def test_accounts_page_fits_a_phone(browser, site) -> None:
    page = new_page(browser, site, viewport=PHONE)
    login(page, "quantri")
    page.goto("/accounts")
    assert no_horizontal_overflow(page)
    shot(page, "accounts-phone")
    page.context.close()
