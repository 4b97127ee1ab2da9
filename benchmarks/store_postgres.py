"""PostgreSQL store benchmark: bulk load, cost per save at 1,000 and 100,000 stored, two writer processes,
streaming iteration, counts, and the disk each submission takes.

    /tmp/venv/bin/python benchmarks/store_postgres.py [--database URL] [--sizes 1000,100000]
                                                      [--measure 2000] [--procs 2] [--attachment-bytes 0]

Uses the same F2 household-pledge records as benchmarks/store_embedded.py (30 communes, 300 hamlets,
a 3-household repeat), so the two backends' figures compare line by line. Runs in a fresh schema of
the database (default postgresql://postgres@127.0.0.1:5432/test), dropped afterwards unless --keep.
At each size: ``put_many_submissions`` fills up to it (COPY batches), ``--measure`` single durable
``save_submission`` calls are timed (one thread; then 8 threads sharing one store; then ``--procs``
processes at once on one database, as server workers), each beside the cost of one bare commit;
then ``iter_submissions`` (models), ``iter_facts`` (indicator tuples) and ``count_submissions`` run
over everything.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rasoat.core.storage.base import SubmissionQuery  # noqa: E402
from rasoat.core.storage.postgres import PostgresStore, split_schema  # noqa: E402
from scratch import scratch_schema  # noqa: E402  (benchmarks/scratch.py, beside this script)
from store_embedded import COMMUNES, record  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
ALL = SubmissionQuery(current_only=False)


def with_attachment(n: int, size: int):
    sub, xml, _ = record(n)
    if not size:
        return sub, xml, {}
    photo = (n.to_bytes(8, "big") * (size // 8 + 1))[:size]  # distinct bytes per submission
    return sub, xml, {"photo.jpg": photo}


def commit_ms(store: PostgresStore, n: int = 200) -> float:
    """p50 of one tiny durable commit (a kv_put): the disk's share of every save, measured alongside."""
    walls = []
    for i in range(n):
        t = time.perf_counter()
        store.kv_put("bench", f"k{i % 10}", i)
        walls.append(time.perf_counter() - t)
    walls.sort()
    return walls[len(walls) // 2] * 1000


def timed_saves(store: PostgresStore, start: int, count: int, att: int) -> dict[str, float]:
    walls, cpus = [], []
    for n in range(start, start + count):
        item = with_attachment(n, att)
        w, c = time.perf_counter(), time.process_time()
        store.save_submission(*item)
        cpus.append(time.process_time() - c)
        walls.append(time.perf_counter() - w)
    walls.sort()
    return {
        "saves_per_s": count / sum(walls),
        "p50_ms": walls[len(walls) // 2] * 1000,
        "p99_ms": walls[int(len(walls) * 0.99)] * 1000,
        "cpu_ms": statistics.mean(cpus) * 1000,
    }


def threaded_saves(store: PostgresStore, start: int, count: int, threads: int, att: int) -> float:
    """Saves/s of ``threads`` threads sharing one store (one server process under concurrent uploads)."""
    each = count // threads

    def run(k: int) -> None:
        for n in range(start + k * each, start + (k + 1) * each):
            store.save_submission(*with_attachment(n, att))

    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(run, range(threads)))
    return each * threads / (time.perf_counter() - t)


def _writer(url: str, schema: str, files: str, start: int, count: int, att: int, go, out) -> None:
    store = PostgresStore(url, Path(files), schema=schema, max_pool=2)
    go.wait()
    t = time.perf_counter()
    for n in range(start, start + count):
        store.save_submission(*with_attachment(n, att))
    out.put(time.perf_counter() - t)
    store.close()


def parallel_saves(url: str, schema: str, files: Path, start: int, count: int, procs: int, att: int) -> float:
    """Aggregate saves/s of ``procs`` processes (as server workers would) writing at once."""
    ctx = multiprocessing.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    each = count // procs
    ps = [ctx.Process(target=_writer, args=(url, schema, str(files), start + i * each, each, att, go, out))
          for i in range(procs)]
    for p in ps:
        p.start()
    time.sleep(2.0)  # every process has imported and connected
    go.set()
    walls = [out.get() for _ in ps]  # each process times its own saves (start-up and exit excluded)
    for p in ps:
        p.join()
    return each * procs / max(walls)


def disk_bytes(url: str, schema: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relkind = 'r'", (schema,)
        ).fetchall()
    return dict(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database", default=DEFAULT_URL)
    ap.add_argument("--schema", help="schema to use (default: a fresh one)")
    ap.add_argument("--keep", action="store_true", help="keep the schema and files afterwards")
    ap.add_argument("--sizes", default="1000,100000")
    ap.add_argument("--measure", type=int, default=2000)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--attachment-bytes", type=int, default=0)
    args = ap.parse_args()
    files = Path(tempfile.mkdtemp(prefix="rasoat-pg-bench-"))
    try:
        with scratch_schema(args.database, "rasoat_bench", name=args.schema, keep=args.keep) as url:
            _, schema = split_schema(url)
            measure(args, schema, files)
    finally:
        if not args.keep:
            shutil.rmtree(files, ignore_errors=True)


def measure(args: argparse.Namespace, schema: str, files: Path) -> None:
    """Every figure the module's docstring names, at each of ``--sizes``, in ``schema``."""
    store = PostgresStore(args.database, files, schema=schema)
    att = args.attachment_bytes
    stored = store.count_submissions(ALL)
    next_n = stored
    print(f"schema {schema}; attachments {att} bytes per submission")
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            if stored < size:
                t = time.perf_counter()
                items = (with_attachment(n, att) for n in range(next_n, next_n + size - stored))
                store.put_many_submissions(items)
                dt = time.perf_counter() - t
                rate = (size - stored) / dt
                print(f"fill {stored:>7} → {size:>7}: {rate:8.0f} saves/s (put_many_submissions)")
                next_n += size - stored
                stored = size
            with psycopg.connect(args.database, autocommit=True) as conn:
                conn.execute(f'ANALYZE "{schema}".submissions')
            commit = commit_ms(store)
            r = timed_saves(store, 10_000_000 + next_n, args.measure, att)
            next_n += args.measure
            stored += args.measure
            print(f"at {size:>7} stored: save {r['saves_per_s']:6.0f}/s  p50 {r['p50_ms']:.2f} ms  "
                  f"p99 {r['p99_ms']:.2f} ms  client CPU {r['cpu_ms']:.2f} ms/save  "
                  f"(one bare commit {commit:.2f} ms; load {os.getloadavg()[0]:.1f})")
            rate = threaded_saves(store, 30_000_000 + next_n, args.measure, 8, att)
            next_n += args.measure
            stored += args.measure
            print(f"           8 threads, one process: {rate:6.0f} saves/s")
            if args.procs > 1:
                rate = parallel_saves(args.database, schema, files, 20_000_000 + next_n, args.measure,
                                      args.procs, att)
                next_n += args.measure
                stored += args.measure
                print(f"           {args.procs} processes at once: {rate:6.0f} saves/s together")
            q = SubmissionQuery(form_id="f2_pledge")
            t = time.perf_counter()
            n = sum(1 for _ in store.iter_submissions(q))
            dt = time.perf_counter() - t
            t = time.perf_counter()
            nf = sum(1 for _ in store.iter_facts(q, ["households_total", "households_pledged", "household"]))
            dtf = time.perf_counter() - t
            t = time.perf_counter()
            c = store.count_submissions()
            dtc = time.perf_counter() - t
            t = time.perf_counter()
            cu = store.count_submissions(SubmissionQuery(unit_codes=[COMMUNES[0], f"{COMMUNES[0]}-01"]))
            dtu = time.perf_counter() - t
            assert n == nf == c, (n, nf, c)
            print(f"           iterate {n} models {n / dt:8.0f}/s   facts {nf / dtf:8.0f}/s   "
                  f"count {dtc * 1000:.0f} ms (one commune {cu} in {dtu * 1000:.1f} ms)")
        sizes = disk_bytes(args.database, schema)
        blob_bytes = sum(f.stat().st_size for f in files.rglob("*") if f.is_file())
        per = (sizes.get("submissions", 0) + sizes.get("submission_xml", 0)) / max(stored, 1)
        print(f"disk: submissions {sizes.get('submissions', 0) / 2**20:.0f} MiB (with indexes), "
              f"XML {sizes.get('submission_xml', 0) / 2**20:.0f} MiB → {per / 1024:.1f} KiB per submission; "
              f"attachment files {blob_bytes / 2**20:.0f} MiB")
        print(f"max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    finally:
        store.close()


if __name__ == "__main__":
    main()
