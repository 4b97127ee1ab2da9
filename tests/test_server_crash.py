"""A 201 is a promise: a server killed with SIGKILL mid-load keeps every submission it acknowledged."""

from __future__ import annotations

import os
import threading
import time

import httpx
import pytest
from rasoat.core.storage import open_store
from server_support import CollectClient, ProcessServer, instance_xml, seeded_store

pytestmark = pytest.mark.slow  # kill -9 under load, then a restart


def test_sigkill_mid_load_loses_no_acknowledged_submission(tmp_path, backend_url) -> None:
    data = tmp_path / "data"
    with seeded_store(data, backend_url) as (_store, seeded):
        pass
    server = ProcessServer(data, "--no-demo", database_url=backend_url).start()
    acked: dict[str, dict[str, bytes]] = {}
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[str] = []

    def load(worker: int) -> None:
        client = CollectClient(f"{server.url}/v1/key/{seeded.token}/projects/1")
        n = 0
        while not stop.is_set():
            n += 1
            photo = f"w{worker}-{n}.jpg"
            audit = f"event,node\n{worker},{n}\n".encode()
            files = {photo: os.urandom(2000 + n % 7 * 1000), "audit.csv": audit}
            iid, xml = instance_xml(photo=photo, audit="audit.csv", name=f"Người {worker}-{n}")
            try:
                resp = client.submit(xml, files)
            except httpx.HTTPError:
                continue  # the server died under this request: no promise was made
            if resp.status_code == 201:
                with lock:
                    acked[iid] = files
            elif not stop.is_set():
                errors.append(f"{resp.status_code} {resp.text[:200]}")
        client.close()

    threads = [threading.Thread(target=load, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(acked) < 150 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill()  # SIGKILL while the clients are still sending
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors[:3]
    assert len(acked) >= 50, "the load did not get going before the kill"

    # opens cleanly after the crash (replaying or rebuilding what it must)
    store = open_store(data, backend_url)
    try:
        for iid, files in acked.items():
            sub = store.get_submission(iid)
            assert sub is not None, f"{iid} got 201 but is gone"
            for name, content in files.items():
                assert store.attachment(iid, name) == content, f"{iid}/{name} lost or damaged"
        counted = store.count_submissions()
        assert counted >= len(acked)
    finally:
        store.close()

    # and the server comes back and takes submissions
    again = ProcessServer(data, "--no-demo", database_url=backend_url).start()
    try:
        client = CollectClient(f"{again.url}/v1/key/{seeded.token}/projects/1")
        _, xml = instance_xml()
        assert client.submit(xml).status_code == 201
        client.close()
    finally:
        again.terminate()
