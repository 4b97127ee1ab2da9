"""The assessment pages in a real browser (Debian chromium through Playwright) over a real server, on both
backends: the sign-off walk, the list of communes by state with the 20/12 deadline, the printable page and
the workbook download; a commune officer cannot approve; another province's officer sees nothing."""

from __future__ import annotations

import io
from pathlib import Path

import openpyxl
import pytest
from assessment_support import ITS_COMMUNE, LAI_CHAU, YEAR, lai_chau_year, persons
from entity_support import publish_national
from rasoat.core.users import create_user
from server_support import opened_store, serving
from web_support import browser_tests

PASSWORDS = {"xa.binhlu": "mật-khẩu-xã-00003", "tinh.laichau": "mật-khẩu-tỉnh-0002",
             "tinh.thainguyen2": "mật-khẩu-tỉnh-0003"}

pytestmark = browser_tests(timeout=300)


@pytest.fixture
def site(tmp_path: Path, backend_url: str | None):
    with opened_store(tmp_path / "data", backend_url) as store:
        create_user(store, "xa.binhlu", PASSWORDS["xa.binhlu"], "commune_officer", [ITS_COMMUNE],
                    display_name="Lò Văn Bình")
        tinh = create_user(store, "tinh.laichau", PASSWORDS["tinh.laichau"], "province_manager", [LAI_CHAU],
                           display_name="Tao Thị Hoa")
        create_user(store, "tinh.thainguyen2", PASSWORDS["tinh.thainguyen2"], "province_manager", ["19"])
        lai_chau_year(store, tinh)
        with serving(store, access_log=False) as server:
            yield server.url, store


def login(browser, url: str, username: str):
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="vi-VN", base_url=url,
                                  accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORDS[username])
    page.click("button[type=submit]")
    page.wait_for_url(lambda u: "/login" not in u)
    return page


def row(page, code: str):
    return page.locator(f"#communes tr[data-commune='{code}']")


def test_sign_off_in_the_browser(browser, site, tmp_path) -> None:
    url, store = site
    try:
        xa = login(browser, url, "xa.binhlu")
        xa.goto(f"/assessment?year={YEAR}")
        assert xa.locator("#communes tbody tr").count() == 1  # only their own commune
        assert row(xa, ITS_COMMUNE).get_attribute("data-state") == "not_proposed"
        assert "Loại III" in row(xa, ITS_COMMUNE).locator(".class").inner_text()
        assert "Điều 9.1.a" in row(xa, ITS_COMMUNE).locator(".flags").inner_text()
        assert xa.locator("#approve-form").count() == 0 and xa.locator("#province-class").count() == 0
        assert "20/12/2026" in xa.locator("#deadline").inner_text()
        row(xa, ITS_COMMUNE).locator("form.propose input[name=text]").fill("R 0,3 %, chưa đủ 3 tiêu chí")
        row(xa, ITS_COMMUNE).locator("form.propose button").click()
        xa.wait_for_url("**msg=asm.done**")
        assert row(xa, ITS_COMMUNE).get_attribute("data-state") == "proposed"

        tinh = login(browser, url, "tinh.laichau")
        tinh.goto(f"/assessment?year={YEAR}")
        # the year box is a filter's size, not the card's whole width (the screenshot review)
        assert tinh.locator("#asm-year input[name=year]").bounding_box()["width"] < 200
        # a province's communes a page at a time, the proposal waiting for the province first
        assert tinh.locator("#communes tbody tr").count() == 15
        assert "1–15 / 38" in tinh.locator(".units-count").inner_text()
        assert tinh.locator("#communes tbody tr").first.get_attribute("data-commune") == ITS_COMMUNE
        tinh.click("nav.pager >> text=Trang sau")
        tinh.click("nav.pager >> text=Trang sau")
        assert tinh.locator("#communes tbody tr").count() == 8
        assert "31–38 / 38" in tinh.locator(".units-count").inner_text()
        last = tinh.locator("#communes tbody tr").last.get_attribute("data-commune")
        tinh.goto(f"/assessment?year={YEAR}")
        tinh.fill(".unit-search input[name=q]", last)  # every commune reachable by its code (or name)
        tinh.click(".unit-search button")
        assert [tinh.locator("#communes tbody tr").nth(i).get_attribute("data-commune")
                for i in range(tinh.locator("#communes tbody tr").count())] == [last]
        tinh.goto(f"/assessment?year={YEAR}")
        by_state = tinh.locator("#by-state").inner_text()
        assert "Đã chấp nhận: 37" in by_state and "Đã đề xuất: 1" in by_state
        tinh.click("#by-state >> text=Đã đề xuất: 1")  # the list narrowed to one state
        assert tinh.locator("#communes tbody tr").count() == 1
        tinh.click("#by-state >> text=Tất cả")
        r = row(tinh, ITS_COMMUNE)
        assert "R 0,3 %" in r.locator(".comment").inner_text()
        r.locator("form.send-back input[name=text]").fill("Bổ sung số liệu F9")
        r.locator("form.send-back button").click()
        tinh.wait_for_url("**msg=asm.done**")
        assert row(tinh, ITS_COMMUNE).get_attribute("data-state") == "sent_back"

        xa.reload()
        assert "Bổ sung số liệu F9" in row(xa, ITS_COMMUNE).locator(".reason").inner_text()
        row(xa, ITS_COMMUNE).locator("form.propose input[name=text]").fill("Đã bổ sung")
        row(xa, ITS_COMMUNE).locator("form.propose button").click()
        xa.wait_for_url("**msg=asm.done**")
        # a commune officer has no approve button, and a hand-made POST is refused
        csrf = xa.locator("input[name=csrf]").first.get_attribute("value")
        resp = xa.request.post(f"/assessment/{YEAR}/{LAI_CHAU}/approve", form={"csrf": csrf})
        assert resp.status == 403 and "Chỉ cán bộ cấp tỉnh được xét duyệt" in resp.text()  # page language
        fact = {"csrf": csrf, "name": "on_route", "value": "yes", "text": "QĐ 12", "as_of": "2026-01-10"}
        resp = xa.request.post(f"/assessment/{YEAR}/{LAI_CHAU}/fact", form=fact)  # the province's figure
        assert resp.status == 403 and "không được nhập số liệu của 12" in resp.text()

        tinh.reload()
        row(tinh, ITS_COMMUNE).locator("form.accept button").click()
        tinh.wait_for_url("**msg=asm.done**")
        tinh.locator("#approve-form button").click()
        tinh.wait_for_url("**msg=asm.done**")
        assert tinh.locator("#list-state").inner_text() == "Đã phê duyệt (khoá)"
        assert tinh.locator("form.send-back").count() == 0  # locked: no more steps

        persons(store, ITS_COMMUNE, 2, "user")  # a late change in the registers
        tinh.reload()
        changed = row(tinh, ITS_COMMUNE).locator(".changed").inner_text()
        assert "Thay đổi sau phê duyệt: Người nghiện, người sử dụng có hồ sơ quản lý (R) 30 → 32" \
            in changed

        tinh.screenshot(path=str(tmp_path / "assessment.png"), full_page=False)
        r = row(tinh, ITS_COMMUNE)  # a new population figure, entered on the page with its source
        r.locator("details summary").click()
        r.locator("form.fact input[name=value]").fill("12000")
        r.locator("form.fact input[name=text]").fill("CSDL quốc gia về dân cư, rà soát lại")
        r.locator("form.fact input[name=as_of]").fill("2026-12-05")
        r.locator("form.fact button").click()
        tinh.wait_for_url("**msg=asm.done**")
        changed = row(tinh, ITS_COMMUNE).locator(".flags").inner_text()
        assert "Nhân khẩu hiện đang cư trú 10 000 → 12 000" in changed
        tinh.click("text=Bản in")
        tinh.wait_for_url("**/print")
        assert tinh.locator("#print-communes tbody tr").count() == 38
        assert "Đã phê duyệt / Approved: tinh.laichau" in tinh.locator("#print-state").inner_text()
        printed = tinh.locator(f"#print-communes tr[data-commune='{ITS_COMMUNE}']").inner_text()
        assert "Loại III" in printed
        tinh.set_viewport_size({"width": 390, "height": 844})  # on a phone the list scrolls in its own box
        assert tinh.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        tinh.set_viewport_size({"width": 1280, "height": 860})
        tinh.pdf(path=str(tmp_path / "ban-in.pdf"), prefer_css_page_size=True)
        pdf = (tmp_path / "ban-in.pdf").read_bytes()
        assert b"/MediaBox [0 0 841.91998 594.95996]" in pdf  # A4 landscape (points), from the page's CSS
        tinh.go_back()
        with tinh.expect_download() as download:
            tinh.click("text=Tải bảng Excel")
        wb = openpyxl.load_workbook(io.BytesIO(Path(download.value.path()).read_bytes()))
        assert wb.sheetnames == ["Danh sách xã", "Tỉnh", "So sánh", "Cần xem xét"]

        other = login(browser, url, "tinh.thainguyen2")
        resp = other.goto(f"/assessment?year={YEAR}&province={LAI_CHAU}")
        assert resp.status == 403 and "03390" not in other.content()
        assert other.request.get(f"/assessment/{YEAR}/{LAI_CHAU}/workbook.xlsx").status == 403

        tinh.reload()
        tinh.locator("#reopen-form input[name=text]").fill("Xã 03390 có thêm 2 người")
        tinh.locator("#reopen-form button").click()
        tinh.wait_for_url("**msg=asm.done**")
        assert tinh.locator("#list-state").inner_text() == "Đang xét duyệt"
    finally:
        for context in browser.contexts:
            context.close()
    reopen = [e for e in store.iter_audit() if e.action == "assessment.reopen"]
    assert [(e.actor, e.details["reason"]) for e in reopen] == [("tinh.laichau", "Xã 03390 có thêm 2 người")]


@pytest.fixture
def management_site(tmp_path: Path, backend_url: str | None):
    from indicators_support import add

    with opened_store(tmp_path / "data", backend_url) as store:
        create_user(store, "xa.binhlu", PASSWORDS["xa.binhlu"], "commune_officer", [ITS_COMMUNE])
        create_user(store, "tinh.laichau", PASSWORDS["tinh.laichau"], "province_manager", [LAI_CHAU])
        create_user(store, "tinh.thainguyen2", PASSWORDS["tinh.thainguyen2"], "province_manager", ["19"])

        def event(person: str, event: str, day: str, **fields) -> None:
            add(store, "f11_management", ITS_COMMUNE,
                {"person_key": person, "event": event, "event_date": day, **fields}, day=day)

        add(store, "f1_person", ITS_COMMUNE,
            {"person_key": "p1", "person_name": "Lò Văn Sáng", "present": "yes"})
        event("p1", "decision_start", "2026-01-15", mgmt_kind="user", decision_no="07/QĐ")
        event("p1", "residence_check", "2026-12-03", check_result="present")
        event("p2", "decision_start", "2026-05-01", mgmt_kind="user", decision_no="08/QĐ")
        event("p3", "decision_start", "2026-05-01", mgmt_kind="user", decision_no="09/QĐ")
        event("p3", "residence_check", "2026-12-02", check_result="moved", moved_to="Xã Tả Lèng",
              moved_date="2026-12-01")
        publish_national(store, "f1_person")  # the persons list, whose versions say who was visited
        for key, visited in (("p1", "2026-12-03"), ("p2", "")):
            data = {"mgmt_status": "active", "term_end": "2027-05-01", "last_visit": visited}
            store.write_entity("persons", key, label=f"Người {key}", actor="test", unit_code=ITS_COMMUNE,
                               data=data)
        with serving(store, access_log=False) as server:
            yield server.url, store


def test_monthly_management_lists_in_the_browser(browser, management_site) -> None:
    url, store = management_site
    try:
        xa = login(browser, url, "xa.binhlu")
        xa.click("nav >> text=Quản lý (NĐ 105)")
        xa.goto("/management?as_of=2026-12-28")
        ending = xa.locator("#ending tr[data-person='p1']").inner_text()
        assert "Lò Văn Sáng" in ending and "15/01/2027" in ending and "18" in ending
        assert [xa.locator("#missing tr[data-person]").nth(i).get_attribute("data-person")
                for i in range(xa.locator("#missing tr[data-person]").count())] == ["p2"]
        moved = xa.locator("#moved tr[data-person='p3']").inner_text()
        assert "Xã Tả Lèng" in moved and "02/12/2026" in moved and "Quá hạn" in moved
        xa.click("#on-persons")  # the same month on the persons page: the same persons not visited
        xa.wait_for_url(f"**/persons?commune={ITS_COMMUNE}&month=2026-12")
        late = xa.locator("#visits tr[data-visited='no']")
        assert [late.nth(i).get_attribute("data-person") for i in range(late.count())] == ["p2"]

        # a province officer picks the commune (searched by name without diacritics) from one picker, not
        # from a page-long list of the province's 38 communes (2,400 px for Thái Nguyên's 92)
        tinh = login(browser, url, "tinh.laichau")
        for where in ("/management", "/persons"):
            tinh.goto(where)
            assert tinh.locator(".commune-chooser select[name=commune] option").count() == 38
            assert tinh.evaluate("document.documentElement.scrollHeight") <= 860
            tinh.fill(".commune-chooser input[type=search]", "binh lu")  # Xã Bình Lư
            tinh.keyboard.press("Enter")
            assert tinh.input_value(".commune-chooser select[name=commune]") == ITS_COMMUNE
            tinh.click(".commune-chooser button[type=submit]")
            tinh.wait_for_url(f"**{where}?commune={ITS_COMMUNE}")
        tinh.goto("/management")
        tinh.fill(".commune-chooser input[type=search]", ITS_COMMUNE)  # or by its code
        tinh.keyboard.press("Enter")
        tinh.click(".commune-chooser button[type=submit]")
        assert tinh.locator("#moved tr[data-person='p3']").count() == 1

        other = login(browser, url, "tinh.thainguyen2")
        resp = other.goto(f"/management?commune={ITS_COMMUNE}")
        assert resp.status == 403 and "Lò Văn Sáng" not in other.content()
    finally:
        for context in browser.contexts:
            context.close()
    views = [(e.actor, e.details["filters"]["commune"]) for e in store.iter_audit()
             if e.action == "view.management"]
    assert ("xa.binhlu", ITS_COMMUNE) in views and ("tinh.laichau", ITS_COMMUNE) in views
    assert not any(actor == "tinh.thainguyen2" for actor, _ in views)
