"""Several server processes on one PostgreSQL database, as behind a load balancer: the same submissions
sent to two servers at once are stored exactly once with every attachment, and a Digest challenge
issued by one server is honoured by the other (no state lives in a process)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from pg_support import fresh_schema
from rasoat.core.storage.base import SubmissionQuery
from rasoat.core.storage.postgres import PostgresStore
from server_support import COMMUNE, CollectClient, ProcessServer, Seeded, instance_xml, seed

pytestmark = pytest.mark.slow  # two server processes on one PostgreSQL

N = 40
Servers = tuple[PostgresStore, Seeded, list[str]]


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    with fresh_schema() as (url, _schema):
        data = tmp_path_factory.mktemp("pg-servers") / "data"  # the shared attachments path
        store = PostgresStore(url, data)
        seeded = seed(store)
        # one server with two uvicorn workers, one plain: three processes on one database
        servers = [ProcessServer(data, "--database", url, "--no-demo", "--workers", "2"),
                   ProcessServer(data, "--database", url, "--no-demo")]
        try:
            for s in servers:
                s.start()
            yield store, seeded, [s.url for s in servers]
        finally:
            for s in servers:
                s.stop()
            store.close()


def test_same_submissions_to_two_servers_at_once(two_servers: Servers) -> None:
    store, seeded, urls = two_servers
    clients = [CollectClient(f"{u}/v1/key/{seeded.token}/projects/1") for u in urls]
    plan = []
    for i in range(N):
        iid, xml = instance_xml(instance_id=f"uuid:two-{i:03d}", hamlet="", photo="p.jpg", audit="audit.csv")
        if i % 4 == 3:  # the other server gets different XML for the same instanceID
            _, other = instance_xml(instance_id=iid, photo="p.jpg", audit="audit.csv", name="Người khác")
            plan.append((iid, [(xml, {"p.jpg": b"photo", "audit.csv": b"event"}), (other, {})], "conflict"))
        elif i % 2 == 1:  # a split upload: each server gets one of the two files
            plan.append((iid, [(xml, {"p.jpg": b"photo"}), (xml, {"audit.csv": b"event"})], "split"))
        else:  # a retry: both get everything
            files = {"p.jpg": b"photo", "audit.csv": b"event"}
            plan.append((iid, [(xml, files), (xml, files)], "same"))
    barrier_lock = threading.Lock()
    statuses: dict[str, list[int]] = {}

    def send(job: tuple[str, int, bytes, dict[str, bytes]]) -> None:
        iid, n, xml, files = job
        client = clients[n]
        assert client.head("/submission").status_code == 204
        code = client.submit(xml, files).status_code
        with barrier_lock:
            statuses.setdefault(iid, []).append(code)

    jobs = [(iid, n, xml, files) for iid, sends, _ in plan for n, (xml, files) in enumerate(sends)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(send, jobs))
    for c in clients:
        c.close()

    assert store.count_submissions(SubmissionQuery(form_id="tform", current_only=False)) == N
    for iid, _sends, kind in plan:
        got = store.get_submission(iid)
        assert got is not None and got.unit_code and got.unit_code.startswith(COMMUNE)
        if kind == "conflict":
            assert sorted(statuses[iid]) == [201, 409], (iid, statuses[iid])
        else:
            assert statuses[iid] == [201, 201], (iid, statuses[iid])
        if kind != "conflict" or len(got.attachments) == 2:
            assert got.attachments == ["audit.csv", "p.jpg"], (iid, got.attachments)
            assert store.attachment(iid, "p.jpg") == b"photo"
            assert store.attachment(iid, "audit.csv") == b"event"


def test_digest_nonce_from_one_server_is_honoured_by_the_other(
    two_servers: Servers,
) -> None:
    store, seeded, urls = two_servers
    client = CollectClient(f"{urls[0]}/v1/projects/1", seeded.digest_user, seeded.digest_password)
    assert client.get("/formList").status_code == 200 and client.challenges == 1
    client.base = f"{urls[1]}/v1/projects/1"  # the load balancer sends the next request elsewhere
    iid, xml = instance_xml(instance_id="uuid:digest-across")
    assert client.submit(xml).status_code == 201
    assert client.challenges == 1  # the other server knew the nonce: no new challenge
    client.close()
    assert store.get_submission(iid) is not None
