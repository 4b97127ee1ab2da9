"""Embedded store benchmark: cost per save at 1,000 and at 100,000 stored, iteration and count speed.

    /tmp/venv/bin/python benchmarks/store_embedded.py [--data DIR] [--sizes 1000,100000] [--measure 2000]

Submissions look like F2 household-pledge records (location block, a dozen fields, a short repeat),
spread over 30 communes and 300 hamlets. At each size it times ``--measure`` single, durable
``save_submission`` calls (wall ms p50/p99 and CPU ms per save), then iterates everything
(``iter_submissions`` models and ``iter_facts`` tuples) and times ``count_submissions``.
The store is filled up to each size with ``put_many_submissions`` (also timed). Saves are also
timed from 8 threads at once (the server's concurrency), median of turns of 400.

Every synchronous flush Python asks for is counted (``os.fsync`` of files and of directories,
``os.fdatasync``, ``os.sync``): since the store is SQLite, these are the attachment files' flushes;
SQLite's own commit flush (one per transaction, shared by a group of concurrent saves) is not.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import os
import random
import resource
import shutil
import stat
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from disk_probe import fsync_ms  # benchmarks/ is the script's folder, first on sys.path

FLUSHES: collections.Counter[str] = collections.Counter()


def _counting(kind: str, real: Callable[..., Any]) -> Callable[..., Any]:
    def flush(*args: Any) -> Any:
        if kind == "fsync" and args and stat.S_ISDIR(os.fstat(args[0]).st_mode):
            FLUSHES["fsync dir"] += 1
        else:
            FLUSHES[kind] += 1
        return real(*args)

    return flush


# Count before the store's modules bind these functions (``datasync = os.fdatasync``).
os.fsync = _counting("fsync", os.fsync)
if hasattr(os, "fdatasync"):
    os.fdatasync = _counting("fdatasync", os.fdatasync)
if hasattr(os, "sync"):
    os.sync = _counting("sync", os.sync)

# Since the store is SQLite, the database's own flushes happen in C and are not counted here: the
# counts are the attachment files' (and directories') fsyncs only.
from rasoat.core.models import Submission  # noqa: E402
from rasoat.core.storage.base import SubmissionQuery  # noqa: E402
from rasoat.core.storage.embedded import EmbeddedStore  # noqa: E402


def _per(flushes: collections.Counter[str], count: int) -> str:
    """Flushes per operation: "4.00 (fdatasync 1.00, fsync 2.00, fsync dir 1.00)"."""
    parts = ", ".join(f"{k} {v / count:.2f}" for k, v in sorted(flushes.items()))
    return f"{sum(flushes.values()) / count:.2f}" + (f" ({parts})" if parts else "")




COMMUNES = [f"{5563 + i:05d}" for i in range(30)]
T0 = datetime(2025, 3, 1, tzinfo=UTC)


def record(n: int) -> tuple[Submission, bytes, dict[str, bytes]]:
    rnd = random.Random(n)
    commune = COMMUNES[n % len(COMMUNES)]
    hamlet = f"{commune}-{n // len(COMMUNES) % 10 + 1:02d}"
    iid = f"uuid:{hashlib.sha1(str(n).encode()).hexdigest()[:32]}"
    households = [
        {
            "head_name": f"Nguyễn Văn {rnd.randint(1, 999)}",
            "household_code": f"HH{rnd.randint(1, 9999)}",
            "members": str(rnd.randint(1, 8)),
            "pledged": rnd.choice(["yes", "no"]),
            "pledge_date": "2025-03-01",
            "signer_relation": "head",
        }
        for _ in range(3)
    ]
    fields = {
        "start": "2025-03-01T08:00:00.000+07:00",
        "end": "2025-03-01T08:10:00.000+07:00",
        "province": "19",
        "commune": commune,
        "hamlet": hamlet,
        "mode": "list",
        "hh_total": str(rnd.randint(50, 300)),
        "hh_pledged": str(rnd.randint(10, 50)),
        "not_pledged_reasons": "away refused",
        "household": households,
        "hh_listed": "3",
        "hh_pledged_listed": str(sum(h["pledged"] == "yes" for h in households)),
        "households_total": "3",
        "households_pledged": "2",
        "meta/instanceID": iid,
    }
    xml = (
        f'<data id="f2_pledge" version="2025"><commune>{commune}</commune><hamlet>{hamlet}</hamlet>'
        + "".join(f"<household><head_name>{h['head_name']}</head_name></household>" for h in households)
        + f"<meta><instanceID>{iid}</instanceID></meta></data>"
    ).encode()
    sub = Submission(
        instance_id=iid,
        form_id="f2_pledge",
        form_version="2025",
        round_id="r2025",
        unit_code=hamlet,
        collector_id=f"c{n % 300}",
        received_at=T0 + timedelta(seconds=n * 20),
        xml_md5=hashlib.md5(xml).hexdigest(),
        fields=fields,
    )
    return sub, xml, {}


def fill(start: int, stop: int) -> Iterator[tuple[Submission, bytes, dict[str, bytes]]]:
    for n in range(start, stop):
        yield record(n)


def timed_saves(store: EmbeddedStore, start: int, count: int, walls: list[float], cpus: list[float]) -> None:
    for n in range(start, start + count):
        sub, xml, atts = record(n)
        w, c = time.perf_counter(), time.process_time()
        store.save_submission(sub, xml, atts)
        cpus.append(time.process_time() - c)
        walls.append(time.perf_counter() - w)


def threaded_saves(store: EmbeddedStore, start: int, count: int, threads: int) -> tuple[float, float]:
    """(saves per second, CPU seconds) with ``threads`` threads saving at once (the server's concurrency)."""
    records = [record(n) for n in range(start, start + count)]
    chunks = [records[i::threads] for i in range(threads)]
    workers = [
        threading.Thread(target=lambda c: [store.save_submission(*r) for r in c], args=(c,)) for c in chunks
    ]
    t, c0 = time.perf_counter(), time.process_time()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return count / (time.perf_counter() - t), time.process_time() - c0


def timed(fn: Callable[[], int]) -> tuple[int, float, float]:
    """(result, wall s, CPU s)"""
    w, c = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - w, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--data", type=Path, help="parent dir of the stores (default: temporary, removed afterwards)"
    )
    ap.add_argument("--sizes", default="1000,100000")
    ap.add_argument("--measure", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=8)
    args = ap.parse_args()
    parent = args.data or Path(tempfile.mkdtemp(prefix="rasoat-bench-"))
    sizes = [int(s) for s in args.sizes.split(",")]
    stores = {size: EmbeddedStore(parent / f"store-{size}") for size in sizes}
    pledges = SubmissionQuery(form_id="f2_pledge")
    one_commune = SubmissionQuery(unit_codes=[COMMUNES[0]] + [f"{COMMUNES[0]}-{h:02d}" for h in range(1, 11)])
    try:
        for size, store in stores.items():
            stored = store.count_submissions(SubmissionQuery(current_only=False))
            if stored < size:
                _, wall, _ = timed(lambda: store.put_many_submissions(fill(stored, size)))  # noqa: B023
                print(f"fill {stored} -> {size}: {(size - stored) / wall:.0f}/s (put_many_submissions)")
        # Saves are measured in turns of 100 on each store, so a busy machine slows every size alike.
        walls: dict[int, list[float]] = {size: [] for size in sizes}
        cpus: dict[int, list[float]] = {size: [] for size in sizes}
        single: dict[int, collections.Counter[str]] = {size: collections.Counter() for size in sizes}
        for turn in range(0, args.measure, 100):
            for size, store in stores.items():
                before = FLUSHES.copy()
                timed_saves(store, 10_000_000 + turn, min(100, args.measure - turn), walls[size], cpus[size])
                single[size] += FLUSHES - before
        rates: dict[int, list[float]] = {size: [] for size in sizes}
        tcpu: dict[int, float] = {size: 0.0 for size in sizes}
        multi: dict[int, collections.Counter[str]] = {size: collections.Counter() for size in sizes}
        for turn in range(0, args.measure, 400):
            for size, store in stores.items():
                before = FLUSHES.copy()
                n = min(400, args.measure - turn)
                rate, cpu = threaded_saves(store, 20_000_000 + turn, n, args.threads)
                rates[size].append(rate)
                tcpu[size] += cpu
                multi[size] += FLUSHES - before
        load = os.getloadavg()[0]
        for size in sizes:
            w = sorted(walls[size])
            p50, p99 = w[len(w) // 2] * 1000, w[int(len(w) * 0.99)] * 1000
            cpu_ms = statistics.mean(cpus[size]) * 1000
            print(
                f"at {size} stored: save_submission {len(w) / sum(w):.0f}/s, p50 {p50:.2f} ms, "
                f"p99 {p99:.2f} ms, CPU {cpu_ms:.2f} ms/save, "
                f"flushes/save {_per(single[size], len(w))}; "
                f"{args.threads} threads: {statistics.median(rates[size]):.0f}/s, "
                f"CPU {tcpu[size] * 1000 / args.measure:.2f} ms/save, "
                f"flushes/save {_per(multi[size], args.measure)}"
            )
        print(f"load average {load:.1f}, one fsync'd 1.5 kB write {fsync_ms(parent):.2f} ms")
        for size, store in stores.items():
            print(f"at {size + 2 * args.measure} stored:")
            n, wall, cpu = timed(lambda: sum(1 for _ in store.iter_submissions(pledges)))  # noqa: B023
            print(f"  iter_submissions: {n} in {wall:.2f} s = {n / wall:.0f}/s ({n / cpu:.0f}/s of CPU)")
            fields = ["households_total", "households_pledged"]
            nf, wall, cpu = timed(lambda: sum(1 for _ in store.iter_facts(pledges, fields)))  # noqa: B023
            print(f"  iter_facts:       {nf} in {wall:.2f} s = {nf / wall:.0f}/s ({nf / cpu:.0f}/s of CPU)")
            c, wall1, _ = timed(store.count_submissions)
            c2, wall2, _ = timed(store.count_submissions)
            cu, wallu, _ = timed(lambda: store.count_submissions(one_commune))  # noqa: B023
            assert n == nf == c == c2, (n, nf, c, c2)
            print(
                f"  count_submissions: {wall1 * 1000:.0f} ms first (summaries built), "
                f"{wall2 * 1000:.1f} ms again; one commune ({cu}) {wallu * 1000:.1f} ms"
            )
        print(f"max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    finally:
        for store in stores.values():
            store.close()
        if args.data is None:
            shutil.rmtree(parent, ignore_errors=True)


if __name__ == "__main__":
    main()
