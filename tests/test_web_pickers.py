"""The unit and period pickers over plain HTTP: what each officer is offered stays inside their units,
the unit search finds names with or without diacritics and codes, and every period kind is suggested.
The browser drives the same pickers by keyboard in tests/test_web_province.py."""

from __future__ import annotations

import re

from rasoat.core.indicators.periods import Period
from rasoat.core.units import get_units
from server_support import COMMUNE, OTHER_COMMUNE
from web_support import http_login


def offered(html: str, name: str) -> list[str]:
    """The option values of the unit picker's select called ``name``."""
    match = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', html, re.S)
    assert match, f"no select {name}"
    return [v for v in re.findall(r'<option value="([^"]*)"', match.group(1)) if v]


def test_a_commune_officers_pickers_offer_only_their_units(site) -> None:
    mine = get_units().expand([COMMUNE])
    client = http_login(site.url, "xa.phuongtien")
    for path, name in [("/indicators", "unit"), ("/exports", "unit")]:
        codes = offered(client.get(path).text, name)
        assert codes and COMMUNE in codes, path
        assert set(codes) <= mine, f"{path} offers units outside Phượng Tiến: {set(codes) - mine}"
    # the search reaches names and codes inside the scope only
    assert [u["code"] for u in client.get("/units/search", params={"q": "Phượng Tiến"}).json()] == [COMMUNE]
    assert client.get("/units/search", params={"q": "tan cuong"}).json() == []
    assert client.get("/units/search", params={"q": OTHER_COMMUNE}).json() == []
    hamlets = client.get("/units/search", params={"q": "xom 1"}).json()
    assert hamlets and all(u["code"] in mine and u["level"] == "hamlet" for u in hamlets)


def test_a_province_officer_finds_any_unit_of_the_province(site) -> None:
    province = get_units().expand(["19"])
    client = http_login(site.url, "tinh.thainguyen")
    for path, name in [("/indicators", "unit"), ("/rounds", "units"), ("/audit", "unit")]:
        codes = offered(client.get(path).text, name)
        assert len(codes) == 1 + 92 and set(codes) <= province, path  # the province and its communes
    found = client.get("/units/search", params={"q": "tan cuong"}).json()  # no diacritics
    assert found[0]["code"] == OTHER_COMMUNE and found[0]["name"] == "Xã Tân Cương"
    assert "Thái Nguyên" in found[0]["path"]
    # a commune's page asks for communes only (the persons and management pages' chooser)
    assert {u["level"] for u in client.get("/units/search", params={"q": "xom 1"}).json()} == {"hamlet"}
    assert client.get("/units/search", params={"q": "xom 1", "level": "commune"}).json() == []
    communes = client.get("/units/search", params={"q": "phuong tien", "level": "commune"}).json()
    assert communes[0]["code"] == COMMUNE and {u["level"] for u in communes} == {"commune"}
    assert client.get("/units/search", params={"q": OTHER_COMMUNE}).json()[0]["code"] == OTHER_COMMUNE
    assert client.get("/units/search", params={"q": "Hà Nội"}).json() == []  # another province


def test_the_search_needs_a_login(site) -> None:
    import httpx

    resp = httpx.get(f"{site.url}/units/search", params={"q": "tan cuong"}, follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"].startswith("/login")


def test_the_period_picker_suggests_every_kind_and_the_server_reads_them(site) -> None:
    client = http_login(site.url, "tinh.thainguyen")
    html = client.get("/indicators").text
    datalist = re.search(r"<datalist[^>]*>(.*?)</datalist>", html, re.S)
    assert datalist
    values = re.findall(r'<option value="([^"]+)">', datalist[1])
    kinds = {Period.parse(v).kind.value for v in values}
    assert kinds == {"year", "half", "quarter", "month", "week", "qd28"}
    year = values[0]
    qd28 = f"Năm đánh giá QĐ 28 {year} (15/12/{int(year) - 1}–14/12/{year})"
    assert f'<option value="{year}-QD28">{qd28}</option>' in html
    for period in (f"{year}-QD28", f"{year}-W07", f"{year}-H1"):
        page = client.get("/indicators", params={"unit": "19", "period": period})
        assert page.status_code == 200 and f'value="{period}"' in page.text, period
