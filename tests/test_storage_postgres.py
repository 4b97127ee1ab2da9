"""The PostgreSQL store: the shared storage contract, plus what only a shared database must keep.

Every test gets its own schema (tests/pg_support.py); PostgreSQL unreachable = failure unless
RASOAT_SKIP_PG=1. Still to come once the server lands: the server integration tests against this
store (``create_app(PostgresStore(...), settings)``), and two uvicorn processes on one database taking
the same submissions over HTTP at once.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from pg_support import base_url, fresh_schema, require_pg
from rasoat.core.models import AuditEvent, ReviewState
from rasoat.core.storage.base import Conflict, SaveOutcome, Store, SubmissionQuery
from rasoat.core.storage.blobs import blob_key
from rasoat.core.storage.opening import open_store
from rasoat.core.storage.postgres import PostgresStore, StoreUnavailable, migration_files, split_schema
from storage_contract import *  # noqa: F403
from storage_contract import T0, at_once, ids, make_sub, make_xml, save


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[tuple[str, str]]:
    with fresh_schema() as (url, schema):
        yield url, schema


@pytest.fixture
def store(pg: tuple[str, str], tmp_path: Path) -> Iterator[PostgresStore]:
    s = PostgresStore(pg[0], tmp_path / "files")
    yield s
    s.close()


def second_store(store: PostgresStore) -> PostgresStore:
    """Another pool on the same database and schema: what a second server process would hold."""
    return PostgresStore(base_url(), store.files_dir, schema=store.schema)


def sql(store: PostgresStore, query: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(base_url(), autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("SET search_path TO {}").format(psycopg.sql.Identifier(store.schema)))
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


# --- opening, schema, migrations ---------------------------------------------------------------


def test_open_store_with_a_database_url_gives_postgres(pg: tuple[str, str], tmp_path: Path) -> None:
    s = open_store(tmp_path, pg[0])
    try:
        assert isinstance(s, PostgresStore) and s.schema == pg[1] and s.files_dir == tmp_path
    finally:
        s.close()


def test_schema_parameter_is_kept_out_of_libpq() -> None:
    assert split_schema("postgresql://u@h:5432/db?schema=abc&sslmode=require") == (
        "postgresql://u@h:5432/db?sslmode=require", "abc")
    assert split_schema("postgresql://u@h/db") == ("postgresql://u@h/db", None)
    with pytest.raises(ValueError):
        PostgresStore("postgresql://u@h/db", Path("."), schema="bad; DROP TABLE x")


def test_migrations_apply_once_and_reopening_changes_nothing(store: PostgresStore) -> None:
    shipped = migration_files()
    assert store.schema_version() == len(shipped) >= 1
    second_store(store).close()
    rows = sql(store, "SELECT version, name FROM schema_version ORDER BY version")
    assert rows == [(n, name) for n, name, _ in shipped]


def test_a_database_newer_than_the_code_is_refused(store: PostgresStore) -> None:
    sql(store, "INSERT INTO schema_version (version, name) VALUES (999, '0999_future.sql')")
    with pytest.raises(StoreUnavailable, match="newer"):
        second_store(store)


def test_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    start = time.monotonic()
    with pytest.raises(StoreUnavailable, match="cannot connect") as err:
        PostgresStore("postgresql://u:secret@127.0.0.1:1/nothing", tmp_path, connect_timeout=1)
    assert "secret" not in str(err.value)
    assert time.monotonic() - start < 15


def test_processes_starting_together_migrate_once(tmp_path: Path) -> None:
    require_pg()
    with fresh_schema() as (url, schema):
        ctx = multiprocessing.get_context("spawn")
        results = ctx.Queue()
        procs = [ctx.Process(target=_open_and_report, args=(url, str(tmp_path), results)) for _ in range(3)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        versions = [results.get(timeout=5) for _ in procs]
        assert versions == [len(migration_files())] * 3
        with psycopg.connect(base_url()) as conn:
            query = psycopg.sql.SQL("SELECT count(*) FROM {}.schema_version")
            n = conn.execute(query.format(psycopg.sql.Identifier(schema))).fetchone()[0]
        assert n == len(migration_files())


def _open_and_report(url: str, files: str, results: multiprocessing.Queue) -> None:
    s = PostgresStore(url, Path(files))
    results.put(s.schema_version())
    s.close()


# --- exactly once across processes --------------------------------------------------------------


def test_two_stores_racing_on_the_same_instance_ids(store: PostgresStore) -> None:
    """Two pools (two server processes) x 3 threads each send the same 20 instanceIDs at once."""
    other = second_store(store)
    stores = [store, other]
    outcomes: dict[str, list[str]] = {}
    lock = threading.Lock()
    barrier = threading.Barrier(6)

    def worker(n: int) -> None:
        s = stores[n % 2]
        barrier.wait()
        for i in range(20):
            iid = f"uuid:race-{i}"
            body = "" if i % 2 == 0 else f"<who>{n}</who>"  # odd ids: every sender has other XML
            try:
                r = save(s, iid, {f"p{n}.jpg": f"{n}".encode()}, body=body).value
            except Conflict:
                r = "conflict"
            with lock:
                outcomes.setdefault(iid, []).append(r)

    try:
        at_once(worker, 6)
    finally:
        other.close()
    assert store.count_submissions() == 20
    assert sql(store, "SELECT count(*) FROM submissions")[0][0] == 20
    for i in range(20):
        iid = f"uuid:race-{i}"
        got = sorted(outcomes[iid])
        if i % 2 == 0:
            assert got == ["created"] + ["duplicate"] * 5
            assert store.get_submission(iid).attachments == sorted(f"p{n}.jpg" for n in range(6))
        else:
            assert got == ["conflict"] * 5 + ["created"]
            assert len(store.get_submission(iid).attachments) == 1


def test_two_processes_store_each_instance_exactly_once(store: PostgresStore) -> None:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    results = ctx.Queue()
    args = (base_url(), store.schema, str(store.files_dir))
    procs = [ctx.Process(target=_submit_all, args=(*args, n, start, results)) for n in range(2)]
    for p in procs:
        p.start()
    time.sleep(0.5)  # both are connected and waiting
    start.set()
    for p in procs:
        p.join(120)
    per_process = [results.get(timeout=5) for _ in procs]
    assert all(p.exitcode == 0 for p in procs)
    for i in range(100):
        got = sorted(r[f"uuid:mp-{i}"] for r in per_process)
        assert got == (["created", "duplicate"] if i % 2 == 0 else ["conflict", "created"])
    assert store.count_submissions() == 100
    for i in range(0, 100, 2):
        assert store.get_submission(f"uuid:mp-{i}").attachments == ["p0.jpg", "p1.jpg"]


def _submit_all(url: str, schema: str, files: str, n: int, start, results) -> None:
    s = PostgresStore(url, Path(files), schema=schema, max_pool=2)
    start.wait(30)
    out = {}
    for i in range(100):
        body = "" if i % 2 == 0 else f"<process>{n}</process>"
        try:
            out[f"uuid:mp-{i}"] = save(s, f"uuid:mp-{i}", {f"p{n}.jpg": b"photo"}, body=body).value
        except Conflict:
            out[f"uuid:mp-{i}"] = "conflict"
    s.close()
    results.put(out)


def test_racing_edits_from_two_stores_accept_exactly_one(store: PostgresStore) -> None:
    save(store, "uuid:base")
    other = second_store(store)
    results: list[str] = []
    barrier = threading.Barrier(4)

    def worker(n: int) -> None:
        s = (store, other)[n % 2]
        barrier.wait()
        try:
            save(s, f"uuid:edit{n}", body=f"<e{n}/>", deprecated_id="uuid:base")
            results.append("ok")
        except Conflict:
            results.append("conflict")

    try:
        at_once(worker, 4)
    finally:
        other.close()
    assert sorted(results) == ["conflict"] * 3 + ["ok"]
    assert store.count_submissions() == 1
    assert store.count_submissions(SubmissionQuery(current_only=False)) == 2


# --- ODK Central rules the contract leaves open ---------------------------------------------------


def test_resends_after_an_edit(store: PostgresStore) -> None:
    """ODK Central: a resend of the edit (split upload) is a duplicate; of the replaced version, 409."""
    sub, xml = make_sub("uuid:1")
    store.save_submission(sub, xml, {"a.jpg": b"A"})
    edit, exml = make_sub("uuid:2", body="<fix/>", deprecated_id="uuid:1")
    assert store.save_submission(edit, exml, {"c.jpg": b"C"}) is SaveOutcome.created
    assert store.get_submission("uuid:2").attachments == ["c.jpg"]  # no implicit carry-over
    assert store.save_submission(edit, exml, {"d.jpg": b"D"}) is SaveOutcome.duplicate
    assert store.get_submission("uuid:2").attachments == ["c.jpg", "d.jpg"]
    with pytest.raises(Conflict):
        store.save_submission(sub, xml, {})


def test_mismatched_md5_is_refused(store: PostgresStore) -> None:
    sub, xml = make_sub("uuid:1")
    with pytest.raises(ValueError):
        store.save_submission(sub, xml + b" ", {})
    with pytest.raises(ValueError):
        store.put_many_submissions([(sub, xml + b" ", {})])
    assert store.get_submission("uuid:1") is None


# --- attachments in the blob store ----------------------------------------------------------------


def test_attachments_are_content_addressed_files_under_files_dir(store: PostgresStore) -> None:
    save(store, "uuid:1", {"../photo.jpg".replace("../", ""): b"same bytes"})
    save(store, "uuid:2", {"other name.jpg": b"same bytes"})
    key = blob_key(b"same bytes")
    path = store.files_dir / "attachments" / key
    assert path.read_bytes() == b"same bytes"
    assert [p for p in (store.files_dir / "attachments").rglob("*") if p.is_file()] == [path]
    rows = sql(store, "SELECT instance_id, name, blob_key, size, md5 FROM attachments ORDER BY instance_id")
    md5 = hashlib.md5(b"same bytes").hexdigest()
    assert rows == [("uuid:1", "photo.jpg", key, 10, md5), ("uuid:2", "other name.jpg", key, 10, md5)]
    assert store.attachment_info("uuid:1") == [{"name": "photo.jpg", "size": 10, "md5": md5, "blob_key": key}]


def test_raw_xml_lives_in_the_database(store: PostgresStore) -> None:
    save(store, "uuid:1")
    assert sql(store, "SELECT xml, md5 FROM submission_xml") == [
        (make_xml("uuid:1"), hashlib.md5(make_xml("uuid:1")).hexdigest())
    ]
    assert not (store.files_dir / "submissions").exists()


# --- no state in the process ------------------------------------------------------------------------


def test_kv_is_shared_between_processes_and_expires_by_the_database_clock(store: PostgresStore) -> None:
    other = second_store(store)
    try:
        store.kv_put("sessions", "s1", {"user": "u1"}, ttl_seconds=3600)
        store.kv_put("nonces", "n1", 1, ttl_seconds=0)
        assert other.kv_get("sessions", "s1") == {"user": "u1"}
        assert other.kv_get("nonces", "n1") is None
        other.kv_delete("sessions", "s1")
        assert store.kv_get("sessions", "s1") is None
        assert store.purge_expired_kv() == 1
        assert sql(store, "SELECT namespace, key FROM kv") == []
    finally:
        other.close()


def test_audit_is_append_only_in_the_database(store: PostgresStore) -> None:
    store.append_audit(AuditEvent(actor="lan", action="export.raw", details={"rows": 3}))
    for statement in ("UPDATE audit SET actor = 'x'", "DELETE FROM audit", "TRUNCATE audit"):
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            sql(store, statement)
    assert [e.actor for e in store.iter_audit()] == ["lan"]


# --- streaming and bulk -----------------------------------------------------------------------------


def test_iteration_uses_a_server_side_cursor(pg: tuple[str, str], tmp_path: Path) -> None:
    s = PostgresStore(pg[0], tmp_path, itersize=10)
    try:
        s.put_many_submissions(make_sub(f"uuid:{i:03d}", received_at=T0 + timedelta(seconds=i)) + ({},)
                               for i in range(100))
        it = s.iter_submissions()
        assert next(it).instance_id == "uuid:000"
        fetching = sql(s, "SELECT query FROM pg_stat_activity WHERE state = 'idle in transaction'"
                          " AND query LIKE 'FETCH FORWARD 10 FROM %%rasoat_%%'")
        assert fetching, "the first row came from a FETCH of 10 through a named cursor"
        assert len(list(it)) == 99
    finally:
        s.close()


def test_bulk_load_batches_and_keeps_the_rules(store: PostgresStore) -> None:
    items = [make_sub(f"uuid:{i:05d}", received_at=T0 + timedelta(seconds=i))
             + ({"a.jpg": b"%d" % i} if i % 50 == 0 else {},) for i in range(1100)]  # two batches
    save(store, "uuid:00007", received_at=T0 + timedelta(seconds=7))  # stored before
    items.insert(10, items[3])  # sent twice in one batch
    assert store.put_many_submissions(items) == 1099
    assert store.count_submissions() == 1100
    assert ids(store.iter_submissions())[:4] == ["uuid:00000", "uuid:00001", "uuid:00002", "uuid:00003"]
    assert store.attachment("uuid:01050", "a.jpg") == b"1050"
    assert store.get_submission("uuid:01050").attachments == ["a.jpg"]
    assert store.submission_xml("uuid:01034") == make_xml("uuid:01034")
    # an edit in a bulk load applies the edit rules in order
    edit = make_sub("uuid:e1", body="<v2/>", deprecated_id="uuid:00001") + ({},)
    late = make_sub("uuid:late", received_at=T0 + timedelta(days=1)) + ({},)
    assert store.put_many_submissions([late, edit]) == 2
    assert store.get_submission("uuid:00001").current is False
    assert store.get_submission("uuid:e1").review_state is ReviewState.edited
    with pytest.raises(Conflict):
        store.put_many_submissions([make_sub("uuid:00002", body="<other/>") + ({},)])


def test_iter_facts_in_sql_matches_the_default_built_on_models(store: PostgresStore) -> None:
    fields = {"commune": "05563", "households_total": "3", "empty": "",
              "household": [{"pledged": "yes"}, {"pledged": "no"}],
              # values that are not plain strings, and strings that JSON escapes
              "null": None, "number": 7, "group": {"a": "b"}, "tag_like": "j[1]", "s": "s", "vi": "Phượng\"x",
              "escaped": "a\\b\nc\t\u0001", "quoted": '"'}
    for i in range(5):
        save(store, f"uuid:{i}", fields=fields, received_at=T0 + timedelta(minutes=i),
             unit_code=f"05563-0{i}")
    store.set_review("uuid:2", ReviewState.approved, "", "lan")
    for query in (None, SubmissionQuery(unit_codes=["05563-02", "05563-03"]),
                  SubmissionQuery(review_states=[ReviewState.approved])):
        paths = ["household", "households_total", "empty", "absent", "null", "number", "group", "tag_like",
                 "s", "vi", "s", "escaped", "quoted"]
        fast = sorted(store.iter_facts(query, paths))  # facts come in no particular order
        assert fast == sorted(Store.iter_facts(store, query, paths)) and fast
        assert sorted(store.iter_facts(query, [])) == sorted(Store.iter_facts(store, query, []))
    (fact,) = store.iter_facts(SubmissionQuery(review_states=[ReviewState.approved]), ["absent"])
    assert fact == ("uuid:2", "r2025", "05563-02", T0 + timedelta(minutes=2), "approved", {})


@pytest.mark.slow
def test_streaming_reads_go_to_the_read_replica(store: PostgresStore, tmp_path: Path) -> None:
    """A stand-in replica: another database holding the same schema with other rows shows the route."""
    save(store, "uuid:on-primary")
    db = f"rasoat_replica_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(base_url(), autocommit=True)
    admin.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(db)))
    replica_url = urlunsplit(urlsplit(base_url())._replace(path=f"/{db}"))
    try:
        replica = PostgresStore(replica_url, tmp_path / "replica", schema=store.schema)
        save(replica, "uuid:on-replica")
        replica.close()
        routed = PostgresStore(base_url(), store.files_dir, schema=store.schema, read_url=replica_url)
        try:
            assert ids(routed.iter_submissions()) == ["uuid:on-replica"]
            assert [f.instance_id for f in routed.iter_facts(None, [])] == ["uuid:on-replica"]
            assert routed.count_submissions() == 1
            assert routed.get_submission("uuid:on-primary") is not None  # point reads: the primary
            assert routed.get_submission("uuid:on-replica") is None
            save(routed, "uuid:written")  # writes: the primary
            assert store.get_submission("uuid:written") is not None
        finally:
            routed.close()
    finally:
        admin.execute(psycopg.sql.SQL("DROP DATABASE {} WITH (FORCE)").format(psycopg.sql.Identifier(db)))
        admin.close()


def test_usernames_and_tokens_are_unique_in_the_database(store: PostgresStore) -> None:
    from rasoat.core.models import Role, User

    store.put_user(User(id="c1", username="thu-thap-1", role=Role.collector, token_hash="ab" * 32))
    with pytest.raises(Conflict, match="Username"):
        store.put_user(User(id="c2", username="thu-thap-1", role=Role.collector))
    with pytest.raises(Conflict, match="Token"):
        store.put_user(User(id="c3", username="thu-thap-3", role=Role.collector, token_hash="ab" * 32))
    assert [u.id for u in store.list_users()] == ["c1"]


@pytest.mark.slow
def test_two_bulk_loads_of_the_same_data_at_once(store: PostgresStore) -> None:
    """Opposite orders make the two loads wait on each other's rows (a deadlock PostgreSQL breaks)."""
    items = [make_sub(f"uuid:{i:04d}", received_at=T0 + timedelta(seconds=i)) + ({},) for i in range(3000)]
    other = second_store(store)
    created: list[int] = []
    barrier = threading.Barrier(2)

    def load(n: int) -> None:  # each store loads the rows in its own order
        s, rows = (store, items) if n == 0 else (other, items[::-1])
        barrier.wait()
        created.append(s.put_many_submissions(rows))

    try:
        at_once(load, 2)
    finally:
        other.close()
    assert sum(created) == 3000 and len(created) == 2
    assert store.count_submissions() == 3000
