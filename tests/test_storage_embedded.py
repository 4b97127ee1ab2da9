"""The embedded store (SQLite): the shared storage contract, plus what only an embedded store must keep."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import sqlite3
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from rasoat.core.models import ReviewState, Role, User
from rasoat.core.storage import sql
from rasoat.core.storage.base import SaveOutcome, SubmissionQuery
from rasoat.core.storage.embedded import DB_NAME, EmbeddedStore
from rasoat.core.storage.opening import open_store
from rasoat.core.storage.rules import safe_name
from storage_contract import *  # noqa: F403
from storage_contract import T0, TestSubmissionQueries, at_once, ids, make_sub, save


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    s = EmbeddedStore(tmp_path / "data")
    yield s
    s.close()


def reopen(store: EmbeddedStore) -> EmbeddedStore:
    store.close()
    return EmbeddedStore(store.root)


def test_open_store_gives_the_embedded_store(tmp_path: Path) -> None:
    assert isinstance(open_store(tmp_path / "d"), EmbeddedStore)


def test_everything_survives_reopening(store: EmbeddedStore) -> None:
    save(store, "uuid:1", {"a.jpg": b"A"})
    save(store, "uuid:2", body="<v2/>", deprecated_id="uuid:1")
    store.set_review("uuid:2", ReviewState.approved, "ok", "lan")
    store.put_user(User(id="c1", username="c1", role=Role.collector, token_hash="ab" * 32))
    store.kv_put("sessions", "s", {"u": 1})
    again = reopen(store)
    assert again.get_submission("uuid:1").current is False
    assert again.get_submission("uuid:2").review_state is ReviewState.approved
    assert ids(again.iter_submissions(SubmissionQuery(current_only=False))) == ["uuid:1", "uuid:2"]
    assert again.attachment("uuid:1", "a.jpg") == b"A"
    assert again.get_user_by_token_hash("ab" * 32).id == "c1"
    assert again.kv_get("sessions", "s") == {"u": 1}
    again.close()


@pytest.mark.parametrize("bad", ["", ".", "..", "../a", "a/b", "a\\b", "/abs", "nul\x00", "x" * 300])
def test_names_with_path_syntax_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="Invalid"):
        safe_name(bad, "attachment name")


@pytest.mark.parametrize("bad", ["../evil", "a/b", ""])
def test_unsafe_instance_ids_are_refused(store: EmbeddedStore, bad: str) -> None:
    sub, xml = make_sub("uuid:ok")
    with pytest.raises(ValueError):
        store.save_submission(sub.model_copy(update={"instance_id": bad}), xml, {})
    assert store.count_submissions() == 0


def test_md5_must_match_the_xml(store: EmbeddedStore) -> None:
    sub, xml = make_sub("uuid:1")
    with pytest.raises(ValueError, match="md5"):
        store.save_submission(sub, xml + b" ", {})
    assert store.get_submission("uuid:1") is None


def test_every_connection_commits_durably_in_wal_mode(store: EmbeddedStore) -> None:
    """An acknowledged save survives a power cut: every connection, in every thread, runs SQLite in WAL
    mode with synchronous=FULL (the log is fsync'd at each commit)."""
    seen: list[tuple] = []

    def look(_: int) -> None:
        save(store, f"uuid:{threading.get_ident()}")
        seen.append((store._db.execute("PRAGMA journal_mode").fetchone()[0],
                     store._db.execute("PRAGMA synchronous").fetchone()[0]))

    at_once(look, 3)
    list(store.iter_submissions())  # a streaming reader's own connection too
    with store._reader() as conn:
        seen.append((conn.execute("PRAGMA journal_mode").fetchone()[0],
                     conn.execute("PRAGMA synchronous").fetchone()[0]))
    assert seen == [("wal", 2)] * 4  # 2: FULL


def test_attachments_are_durable_before_the_row_that_names_them(
    store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A power cut right after the commit must not leave a row naming a file the disk never got: each
    attachment file and its directory are fsync'd before the transaction that names them begins."""
    events: list[str] = []
    real_fsync = os.fsync
    real_execute = sqlite3.Connection.execute

    def fsync(fd: int) -> None:
        events.append("fsync:" + os.readlink(f"/proc/self/fd/{fd}").rsplit("/", 2)[-2])
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    conn = store._db

    class Spy:
        def __getattr__(self, name: str):
            return getattr(conn, name)

        def execute(self, sql: str, *args):
            if sql.startswith("BEGIN"):
                events.append("begin")
            return real_execute(conn, sql, *args)

    store._local.conn = Spy()
    save(store, "uuid:1", {"a.jpg": b"photo"})
    assert "begin" in events
    before = events[: events.index("begin")]
    key = hashlib.sha256(b"photo").hexdigest()
    assert f"fsync:{key[:2]}" in before  # the file (its parent is the shard directory)
    assert "fsync:sha256" in before  # the shard directory entry
    assert store.attachment("uuid:1", "a.jpg") == b"photo"
    assert (store.root / DB_NAME).is_file()


def test_bulk_load_keeps_the_rules(store: EmbeddedStore) -> None:
    save(store, "uuid:0")
    items = [make_sub(f"uuid:{i}", received_at=T0 + timedelta(seconds=i)) for i in range(1, 1200)]
    items.insert(5, make_sub("uuid:0"))  # stored already: a duplicate
    items.insert(9, make_sub("uuid:7"))  # twice in one batch
    items.append(make_sub("uuid:e", body="<e/>", deprecated_id="uuid:3"))
    created = store.put_many_submissions((s, x, {"a.jpg": b"A"}) for s, x in items)
    assert created == 1200
    assert store.count_submissions(SubmissionQuery(current_only=False)) == 1201
    assert store.get_submission("uuid:3").current is False
    assert store.get_submission("uuid:e").review_state is ReviewState.edited
    assert store.get_submission("uuid:0").attachments == ["a.jpg"]  # the duplicate added its file


def _writer(root: str, prefix: str, n: int, start: Any) -> None:
    store = EmbeddedStore(Path(root))
    start.wait()
    for i in range(n):
        sub, xml = make_sub(
            f"uuid:{prefix}-{i}", unit_code=f"0556{i % 3}-01", received_at=T0 + timedelta(seconds=i)
        )
        assert store.save_submission(sub, xml, {"a.jpg": prefix.encode()}) is SaveOutcome.created
        if i % 10 == 0:
            store.put_user(
                User(
                    id=f"{prefix}{i}",
                    username=f"{prefix}{i}",
                    role=Role.collector,
                    token_hash=hashlib.sha256(f"{prefix}{i}".encode()).hexdigest(),
                )
            )
            store.kv_put("nonces", f"{prefix}{i}", i, ttl_seconds=600)
    for i in range(0, n, 7):  # everyone also races on the same instances
        sub, xml = make_sub(f"uuid:shared-{i}")
        store.save_submission(sub, xml, {f"{prefix}.jpg": b"x"})
    store.close()


def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    root = tmp_path / "data"
    EmbeddedStore(root).close()
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_writer, args=(str(root), p, 60, start)) for p in ("p", "q")]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    store = EmbeddedStore(root)
    got = set(ids(store.iter_submissions()))
    expected = {f"uuid:{p}-{i}" for p in "pq" for i in range(60)} | {
        f"uuid:shared-{i}" for i in range(0, 60, 7)
    }
    assert got == expected
    assert store.count_submissions() == len(expected)
    assert sorted(store.get_submission("uuid:shared-0").attachments) == ["p.jpg", "q.jpg"]
    assert len(store.list_users()) == 12
    assert all(store.kv_get("nonces", f"{p}{i}") == i for p in "pq" for i in range(0, 60, 10))


def test_a_write_by_another_process_is_seen_at_once(tmp_path: Path) -> None:
    root = tmp_path / "data"
    server = EmbeddedStore(root)
    assert server.get_user_by_token_hash("ab" * 32) is None
    assert server.count_submissions() == 0
    ctx = multiprocessing.get_context("spawn")
    p = ctx.Process(target=_cli_add, args=(str(root),))
    p.start()
    p.join(60)
    assert p.exitcode == 0
    assert server.get_user_by_token_hash("ab" * 32).username == "new-collector"
    assert ids(server.iter_submissions()) == ["uuid:cli"]
    save(server, "uuid:server", received_at=T0 + timedelta(minutes=1))  # and the server still appends cleanly
    assert ids(server.iter_submissions()) == ["uuid:cli", "uuid:server"]


def _cli_add(root: str) -> None:
    store = EmbeddedStore(Path(root))
    store.put_user(User(id="c9", username="new-collector", role=Role.collector, token_hash="ab" * 32))
    save(store, "uuid:cli")
    store.close()




def test_facts_are_the_same_whether_the_scan_reads_the_table_or_an_index(store: EmbeddedStore) -> None:
    """A form holding much of the table is read straight through the table, a small one through its
    index (SQLite keeps no statistics to choose): both give every matching record and nothing else."""
    for i in range(30):
        save(store, f"uuid:p{i:02d}", unit_code=f"0556{i % 3}-01", received_at=T0 + timedelta(minutes=i))
    save(store, "uuid:s1", form_id="f3_school", unit_code="05563-01")
    save(store, "uuid:s2", form_id="f3_school", unit_code="05561-01")
    cases = [
        (SubmissionQuery(form_id="f2_pledge"), {f"uuid:p{i:02d}" for i in range(30)}),
        (SubmissionQuery(form_id="f2_pledge", unit_codes=["05560-01", "05561-01"]),
         {f"uuid:p{i:02d}" for i in range(30) if i % 3 != 2}),
        (SubmissionQuery(form_id="f3_school"), {"uuid:s1", "uuid:s2"}),
        (SubmissionQuery(form_id="f3_school", unit_codes=["05563-01"]), {"uuid:s1"}),
        (SubmissionQuery(form_id="f9_case"), set()),
    ]
    plans = set()
    for query, expected in cases:
        plans.add(store._scan_hint(query))
        facts = list(store.iter_facts(query, ["b"]))
        assert {f.instance_id for f in facts} == expected
        assert all(f.fields == {"b": ""} for f in facts)
    assert plans == {"", " NOT INDEXED"}  # both ways were taken


def test_an_older_sqlite_without_the_arrow_operator_gives_the_same_facts(
        store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ubuntu 22.04's SQLite (3.37) has no JSON ``->``: every asked key is then read from the whole
    document, with the same values and types."""
    monkeypatch.setattr(sql, "SQLITE_HAS_ARROW", False)
    assert sql.Dialect().member("b") is None
    TestSubmissionQueries().test_facts_carry_the_asked_keys_as_stored(store)
