"""Form drafts in a real browser (Debian chromium, tests/web_support.py's site): an XLSForm with a mistake is
shown as a table naming its sheet and row and nothing is kept; a good one becomes a draft whose page carries
a QR code that ODK Collect would read as the draft's test address; publishing it makes it the form's next
version. The Collect side (form list, download, test submission) is tested in tests/test_form_drafts.py."""

from __future__ import annotations

from pathlib import Path

import openpyxl
from rasoat.core.collect_settings import decode_settings
from rasoat.core.drafts import get_draft
from web_support import PHONE, browser_tests, login, new_page, no_horizontal_overflow, shot

pytestmark = browser_tests()


def xlsform(path: Path, form_id: str, version: str, broken: bool = False) -> Path:
    wb = openpyxl.Workbook()
    survey = wb.active
    survey.title = "survey"
    survey.append(["type", "name", "label"])
    survey.append(["text", "ho_ten", "Họ và tên"])
    survey.append(["integer", "tuoi", "Tuổi"])
    survey.append(["texxt" if broken else "text", "dia_chi", "Địa chỉ"])  # row 4
    settings = wb.create_sheet("settings")
    settings.append(["form_id", "version", "form_title"])
    settings.append([form_id, version, "Biểu mẫu thử nghiệm"])
    wb.save(path)
    return path


def test_a_broken_xlsform_shows_its_sheet_and_row(browser, site, tmp_path: Path) -> None:
    page = new_page(browser, site)
    login(page, "tinh.thainguyen")
    page.goto("/rounds")
    page.click("text=Tải lên biểu mẫu mới")  # the rounds page sends the officer to the forms page
    page.set_input_files("input[name=file]", str(xlsform(tmp_path / "bieu_loi.xlsx", "bieu_loi", "1", True)))
    page.uncheck("input[name=validate]")  # pyxform finds this one; ODK Validate is not needed
    page.click("#upload button[type=submit]")
    error = page.locator("table.form-errors tr.form-error")
    error.wait_for()
    assert error.locator(".row-number").inner_text() == "4"
    text = error.inner_text()
    assert "bieu_loi.xlsx" in text and "survey" in text
    assert "Loại câu hỏi không hợp lệ: 'texxt'" in text and "Unknown question type" not in text  # vi only
    assert site.store.get_form("bieu_loi") is None and get_draft(site.store, "bieu_loi") is None
    shot(page, "xlsform-error-laptop")
    page.context.close()


def test_a_draft_page_has_a_test_qr_code_and_publishes_the_next_version(browser, site, tmp_path) -> None:
    import zxingcpp
    from PIL import Image

    page = new_page(browser, site)
    login(page, "tinh.thainguyen")
    page.goto("/forms")
    page.set_input_files("input[name=file]", str(xlsform(tmp_path / "bieu_nhap.xlsx", "bieu_nhap", "3")))
    page.uncheck("input[name=validate]")
    page.click("#upload button[type=submit]")
    page.wait_for_url("**/forms/bieu_nhap/draft**")
    assert "Đã lưu bản nháp" in page.inner_text(".flash")
    assert page.inner_text("#draft-version") == "3"
    # the QR code, read as a phone's camera would, is the draft's test address
    picture = tmp_path / "qr.png"
    page.locator(".qr-draft svg").screenshot(path=str(picture))
    # one text, however many times zxing finds the code in the picture (it has reported it twice)
    [text] = {code.text for code in zxingcpp.read_barcodes(Image.open(picture).convert("L"))}
    settings = decode_settings(text)
    draft = get_draft(site.store, "bieu_nhap")
    url = settings["general"]["server_url"]
    assert url == page.inner_text("#draft-url")
    assert url.endswith(f"/v1/test/{draft.token}/projects/1/forms/bieu_nhap/draft")
    assert settings["project"]["name"] == "[Nháp] Biểu mẫu thử nghiệm"
    shot(page, "form-draft-laptop")
    # the page in English: each message in one language
    page.goto("/forms/bieu_nhap/draft?lang=en")
    assert "Test submissions (0)" in page.inner_text("#tests h2")
    assert "Bản ghi thử" not in page.inner_text("main")
    page.goto("/forms/bieu_nhap/draft?lang=vi")
    page.select_option("select[name=round]", "r-open")
    page.click("#publish-draft")
    page.wait_for_url("**/forms?**")
    assert "Đã đăng biểu mẫu" in page.inner_text(".flash")
    assert page.inner_text("#published tr[data-form='bieu_nhap'] .version") == "3"
    assert "bieu_nhap" in site.store.get_round("r-open").form_ids
    assert get_draft(site.store, "bieu_nhap") is None
    page.context.close()

    phone = new_page(browser, site, viewport=PHONE)
    login(phone, "tinh.thainguyen")
    phone.goto("/forms")
    phone.set_input_files("input[name=file]", str(xlsform(tmp_path / "bieu_nhap4.xlsx", "bieu_nhap", "4")))
    phone.uncheck("input[name=validate]")
    phone.click("#upload button[type=submit]")
    phone.wait_for_url("**/forms/bieu_nhap/draft**")
    assert no_horizontal_overflow(phone)
    shot(phone, "form-draft-phone")
    phone.once("dialog", lambda dialog: dialog.dismiss())  # "Discard this draft…?" — no: nothing changes
    phone.click("#discard-draft")
    assert get_draft(site.store, "bieu_nhap") is not None
    phone.once("dialog", lambda dialog: dialog.accept())
    phone.click("#discard-draft")
    phone.wait_for_url("**/forms?**")
    assert "Đã huỷ bản nháp" in phone.inner_text(".flash") and get_draft(site.store, "bieu_nhap") is None
    assert site.store.get_form("bieu_nhap").version == "3"  # the published version stays
    phone.context.close()
