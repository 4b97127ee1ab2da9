"""Small-cell protection (issue 19, item 6): one or two persons in a hamlet are shown as "< 3" to users
without the identity permission, in the web pages, the JSON API and the Excel report; officers who may see
persons, communes and non-person figures keep their numbers."""

from __future__ import annotations

import io
import re
from types import SimpleNamespace

import httpx
import openpyxl
import pytest
from indicators_support import add
from rasoat.core.indicators.models import IndicatorResult, Level, Status
from rasoat.core.indicators.privacy import protect

HAMLET_ONE, HAMLET_THREE = "05563-01", "05563-02"


def _result(ind: str, level: Level, numerator: int) -> IndicatorResult:
    return IndicatorResult(indicator_id=ind, name_vi="x", name_en="x", unit_code="u", unit_name="u",
                           level=level, period="2026", value=numerator, numerator=numerator, denominator=None,
                           factor=1, unit_label="người", status=Status.no_target, status_label="")


def test_only_small_person_counts_below_the_commune_are_withheld() -> None:
    rows = [_result("persons", Level.hamlet, 1), _result("persons", Level.hamlet, 2),
            _result("persons", Level.hamlet, 3), _result("persons", Level.hamlet, 0),
            _result("persons", Level.commune, 1), _result("hotspots", Level.hamlet, 1)]
    out = protect(rows, {"persons"}, threshold=3)
    assert [r.suppressed for r in out] == ["< 3", "< 3", None, None, None, None]
    assert out[0].value is None and out[0].numerator is None
    assert [r.value for r in out[2:]] == [3, 0, 1, 1]
    assert protect(rows, {"persons"}, threshold=5)[2].suppressed == "< 5"


@pytest.fixture(scope="module")
def site(site: SimpleNamespace) -> SimpleNamespace:
    """The web test site (tests/web_support.py), plus persons of a small and a large hamlet."""
    people = [(HAMLET_ONE, "p1")] + [(HAMLET_THREE, f"p{n}") for n in range(2, 5)]
    for hamlet, key in people:
        add(site.store, "f1_person", hamlet, {"person_key": key, "present": "yes", "ref_date": "2026-03-01",
                                              "category": "addict"})
    return site


def _cells(client: httpx.Client) -> dict[str, str]:
    page = client.get("/indicators?unit=05563&period=2026&ind=nat_persons_listed")
    assert page.status_code == 200
    cells = {}
    for code in (HAMLET_ONE, HAMLET_THREE):
        row = re.search(rf"<tr data-unit=\"{code}\">(.*?)</tr>", page.text, re.S)
        assert row, code
        cells[code] = re.findall(r'<td class="num" data-label="[^"]+">([^<]*)</td>', row.group(1))[0]
    return cells


def test_a_viewer_sees_less_than_three_and_an_officer_the_number(site: SimpleNamespace) -> None:
    from web_support import http_login

    viewer = http_login(site.url, "nguoixem")  # role viewer: no identity permission
    assert _cells(viewer) == {HAMLET_ONE: "&lt; 3", HAMLET_THREE: "3 người"}
    officer = http_login(site.url, "xa.phuongtien")
    assert _cells(officer) == {HAMLET_ONE: "1 người", HAMLET_THREE: "3 người"}
    # the Excel report a viewer downloads says the same
    report = viewer.get("/exports/report?period=2026&unit=05563")
    assert report.status_code == 200
    ws = openpyxl.load_workbook(io.BytesIO(report.content))["Cấp thôn"]
    values = {(r[0], r[2]): r[5] for r in ws.iter_rows(min_row=2, values_only=True)}
    assert values[(HAMLET_ONE, "nat_persons_listed")] == "< 3"
    assert values[(HAMLET_THREE, "nat_persons_listed")] == 3


def test_the_json_api_withholds_them_too(site: SimpleNamespace) -> None:
    from rasoat.core.users import new_api_token

    rows = {}
    for username in ("nguoixem", "xa.phuongtien"):
        token = new_api_token(site.store, username)
        resp = httpx.get(f"{site.url}/api/v1/indicators", params={"unit": "05563", "period": "2026"},
                         headers={"Authorization": f"Bearer {token}"}, timeout=60)
        assert resp.status_code == 200, resp.text
        rows[username] = {r["unit_code"]: r for r in resp.json()["results"]
                          if r["indicator_id"] == "nat_persons_listed"}
    assert rows["nguoixem"][HAMLET_ONE]["suppressed"] == "< 3"
    assert rows["nguoixem"][HAMLET_ONE]["numerator"] is None
    assert rows["nguoixem"][HAMLET_THREE]["numerator"] == 3
    assert rows["xa.phuongtien"][HAMLET_ONE]["numerator"] == 1
