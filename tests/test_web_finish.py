"""The officer site's finish, in Debian's headless chromium against a real server (tests/web_support.py):
error pages that are pages (and machine endpoints that keep their own error shapes), the favicon, no
number broken inside a table cell, round history and forms named for officers, and a crawl of every
same-origin link for every role that finds no 5xx and no raw JSON page.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from rasoat.core.round_lifecycle import set_state
from rasoat.core.rounds import create_round
from server_support import COMMUNE
from web_support import ACCOUNTS, LAPTOP, PHONE, browser_tests, http_login, login, new_page, shot

pytestmark = browser_tests(timeout=300)

CRAWL_LIMIT = 30  # pages per role: every menu entry and what it links to, without walking every filter
ANYWHERE_JS = (
    "[...document.querySelectorAll('*')].filter(e => getComputedStyle(e).overflowWrap === 'anywhere')"
    ".map(e => e.tagName + '.' + e.className)"
)



# --- error pages ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("lang", "heading", "text"), [
    ("vi", "Lỗi 404", "Không có trang này"),
    ("en", "Error 404", "No such page"),
])
def test_unknown_address_is_a_page_in_the_chosen_language(browser, site, lang, heading, text) -> None:
    page = new_page(browser, site, lang=lang)
    login(page, "xa.phuongtien")
    resp = page.goto("/khong-co-trang-nay")
    assert resp is not None and resp.status == 404
    assert resp.headers["content-type"].startswith("text/html")
    assert page.inner_text("h1") == heading
    assert text in page.inner_text("main")
    assert page.locator("nav.nav a[href='/indicators']").count() == 1  # the menu is there to go on from
    other = "No such page" if lang == "vi" else "Không có trang này"
    assert other not in page.inner_text("main")  # one language per message
    shot(page, f"error-404-{lang}")
    page.context.close()


def test_unknown_address_before_login_is_a_page_too(site) -> None:
    with httpx.Client(base_url=site.url) as client:
        resp = client.get("/submissions/x/y/z")
    assert resp.status_code == 404 and resp.headers["content-type"].startswith("text/html")
    assert "Không có trang này" in resp.text and '{"error"' not in resp.text


@pytest.mark.parametrize(("lang", "text"), [
    ("vi", "Trang này không nhận yêu cầu kiểu này"),
    ("en", "This page does not accept this kind of request"),
])
def test_wrong_method_is_a_page_with_its_allow_header(site, lang, text) -> None:
    with httpx.Client(base_url=site.url, cookies={"lang": lang}) as client:
        resp = client.delete("/indicators")
    assert resp.status_code == 405 and resp.headers["content-type"].startswith("text/html")
    assert text in resp.text
    assert "GET" in resp.headers.get("allow", "")


def test_machine_endpoints_keep_their_own_error_shapes(site) -> None:
    with httpx.Client(base_url=site.url) as client:
        api = client.get("/api/v1/no-such-thing")
        collect = client.get(f"/v1/key/{site.seeded.token}/projects/1/no-such-thing")
        central = client.get("/v1/projects/1/no-such-thing", headers={"Accept": "application/json"})
    assert api.status_code == 404 and api.headers["content-type"].startswith("application/json")
    assert collect.status_code == 404 and "xml" in collect.headers["content-type"]
    assert "<OpenRosaResponse" in collect.text
    assert central.status_code == 404 and "<html" not in central.text.lower()


def test_favicon(browser, site) -> None:
    with httpx.Client(base_url=site.url, follow_redirects=True) as client:
        icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert icon.text.lstrip().startswith("<svg")
    page = new_page(browser, site)
    page.goto("/login")
    href = page.get_attribute("link[rel=icon]", "href")
    assert href and page.request.get(href).status == 200
    page.context.close()


# --- words and numbers officers read -------------------------------------------------------------------


def test_round_history_and_forms_in_the_chosen_language(browser, site) -> None:
    rnd = create_round(site.store, "Đợt lịch sử", "2026-Q4", ["tother"], [COMMUNE], actor="tinh.thainguyen")
    set_state(site.store, rnd.id, "open", actor="tinh.thainguyen")
    page = new_page(browser, site, lang="en")
    login(page, "tinh.thainguyen")
    page.goto(f"/rounds/{rnd.id}")
    history = page.inner_text("main section:has(h2:has-text('History')) table")
    assert "Round created" in history and "Round opened" in history
    assert "\tcreate" not in history and "\topen" not in history
    assert "Tạo đợt" not in history
    forms = page.inner_text("dl.kv")
    assert "Biểu không được giao" in forms and "tother" in forms  # the title, then the code as a detail
    page.goto(f"/rounds/{rnd.id}?lang=vi")
    history = page.inner_text("main section:has(h2:has-text('Lịch sử')) table")
    assert "Tạo đợt" in history and "Mở đợt" in history and "Round created" not in history
    page.goto("/rounds")
    row = page.inner_text(f"tr[data-round='{rnd.id}']")
    assert "Biểu không được giao" in row
    page.goto("/submissions?form=tform")  # the records of one form: its title in the filter, not in each row
    assert page.locator("select[name=form] option:checked").inner_text().startswith("Biểu thử")
    page.context.close()


def test_numbers_stay_whole_in_table_cells_on_a_phone(browser, site) -> None:
    page = new_page(browser, site, viewport=PHONE)
    login(page, "tinh.thainguyen")
    page.goto("/rounds/r-open")
    assert page.evaluate(ANYWHERE_JS) == []
    # every "covered/expected" figure is drawn on one line, whatever the cell's width
    lines = page.evaluate("""[...document.querySelectorAll('td.cov, td.num')].flatMap(td => {
        const walk = document.createTreeWalker(td, NodeFilter.SHOW_TEXT);
        const out = [];
        for (let n = walk.nextNode(); n; n = walk.nextNode()) {
            if (!n.textContent.includes('/')) continue;
            const r = document.createRange(); r.selectNodeContents(n);
            const tops = new Set([...r.getClientRects()].map(x => Math.round(x.top)));
            out.push([n.textContent.trim(), tops.size]);
        }
        return out;
    })""")
    assert lines, "no figures on the round page"
    broken = [text for text, n in lines if n > 1]
    assert not broken, broken
    page.context.close()


# --- the crawl -----------------------------------------------------------------------------------------


def _normal(url: str, origin: str) -> str | None:
    """A same-origin page address without the language switch (the same page), else None."""
    parts = urlsplit(url)
    if f"{parts.scheme}://{parts.netloc}" != origin or parts.path.startswith("/static/"):
        return None
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k not in ("lang", "msg")])
    return parts.path + (f"?{query}" if query else "")


@pytest.mark.parametrize("username", ["quantri", "tinh.thainguyen", "xa.phuongtien", "nguoixem"])
def test_crawl_every_link_for_each_role(browser, site, username) -> None:
    assert username in ACCOUNTS
    page = new_page(browser, site, viewport=LAPTOP)
    login(page, username)
    origin = site.url.rstrip("/")
    seen: set[str] = set()
    queue = ["/"]
    failures: list[str] = []
    visited = 0
    while queue and visited < CRAWL_LIMIT:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        resp = page.request.get(path, max_redirects=5)
        visited += 1
        kind = resp.headers.get("content-type", "")
        if resp.status >= 500:
            failures.append(f"{path}: {resp.status}")
            continue
        if "json" in kind or resp.text().lstrip().startswith(("{", "[")) and "html" not in kind:
            failures.append(f"{path}: raw JSON ({resp.status})")
            continue
        if not kind.startswith("text/html"):
            continue  # a download (Excel, zip, QR image): checked by its own tests
        page.goto(path)
        if "/login" in page.url:
            failures.append(f"{path}: logged out")
            break
        wrapped = page.evaluate(ANYWHERE_JS)
        if wrapped:
            failures.append(f"{path}: overflow-wrap:anywhere on {wrapped[:3]}")
        for href in page.evaluate("[...document.querySelectorAll('a[href]')].map(a => a.href)"):
            target = _normal(href, origin)
            if target and target not in seen and target not in queue:
                queue.append(target)
    assert visited >= 8, f"{username} reached only {sorted(seen)}"
    assert not failures, failures
    page.context.close()


def test_the_persons_menu_entry_before_f1_is_published_is_a_page_saying_so(site) -> None:
    """This site has no F1: the menu still leads to a page that says why it is empty, not to an error."""
    client = http_login(site.url, "nguoixem")
    resp = client.get("/persons")
    client.close()
    assert resp.status_code == 200
    assert "biểu mẫu F1 chưa được đăng" in resp.text and "Lỗi" not in resp.text


def test_plugins_page_names_the_plan_and_the_forms_it_brings(browser, site) -> None:
    """Officers read which plan a plugin carries and the titles of its forms and indicators; the plugin's
    name, version and hooks are technical details, folded away; on a laptop the page is at most two
    screens tall."""
    from rasoat.core.xlsform import compile_xlsform, publish_form
    from rasoat.plugins import thai_nguyen

    compiled = compile_xlsform(Path(thai_nguyen.__file__).parent / "forms" / "tn_xom_checklist.xlsx",
                               validate=True)
    publish_form(site.store, compiled, {}, "thai_nguyen")  # as `rasoat serve` publishes it at start
    for viewport in (LAPTOP, PHONE):
        page = new_page(browser, site, viewport=viewport)
        login(page, "nguoixem")
        page.click("nav >> text=Plugin")
        height = page.evaluate("document.documentElement.scrollHeight")
        if viewport is LAPTOP:  # one compact card per plan, details folded (it was 4,130 px on a desktop)
            assert height <= 2 * LAPTOP["height"], f"the plugins page is {height} px tall on a laptop"
        card = page.locator("article.plan[data-plugin='thai_nguyen']")
        text = card.inner_text()
        assert card.locator("h2").inner_text() == "Tỉnh Thái Nguyên"
        assert "Kế hoạch thực hiện Đề án 03/ĐA-TU" in text and "UBND xã Phượng Tiến" in text
        assert "2026–2030" in text
        assert compiled.title in card.locator("ul.plugin-forms").inner_text()
        card.locator("details.plugin-indicators summary").click()  # 16 indicators: folded, one click away
        assert "Tỷ lệ người sử dụng, nghiện, sau cai, loạn thần được thống kê" in card.inner_text()
        assert "plan_info" not in text and "hookimpl" not in text  # hooks folded away
        assert card.locator("details.technical").get_attribute("open") is None
        national = page.locator("article.plan[data-plugin='rasoat.core.builtin.national']")
        assert national.locator("h2").inner_text() == "Chương trình quốc gia"
        assert "rasoat.core.builtin.national" not in national.inner_text()
        assert "Bộ biểu mẫu và chỉ tiêu quốc gia" in national.inner_text()
        assert "National" not in national.inner_text()  # one language on a Vietnamese page
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        shot(page, f"plugins-{'laptop' if viewport is LAPTOP else 'phone'}")
        page.context.close()
