"""kill -9 a process that is saving submissions: everything whose save returned is there, complete.

The child saves in a loop (new submissions with attachments, identical resends carrying a new
attachment, edits, review changes) and prints each id only after the call returned. The parent
SIGKILLs it at a random moment, several times over the same store, and checks after each kill that
the store opens cleanly, that every reported write is there with its XML and attachment bytes, and
that listings and counts agree with point reads. Runs on SQLite (embedded) and PostgreSQL.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from rasoat.core.models import ReviewState
from rasoat.core.storage.base import Store, SubmissionQuery
from rasoat.core.storage.opening import open_store
from storage_contract import make_xml

pytestmark = pytest.mark.slow  # kill -9 of writing processes

CHILD = textwrap.dedent(
    """
    import hashlib, sys
    from datetime import UTC, datetime, timedelta
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from storage_contract import make_sub
    from rasoat.core.models import ReviewState
    from rasoat.core.storage.opening import open_store

    import threading
    store = open_store(Path({root!r}), {url!r})
    t0 = datetime(2025, 3, 1, tzinfo=UTC)
    out = threading.Lock()

    def say(*words):
        with out:
            print(*words, flush=True)

    def loop(run):
        i = 0
        prev = None
        while True:
            iid = f"uuid:{{run}}-{{i}}"
            unit = f"055{{60 + i % 30}}-01"
            sub, xml = make_sub(iid, unit_code=unit, received_at=t0 + timedelta(seconds=i))
            big = hashlib.sha256(iid.encode()).digest() * 2048  # 64 KiB
            store.save_submission(sub, xml, {{"a.jpg": big, "b.txt": iid.encode()}})
            say("new", iid)
            if i % 4 == 1:
                store.save_submission(sub, xml, {{"late.jpg": iid.encode() * 3}})
                say("late", iid)
            if i % 5 == 2 and prev is not None:
                eid = iid + "-edit"
                esub, exml = make_sub(eid, body="<e/>", deprecated_id=iid, unit_code=sub.unit_code,
                                      received_at=t0 + timedelta(seconds=i, milliseconds=5))
                store.save_submission(esub, exml, {{}})
                say("edit", eid, iid)
            if i % 6 == 3:
                store.set_review(iid, ReviewState.approved, "ok", "lan")
                say("review", iid)
            prev = iid
            i += 1

    runs = [{run!r}] if {threads!r} == 1 else [f"{run}t{{n}}" for n in range({threads!r})]
    for r in runs[1:]:
        threading.Thread(target=loop, args=(r,), daemon=True).start()
    loop(runs[0])
    """
)


def run_and_kill(root: Path, url: str | None, run: str, min_lines: int, threads: int = 1) -> list[list[str]]:
    code = CHILD.format(tests=str(Path(__file__).parent), root=str(root), url=url, run=run, threads=threads)
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=Path(__file__).parent.parent,
        # unbuffered: communicate() below reads the pipe itself, so bytes a buffered readline had taken
        # past the last whole line would be lost and the next report would arrive torn
        bufsize=0,
    )
    assert proc.stdout is not None
    lines: list[list[str]] = []
    deadline = time.monotonic() + 60
    target = min_lines + random.randint(0, 40)
    while len(lines) < target and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.decode().split())
    time.sleep(random.uniform(0, 0.02))  # land anywhere inside the next save
    os.kill(proc.pid, signal.SIGKILL)
    rest, err = proc.communicate(timeout=30)
    text = rest.decode()
    if not text.endswith("\n"):  # the kill cut the last report short: its save returned, but say nothing
        text = text.rpartition("\n")[0]
    lines += [ln.split() for ln in text.splitlines() if ln.strip()]
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    assert len(lines) >= min_lines, err.decode()[-2000:]
    return lines


def check(store: Store, reported: list[list[str]]) -> None:
    import hashlib

    for kind, iid, *rest in reported:
        sub = store.get_submission(iid)
        assert sub is not None, f"{kind} {iid} returned but is missing"
        if kind == "new":
            assert store.submission_xml(iid) == make_xml(iid)
            assert store.attachment(iid, "a.jpg") == hashlib.sha256(iid.encode()).digest() * 2048
            assert store.attachment(iid, "b.txt") == iid.encode()
            assert {"a.jpg", "b.txt"} <= set(sub.attachments)
        elif kind == "late":
            assert "late.jpg" in sub.attachments and store.attachment(iid, "late.jpg") == iid.encode() * 3
        elif kind == "edit":
            assert sub.current and sub.deprecated_id == rest[0]
            assert store.get_submission(rest[0]).current is False
        elif kind == "review":
            assert sub.review_state is ReviewState.approved
    everything = SubmissionQuery(current_only=False)
    indexed = {s.instance_id: s.model_dump() for s in store.iter_submissions(everything)}
    assert len(indexed) == store.count_submissions(everything)
    for kind, iid, *_ in reported:
        assert iid in indexed, f"{kind} {iid} is stored but not in the index"
    assert all(store.get_submission(iid).model_dump() == sub for iid, sub in indexed.items())


def test_kill_9_while_saving_loses_nothing_that_returned(tmp_path: Path, backend_url: str | None) -> None:
    root = tmp_path / "data"
    reported: list[list[str]] = []
    for run in ("r1", "r2", "r3", "r4"):
        reported += run_and_kill(root, backend_url, run, min_lines=45)
        store = open_store(root, backend_url)
        check(store, reported)
        store.close()
    assert sum(1 for r in reported if r[0] == "new") >= 100


def test_kill_9_while_threads_save_loses_nothing_that_returned(
    tmp_path: Path, backend_url: str | None
) -> None:
    """Four threads saving at once, each waiting its turn for the write lock (SQLite) or row locks
    (PostgreSQL). A kill at any moment still loses nothing whose save returned."""
    root = tmp_path / "data"
    reported: list[list[str]] = []
    for run in ("g1", "g2", "g3"):
        reported += run_and_kill(root, backend_url, run, min_lines=75, threads=4)
        store = open_store(root, backend_url)
        check(store, reported)
        store.close()
    assert sum(1 for r in reported if r[0] == "new") >= 100
