"""The embedded store: the shared storage contract, plus what only a file-based store must keep."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from rasoat.core.models import ReviewState, Role, User
from rasoat.core.storage import open_store, wal
from rasoat.core.storage.base import SaveOutcome, SubmissionQuery
from rasoat.core.storage.embedded import EmbeddedStore
from rasoat.core.storage.files import safe_name, unsafe_name
from storage_contract import *  # noqa: F403
from storage_contract import T0, ids, make_sub, save


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


class TestSafeNames:
    @pytest.mark.parametrize("bad", ["", ".", "..", "../a", "a/b", "a\\b", "/abs", "nul\x00", "x" * 300])
    def test_refused(self, bad: str) -> None:
        with pytest.raises(ValueError, match="Invalid"):
            safe_name(bad, "attachment name")

    @pytest.mark.parametrize("good", ["uuid:1-2", "ảnh 1.jpg", ".hidden", "..x", "a%2Fb", "C:x", "~t"])
    def test_encoded_and_reversible(self, good: str) -> None:
        enc = safe_name(good)
        assert "/" not in enc and "\\" not in enc and not enc.startswith(".") and ":" not in enc
        assert unsafe_name(enc) == good

    @pytest.mark.parametrize("bad", ["../x", "a/b", "uuid:\x00"])
    def test_unsafe_instance_ids_are_refused(self, store: EmbeddedStore, bad: str) -> None:
        sub, xml = make_sub(bad)
        with pytest.raises(ValueError):
            store.save_submission(sub, xml, {})
        with pytest.raises(ValueError):
            save(store, "uuid:ok", deprecated_id=bad)
        assert store.count_submissions() == 0
        assert not any((store.root / "submissions").rglob("*"))  # nothing written anywhere


def test_md5_must_match_the_xml(store: EmbeddedStore) -> None:
    sub, xml = make_sub("uuid:1")
    with pytest.raises(ValueError, match="md5"):
        store.save_submission(sub, xml + b" ", {})
    assert store.get_submission("uuid:1") is None


class TestIndexRebuild:
    def fill(self, store: EmbeddedStore, n: int = 40) -> None:
        for i in range(n):
            save(
                store,
                f"uuid:{i:03d}",
                {"a.jpg": b"A"} if i % 5 == 0 else None,
                unit_code=f"0556{i % 4}-01",
                received_at=T0 + timedelta(minutes=i),
            )
        save(store, "uuid:edit", body="<e/>", deprecated_id="uuid:003", received_at=T0 + timedelta(hours=5))
        store.set_review("uuid:004", ReviewState.rejected, "trùng", "lan")

    def snapshot(self, store: EmbeddedStore) -> list[dict]:
        return [s.model_dump() for s in store.iter_submissions(SubmissionQuery(current_only=False))]

    def test_rebuild_gives_the_same_index(self, store: EmbeddedStore) -> None:
        self.fill(store)
        before = self.snapshot(store)
        assert store.rebuild_index() == 41
        assert self.snapshot(store) == before
        assert store.count_submissions() == 40

    def test_deleted_index_is_rebuilt_at_open(self, store: EmbeddedStore) -> None:
        self.fill(store)
        before = self.snapshot(store)
        store.close()
        shutil.rmtree(store.root / "index")
        (store.root / "index.ready").unlink()
        assert self.snapshot(EmbeddedStore(store.root)) == before

    def test_interrupted_rebuild_is_redone_at_open(self, store: EmbeddedStore) -> None:
        self.fill(store)
        before = self.snapshot(store)
        store.close()
        (store.root / "index.ready").unlink()  # as if a rebuild had been killed half-way
        (store.root / "index.new" / "subs").mkdir(parents=True)
        again = EmbeddedStore(store.root)
        assert self.snapshot(again) == before
        assert not (store.root / "index.new").exists()

    def test_a_logged_change_its_dead_writer_did_not_publish_is_redone(self, store: EmbeddedStore) -> None:
        """Another process flushed its log record and was killed before publishing anything: the next
        lock holder (here a save in this process) redoes it from the log, and so does a reopen."""
        save(store, "uuid:1")
        sub, xml = make_sub("uuid:2", received_at=T0 + timedelta(minutes=1))
        dead = EmbeddedStore(store.root)
        loc = dead._assign_segment("f2_pledge/2025-03/05563")
        rel = dead._rel(dead._sub_path("uuid:2"))
        meta = dead._meta_bytes(loc, sub.model_copy(update={"attachments": ["late.jpg"]}))
        files = [(f"{rel}/submission.xml", xml), (f"{rel}/att.late.jpg", b"L"), (f"{rel}/meta.json", meta)]
        with dead._locks["submissions"].held():
            dead._wal.append([wal.Record("dead0001", ["uuid:2"], files)])
            dead._wal.flush()
        dead._wal.close()
        dead._locks["submissions"].close()  # killed: nothing published, no done mark
        assert store.get_submission("uuid:2") is None
        save(store, "uuid:3", received_at=T0 + timedelta(minutes=2))
        assert ids(store.iter_submissions()) == ["uuid:1", "uuid:2", "uuid:3"]
        assert store.attachment("uuid:2", "late.jpg") == b"L"
        assert store.submission_xml("uuid:2") == xml
        again = reopen(store)
        assert ids(again.iter_submissions()) == ["uuid:1", "uuid:2", "uuid:3"]
        assert again.get_submission("uuid:2").attachments == ["late.jpg"]

    def test_torn_index_line_is_ignored_and_repaired(self, store: EmbeddedStore) -> None:
        save(store, "uuid:1")
        seg = next((store.root / "index" / "subs").rglob("*.jsonl"))
        with open(seg, "ab") as fh:
            fh.write(b"2025-03-01T09:00:00.000000Z\tuuid%3Ahalf\treceiv")
        assert ids(store.iter_submissions()) == ["uuid:1"]
        again = reopen(store)
        save(again, "uuid:2", received_at=T0 + timedelta(minutes=1))
        assert ids(again.iter_submissions()) == ["uuid:1", "uuid:2"]
        assert seg.read_bytes().count(b"\n") == 2


def test_stale_staging_is_cleaned_at_open(store: EmbeddedStore) -> None:
    dead = store.root / "staging" / ".tmp-999999999-abc"
    dead.mkdir()
    (dead / "submission.xml").write_bytes(b"<half")
    again = reopen(store)
    assert not dead.exists() and again.count_submissions() == 0


def test_partitions_stay_small(store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from rasoat.core.storage import subindex

    monkeypatch.setattr(subindex, "SEG_MAX_LINES", 10)
    for i in range(35):
        save(store, f"uuid:{i:03d}", received_at=T0 + timedelta(seconds=i))
    segs = sorted((store.root / "index" / "subs" / "f2_pledge" / "2025-03" / "05563").glob("*.jsonl"))
    assert [s.read_bytes().count(b"\n") for s in segs] == [10, 10, 10, 5]
    assert ids(store.iter_submissions()) == [f"uuid:{i:03d}" for i in range(35)]
    store.set_review("uuid:015", ReviewState.approved, "", "lan")
    assert [s.read_bytes().count(b"\n") for s in segs] == [10, 10, 10, 5]


# --- two processes on one data directory -----------------------------------------------------------------
def _writer(root: str, prefix: str, n: int, start: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
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


def test_meta_json_is_the_readable_source_of_truth(store: EmbeddedStore) -> None:
    save(store, "uuid:1", {"ảnh.jpg": b"A"})
    path = store._sub_path("uuid:1")
    assert sorted(os.listdir(path)) == ["att.%E1%BA%A3nh.jpg", "meta.json", "submission.xml"]
    doc = json.loads((path / "meta.json").read_bytes())
    assert doc["sub"]["instance_id"] == "uuid:1" and doc["loc"].startswith("f2_pledge/2025-03/05563/")


def test_bulk_load_keeps_the_rules(store: EmbeddedStore) -> None:
    items = [
        make_sub(f"uuid:{i:04d}", unit_code=f"0556{i % 5}-01", received_at=T0 + timedelta(seconds=i))
        for i in range(1200)
    ]
    save(store, "uuid:0007")  # already stored: a duplicate, not new
    dup_sub, dup_xml = items[3]
    loaded = [(sub, xml, {"a.jpg": b"A"} if i % 100 == 0 else {}) for i, (sub, xml) in enumerate(items)]
    loaded.append((dup_sub, dup_xml, {"late.jpg": b"L"}))  # the same instance twice in one batch
    edit, edit_xml = make_sub(
        "uuid:edit", body="<e/>", deprecated_id="uuid:0001", received_at=T0 + timedelta(hours=1)
    )
    loaded.append((edit, edit_xml, {}))
    assert store.put_many_submissions(loaded) == 1200  # 1199 new + the edit
    assert store.count_submissions() == 1200 - 1 + 1
    assert store.get_submission("uuid:0001").current is False
    assert sorted(store.get_submission("uuid:0003").attachments) == ["late.jpg"]
    assert store.attachment("uuid:0100", "a.jpg") == b"A"
    assert not any(store.staging.iterdir())
    before = [s.model_dump() for s in store.iter_submissions(SubmissionQuery(current_only=False))]
    store.rebuild_index()
    assert [s.model_dump() for s in store.iter_submissions(SubmissionQuery(current_only=False))] == before


def test_an_unreadable_meta_file_does_not_stop_the_store(
    store: EmbeddedStore, caplog: pytest.LogCaptureFixture
) -> None:
    save(store, "uuid:1")
    save(store, "uuid:2", received_at=T0 + timedelta(minutes=1))
    (store._sub_path("uuid:2") / "meta.json").write_bytes(b'{"loc": "x", "sub": {tru')  # disk damage
    store.close()
    (store.root / "index.ready").unlink()
    again = EmbeddedStore(store.root)
    assert ids(again.iter_submissions()) == ["uuid:1"]
    assert "uuid%3A2" in caplog.text
    assert (store._sub_path("uuid:2") / "submission.xml").exists()  # kept for a human to look at


def test_after_a_reboot_every_journalled_operation_is_replayed(store: EmbeddedStore) -> None:
    """A power cut may keep the journal's ``done`` line yet lose the (not fsync'd) index append."""
    save(store, "uuid:1")
    save(store, "uuid:2", received_at=T0 + timedelta(minutes=1))
    seg = next((store.root / "index" / "subs").rglob("*.jsonl"))
    lines = seg.read_bytes().splitlines(keepends=True)
    store._locks["submissions"].close()
    seg.write_bytes(lines[0])  # the second append never reached the disk
    (store.root / "boot.id").write_text("an-earlier-boot")
    again = EmbeddedStore(store.root)
    assert ids(again.iter_submissions()) == ["uuid:1", "uuid:2"]


def test_an_error_half_way_is_repaired_by_the_next_writer(
    store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = store._append_line

    def disk_full(loc: str, line: bytes) -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "_append_line", disk_full)
    with pytest.raises(OSError):
        save(store, "uuid:1")
    monkeypatch.setattr(store, "_append_line", real)
    save(store, "uuid:2", received_at=T0 + timedelta(minutes=1))  # takes the lock: replays uuid:1
    assert ids(store.iter_submissions()) == ["uuid:1", "uuid:2"]
    assert save(store, "uuid:1") is SaveOutcome.duplicate


# --- the write-ahead log: power cuts, checkpoints, large files, group commit ----------------------------
def _power_cut(store: EmbeddedStore) -> None:
    """What a power cut may do to writes that were never flushed: every submission file and index
    segment loses its bytes (some directories vanish whole), and the machine boots anew. Only the
    flushed log survives intact."""
    store.close()
    for i, meta in enumerate(sorted((store.root / "submissions").rglob("meta.json"))):
        if i % 3 == 0:
            shutil.rmtree(meta.parent)  # the rename that published it never reached the disk
            continue
        for f in meta.parent.iterdir():
            f.write_bytes(b"")  # the data never reached the disk
    for seg in (store.root / "index" / "subs").rglob("*.jsonl"):
        seg.write_bytes(b"")
    (store.root / "boot.id").write_text("an-earlier-boot")


def _everything(store: EmbeddedStore) -> list[tuple]:
    return [
        (
            s.model_dump(),
            store.submission_xml(s.instance_id),
            {a: store.attachment(s.instance_id, a) for a in s.attachments},
        )
        for s in store.iter_submissions(SubmissionQuery(current_only=False))
    ]


def _varied_writes(store: EmbeddedStore) -> None:
    for i in range(12):
        save(
            store,
            f"uuid:{i:02d}",
            {"a.jpg": f"A{i}".encode()} if i % 2 else None,
            unit_code=f"0556{i % 3}-01",
            received_at=T0 + timedelta(minutes=i),
        )
    save(store, "uuid:03", {"late.jpg": b"L"})  # identical resend carrying a new attachment
    store.add_attachment("uuid:05", "later.jpg", b"LL")
    save(store, "uuid:e1", body="<e/>", deprecated_id="uuid:04", received_at=T0 + timedelta(hours=1))
    store.set_review("uuid:06", ReviewState.approved, "ok", "lan")


def test_a_power_cut_loses_nothing_whose_save_returned(store: EmbeddedStore) -> None:
    _varied_writes(store)
    before = _everything(store)
    _power_cut(store)
    again = EmbeddedStore(store.root)
    assert _everything(again) == before
    assert again.count_submissions() == 12
    again.rebuild_index()  # the index agrees with the restored files
    assert _everything(again) == before
    again.close()


def test_checkpoints_keep_the_log_small_and_lose_nothing(store: EmbeddedStore) -> None:
    store._wal.MAX_BYTES = 4000  # a checkpoint (one syncfs, old segments deleted) every few saves
    _varied_writes(store)
    checkpointer = store._ckpt_thread  # checkpoints run in the background
    if checkpointer is not None:
        checkpointer.join()
    segments = sorted((store.root / "wal").iterdir())
    assert len(segments) <= 2 and segments[-1].name > "00000002.log"
    store._wal.MAX_BYTES = 10**9  # no checkpoint from now on
    sizes = {seg: seg.stat().st_size for seg in (store.root / "index" / "subs").rglob("*.jsonl")}
    for i in range(5):
        save(store, f"uuid:b{i}", {"b.jpg": b"B"}, received_at=T0 + timedelta(hours=3, minutes=i))
    before = _everything(store)
    store.close()
    # a power cut loses what came after the last checkpoint: the new directories and index appends
    for i in range(5):
        path = store._sub_path(f"uuid:b{i}")
        if i % 2:
            shutil.rmtree(path)
        else:
            for f in path.iterdir():
                f.write_bytes(b"")
    for seg in (store.root / "index" / "subs").rglob("*.jsonl"):
        os.truncate(seg, sizes.get(seg, 0))
    (store.root / "boot.id").write_text("an-earlier-boot")
    again = EmbeddedStore(store.root)
    assert _everything(again) == before
    again.close()


def test_large_files_are_fsynced_themselves_not_copied_into_the_log(store: EmbeddedStore) -> None:
    store.inline_max = 100
    big = os.urandom(5000)
    save(store, "uuid:1", {"photo.jpg": big})
    save(store, "uuid:1", {"photo2.jpg": big})
    save(store, "uuid:2", {"p.jpg": big}, body="<e/>", deprecated_id="uuid:1")
    assert sum(f.stat().st_size for f in (store.root / "wal").iterdir()) < 5000  # no photo in the log
    before = _everything(store)
    store.close()
    (store.root / "boot.id").write_text("an-earlier-boot")
    again = EmbeddedStore(store.root)
    assert _everything(again) == before
    assert again.attachment("uuid:1", "photo2.jpg") == big and again.get_submission("uuid:1").current is False


def test_many_threads_share_flushes_and_get_their_own_answers(store: EmbeddedStore) -> None:
    """Group commit: 8 threads saving at once (new ones, resends, conflicts, edits racing on one
    version) each get the answer a lone save would get."""
    import threading

    from rasoat.core.storage.base import Conflict

    save(store, "uuid:base")
    answers: dict[str, object] = {}

    def work(t: int) -> None:
        for i in range(15):
            iid = f"uuid:t{t}-{i}"
            answers[iid] = save(store, iid, received_at=T0 + timedelta(seconds=i))
            answers[iid + "/again"] = save(store, iid, received_at=T0 + timedelta(seconds=i))
            try:
                save(store, iid, body="<other/>")
            except Conflict:
                answers[iid + "/other"] = "conflict"
        try:
            answers[f"edit{t}"] = save(store, f"uuid:edit{t}", body=f"<e{t}/>", deprecated_id="uuid:base")
        except Conflict:
            answers[f"edit{t}"] = "conflict"

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert [answers[f"uuid:t{t}-{i}"] for t in range(8) for i in range(15)] == [SaveOutcome.created] * 120
    assert {answers[f"uuid:t{t}-{i}/again"] for t in range(8) for i in range(15)} == {SaveOutcome.duplicate}
    assert {answers[f"uuid:t{t}-{i}/other"] for t in range(8) for i in range(15)} == {"conflict"}
    assert sorted(str(answers[f"edit{t}"]) for t in range(8)).count("created") == 1
    assert store.count_submissions() == 121
    assert reopen(store).count_submissions() == 121


def test_a_token_lookup_costs_one_stat_and_sees_another_process_revoke_at_once(
    store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(40):
        store.put_user(User(id=f"c{i}", username=f"c{i}", role=Role.collector, token_hash=f"{i:064x}"))
    assert store.get_user_by_token_hash(f"{7:064x}").id == "c7"
    stats: list[str] = []
    real = os.stat
    monkeypatch.setattr(os, "stat", lambda p, *a, **k: stats.append(str(p)) or real(p, *a, **k))
    assert store.get_user_by_token_hash(f"{7:064x}").id == "c7"
    assert len(stats) == 1
    monkeypatch.undo()
    cli = EmbeddedStore(store.root)  # `rasoat collectors revoke` in another process
    cli.put_user(cli.get_user("c7").model_copy(update={"token_hash": None}))
    cli.close()
    assert store.get_user_by_token_hash(f"{7:064x}") is None
    assert store.get_user("c7").token_hash is None
