"""The assessment page keeps the province's assessment per version of its data (issue 21: reading a
province's registers took most of a second on every visit): a second visit reads no register, and a new
record or a figure an officer typed is on the page at the next visit, on both backends."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from assessment_support import ITS_COMMUNE, LAI_CHAU, YEAR, lai_chau_year, persons, population
from rasoat.core.users import create_user
from server_support import opened_store, serving
from web_support import http_login

PASSWORD = "mật-khẩu-tỉnh-0002"


@pytest.fixture
def site(tmp_path: Path, backend_url: str | None):
    with opened_store(tmp_path / "data", backend_url) as store:
        tinh = create_user(store, "tinh.laichau", PASSWORD, "province_manager", [LAI_CHAU])
        lai_chau_year(store, tinh)
        with serving(store, access_log=False) as server:
            yield server.url, store


def test_a_second_visit_reads_no_register_and_any_change_is_seen_at_once(site, monkeypatch) -> None:
    url, store = site
    scanned: list[str | None] = []

    def counting(name: str) -> None:  # the registers the assessment reads, record by record or totalled
        read = getattr(store, name)

        def counted(query, *args, **kwargs):
            scanned.append(query.form_id if query is not None else None)
            return read(query, *args, **kwargs)

        monkeypatch.setattr(store, name, counted)

    counting("iter_facts")
    counting("aggregate")
    client = http_login(url, "tinh.laichau", PASSWORD)

    def r_pct() -> str:  # R % of the commune with 30 managed users in 10,000 residents
        resp = client.get(f"/assessment?year={YEAR}")
        assert resp.status_code == 200, resp.text
        row = re.search(rf'<tr data-commune="{ITS_COMMUNE}".*?</tr>', resp.text, re.S)
        assert row, resp.text
        cell = re.search(r'data-label="R %">([^<]+)<', row.group(0))
        assert cell
        return cell.group(1)

    assert r_pct() == "0.300" and "f1_person" in scanned
    scanned.clear()
    assert r_pct() == "0.300" and scanned == []  # kept

    persons(store, ITS_COMMUNE, 2, "user")  # two more records
    assert r_pct() == "0.320" and "f1_person" in scanned
    scanned.clear()
    population(store, ITS_COMMUNE, 12_000)  # a typed figure, no record
    assert r_pct() == "0.267" and "f1_person" in scanned
    scanned.clear()
    assert r_pct() == "0.267" and scanned == []
