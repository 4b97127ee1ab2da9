"""A full disk is a 503 with Retry-After and a message Collect shows, not a 500, and nothing half-stored.

The server runs in its own mount namespace (``unshare``) over a data directory on a 6 MB tmpfs, so the
disk really fills: a submission whose photo does not fit gets ENOSPC from the file system."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest
from server_support import CollectClient, free_port, instance_xml

OR = "{http://openrosa.org/http/response}"
HERE = Path(__file__).resolve().parent

SERVER = """
import json, sys, uvicorn
from rasoat.core.storage.opening import open_store
from rasoat.server.app import ServerSettings, create_app
from server_support import seed
store = open_store(sys.argv[1])
seeded = seed(store)
print(json.dumps({"token": seeded.token}), flush=True)
uvicorn.run(create_app(store, ServerSettings()), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /tmp"],
                           capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _namespaces_work(), reason="needs unshare with a private mount namespace and tmpfs")
def test_disk_full_is_503_with_retry_after_and_nothing_stored(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        ["unshare", "-rm", "sh", "-c", 'mount -t tmpfs -o size=6m tmpfs "$1" && shift && exec "$@"', "sh",
         str(data), sys.executable, "-c", SERVER, str(data), str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
    )
    try:
        token = json.loads(proc.stdout.readline())["token"]
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code in (200, 503):
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        client = CollectClient(f"http://127.0.0.1:{port}/v1/key/{token}/projects/1")
        small_iid, small = instance_xml()
        assert client.submit(small).status_code == 201
        iid, xml = instance_xml(photo="big.jpg")
        resp = client.submit(xml, {"big.jpg": os.urandom(8 * 1024 * 1024)})
        assert resp.status_code == 503, resp.text
        assert int(resp.headers["retry-after"]) > 0
        message = ET.fromstring(resp.content).find(f"{OR}message").text
        assert "disk is full" in message and "hết chỗ" in message
        # nothing of it was kept: sent again without the photo, it is new, not a resend
        again = client.submit(xml)
        assert again.status_code == 201
        assert "Form received" in again.text and "resent" not in again.text
        client.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
