"""The submission list pages newest first by key (issue 21 item 8): "Older" and "Newer" links carry the
last or first row's (receipt time, instanceID), so walking a list visits every record exactly once even
when records arrive meanwhile (skipping rows by a page number would show one twice), on both backends."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime, timedelta
from html import unescape

import httpx
import pytest
from rasoat.core.models import Submission
from server_support import COMMUNE
from web_support import http_login

ADMIN_PASSWORD = "mật-khẩu-quản-trị"  # tests/conftest.py's live server
T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


@pytest.fixture
def live_server(live_server_any):
    return live_server_any


def record(round_id: str, n: int, at: datetime) -> tuple[Submission, bytes, dict[str, bytes]]:
    xml = f"<data id='tform' version='1'><n>{n}</n></data>".encode()
    sub = Submission(instance_id=f"uuid:{uuid.uuid4()}", form_id="tform", form_version="1", round_id=round_id,
                     unit_code=COMMUNE, received_at=at, xml_md5=hashlib.md5(xml).hexdigest(),
                     fields={"n": str(n)})
    return sub, xml, {}


def rows(html: str) -> list[str]:
    return re.findall(r'<tr data-instance="([^"]+)"', html)


def link(html: str, rel: str) -> str | None:
    found = re.search(rf'<a class="button" rel="{rel}" href="([^"]+)"', html)
    return unescape(found.group(1)) if found else None


def total(html: str) -> str:
    found = re.search(r'<b class="total">([^<]+)</b>', html)
    assert found, html
    return found.group(1)


def get(client: httpx.Client, path: str) -> str:
    resp = client.get(path if path.startswith("/") else f"/submissions{path}")
    assert resp.status_code == 200, resp.text
    return resp.text


def test_older_links_visit_every_record_once_newest_first_though_one_arrives(live_server) -> None:
    store = live_server.store
    round_id = f"r-paging-{uuid.uuid4().hex[:8]}"  # the session's server is shared: this list is ours
    made = [record(round_id, n, T0 + timedelta(minutes=n // 2)) for n in range(117)]  # pairs share a time
    store.put_many_submissions(made)
    subs = sorted((s for s, _, _ in made), key=lambda s: (s.received_at, s.instance_id), reverse=True)
    newest_first = [s.instance_id for s in subs]
    client = http_login(live_server.url, "admin", ADMIN_PASSWORD)

    html = get(client, f"/submissions?form=tform&round={round_id}")
    assert total(html) == "117" and link(html, "prev") is None
    seen = rows(html)
    arrived, xml, files = record(round_id, 999, T0 + timedelta(days=1))
    store.put_many_submissions([(arrived, xml, files)])  # newer than all: the walk goes on without it
    pages = 1
    while (older := link(html, "next")) is not None:
        html = get(client, older)
        seen += rows(html)
        pages += 1
    assert seen == newest_first  # each once, newest first, none shifted by the arrival
    assert pages == 3 and total(html) == "118"

    # and back up with "Newer": the top page now starts with the record that arrived
    while (newer := link(html, "prev")) is not None:
        html = get(client, newer)
    assert rows(html) == [arrived.instance_id, *newest_first[:49]]
    assert link(html, "prev") is None and link(html, "next") is not None


def test_a_key_that_is_not_one_shows_the_newest_page(live_server) -> None:
    store = live_server.store
    round_id = f"r-paging-{uuid.uuid4().hex[:8]}"
    made = [record(round_id, n, T0 + timedelta(minutes=n)) for n in range(3)]
    store.put_many_submissions(made)
    client = http_login(live_server.url, "admin", ADMIN_PASSWORD)
    newest = [s.instance_id for s, _, _ in reversed(made)]
    for junk in ("older=yesterday", "newer=%00", "older=2026-05-04T08:01:00%2B00:00_"):
        html = get(client, f"/submissions?form=tform&round={round_id}&{junk}")
        if junk.startswith("older=2026"):  # a real time with no instanceID: what was received before it
            assert rows(html) == newest[2:]
        else:
            assert rows(html) == newest
