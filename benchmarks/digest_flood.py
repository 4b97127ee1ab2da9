"""A flood of unauthenticated Digest requests: does it write to the store, and does it slow real submissions?

    .venv/bin/python benchmarks/digest_flood.py [--rate 100] [--seconds 10] [-n 200]

Starts ``rasoat serve`` (one process, embedded store) on a fresh data directory. Then:

1. **files**: the modification time and size of every file under the data directory are noted; a bounded
   loopback flood (``--rate`` requests/s for ``--seconds``, four client threads, no credentials, so each
   gets 401 and a fresh Digest challenge) runs alone; the files are compared again (must be unchanged).
2. **latency**: ``-n`` real submissions (HEAD then POST, as Collect sends, through a collector's token URL)
   one after another while the server is quiet, and ``-n`` more during the same flood, in four
   alternating blocks; the medians are compared (goal: within 2× of quiet).
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from ingest import instance, multipart, one_collector_server  # benchmarks/ is on sys.path


def files_state(data: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(data)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in data.rglob("*") if p.is_file()}


def flood(port: int, rate: float, seconds: float, stop: threading.Event, counts: list[int]) -> None:
    """One of four flooding threads: ``rate / 4`` unauthenticated GETs per second, paced."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    interval = 4 / rate
    end = time.monotonic() + seconds
    nxt = time.monotonic()
    while not stop.is_set() and time.monotonic() < end:
        conn.request("GET", "/v1/projects/1/formList", headers={"X-OpenRosa-Version": "1.0"})
        resp = conn.getresponse()
        resp.read()
        if resp.status != 401 or "Digest" not in (resp.getheader("WWW-Authenticate") or ""):
            raise RuntimeError(f"expected a Digest challenge, got {resp.status}")
        counts.append(1)
        nxt += interval
        time.sleep(max(0.0, nxt - time.monotonic()))
    conn.close()


def run_flood(port: int, rate: float, seconds: float) -> tuple[threading.Event, list[threading.Thread], list]:
    stop, counts = threading.Event(), []
    threads = [threading.Thread(target=flood, args=(port, rate, seconds, stop, counts)) for _ in range(4)]
    for t in threads:
        t.start()
    return stop, threads, counts


def submissions(port: int, token: str, commune: str, n: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    base = f"/v1/key/{token}/projects/1/submission"
    out = []
    bodies = [multipart(instance(commune, i)[1], {}) for i in range(n)]
    for body, content_type in bodies:
        t0 = time.perf_counter()
        conn.request("HEAD", base, headers={"X-OpenRosa-Version": "1.0"})
        head = conn.getresponse()
        head.read()
        conn.request("POST", base, body=body, headers={"Content-Type": content_type,
                                                       "X-OpenRosa-Version": "1.0"})
        resp = conn.getresponse()
        resp.read()
        if head.status != 204 or resp.status != 201:
            raise RuntimeError(f"submission failed: {head.status} {resp.status}")
        out.append((time.perf_counter() - t0) * 1000)
    conn.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=100.0, help="flood requests per second (bounded)")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the file-check flood")
    ap.add_argument("-n", type=int, default=200, help="submissions measured quiet and under the flood")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rasoat-bench-flood-"))
    data = tmp / "data"
    try:
        with one_collector_server(data) as (_proc, port, commune, token):
            submissions(port, token, commune, 20)  # warm up (caches, first writes)
            time.sleep(1.5)  # let the store's background checkpoint settle
            before = files_state(data)
            stop, threads, counts = run_flood(port, args.rate, args.seconds)
            for t in threads:
                t.join()
            after = files_state(data)
            changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
            rate = len(counts) / args.seconds
            shown = f" {changed[:5]}" if changed else ""
            print(f"flood alone: {len(counts)} unauthenticated requests in {args.seconds:.0f} s "
                  f"({rate:.0f}/s); store files changed: {len(changed)} of {len(before)}{shown}")

            quiet: list[float] = []
            loud: list[float] = []
            for _block in range(4):  # alternating blocks, so drift in the shared machine's load hits both
                quiet += submissions(port, token, commune, args.n // 4)
                stop, threads, counts = run_flood(port, args.rate, 3600)
                time.sleep(0.5)  # the flood is running before the first timed submission
                loud += submissions(port, token, commune, args.n // 4)
                stop.set()
                for t in threads:
                    t.join()
        q, f = statistics.median(quiet), statistics.median(loud)
        print(f"submission HEAD+POST median: quiet {q:.1f} ms, during the flood {f:.1f} ms "
              f"({f / q:.2f}×); p90 {statistics.quantiles(quiet, n=10)[-1]:.1f} / "
              f"{statistics.quantiles(loud, n=10)[-1]:.1f} ms")
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (a shared machine)")
        return 0 if not changed and f <= 2 * q else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
