"""Uploads: parts above 1 MiB are spooled to disk and arrive intact; the bytes all uploads of one server
process hold at once are capped, and an upload over the cap gets 503 with Retry-After and an OpenRosa
message (nothing stored), then goes through once room frees."""

from __future__ import annotations

import os
import socket
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from rasoat.core.users import create_user
from server_support import CollectClient, instance_xml, multipart, seeded_store, serving

OR = "{http://openrosa.org/http/response}"
BOUNDARY = "4c1f0a62-1b7e-4d3e-9f0a-0b1b2c3d4e5f"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    with seeded_store(Path(tmp_path_factory.mktemp("uploads")) / "data") as (store, seeded):
        create_user(store, "quantri", "mật-khẩu-quản-trị-1", "admin", actor="test")
        with serving(store, max_body_bytes=20_000_000, max_upload_bytes_in_flight=3_000_000,
                     upload_wait_seconds=0.5) as srv:
            client = CollectClient(f"{srv.url}/v1/key/{seeded.token}/projects/1")
            yield SimpleNamespace(store=store, url=srv.url, port=srv.port, token=seeded.token, client=client)
            client.close()


def test_a_large_attachment_arrives_intact(server) -> None:
    photo = os.urandom(5 * 1024 * 1024)  # above the 1 MiB spool threshold: written to a temporary file
    iid, xml = instance_xml(photo="big.jpg")
    resp = server.client.submit(xml, {"big.jpg": photo})
    assert resp.status_code == 201, resp.text
    assert server.store.attachment(iid, "big.jpg") == photo


def _held_upload(server) -> tuple[str, bytes, bytes]:
    """(instanceID, request head, body) of a 2.5 MB upload: sent partly, it holds that much of the budget."""
    iid, xml = instance_xml(photo="a.jpg")
    body, content_type = multipart(xml, {"a.jpg": os.urandom(2_500_000)}, boundary=BOUNDARY)
    head = (f"POST /v1/key/{server.token}/projects/1/submission HTTP/1.1\r\nHost: x\r\n"
            f"X-OpenRosa-Version: 1.0\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n")
    return iid, head.encode(), body


def test_uploads_over_the_budget_wait_then_get_503_with_retry_after(server) -> None:
    first_iid, head, body = _held_upload(server)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(head + body[:1000])  # holds 2.5 MB of the 3 MB budget while it trickles in
        time.sleep(0.3)
        second_iid, second_xml = instance_xml(photo="b.jpg")
        refused = server.client.submit(second_xml, {"b.jpg": os.urandom(1_000_000)})
        assert refused.status_code == 503
        assert refused.headers["retry-after"].isdigit() and int(refused.headers["retry-after"]) > 0
        text = ET.fromstring(refused.content).find(f"{OR}message").text
        assert "too much data at once" in text and "gửi lại" in text
        assert server.store.get_submission(second_iid) is None
        sock.sendall(body[1000:])
        sock.settimeout(30)
        assert sock.recv(4096).startswith(b"HTTP/1.1 201")
    assert server.store.get_submission(first_iid) is not None
    again = server.client.submit(second_xml, {"b.jpg": os.urandom(1_000_000)})  # room again
    assert again.status_code == 201, again.text


def test_a_single_upload_over_the_budget_is_still_admitted(server) -> None:
    iid, xml = instance_xml(photo="c.jpg")
    resp = server.client.submit(xml, {"c.jpg": os.urandom(4_000_000)})  # alone: more than the budget
    assert resp.status_code == 201, resp.text


def test_a_body_over_the_limit_is_413_even_when_chunked(server) -> None:
    _iid, xml = instance_xml(photo="d.jpg")
    body, content_type = multipart(xml, {"d.jpg": b"x" * 21_000_000})

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is checked as the body streams
        for i in range(0, len(body), 1 << 20):
            yield body[i : i + (1 << 20)]

    resp = server.client.http.post(server.client.url("/submission"), content=chunks(),
                                   headers={"Content-Type": content_type})
    assert resp.status_code == 413
    assert "Upload too large" in resp.text


def test_the_central_api_shares_the_budget(server) -> None:
    """Submissions through the Central API hold the same budget, and are refused in Central's shape."""
    token = httpx.post(f"{server.url}/v1/sessions",
                       json={"email": "quantri", "password": "mật-khẩu-quản-trị-1"}).json()["token"]
    iid, xml = instance_xml()
    padded = xml.replace(b"<name>", b"<name>" + b" " * 1_000_000)  # a 1 MB body: over what is left
    _first, head, body = _held_upload(server)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(head + body[:1000])
        time.sleep(0.3)
        resp = httpx.post(f"{server.url}/v1/projects/1/forms/tform/submissions", content=padded,
                          headers={"Authorization": f"Bearer {token}", "Content-Type": "application/xml"})
        assert resp.status_code == 503, resp.text
        assert resp.json()["code"] == 503.1 and "too much data at once" in resp.json()["message"]
        assert int(resp.headers["retry-after"]) > 0
        assert server.store.get_submission(iid) is None
        sock.sendall(body[1000:])
        sock.settimeout(30)
        assert sock.recv(4096).startswith(b"HTTP/1.1 201")


def test_parts_without_a_file_name_are_taken_as_bytes(server) -> None:
    """A client that sends the instance as a plain field (no filename), in another encoding than UTF-8,
    is read byte for byte (parts are never decoded as text), like a file part."""
    iid, xml = instance_xml(name="Nguyen Van A")
    latin = xml.replace(b"<?xml version='1.0' ?>", b"<?xml version='1.0' encoding='ISO-8859-1'?>")
    latin = latin.replace(b"Nguyen Van A", "Ngô Thé".encode("latin-1"))
    body = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"xml_submission_file\"\r\n\r\n".encode()
            + latin + f"\r\n--{BOUNDARY}--\r\n".encode())
    resp = server.client.http.post(server.client.url("/submission"), content=body,
                                   headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    assert resp.status_code == 201, resp.text
    assert server.store.submission_xml(iid) == latin
    assert server.store.get_submission(iid).fields["name"] == "Ngô Thé"
