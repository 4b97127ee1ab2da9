"""The audit log pages in Debian's headless chromium against a real server (tests/web_support.py): filters
by person, action, unit and day, the province manager's scope, and the Excel export read back with
openpyxl."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import openpyxl
import pytest
from rasoat.core import audit, audit_actions
from rasoat.core.models import AuditEvent
from rasoat.core.units import get_units
from rasoat.core.users import create_user
from server_support import COMMUNE
from web_support import (
    PHONE,
    browser_tests,
    login,
    new_page,
    no_horizontal_overflow,
    shot,
)

pytestmark = browser_tests()

FAR_OFFICER = "xa.ngoaitinh"
OLD_DAY = datetime(2020, 3, 14, 20, 30, tzinfo=UTC)  # 15/03/2020 03:30 in Vietnam


@pytest.fixture(scope="module")
def site(site):
    """The web test site (tests/web_support.py), plus an officer of another province and an old entry."""
    # an officer of another province, and what they did: never shown to Thái Nguyên's manager
    far_commune = next(c for c in get_units().communes() if not c.code.startswith("0"))
    assert not get_units().expand(["19"]) & {far_commune.code}
    create_user(site.store, FAR_OFFICER, "mật-khẩu-ngoài-tỉnh-1", "commune_officer", [far_commune.code],
                actor="quantri")
    audit.record(site.store, FAR_OFFICER, "export.raw", target="tform", unit=far_commune.code)
    # an old entry by a Thái Nguyên officer (the Vietnamese day is the 15th, the UTC day the 14th)
    site.store.append_audit(AuditEvent(at=OLD_DAY, actor="xa.phuongtien", action="view.submission",
                                       target="uuid:cu", details={"unit": COMMUNE}))
    site.far_commune = far_commune.code
    return site


def _rows(page) -> list[list[str]]:
    return page.evaluate("""[...document.querySelectorAll('table.audit tbody tr')]
        .filter(tr => tr.children.length === 5)
        .map(tr => [...tr.children].map(td => td.innerText.trim()))""")


def test_province_manager_filters_the_log_within_the_province(browser, site) -> None:
    page = new_page(browser, site)
    login(page, "tinh.thainguyen")
    with page.expect_navigation():  # rows read from the new page, not the one being left
        page.click("nav >> text=Nhật ký")
    assert page.inner_text("h1") == "Nhật ký thao tác"
    everything = _rows(page)
    actors = {r[1] for r in everything}
    assert "xa.phuongtien" in actors and "tinh.thainguyen" in actors  # logins of the province's officers
    assert FAR_OFFICER not in actors and "quantri" not in actors  # another province; the national admin
    assert all(site.far_commune not in r[4] for r in everything)
    shot(page, "audit-province")

    page.select_option("select[name=person]", "xa.phuongtien")
    page.select_option("select[name=action]", "view")
    with page.expect_navigation():
        page.click("form.filters button[type=submit]")
    rows = _rows(page)
    assert rows and all(r[1] == "xa.phuongtien" and r[2].split()[-1].startswith("view.") for r in rows)
    assert {r[2] for r in rows} <= {audit_actions.label(c, "vi") + " " + c for c in ("view.submission",
                                                                                    "view.submissions")}

    # the Vietnamese day, not the UTC one
    page.goto("/audit?from=2020-03-15&to=2020-03-15")
    rows = _rows(page)
    assert [(r[0], r[3]) for r in rows] == [("15/03/2020 03:30", "uuid:cu")]
    page.goto("/audit?from=2020-03-14&to=2020-03-14")
    assert _rows(page) == []

    page.goto(f"/audit?unit={COMMUNE}&action=view")
    assert [r[3] for r in _rows(page)] == ["uuid:cu"]
    resp = page.goto(f"/audit?unit={site.far_commune}")  # a unit outside the province: refused
    assert resp is not None and resp.status == 403
    page.context.close()


def test_administrator_sees_every_province(browser, site) -> None:
    page = new_page(browser, site, lang="en")
    login(page, "quantri")
    page.goto(f"/audit?person={FAR_OFFICER}")
    assert page.inner_text("h1") == "Audit log"
    rows = _rows(page)
    assert [r[2] for r in rows] == ["Raw data exported export.raw"]  # the page's language, then the code
    page.goto(f"/audit?unit={site.far_commune}")
    assert {r[1] for r in _rows(page)} >= {FAR_OFFICER, "quantri"}  # the entry and the account's creation
    page.context.close()


def test_export_the_filtered_log_to_excel(browser, site, tmp_path: Path) -> None:
    page = new_page(browser, site)
    login(page, "tinh.thainguyen")
    page.goto("/audit?action=login")
    shown = _rows(page)
    assert shown
    with page.expect_download() as info:
        page.click("text=Xuất Excel >> nth=-1")
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    assert path.name.startswith("nhat-ky-audit-") and path.suffix == ".xlsx"
    ws = openpyxl.load_workbook(path).active
    values = list(ws.iter_rows(values_only=True))
    assert values[0] == tuple(audit.HEADERS)
    body = values[1:]
    assert len(body) == len(shown)
    assert all(str(r[3]).startswith("login.") for r in body)  # the code beside its label in both languages
    assert all(r[2] == audit_actions.both(r[3]) and " / " in r[2] for r in body)
    # the page: the label in the page's language, the code after it; the workbook in time order
    assert [(r[1], audit_actions.label(r[3], "vi") + " " + r[3]) for r in body] == [
        (r[1], r[2]) for r in reversed(shown)]
    assert FAR_OFFICER not in {r[1] for r in body}
    # the export is itself in the log
    assert any(e.action == "export.audit" and e.actor == "tinh.thainguyen" for e in site.store.iter_audit())
    page.context.close()


@pytest.mark.parametrize("username", ["xa.phuongtien", "nguoixem"])
def test_officers_without_the_right_do_not_see_the_log(browser, site, username) -> None:
    page = new_page(browser, site)
    login(page, username)
    assert page.locator("nav.nav a[href='/audit']").count() == 0
    resp = page.goto("/audit")
    assert resp is not None and resp.status == 403
    assert page.request.get("/audit.xlsx").status == 403
    page.context.close()


def test_audit_page_fits_a_phone(browser, site) -> None:
    page = new_page(browser, site, viewport=PHONE)
    login(page, "tinh.thainguyen")
    page.goto("/audit")
    assert no_horizontal_overflow(page)
    shot(page, "audit-phone")
    page.context.close()
