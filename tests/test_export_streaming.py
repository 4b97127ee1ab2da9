"""Exports streamed to the client: the pipe between the writer thread and the response, then the CSV zip
and the workbook downloaded through the real server (web page and JSON API), scoped and audited."""

from __future__ import annotations

import base64
import csv
import io
import threading
import zipfile
from contextlib import closing

import anyio
import httpx
import openpyxl
import pytest
from rasoat.server.streaming import CHUNK, stream_file
from server_support import COMMUNE, OTHER_COMMUNE
from web_support import ACCOUNTS, HERE_NAMES, http_login


def test_first_bytes_leave_before_the_writer_is_done() -> None:
    """The writer waits for the client to have its first chunk: without streaming this would never end."""
    seen_first = threading.Event()

    def write(out) -> None:
        out.write(b"x" * CHUNK)
        assert seen_first.wait(10), "the first chunk never reached the client"
        out.write(b"y" * 10)

    async def consume() -> bytes:
        got = b""
        async for chunk in stream_file(write):
            got += chunk
            seen_first.set()
        return got

    assert anyio.run(consume) == b"x" * CHUNK + b"y" * 10


def test_a_slow_client_holds_the_writer_back_and_a_gone_client_stops_it() -> None:
    written = []
    stopped = threading.Event()

    def write(out) -> None:
        try:
            for _ in range(1000):  # 250 MB if nothing held it back
                out.write(b"z" * CHUNK)
                written.append(1)
        finally:
            stopped.set()

    async def take_one_and_leave() -> None:
        stream = stream_file(write)
        await stream.__anext__()
        await anyio.sleep(0.5)  # the writer fills the small queue, then waits
        assert len(written) <= 12
        await stream.aclose()  # the client goes away

    anyio.run(take_one_and_leave)
    assert stopped.wait(10) and len(written) < 20



def _csv_files(content: bytes) -> dict[str, list[dict[str, str]]]:
    with zipfile.ZipFile(io.BytesIO(content)) as z:
        out = {}
        for name in z.namelist():
            raw = z.read(name)
            assert raw.startswith(b"\xef\xbb\xbf")
            out[name] = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
        return out


def test_web_csv_download_is_streamed_scoped_and_audited(site) -> None:
    with closing(http_login(site.url, "xa.phuongtien")) as client:
        with client.stream("GET", "/exports/raw?form=tform&format=csv&labels=none&personal=1") as resp:
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("application/zip")
            assert "content-length" not in resp.headers  # sent as it is written, not buffered first
            assert resp.headers["content-disposition"].startswith('attachment; filename="tform-')
            content = resp.read()
        files = _csv_files(content)
        main = files["tform.csv"]
        assert {r["KEY"] for r in main} >= set(site.here_ids)
        assert not {r["KEY"] for r in main} & set(site.there_ids)
        assert {r["commune_code"] for r in main} == {COMMUNE}
        assert {r["name"] for r in main if r["KEY"] in site.here_ids} == set(HERE_NAMES)  # Vietnamese intact
        [event] = [
            e
            for e in site.store.iter_audit(actor="xa.phuongtien")
            if e.action == "export.raw" and e.details.get("format") == "csv"
        ]
        assert COMMUNE in event.details["filters"] and event.details["submissions"] == len(main)
        assert client.get(f"/exports/raw?form=tform&format=csv&unit={OTHER_COMMUNE}").status_code == 403
        assert client.get("/exports/raw?form=no_such_form&format=csv").status_code == 404


def test_web_workbook_download_still_opens(site) -> None:
    with closing(http_login(site.url, "tinh.thainguyen")) as client:
        resp = client.get("/exports/raw?form=tform&labels=none")
        assert resp.status_code == 200 and resp.headers["content-type"].startswith(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
        wb = openpyxl.load_workbook(io.BytesIO(resp.content), read_only=True)
        keys = {row[0] for row in wb.worksheets[0].iter_rows(min_row=2, values_only=True)}
        assert set(site.here_ids + site.there_ids) <= keys


def _basic(username: str) -> dict[str, str]:
    raw = base64.b64encode(f"{username}:{ACCOUNTS[username][0]}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def test_api_csv_zip_is_cut_to_the_officers_units(site) -> None:
    with httpx.Client(base_url=f"{site.url}/api/v1", timeout=30) as api:
        resp = api.get("/forms/tform/export.csv.zip?labels=en", headers=_basic("xa.phuongtien"))
        assert resp.status_code == 200, resp.text
        main = _csv_files(resp.content)["tform.csv"]
        keys = {r["KEY"] for r in main}
        assert keys >= set(site.here_ids) and not keys & set(site.there_ids)
        assert "Commune code" in main[0]
        resp = api.get(f"/forms/tform/export.csv.zip?unit={OTHER_COMMUNE}", headers=_basic("xa.phuongtien"))
        assert resp.status_code == 403
        resp = api.get("/forms/tform/export.csv.zip?labels=fr", headers=_basic("xa.phuongtien"))
        assert resp.status_code == 400
        assert api.get("/forms/nope/export.csv.zip", headers=_basic("tinh.thainguyen")).status_code == 404
        resp = api.get("/forms/tform/export.xlsx", headers=_basic("tinh.thainguyen"))
        assert resp.status_code == 200
        wb = openpyxl.load_workbook(io.BytesIO(resp.content), read_only=True)
        keys = {row[0] for row in wb.worksheets[0].iter_rows(min_row=2, values_only=True)}
        assert set(site.here_ids + site.there_ids) <= keys


@pytest.mark.parametrize("via", ["web", "api"])
def test_workbook_download_starts_before_the_export_is_written(site, monkeypatch, via: str) -> None:
    """Reading the store waits, after the first submission, until the client holds the workbook's first
    bytes: were the workbook built before it is sent (xlsxwriter's own close()), this would never happen."""
    first_bytes = threading.Event()
    waited: list[bool] = []
    read = site.store.iter_submissions

    def iter_submissions(*args, **kwargs):
        for n, sub in enumerate(read(*args, **kwargs)):
            if n == 1:
                waited.append(first_bytes.wait(10))
            yield sub

    monkeypatch.setattr(site.store, "iter_submissions", iter_submissions)
    if via == "web":
        client = http_login(site.url, "tinh.thainguyen")
        url = "/exports/raw?form=tform&labels=none"
    else:
        client = httpx.Client(base_url=site.url, headers=_basic("tinh.thainguyen"), timeout=30)
        url = "/api/v1/forms/tform/export.xlsx"
    with closing(client), client.stream("GET", url) as resp:
        assert resp.status_code == 200
        chunks = resp.iter_raw()
        head = next(chunks)
        first_bytes.set()
        content = head + b"".join(chunks)
    assert waited == [True]
    assert head.startswith(b"PK\x03\x04") and b"xl/worksheets/sheet1.xml" in head[:80]  # the main sheet
    wb = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
    keys = {row[0] for row in wb.worksheets[0].iter_rows(min_row=2, values_only=True)}
    assert set(site.here_ids + site.there_ids) <= keys


def test_a_parameter_the_api_cannot_read_is_refused_in_its_shape(site) -> None:
    """litestar checks the declared query parameters; its refusal is rasoat's API problem (server.errors)."""
    with httpx.Client(base_url=site.url, headers=_basic("tinh.thainguyen"), timeout=30) as client:
        resp = client.get("/api/v1/forms/tform/export.xlsx", params={"personal": "maybe"})
    assert resp.status_code == 400 and resp.json()["code"] == "request.invalid_value"
    assert "personal" in resp.json()["error"]
