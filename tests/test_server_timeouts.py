"""The server closes half-sent requests itself (``server.timeouts``), without a reverse proxy in front:
a request whose headers never finish, and a body that stops arriving, are cut; a slow body that keeps
moving is not."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import uvicorn
from rasoat.core.storage.opening import open_store
from rasoat.server.app import ServerSettings, create_app
from rasoat.server.runner import uvicorn_options
from rasoat.server.timeouts import TimedHttpProtocol
from server_support import free_port, instance_xml, multipart, seed


class QuickTimeouts(TimedHttpProtocol):
    header_timeout = 1.0
    body_idle_timeout = 1.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    store = open_store(Path(tmp_path_factory.mktemp("timeouts")) / "data")
    seeded = seed(store)
    options = {**uvicorn_options(), "http": QuickTimeouts}
    assert uvicorn_options()["http"] is TimedHttpProtocol  # what `rasoat serve` runs
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(store, ServerSettings()), host="127.0.0.1", port=port,
                                        **options))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.02)
    yield SimpleNamespace(port=port, token=seeded.token)
    srv.should_exit = True
    thread.join(timeout=30)
    store.close()


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Does the server close the connection (EOF) within ``seconds``, sending no more than a response?"""
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


def test_headers_that_never_finish_are_closed(server) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"POST /v1/projects/1/submission HTTP/1.1\r\nHost: x\r\nX-OpenRosa-Version: 1.0\r\n")
        started = time.monotonic()
        assert closed_within(sock, 6)
        assert time.monotonic() - started >= 0.9


def test_a_connection_that_sends_nothing_is_closed(server) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        assert closed_within(sock, 6)


def _submission_head(server, length: int) -> bytes:
    return (
        f"POST /v1/key/{server.token}/projects/1/submission HTTP/1.1\r\nHost: x\r\n"
        f"X-OpenRosa-Version: 1.0\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


BOUNDARY = "4c1f0a62-1b7e-4d3e-9f0a-0b1b2c3d4e5f"


def test_a_body_that_stops_is_closed(server) -> None:
    body, _ = multipart(instance_xml()[1], boundary=BOUNDARY)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(_submission_head(server, len(body)) + body[: len(body) // 2])
        assert closed_within(sock, 6)


def test_a_slow_body_that_keeps_moving_is_received(server) -> None:
    body, _ = multipart(instance_xml()[1], boundary=BOUNDARY)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(_submission_head(server, len(body)))
        step = len(body) // 6 + 1
        for i in range(0, len(body), step):  # 6 pieces, 0.4 s apart: 2.4 s in all, never 1 s idle
            sock.sendall(body[i : i + step])
            time.sleep(0.4)
        sock.settimeout(10)
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 201"), answer[:200]
