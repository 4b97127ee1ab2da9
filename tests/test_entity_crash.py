"""kill -9 during a burst of submissions that create and update entities (issue 23): every acknowledged
submission is there after the restart, and a submission and its entity change are stored together or
not at all (one transaction), on both backends."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from entity_support import new_uuid, publish, register_xml, visit_xml
from rasoat.core.models import Round, RoundState
from rasoat.core.storage.base import EntityQuery
from rasoat.core.storage.opening import open_store
from server_support import CollectClient, ProcessServer

pytestmark = pytest.mark.slow  # kill -9 under load, then a restart

A = "05563"


def test_sigkill_during_entity_updates_keeps_submissions_and_changes_together(tmp_path, backend_url) -> None:
    from rasoat.core.collectors import create_collector

    data = tmp_path / "data"
    store = open_store(data, backend_url)
    try:
        publish(store, "register")
        publish(store, "visit")
        store.put_round(Round(id="r-ent", name="Quản lý", period="2026", unit_codes=[A],
                              form_ids=["ent_register", "ent_visit"], state=RoundState.open))
        _, token = create_collector(store, "Người thu", [A], ["r-ent"])
    finally:
        store.close()
    server = ProcessServer(data, "--no-demo", database_url=backend_url).start()
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[str] = []

    def load(worker: int) -> None:
        client = CollectClient(f"{server.url}/v1/key/{token}/projects/1")
        eid = new_uuid()
        created = False
        n = 0
        while not stop.is_set():
            n += 1
            if not created:
                iid, xml = register_xml(eid, f"Người {worker}")
            else:  # every update from version 1: conflicts, all applied
                iid, xml = visit_xml(eid, 1, status=f"lần {n}", note=f"w{worker}")
            try:
                resp = client.submit(xml)
            except httpx.HTTPError:
                continue  # the server died under this request: no promise was made
            if resp.status_code == 201:
                created = True
                with lock:
                    acked.append(iid)
            elif not stop.is_set():
                errors.append(f"{resp.status_code} {resp.text[:200]}")
        client.close()

    threads = [threading.Thread(target=load, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(acked) < 80 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill()  # SIGKILL while the phones are still sending
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors[:3]
    assert len(acked) >= 40, "the load did not get going before the kill"

    store = open_store(data, backend_url)
    try:
        for iid in acked:
            assert store.get_submission(iid) is not None, f"{iid} got 201 but is gone"
        stored = {s.instance_id for s in store.iter_submissions()}
        changes: dict[str, int] = {}
        entities = store.list_entity_lists()
        assert [x.name for x in entities] == ["persons"]
        for entity in store.iter_entities(EntityQuery(list_name="persons")):
            versions = store.entity_versions(entity.uuid)
            assert [v.version for v in versions] == list(range(1, entity.version + 1))
            for v in versions:
                assert v.instance_id in stored, f"entity change {v.uuid} v{v.version} without its submission"
                changes[v.instance_id or ""] = changes.get(v.instance_id or "", 0) + 1
        failed = [e for e in store.iter_audit() if e.action == "entity.error"]
        assert failed == [], failed[:2]
        assert store.entity_backlog() == []
        for iid in stored:
            assert changes.get(iid) == 1, f"submission {iid} stored without (or with two) entity changes"
    finally:
        store.close()
