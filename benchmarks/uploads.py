"""Upload memory: peak RSS of the server process while eight 100 MiB submissions arrive at once.

    .venv/bin/python benchmarks/uploads.py [--uploads 8] [--mib 100] [--data DIR]

Starts ``rasoat serve`` (one process, embedded store, default settings) on a fresh data directory, then
sends ``--uploads`` submissions in parallel through one collector's token URL, each a Collect-shaped
multipart body with one ``--mib`` MiB photo (its own random bytes, streamed by the client so the client
holds 1 MiB per upload). Reports each upload's status (201, or 503 with Retry-After when the server's
upload budget stays full for its wait), the server's resident memory before, and its peak (``VmHWM``
from /proc: the high-water mark of the whole run, whatever happened between samples).
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from ingest import instance, one_collector_server  # benchmarks/ is on sys.path


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def body_parts(commune: str, n: int, size: int) -> tuple[bytes, bytes, int, str]:
    """(head, tail, total length, content type) around a photo of ``size`` bytes sent in between."""
    _iid, xml = instance(commune, n, photo="big.jpg")
    boundary = f"bench-{n}-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="xml_submission_file"; filename="s.xml"\r\n'
        "Content-Type: text/xml\r\n\r\n".encode() + xml + f"\r\n--{boundary}\r\n"
        'Content-Disposition: form-data; name="big.jpg"; filename="big.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n".encode()
    )
    tail = f"\r\n--{boundary}--\r\n".encode()
    return head, tail, len(head) + size + len(tail), f"multipart/form-data; boundary={boundary}"


def upload(port: int, token: str, commune: str, n: int, size: int, out: list) -> None:
    head, tail, length, content_type = body_parts(commune, n, size)
    chunk = os.urandom(1 << 20)

    def body() -> Iterator[bytes]:
        yield head
        left = size
        while left:
            piece = chunk[: min(left, len(chunk))]
            left -= len(piece)
            yield piece
        yield tail

    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        conn.request("POST", f"/v1/key/{token}/projects/1/submission", body=body(), headers={
            "Content-Type": content_type, "Content-Length": str(length), "X-OpenRosa-Version": "1.0"})
        resp = conn.getresponse()
        text = resp.read()
        status = resp.status if resp.status in (201, 503) else f"{resp.status} {text[-300:]!r}"
        out.append((status, resp.getheader("Retry-After"), time.perf_counter() - started))
    except OSError as exc:
        out.append((f"error {exc}", None, time.perf_counter() - started))
    finally:
        conn.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--uploads", type=int, default=8)
    ap.add_argument("--mib", type=int, default=100)
    ap.add_argument("--data", type=Path, help="a data directory to use (default: a temporary one)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rasoat-bench-uploads-"))
    data = args.data or tmp / "data"
    try:
        with one_collector_server(data) as (proc, port, commune, token):
            before = status_kb(proc.pid, "VmRSS")
            results: list = []
            size = args.mib << 20
            threads = [threading.Thread(target=upload, args=(port, token, commune, i, size, results))
                       for i in range(args.uploads)]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            took = time.perf_counter() - t0
            peak = status_kb(proc.pid, "VmHWM")
        print(f"{args.uploads} parallel uploads of {args.mib} MiB in {took:.1f} s "
              f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
        for status, retry, secs in sorted(results, key=lambda r: r[2]):
            print(f"  {status}{f' Retry-After {retry}' if retry else ''} after {secs:.1f} s")
        mb = 1024 / 1e6  # /proc reports kB (KiB)
        print(f"server RSS before: {before * mb:.0f} MB; peak during the uploads (VmHWM): {peak * mb:.0f} MB")
        return 0 if peak * mb < 400 else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
