"""The province indicators page at province scale (issue 21): Thái Nguyên's 92 communes, a third of them
with data, in Debian chromium at a desktop's 1366×768 and a phone's 390×844. The page stays within about
three desktop screens, every commune is reachable from it (pages and a search by name with or without
diacritics, or by code), each chart holds one entry per unit it claims, and the unit and period pickers
work from the keyboard."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rasoat.core.models import Submission
from rasoat.core.units import ascii_name, get_units
from rasoat.server import web
from rasoat.server.web.charts import ChartRow, bar_chart
from server_support import COMMUNE, OTHER_COMMUNE, instance_xml
from web_support import (
    INDICATOR_ID,
    browser_tests,
    login,
    new_page,
    no_horizontal_overflow,
    shot,
)

pytestmark = browser_tests()

DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
PROVINCE = "19"  # Thái Nguyên: 92 communes and wards


@pytest.fixture(scope="module")
def site(site):
    """The web test site (tests/web_support.py), plus this year's test-form records in every third commune
    of the province (1 to 4 each, so some meet the target of 2 and some do not)."""
    communes = get_units().communes(PROVINCE)
    now = datetime.now(UTC)
    items = []
    for i, commune in enumerate(communes[::3]):
        for n in range(1 + i % 4):
            iid, xml = instance_xml(commune=commune.code, name=f"Người thử {i}-{n}")
            sub = Submission(instance_id=iid, form_id="tform", form_version="1", unit_code=commune.code,
                             received_at=now, xml_md5=hashlib.md5(xml).hexdigest(),
                             fields={"province": PROVINCE, "commune": commune.code, "name": "x"})
            items.append((sub, xml, {}))
    site.store.put_many_submissions(items)
    site.communes = {c.code: c.name for c in communes}
    site.with_data = {c.code for c in communes[::3]} | {COMMUNE, OTHER_COMMUNE}
    return site


def province_page(page) -> None:
    page.goto(f"/indicators?unit={PROVINCE}&ind={INDICATOR_ID}")


def listed_units(page) -> list[str]:
    return page.eval_on_selector_all("table.below tr[data-unit]", "rows => rows.map(r => r.dataset.unit)")


def test_province_page_fits_three_screens_and_reaches_every_commune(browser, site) -> None:
    page = new_page(browser, site, viewport=DESKTOP)
    login(page, "tinh.thainguyen")
    province_page(page)
    height = page.evaluate("document.documentElement.scrollHeight")
    shot(page, "indicators-province-desktop")
    assert height <= 3 * 800, f"the province page is {height} px tall on a 1366×768 screen"

    # the chart of communes: one entry per commune with data, the others counted in its title
    chart = page.locator("#units-chart svg.chart")
    drawn = chart.evaluate("svg => [...svg.querySelectorAll('g.chart-row')].map(g => g.dataset.key)")
    assert sorted(drawn) == sorted(site.with_data)
    missing = len(site.communes) - len(site.with_data)
    assert f"{missing} đơn vị chưa có số liệu" in (chart.get_attribute("aria-label") or "")
    assert chart.locator("line.chart-target").count() == 1
    assert "Đường mục tiêu" in page.inner_text("#units-chart .legend")

    # worst first, the communes that reported on top: the first page holds only communes with data
    first = listed_units(page)
    assert len(first) == 15 and set(first) <= site.with_data
    assert "Chưa đạt" in page.inner_text(f"table.below tr[data-unit='{first[0]}']")

    # every commune is on one of the pages, each once
    seen = list(first)
    while page.locator("nav.pager a[rel=next]").count():
        page.click("nav.pager a[rel=next]")
        page.wait_for_load_state()
        seen += listed_units(page)
    assert sorted(seen) == sorted(site.communes)

    # and found by name without diacritics, with them, or by code
    for code in sorted(site.with_data)[:3]:
        plain = ascii_name(site.communes[code]).split(" ", 1)[1].lower()  # "Xã Phượng Tiến" → "phuong tien"
        for query in (plain, site.communes[code], code):
            page.fill(".unit-search input[name=q]", query)
            page.click(".unit-search button[type=submit]")
            page.wait_for_load_state()
            assert code in listed_units(page), query

    # the province's own figure over the last five years, against the target
    history = page.locator("#history-chart svg.chart")
    year = int(page.input_value(".period-picker input[name=period]"))
    keys = history.evaluate("svg => [...svg.querySelectorAll('g.chart-row')].map(g => g.dataset.key)")
    assert keys == [str(y) for y in range(year - 4, year + 1)]
    assert history.locator("line.chart-target").count() == 1
    page.context.close()


def test_province_page_on_a_phone(browser, site) -> None:
    page = new_page(browser, site, viewport=PHONE)
    login(page, "tinh.thainguyen")
    province_page(page)
    shot(page, "indicators-province-phone")
    assert no_horizontal_overflow(page)
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height <= 12 * PHONE["height"], f"the province page is {height} px tall on a phone"
    chart = page.locator("#units-chart svg.chart")
    assert chart.locator("g.chart-row").count() == len(site.with_data)
    page.fill(".unit-search input[name=q]", "tan cuong")
    page.click(".unit-search button[type=submit]")
    page.wait_for_load_state()
    assert listed_units(page) == [OTHER_COMMUNE]
    page.context.close()


def test_pick_a_unit_and_a_period_by_keyboard(browser, site) -> None:
    page = new_page(browser, site, viewport=DESKTOP)
    login(page, "tinh.thainguyen")
    province_page(page)
    page.focus(".unit-picker input[type=search]")
    page.keyboard.type("phuong tien")  # no diacritics: Xã Phượng Tiến
    page.keyboard.press("Enter")
    assert page.input_value(".unit-picker select[name=unit]") == COMMUNE
    year = page.input_value(".period-picker input[name=period]")
    page.keyboard.press("Tab")  # the period's name
    page.keyboard.press("Tab")  # its kind
    page.keyboard.press("ArrowDown")  # year → half year
    page.keyboard.press("Tab")  # year
    page.keyboard.press("Tab")  # which half
    page.keyboard.press("ArrowDown")
    assert page.input_value(".period-picker input[name=period]") == f"{year}-H2"
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the filter button
    page.wait_for_url(lambda url: f"unit={COMMUNE}" in url)
    assert f"period={year}-H2" in page.url
    assert "Xã Phượng Tiến" in page.inner_text("main h2")
    shot(page, "indicators-pickers-desktop")
    page.context.close()


def test_a_round_over_the_province_lists_the_communes_that_sent_records(browser, site) -> None:
    """A round over Thái Nguyên's 92 communes made the overview 6,448 px tall on a desktop, a row for each
    commune (the screenshot review): the communes with records are rows, the others named in one fold."""
    from rasoat.core.models import Round, RoundState

    site.store.put_round(Round(id="r-tinh", name="Rà soát toàn tỉnh", period=str(datetime.now(UTC).year),
                               form_ids=["tform"], unit_codes=[PROVINCE], state=RoundState.open))
    sent = sorted(site.with_data - {COMMUNE, OTHER_COMMUNE})[:4]
    items = []
    for code in sent:
        iid, xml = instance_xml(commune=code, name=f"Người đợt tỉnh {code}")
        items.append((Submission(instance_id=iid, form_id="tform", form_version="1", unit_code=code,
                                 round_id="r-tinh", received_at=datetime.now(UTC),
                                 xml_md5=hashlib.md5(xml).hexdigest(), fields={"commune": code}), xml, {}))
    site.store.put_many_submissions(items)
    for viewport in (DESKTOP, PHONE):
        page = new_page(browser, site, viewport=viewport)
        login(page, "tinh.thainguyen")
        card = page.locator("article.round[data-round='r-tinh']")
        rows = card.locator("table.progress > tbody > tr[data-unit]").evaluate_all(
            "rs => rs.map(r => r.dataset.unit)")
        assert sorted(rows) == sent
        idle = card.locator("details.idle-communes")
        assert "Xã, phường chưa có bản ghi (88)" in idle.locator("summary").inner_text()
        assert idle.locator("[data-unit]").count() == 88
        assert no_horizontal_overflow(page)
        if viewport is DESKTOP:
            height = page.evaluate("document.documentElement.scrollHeight")
            assert height <= 3 * DESKTOP["height"], f"the overview is {height} px tall"
        page.context.close()


def test_a_charts_figures_are_drawn_whole(browser) -> None:
    """A long figure ("102 persons" on the English chart over the periods) was cut at the chart's edge."""
    css = (Path(web.__file__).parent / "static" / "web.css").read_text(encoding="utf-8")
    rows = [ChartRow(label="2025", value=18, status="not_met", text="18 persons", key="2025"),
            ChartRow(label="2026", value=1234567.5, status="not_met", text="1.234.567,5 persons", key="2026")]
    page = browser.new_page(viewport={"width": 1366, "height": 800})
    page.set_content(f"<style>{css}</style><main>{bar_chart(rows, target=0)}</main>")
    cut = page.evaluate("() => { const svg = document.querySelector('svg.chart');"
                        " const w = svg.viewBox.baseVal.width;"
                        " return [...svg.querySelectorAll('text.chart-value')]"
                        ".filter(t => t.getBBox().x + t.getBBox().width > w).map(t => t.textContent) }")
    assert cut == []
    page.close()
