"""A Digest Authorization header is accepted once, even when two server processes see it at once.

Each server process holds its own store object on the shared data (two ``EmbeddedStore`` objects on
one data directory, or two ``PostgresStore`` pools on one database); the header with the nonce's next
``nc`` is verified from many threads of both at the same moment: exactly one succeeds, the others are
told the nonce is stale (Collect then asks for a fresh challenge).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pg_support import fresh_schema
from rasoat.core.storage.base import Store
from rasoat.core.storage.embedded import EmbeddedStore
from rasoat.core.storage.postgres import PostgresStore
from rasoat.server import digest


@pytest.fixture(params=["embedded", "postgres"])
def two_processes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    if request.param == "embedded":
        a, b = EmbeddedStore(tmp_path / "data"), EmbeddedStore(tmp_path / "data")
        yield a, b
        a.close()
        b.close()
        return
    with fresh_schema() as (url, _schema):
        a, b = PostgresStore(url, tmp_path / "files"), PostgresStore(url, tmp_path / "files")
        yield a, b
        a.close()
        b.close()


Check = Callable[[Store], digest.DigestResult]


def race(stores: tuple[Store, Store], check: Check) -> list[digest.DigestResult]:
    barrier = threading.Barrier(8)
    results: list[digest.DigestResult] = []

    def run(store: Store) -> None:
        barrier.wait()
        results.append(check(store))

    threads = [threading.Thread(target=run, args=(stores[i % 2],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_the_same_nonce_count_is_accepted_once_across_processes(two_processes: tuple[Store, Store]) -> None:
    a, b = two_processes
    digest.set_password(a, "lan", "mật-khẩu")
    challenge = digest.challenge(a)
    uri = "/v1/projects/1/formList"
    header = digest.authorization_header("GET", uri, "lan", "mật-khẩu", challenge, nc=1)
    results = race((a, b), lambda s: digest.verify(s, "GET", header))
    assert [r.username for r in results].count("lan") == 1
    assert all(r.stale for r in results if r.username is None)
    # the next count still works, from either process; the used one never again
    nxt = digest.authorization_header("GET", uri, "lan", "mật-khẩu", challenge, nc=2)
    assert digest.verify(b, "GET", nxt).username == "lan"
    assert digest.verify(a, "GET", header).stale


def test_forged_or_expired_nonces_are_stale_and_challenges_write_nothing(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "data")
    try:
        digest.set_password(store, "lan", "mật-khẩu")
        uri = "/v1/projects/1/formList"
        good = digest.challenge(store)
        assert digest.verify(store, "GET", digest.authorization_header("GET", uri, "lan", "mật-khẩu", good))\
            .username == "lan"
        nonce = digest.parse_authorization(good)["nonce"]
        forged = good.replace(nonce, nonce[:24] + "0" * 32)
        old = good.replace(nonce, digest.make_nonce(store, now=time.time() - digest.NONCE_TTL_SECONDS - 5))
        for challenge in (forged, old):
            result = digest.verify(store, "GET", digest.authorization_header("GET", uri, "lan", "mật-khẩu",
                                                                              challenge))
            assert result.username is None and result.stale
        store.close()
        store = EmbeddedStore(tmp_path / "data")

        def files() -> dict[Path, bytes]:  # SQLite's shared-memory index (-shm) holds no data
            return {p: p.read_bytes() for p in (tmp_path / "data").rglob("*")
                    if p.is_file() and not p.name.endswith("-shm")}

        before = files()
        for _ in range(50):
            digest.challenge(store)
        assert files() == before  # nothing written: no file created, no byte changed
    finally:
        store.close()


def test_unauthenticated_requests_to_a_running_server_write_nothing(tmp_path: Path) -> None:
    """The probe's flood, small: requests without credentials get 401 and a challenge, and no store file
    is written, created or touched; a real Digest login afterwards still works (and only it writes)."""
    import httpx
    from server_support import CollectClient, seeded_store, serving

    with seeded_store(tmp_path / "data") as (store, seeded), serving(store, access_log=False) as server:
        time.sleep(1.5)  # the store's background checkpoint after seeding
        before = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in (tmp_path / "data").rglob("*")
                  if p.is_file()}
        with httpx.Client(base_url=server.url) as anon:
            for _ in range(60):
                resp = anon.get("/v1/projects/1/formList", headers={"X-OpenRosa-Version": "1.0"})
                assert resp.status_code == 401 and resp.headers["www-authenticate"].startswith("Digest")
        after = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in (tmp_path / "data").rglob("*")
                 if p.is_file()}
        assert after == before
        client = CollectClient(f"{server.url}/v1/projects/1", seeded.digest_user, seeded.digest_password)
        assert client.get("/formList").status_code == 200
        client.close()
