"""The officer pages in a real browser: Debian's headless chromium driven by Playwright, against a real
uvicorn server over a real store (tests/web_support.py). One browser for the whole module.

Screenshots go to tests/artifacts/web/ (git-ignored) for a person to look at: Vietnamese diacritics,
laptop and phone layouts.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import openpyxl
from rasoat.core.models import ReviewState
from server_support import COMMUNE, OTHER_COMMUNE
from web_support import (
    HERE_NAMES,
    INDICATOR_ID,
    OTHER_NAMES,
    PHONE,
    browser_tests,
    login,
    new_page,
    no_horizontal_overflow,
    shot,
)

pytestmark = browser_tests()



# --- the flows officers use ---------------------------------------------------------------------------


def test_log_in_and_see_the_round_progress(browser, site) -> None:
    page = new_page(browser, site)
    page.goto("/login")
    page.fill("input[name=username]", "tinh.thainguyen")
    page.fill("input[name=password]", "sai-mật-khẩu-rồi")
    page.click("button[type=submit]")
    assert "Sai tên đăng nhập hoặc mật khẩu" in page.inner_text(".error")
    login(page, "tinh.thainguyen")
    assert page.inner_text("h1") == "Tổng quan"
    card = page.locator("article.round[data-round='r-open']")
    assert "Đợt mở" in card.inner_text()
    row = card.locator(f"tr[data-unit='{COMMUNE}']")
    assert "Xã Phượng Tiến" in row.inner_text()
    assert "3/8" in row.inner_text()  # submissions in 3 of the commune's 8 xóm
    card.locator("details summary").first.click()
    hamlet = card.locator("tr[data-unit='05563-01']")
    assert "Xóm 1" in hamlet.inner_text() and "Đã có" in hamlet.inner_text()
    assert "Chưa có" in card.locator("tr[data-unit='05563-08']").inner_text()
    latest = page.locator("table.subs")
    assert latest.locator("tr[data-instance]").count() == len(HERE_NAMES) + len(OTHER_NAMES)
    shot(page, "overview-province-laptop")
    page.context.close()


def _lines(page, selector: str) -> list[int]:
    """How many lines each matching cell's text takes."""
    return page.eval_on_selector_all(selector, """cells => cells.map(td => {
        const range = document.createRange(); range.selectNodeContents(td);
        return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size; })""")


def test_the_latest_records_keep_each_unit_name_on_one_line(browser, site) -> None:
    """The overview's unit column wrapped "Xóm 1" (the screenshot review): no more at 1366 or 800 px, and on a
    390 px phone the rows are cards with nothing wider than the screen."""
    for viewport in (
        {"width": 1366, "height": 768}, {"width": 800, "height": 1000}, {"width": 390, "height": 844},
    ):
        page = new_page(browser, site, viewport=viewport)
        login(page, "tinh.thainguyen")
        units = page.eval_on_selector_all("table.subs td.unit", "cells => cells.map(td => td.innerText)")
        assert "Xóm 1" in units and "Xã Tân Cương" in units
        assert set(_lines(page, "table.subs td.unit")) == {1}, viewport
        assert no_horizontal_overflow(page), viewport
        page.context.close()


def test_the_indicators_off_target_name_each_indicator_on_few_lines(browser, site) -> None:
    """Beside the latest records, the overview's indicators off target squeezed each indicator's name to a
    word a line (the screenshot review): the two tables are one above the other, and on a desktop a name
    keeps two lines at most."""
    page = new_page(browser, site, viewport={"width": 1366, "height": 768})
    login(page, "xa.phuongtien")
    names = _lines(page, "table.off-target tr[data-indicator] td:first-child > a:first-child")
    assert names and max(names) <= 2, names
    page.context.close()


def test_approve_a_submission_and_see_its_history(browser, site) -> None:
    page = new_page(browser, site)
    login(page, "xa.phuongtien")
    page.click("nav >> text=Bản ghi")
    page.select_option("select[name=form]", "tform")
    page.click("form.filters button[type=submit]")
    shown = page.locator("table.subs tr[data-instance]").evaluate_all(
        "rows => rows.map(r => r.dataset.instance)")
    assert set(site.here_ids) <= set(shown) and not set(site.there_ids) & set(shown)
    assert len(shown) == len(HERE_NAMES) + 2  # and last year's two
    target = site.here_ids[2]
    page.locator(f"tr[data-instance='{target}'] a").click()
    assert HERE_NAMES[2] in page.inner_text("table.fields")
    # "has issues" needs a comment: the page says so and nothing changes
    page.click("#has-issues")
    assert "Cần ghi chú" in page.inner_text(".error")
    assert site.store.get_submission(target).review_state is ReviewState.received
    page.fill("textarea[name=comment]", "Đã đối chiếu với danh sách của xóm")
    page.click("#approve")
    page.wait_for_selector(".flash")
    assert page.inner_text("#review-state") == "Đã duyệt"
    history = page.inner_text("table.review-history")
    assert "xa.phuongtien" in history and "Đã đối chiếu với danh sách của xóm" in history
    assert site.store.get_submission(target).review_state is ReviewState.approved
    # the attachment is shown as an image
    page.goto(f"/submissions/{site.here_ids[0]}")
    img = page.locator("ul.attachments img")  # loading="lazy": brought into view, then read once loaded
    img.scroll_into_view_if_needed()
    assert img.evaluate("""img => img.complete ? img.naturalWidth : new Promise(done => {
        img.addEventListener('load', () => done(img.naturalWidth));
        img.addEventListener('error', () => done(-1));
    })""") == 40
    shot(page, "submission-detail-laptop")
    page.context.close()


def test_download_the_excel_exports(browser, site, tmp_path: Path) -> None:
    page = new_page(browser, site)
    login(page, "xa.phuongtien")
    page.goto("/exports")
    with page.expect_download() as info:
        page.click("#report button[type=submit]")
    report = tmp_path / "report.xlsx"
    info.value.save_as(report)
    wb = openpyxl.load_workbook(report, read_only=True)
    text = {str(c) for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for c in row if c}
    assert "Số người được rà soát (biểu thử)" in text
    assert any("Xóm 1" in t for t in text)
    assert not any("Tân Cương" in t for t in text)
    page.select_option("#raw select[name=form]", "tform")
    page.select_option("#raw select[name=labels]", "none")
    with page.expect_download() as info:
        page.click("#raw button[type=submit]")
    raw = tmp_path / "raw.xlsx"
    info.value.save_as(raw)
    wb = openpyxl.load_workbook(io.BytesIO(raw.read_bytes()), read_only=True)
    main = wb.worksheets[0]
    values = {str(c) for row in main.iter_rows(values_only=True) for c in row if c is not None}
    assert COMMUNE in values and OTHER_COMMUNE not in values
    assert all(iid in values for iid in site.here_ids)
    assert not any(iid in values for iid in site.there_ids)
    page.select_option("#raw select[name=format]", "csv")  # the same data as CSV files (ODK Central's layout)
    with page.expect_download() as info:
        page.click("#raw button[type=submit]")
    assert info.value.suggested_filename.endswith(".zip")
    zipped = tmp_path / "raw.zip"
    info.value.save_as(zipped)
    with zipfile.ZipFile(zipped) as z:
        text = z.read("tform.csv").decode("utf-8-sig")
    assert all(iid in text for iid in site.here_ids) and not any(iid in text for iid in site.there_ids)
    page.context.close()


def test_indicators_table_and_chart(browser, site) -> None:
    page = new_page(browser, site)
    login(page, "xa.phuongtien")
    page.goto(f"/indicators?unit={COMMUNE}&ind={INDICATOR_ID}")
    own = page.locator(f"table.own tr[data-indicator='{INDICATOR_ID}']")
    assert "5 người" in own.inner_text() and "≥ 2" in own.inner_text() and "Đạt" in own.inner_text()
    assert "+3" in own.inner_text()  # 5 this year, 2 last year
    below = page.locator("table.below")
    assert "Xóm 1" in below.locator("tr[data-unit='05563-01']").inner_text()
    assert "Chưa đạt" in below.locator("tr[data-unit='05563-02']").inner_text()  # 1 < 2
    chart = page.locator("#units-chart svg.chart")
    # three of the eight xóm sent data; the five others are counted, not drawn as zeros
    assert chart.locator("rect.chart-bar").count() == 3
    assert "5 đơn vị chưa có số liệu" in chart.inner_html()
    assert chart.locator("line.chart-target").count() == 1
    shot(page, "indicators-commune-laptop")
    page.context.close()


def test_commune_officer_does_not_see_another_commune(browser, site) -> None:
    page = new_page(browser, site)
    login(page, "xa.tancuong")
    overview = page.inner_text("main")
    assert "Xã Tân Cương" in overview
    assert "Xã Phượng Tiến" not in overview and "Xóm 1" not in overview
    page.goto("/submissions?form=tform")
    listing = page.inner_text("table.subs")
    assert page.locator("table.subs tr[data-instance]").count() == len(OTHER_NAMES)
    assert not any(name in listing for name in HERE_NAMES)
    response = page.goto(f"/submissions/{site.here_ids[0]}")
    assert response is not None and response.status == 403
    assert "nằm ngoài phạm vi" in page.inner_text(".error")
    response = page.goto(f"/indicators?unit={COMMUNE}")
    assert response is not None and response.status == 403
    page.goto("/collectors")
    assert "Nguyễn Văn A" not in page.inner_text("table.collectors")  # Phượng Tiến's collector
    assert "Phạm D" in page.inner_text("table.collectors")
    shot(page, "forbidden-other-commune-laptop")
    page.context.close()


def test_collector_qr_code_scans_to_the_collect_settings(browser, site) -> None:
    import zxingcpp
    from PIL import Image
    from test_mobile_qr import inflate

    page = new_page(browser, site)
    login(page, "xa.phuongtien")
    page.goto("/collectors")
    page.fill("#add-collector input[name=name]", "Đinh Thị Thu Hà")
    page.select_option("#add-collector select[name=units]", ["05563-02"])
    page.check("#add-collector input[name=rounds][value=r-open]")
    page.click("#add-collector button[type=submit]")
    card = page.locator("article.qr-card")
    card.wait_for()
    assert "Đinh Thị Thu Hà" in card.inner_text() and "Xóm 2" in card.inner_text()
    png = card.locator("svg").screenshot()
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert found, "the QR code on the page does not scan"
    settings = inflate(found[0].text)
    assert settings["general"]["server_url"].startswith("http://192.0.2.10:8000/v1/key/")
    assert settings["project"]["name"].endswith("Xã Phượng Tiến")
    shot(page, "qr-card-laptop")
    page.goto("/collectors")
    row = page.locator("tr[data-collector='dinh-thi-thu-ha']")
    page.once("dialog", lambda d: d.accept())
    row.locator("button.danger").click()
    page.wait_for_selector(".flash")
    assert "Đã thu hồi" in page.locator("tr[data-collector='dinh-thi-thu-ha']").inner_text()
    page.context.close()


def test_create_and_open_a_round(browser, site) -> None:
    page = new_page(browser, site)
    login(page, "tinh.thainguyen")
    page.goto("/rounds")
    page.fill("#create-round input[name=name]", "Rà soát bổ sung Tân Cương")
    page.fill("#create-round input[name=period]", "2026-Q3")
    page.check("#create-round input[name=forms][value=tother]")
    page.select_option("#create-round select[name=units]", [OTHER_COMMUNE])
    page.click("#create-round button[type=submit]")
    page.wait_for_selector(".flash")
    assert "Nháp" in page.inner_text("h1")
    page.click("button:has-text('Mở đợt')")
    page.wait_for_selector(".flash")
    assert "Đang mở" in page.inner_text("h1")
    rnd = next(r for r in site.store.list_rounds() if r.name == "Rà soát bổ sung Tân Cương")
    assert rnd.state.value == "open" and rnd.unit_codes == [OTHER_COMMUNE]
    assert any(h["action"] == "open" and h["actor"] == "tinh.thainguyen" for h in rnd.history)
    page.context.close()


# --- language, phones, diacritics -------------------------------------------------------------------


def test_english_switch(browser, site) -> None:
    page = new_page(browser, site)
    login(page, "xa.phuongtien")
    page.click("a.lang")
    assert page.inner_text("h1") == "Overview"
    assert "Open rounds" in page.inner_text("main")
    page.click("nav >> text=Indicators")
    assert "Persons surveyed (test form)" in page.inner_text("main")
    shot(page, "indicators-commune-english")
    page.click("a.lang")
    assert page.inner_text("h1") == "Chỉ tiêu"
    page.context.close()


PHONE_PAGES = [
    ("overview", "/"),
    ("indicators", f"/indicators?unit={COMMUNE}&ind={INDICATOR_ID}"),
    ("submissions", "/submissions?form=tform"),
    ("submission", None),
    ("rounds", "/rounds"),
    ("round", "/rounds/r-open"),
    ("collectors", "/collectors"),
    ("exports", "/exports"),
    ("plugins", "/plugins"),
]


def test_pages_fit_a_phone_screen(browser, site) -> None:
    page = new_page(browser, site, viewport=PHONE)
    page.goto("/login")
    assert no_horizontal_overflow(page)
    shot(page, "login-phone")
    login(page, "xa.phuongtien")
    wide = []
    for name, path in PHONE_PAGES:
        page.goto(path or f"/submissions/{site.here_ids[0]}")
        assert page.locator("h1").count() == 1, name
        if not no_horizontal_overflow(page):
            wide.append(name)
        shot(page, f"{name}-phone")
    assert not wide, f"pages wider than a 375 px phone: {wide}"
    page.context.close()


def test_vietnamese_diacritics_render(browser, site) -> None:
    """Text with every kind of Vietnamese mark reaches the page intact, and is drawn with real glyphs:
    a string of Vietnamese letters must be as wide as the same letters drawn by a font that has them."""
    page = new_page(browser, site)
    login(page, "tinh.thainguyen")
    page.goto(f"/submissions/{site.here_ids[4]}")
    assert "Đặng Quý Hưng" in page.inner_text("table.fields")
    page.goto("/")
    text = page.inner_text("main")
    for word in ["Tổng quan", "Đợt đang mở", "Xã Phượng Tiến", "Thôn có bản ghi", "Bản ghi mới nhất"]:
        assert word in text
    # every marked letter is drawn in the page's own font as a real glyph, not the missing-glyph box
    covered = page.evaluate(
        """() => {
          const font = '20px ' + getComputedStyle(document.body).fontFamily;
          const draw = (ch) => {
            const c = document.createElement('canvas'); c.width = 32; c.height = 32;
            const g = c.getContext('2d'); g.font = font; g.fillText(ch, 4, 24);
            return g.getImageData(0, 0, 32, 32).data.join(',');
          };
          const tofu = draw('\\u{10FFFF}');
          return [...'ấầẩẫậắằẳẵặếềểễệốồổỗộớờởỡợứừửữựđĐ'].filter(ch => draw(ch) === tofu);
        }"""
    )
    assert covered == []
    shot(page, "overview-diacritics")
    page.context.close()
