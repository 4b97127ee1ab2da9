"""Statuses that never lie (issue 19, item 2): a commune that sent nothing is "No data" on every indicator,
in the CLI's JSON, the Excel report and the web pages; a register's empty list is a zero only where the
unit reported for the period; every figure says how many units reported of how many expected; and each
figure links to one definition (item 9)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import openpyxl
import pytest
from indicators_support import add
from rasoat.core.cli import main
from rasoat.core.excel.from_store import indicator_report
from rasoat.core.plugins import build_manager, set_manager
from rasoat.core.storage.opening import open_store

REPORTING, QUIET = "05563", "05503"  # Xã Phượng Tiến sends its data; Xã Tân Cương (same province) does not


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    set_manager(build_manager())
    root = tmp_path_factory.mktemp("honesty") / "data"
    store = open_store(root)
    add(store, "f2_pledge", f"{REPORTING}-01", {"ref_date": "2026-03-01", "households_total": "40",
                                               "households_pledged": "30"})
    add(store, "f8_activity", REPORTING, {"act_date": "2026-04-01", "venue_type": "hamlet",
                                          "media_products": "2"})
    store.close()
    yield root
    set_manager(None)


def test_a_commune_that_sent_nothing_has_no_data_on_every_indicator_in_the_cli(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["indicators", "--data", str(data_dir), "--unit", QUIET, "--period", "2026", "--json"]) == 0
    rows = [r for r in json.loads(capsys.readouterr().out) if r["unit_code"] == QUIET]
    assert len(rows) > 20  # the national pack and Thái Nguyên's plan
    assert {r["status"] for r in rows} == {"no_data"}
    assert {r["status_label"] for r in rows} == {"Không có số liệu / No data"}
    assert all(r["value"] is None for r in rows)
    # the register indicators ("= 0 new hotspots") are not a met zero for a commune that sent nothing
    hotspots = next(r for r in rows if r["indicator_id"] == "nat_hotspots_new")
    assert (hotspots["value"], hotspots["units_reported"], hotspots["units_expected"]) == (None, 0, 1)


def test_the_reporting_commune_has_its_zero_and_says_who_reported(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["indicators", "--data", str(data_dir), "--unit", "19", "--level", "commune", "--period",
                 "2026", "--json", "--indicator", "nat_hotspots_new", "--indicator",
                 "nat_prevention_communes"]) == 0
    rows = {(r["unit_code"], r["indicator_id"]): r for r in json.loads(capsys.readouterr().out)}
    here = rows[(REPORTING, "nat_hotspots_new")]
    assert (here["value"], here["status"]) == (0, "met")  # it reported in 2026 and listed no new hotspot
    province = rows[("19", "nat_prevention_communes")]
    assert province["units_reported"] == 1 and province["units_expected"] > 90  # 1 of Thái Nguyên's communes
    assert province["reporting_level"] == "commune"


def test_the_excel_report_of_a_quiet_commune_says_no_data_everywhere(data_dir: Path, tmp_path: Path) -> None:
    store = open_store(data_dir)
    out = tmp_path / "quiet.xlsx"
    try:
        indicator_report(store, out, unit_code=QUIET, period="2026")
    finally:
        store.close()
    ws = openpyxl.load_workbook(out)["Cấp xã"]
    header = [c.value for c in ws[1]]
    status = header.index("Đánh giá\nStatus")
    reported = header.index("Đơn vị đã báo cáo\nUnits reported")
    rows = list(ws.iter_rows(min_row=2, values_only=True))
    assert rows and {r[status] for r in rows} == {"Không có số liệu"}
    assert {r[reported] for r in rows if r[2] == "nat_hotspots_new"} == {"0/1 xã"}


def test_the_web_page_of_a_quiet_commune_says_no_data_and_links_definitions(site: SimpleNamespace) -> None:
    from web_support import http_login

    client = http_login(site.url, "tinh.thainguyen")
    quiet = "01849"  # Xã Phong Quang, another Thái Nguyên commune, with no submission at all
    page = client.get(f"/indicators?unit={quiet}&period=2026")
    assert page.status_code == 200
    badges = re.findall(r'<span class="badge [^"]+">([^<]+)</span>', page.text)
    assert badges and set(badges) == {"Không có số liệu"}  # the page speaks the officer's language
    assert "tn_xom_drug_free" in page.text  # its province's plan is there
    assert "hcm_venues_checked" not in page.text  # another province's is not
    link = "/indicators/definition/nat_household_pledges"
    assert link in page.text
    definition = client.get(link)
    assert definition.status_code == 200
    text = definition.text
    assert "tổng households_pledged (f2_pledge)" in text and "tổng households_total (f2_pledge)" in text
    # the source form (by its code here: this store has not published F2, so it has no title for it)
    assert 'class="forms">f2_pledge</dd>' in text
    assert client.get("/indicators/definition/no_such_indicator").status_code == 404


def test_the_overview_pledge_figure_is_the_indicator_and_links_its_definition(site: SimpleNamespace) -> None:
    """Item 9, one number one meaning: the overview's pledge figure for a round is the pledge indicator for
    the same unit and period, as the indicators page shows it (with how many units reported), and it links
    to the indicator's definition. By hand: 30 of 40 and 29 of 60 households = 59 of 100 = 59 %."""
    from datetime import datetime

    from rasoat.core.indicators.periods import LOCAL_TZ
    from rasoat.core.models import Round, RoundState
    from web_support import http_login

    year = str(datetime.now(LOCAL_TZ).year)
    site.store.put_round(Round(id="r-pledge", name="Đợt ký cam kết", period=year, form_ids=["f2_pledge"],
                               unit_codes=[REPORTING], state=RoundState.open))
    for hamlet, total, pledged in (("01", "40", "30"), ("02", "60", "29")):
        add(site.store, "f2_pledge", f"{REPORTING}-{hamlet}", {"ref_date": f"{year}-03-01",
            "households_total": total, "households_pledged": pledged}, day=f"{year}-03-01")
    client = http_login(site.url, "xa.phuongtien")
    overview = client.get("/").text
    block = overview[overview.index('data-round="r-pledge"'):]
    figure = re.search(r'<div class="pledge-figure" data-unit="05563">.*?<a href="([^"]+)">([^<]+)</a>'
                       r'.*?<small>[^:<]+: ([^<]+)</small> <a class="def-link" href="([^"]+)"', block, re.S)
    assert figure, block[:2000]
    link, value, reported, definition = figure.groups()
    assert value == "59 %"
    same = client.get(link.replace("&amp;", "&")).text
    row = re.search(r'<tr data-indicator="nat_household_pledges">.*?<td class="num" [^>]*>([^<]+)</td>.*?'
                    r'<td class="num reported" [^>]*>([^<]+)</td>', same, re.S)
    assert row and row.groups() == (value, reported)  # the indicators page, same unit and period
    assert reported.startswith("2/")  # two hamlets reported, out of the commune's list
    page = client.get(definition)
    assert page.status_code == 200
    assert "tổng households_pledged (f2_pledge)" in page.text
    assert "tổng households_total (f2_pledge)" in page.text


def test_the_overview_reads_its_units_figures_once(
    site: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pledge round of the officer's unit and year: the overview's pledge figure and its off-target table
    are one evaluation, looked up once per visit (each look-up counts the store's records)."""
    from datetime import datetime

    from rasoat.core.indicators.periods import LOCAL_TZ
    from rasoat.core.models import Round, RoundState
    from rasoat.server.web import pages_overview
    from web_support import http_login

    year = str(datetime.now(LOCAL_TZ).year)
    site.store.put_round(Round(id="r-pledge", name="Đợt ký cam kết", period=year, form_ids=["f2_pledge"],
                               unit_codes=[REPORTING], state=RoundState.open))
    asked: list[tuple[object, ...]] = []

    remembered = pages_overview.remembered

    def counted(ctx: Any, key: tuple[object, ...], compute: Any, **kw: Any) -> Any:
        asked.append(key)
        return remembered(ctx, key, compute, **kw)

    monkeypatch.setattr(pages_overview, "remembered", counted)
    page = http_login(site.url, "xa.phuongtien").get("/")
    assert page.status_code == 200 and 'data-round="r-pledge"' in page.text
    assert asked.count(("evaluate", REPORTING, year)) == 1, asked
