"""``rasoat serve`` and ``rasoat collectors`` as officers use them, the server in its own process."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import xml.etree.ElementTree as ET

import httpx
import pytest
from server_support import (
    COMMUNE,
    CollectClient,
    ProcessServer,
    instance_xml,
    multipart,
    opened_store,
    run_cli,
    seeded_store,
)

pytestmark = pytest.mark.slow  # rasoat serve in subprocesses

XF = "{http://openrosa.org/xforms/xformsList}"


def form_ids(resp: httpx.Response) -> list[str]:
    root = ET.fromstring(resp.content)
    return [x.findtext(f"{XF}formID") for x in root.findall(f"{XF}xform")]


@pytest.fixture(scope="module")
def served(tmp_path_factory, module_backend_url):
    """A seeded data dir (embedded, or PostgreSQL) served by ``rasoat serve`` in a subprocess."""
    data = tmp_path_factory.mktemp("served") / "data"
    with seeded_store(data, module_backend_url) as (_store, seeded):
        pass
    server = ProcessServer(data, "--no-demo", database_url=module_backend_url).start()
    yield server, seeded
    server.stop()


def cli(server: ProcessServer, *args: str) -> subprocess.CompletedProcess:
    """``rasoat ARGS`` on the served data dir (and its database)."""
    return run_cli(*args, "--data", str(server.data_dir), database_url=server.database_url)


def test_collector_added_by_cli_while_serving_works_at_once(served) -> None:
    server, _ = served
    out = cli(server, "collectors", "add", "Hoàng Thị E", "--unit", COMMUNE, "--round", "r-open", "--json",
              "--url", server.url)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["url"] == f"{server.url}/v1/key/{info['token']}/projects/1"
    assert len(info["token"]) >= 64
    client = CollectClient(info["url"])
    resp = client.get("/formList")
    assert resp.status_code == 200 and form_ids(resp) == ["tform"]
    _, xml = instance_xml()
    assert client.submit(xml).status_code == 201

    listed = cli(server, "collectors", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {r["id"]: r for r in json.loads(listed.stdout)}
    assert rows[info["id"]]["rounds"] == ["r-open"] and rows[info["id"]]["active"] is True
    assert info["token"] not in listed.stdout  # tokens are never shown again

    revoked = cli(server, "collectors", "revoke", info["id"])
    assert revoked.returncode == 0, revoked.stderr
    assert client.get("/formList").status_code == 403
    client.close()


def test_collector_add_errors_are_one_line(served) -> None:
    server, _ = served
    out = cli(server, "collectors", "add", "X", "--unit", "99999")
    assert out.returncode == 1
    assert out.stderr.startswith("Lỗi / Error:") and "99999" in out.stderr and "Traceback" not in out.stderr
    out = cli(server, "collectors", "add", "X", "--unit", COMMUNE, "--round", "nope")
    assert out.returncode == 1 and "nope" in out.stderr


def test_digest_collector_by_cli(served) -> None:
    server, _ = served
    out = cli(server, "collectors", "add", "Vũ F", "--unit", COMMUNE, "--round", "r-open", "--password",
              "--json", "--url", server.url)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    client = CollectClient(info["digest_url"], info["username"], info["password"])
    resp = client.get("/formList")
    assert resp.status_code == 200 and form_ids(resp) == ["tform"]
    client.close()


def test_sigterm_lets_an_upload_in_flight_finish(tmp_path, backend_url) -> None:
    data = tmp_path / "data"
    with seeded_store(data, backend_url) as (_store, seeded):
        pass
    server = ProcessServer(data, "--no-demo", database_url=backend_url).start()
    iid, xml = instance_xml(photo="slow.jpg")
    body, ctype = multipart(xml, {"slow.jpg": b"s" * 200_000})
    result: dict[str, httpx.Response] = {}
    sending = threading.Event()

    def slow_body():
        for n, i in enumerate(range(0, len(body), 20_000)):
            if n == 2:
                sending.set()  # connected, headers and two chunks sent
            yield body[i : i + 20_000]
            time.sleep(0.15)

    def upload() -> None:
        result["resp"] = httpx.post(
            f"{server.url}/v1/key/{seeded.token}/projects/1/submission",
            content=slow_body(),
            headers={"Content-Type": ctype, "X-OpenRosa-Version": "1.0"},
            timeout=60,
        )

    thread = threading.Thread(target=upload)
    thread.start()
    assert sending.wait(60), "the upload never started"
    time.sleep(0.3)  # the server is reading the body (on a loaded machine a fixed pause alone was too short)
    code = server.terminate()
    thread.join(timeout=60)
    assert code == 0, server.output()
    assert result["resp"].status_code == 201, result["resp"].text
    with opened_store(data, backend_url) as store:
        assert store.attachment(iid, "slow.jpg") == b"s" * 200_000


def test_serve_sets_up_a_demo_on_an_empty_data_dir(tmp_path) -> None:
    data = tmp_path / "fresh"
    server = ProcessServer(data).start(timeout=120)
    try:
        # the banner is printed before uvicorn starts; give stdout a moment to reach the log
        deadline = time.monotonic() + 10
        while "/v1/key/" not in server.output() and time.monotonic() < deadline:
            time.sleep(0.1)
        out = server.output()
        url = next(line.strip() for line in out.splitlines() if "/v1/key/" in line)
        assert url.startswith(server.url)
        client = CollectClient(url)
        ids = form_ids(client.get("/formList"))
        assert "f1_person" in ids and "f2_pledge" in ids
        manifest = client.get("/forms/f2_pledge/manifest")
        assert manifest.status_code == 200 and b"communes.csv" in manifest.content
        client.close()
        health = httpx.get(f"{server.url}/health").json()
        assert health["status"] == "ok" and health["free_disk_bytes"] > 0
    finally:
        assert server.terminate() == 0
    # a second start does not set the demo up again, and still prints the demo URL
    again = ProcessServer(data, port=server.port).start(timeout=120)
    try:
        time.sleep(0.5)
        assert "Demo set up" not in again.output()
    finally:
        again.terminate()


def test_the_server_loads_the_unit_registry_first_and_keeps_it_out_of_the_collectors_walks(tmp_path) -> None:
    """Before the first request the server has the unit registry and the indicators loaded, and whatever
    is alive then is left out of the garbage collector's full collections (gc.freeze): they no longer walk
    the registry's units and every module on whichever page they fall on."""
    import gc

    from rasoat.core.units import get_units, reset_units
    from rasoat.server.app import ServerSettings
    from rasoat.server.runner import build_app

    reset_units()
    app = build_app(tmp_path / "data", None, ServerSettings())
    try:
        registry = get_units()  # the one loaded by build_app, not loaded now
        assert gc.get_freeze_count() > 0
        assert not any(o is registry for o in gc.get_objects())  # frozen objects are not walked
    finally:
        gc.unfreeze()
        app.state["rasoat"].store.close()
