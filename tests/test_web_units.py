"""Unit lists in Debian's headless chromium against a real server (tests/web_support.py), at desktop width:
a commune officer downloads the hamlet template, uploads a file with errors and sees each row's message
next to what was typed (nothing loaded), then uploads a good one, previews the changes and confirms; the
overview then no longer lists the commune as lacking a hamlet list."""

from __future__ import annotations

from pathlib import Path

import openpyxl
from rasoat.core.unit_lists import units_for, versions
from server_support import COMMUNE, OTHER_COMMUNE
from web_support import browser_tests, login, new_page, shot

pytestmark = browser_tests()
DESKTOP = {"width": 1366, "height": 900}
HEADER = ["Mã xã / Commune code", "Mã thôn / Hamlet code", "Tên thôn, xóm, tổ dân phố / Hamlet name",
          "Số hộ / Households"]
CSV_HEADER = ",".join(f'"{h}"' for h in HEADER)  # as Excel saves it: the name's header holds commas



def upload(page, name: str, text: str) -> None:
    page.select_option("#upload select[name=kind]", "hamlets")
    page.set_input_files("#upload input[name=file]", files=[{"name": name, "mimeType": "text/csv",
                                                             "buffer": text.encode("utf-8")}])
    page.click("#upload button[type=submit]")
    page.wait_for_load_state()


def test_commune_officer_loads_a_hamlet_list(browser, site, tmp_path: Path) -> None:
    page = new_page(browser, site, viewport=DESKTOP)
    login(page, "xa.tancuong")
    assert "Tân Cương" in page.locator(".no-hamlet-list").inner_text()
    page.click("nav.nav a[href='/units']")
    with page.expect_download() as info:
        page.click("#templates a[href='/units/template/hamlets.xlsx']")
    template = tmp_path / info.value.suggested_filename
    info.value.save_as(template)
    header = [c.value for c in openpyxl.load_workbook(template).worksheets[0][1]]
    assert header == HEADER

    wrong = (f"{CSV_HEADER}\n{OTHER_COMMUNE},1,Thôn Hồng Thái,90\n{OTHER_COMMUNE},1,Thôn Trùng Mã,\n"
             f"{COMMUNE},3,Xóm Của Xã Khác,\n{OTHER_COMMUNE},4,,12\n")
    page.goto("/units?lang=en")  # each reason in the page's language only
    upload(page, "thon-loi.csv", wrong)
    rows = page.locator("#problems tbody tr")
    assert [rows.nth(i).locator("td").nth(1).inner_text() for i in range(3)] == [
        f"duplicate code '{OTHER_COMMUNE}-01', also on row 2",
        f"commune {COMMUNE} (Xã Phượng Tiến) is outside your units", "the name is empty"]
    page.goto("/units?lang=vi")
    upload(page, "thon-loi.csv", wrong)
    rows = page.locator("#problems tbody tr")
    assert rows.count() == 3
    assert [rows.nth(i).get_attribute("data-row") for i in range(3)] == ["3", "4", "5"]
    assert rows.nth(0).locator("td").nth(1).inner_text() == f"mã '{OTHER_COMMUNE}-01' trùng với dòng 2"
    outside = f"xã {COMMUNE} (Xã Phượng Tiến) ngoài phạm vi của bạn"
    assert rows.nth(1).locator("td").nth(1).inner_text() == outside
    assert rows.nth(1).locator(".typed").inner_text() == f"{COMMUNE} | 3 | Xóm Của Xã Khác"
    assert rows.nth(2).locator("td").nth(1).inner_text() == "thiếu tên"
    assert page.locator("#upload select[name=kind]").input_value() == "hamlets"
    assert versions(site.store, "hamlets") == []
    shot(page, "unit-lists-refused-desktop")

    upload(page, "thon-tan-cuong.csv", f"\ufeff{CSV_HEADER}\n{OTHER_COMMUNE},1,Thôn Hồng Thái,90\n"
                                       f"{OTHER_COMMUNE},2,Tổ dân phố Tân Thành,140\n")
    change = page.locator(f"#preview [data-commune='{OTHER_COMMUNE}']")
    assert change.locator("li.added").all_inner_texts() == [f"+ {OTHER_COMMUNE}-01 Thôn Hồng Thái",
                                                            f"+ {OTHER_COMMUNE}-02 Tổ dân phố Tân Thành"]
    assert versions(site.store, "hamlets") == []  # a preview applies nothing
    shot(page, "unit-lists-preview-desktop")
    page.click("#preview button[type=submit]")
    page.wait_for_load_state()
    assert page.locator(".flash").inner_text() == "Đã nạp danh sách (phiên bản mới)"
    assert "thon-tan-cuong.csv" in page.locator("#versions [data-version='1']").inner_text()
    cell = page.locator(f"#current tr[data-commune='{OTHER_COMMUNE}'] td[data-kind='hamlets']")
    assert cell.inner_text() == "2 · phiên bản 1 (thon-tan-cuong.csv)"
    assert [(h.code, h.name) for h in units_for(site.store).hamlets(OTHER_COMMUNE)] == [
        (f"{OTHER_COMMUNE}-01", "Thôn Hồng Thái"), (f"{OTHER_COMMUNE}-02", "Tổ dân phố Tân Thành")]
    assert [v["actor"] for v in versions(site.store, "hamlets")] == ["xa.tancuong"]
    page.goto("/")
    assert page.locator(".no-hamlet-list").count() == 0
    page.context.close()
