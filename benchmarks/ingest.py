"""Ingest benchmark: the real server over HTTP, driven as ODK Collect submits (HEAD, then POST multipart).

    /tmp/venv/bin/python benchmarks/ingest.py [--sizes 1000,100000] [--concurrency 1,8] [-n 2000]
                                              [--workers 1] [--attachment-bytes 0] [--data DIR]
                                              [--database postgresql://…/rasoat_bench]
                                              [--protected no,yes]

For each stored size it fills a fresh data directory with ``put_many_submissions`` (submissions spread
over 30 communes of Thái Nguyên, one form), starts ``rasoat serve`` in its own process, and for each
concurrency sends ``-n`` submissions, each as Collect does: ``HEAD …/submission`` (204) then ``POST``
multipart with ``xml_submission_file`` (201). Every submission goes to the collector of its commune,
through that collector's token URL. It reports submissions per second, p50/p99 latency of one
HEAD+POST pair, and the server process's CPU milliseconds per submission (from /proc, user+system,
every worker process included). The client is ``http.client`` with keep-alive, one connection per
client thread, so it costs the shared 2-core machine as little as possible.

``--protected no,yes`` measures the same form twice in one run: as it is, and with its identifying
fields declared (``bind::rasoat:identifying`` on the head of household, household code, address,
phone, member names and note; core.protection), so that each submission is split on arrival: those
values, the XML and any photo sealed with AES-256-GCM under a fresh data key wrapped by the
key-encryption key, a keyed digest kept for resends. The difference is the cost of field protection.

With ``--database URL`` the store is PostgreSQL: each stored size gets its own schema
(``bench_ingest_<size>``, dropped and refilled unless ``--reuse``, dropped at the end with the data
directories unless ``--keep`` or ``--data``), the data directory holds only the
attachments, and ``rasoat serve --database URL`` serves it. Then the disk probe is one bare durable
commit (what every save waits for), and the CPU of the PostgreSQL processes serving the benchmark's
database (its backends, the WAL writer, checkpointer and background writer) is reported apart from the
server's, since part of the store's work moves into the database.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from disk_probe import fsync_ms  # benchmarks/ is the script's folder, first on sys.path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rasoat.core.collectors import create_collector  # noqa: E402
from rasoat.core.instance import FormShape, parse_instance  # noqa: E402
from rasoat.core.models import FormVersion, Round, RoundState, Submission  # noqa: E402
from rasoat.core.storage.opening import open_store  # noqa: E402
from scratch import drop_schema, scratch_schema  # noqa: E402  (benchmarks/scratch.py, beside this script)

PROVINCE = "19"
FORM_ID = "bench_pledge"
FORM_VERSION = "1"
FORM_MD = f"""
| survey |
| | type | name | label | bind::rasoat:identifying |
| | select_one_from_file provinces.csv | province | Tỉnh | |
| | select_one_from_file communes.csv | commune | Xã | |
| | select_one_from_file hamlets.csv | hamlet | Thôn | |
| | text | head_name | Chủ hộ | yes |
| | text | household_code | Mã hộ | id |
| | integer | members | Số người | |
| | date | pledge_date | Ngày ký | |
| | select_one yn | signed | Đã ký | |
| | text | address | Địa chỉ | yes |
| | text | phone | Điện thoại | yes |
| | begin_repeat | member | Thành viên | |
| | text | member_name | Họ tên | yes |
| | integer | age | Tuổi | |
| | end_repeat | | | |
| | image | photo | Ảnh | |
| | text | note | Ghi chú | yes |
| choices |
| | list_name | name | label |
| | yn | yes | Có |
| | yn | no | Không |
| settings |
| | form_id | version | form_title | namespaces |
| | {FORM_ID} | {FORM_VERSION} | Cam kết (benchmark) | rasoat="https://rasoat.vn/xforms" |
"""


def form_md(protected: bool) -> str:
    """The benchmark form, with its identifying marks or with that column emptied."""
    if protected:
        return FORM_MD
    return FORM_MD.replace("| yes |\n", "| |\n").replace("| id |\n", "| |\n")


def communes() -> list[str]:
    from rasoat.core.units import get_units

    return [u.code for u in get_units().communes(PROVINCE)][:30]


def instance(commune: str, n: int, photo: str = "") -> tuple[str, bytes]:
    """A household pledge of about 1.5 kB, as Collect writes it."""
    iid = f"uuid:{uuid.uuid4()}"
    members = "".join(
        f"<member><member_name>Nguyễn Văn Thành viên {k}</member_name><age>{20 + k}</age></member>"
        for k in range(3)
    )
    xml = (
        f'<?xml version=\'1.0\' ?><data id="{FORM_ID}" version="{FORM_VERSION}" '
        'xmlns:h="http://www.w3.org/1999/xhtml" xmlns:jr="http://openrosa.org/javarosa" '
        'xmlns:orx="http://openrosa.org/xforms" xmlns:odk="http://www.opendatakit.org/xforms">'
        f"<province>{PROVINCE}</province><commune>{commune}</commune><hamlet/>"
        f"<head_name>Trần Văn Hộ {n}</head_name><household_code>HH{n:06d}</household_code>"
        f"<members>4</members><pledge_date>2026-05-01</pledge_date><signed>yes</signed>"
        f"<address>Xóm {n % 12 + 1}, {commune}</address><phone>09{n:08d}</phone>{members}"
        f"<photo>{photo}</photo><note>Không có ghi chú đặc biệt cho hộ này.</note>"
        f"<meta><instanceID>{iid}</instanceID></meta></data>"
    )
    return iid, xml.encode("utf-8")


def multipart(xml: bytes, files: dict[str, bytes]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="xml_submission_file"; '
        f'filename="submission.xml"\r\nContent-Type: text/xml\r\nContent-Length: {len(xml)}\r\n\r\n'.encode(),
        xml,
        b"\r\n",
    ]
    for name, data in files.items():
        out += [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}"\r\n'
            f"Content-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n".encode(),
            data,
            b"\r\n",
        ]
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


# --- setting up a data directory --------------------------------------------------------------


def prepare(
    data: Path, stored: int, database_url: str | None = None, protected: bool = False
) -> dict[str, str]:
    """Form, open round, one collector per commune, and ``stored`` submissions; returns commune → token."""
    from pyxform.xls2xform import convert

    store = open_store(data, database_url)
    try:
        result = convert(xlsform=form_md(protected), file_type=".md", form_name="data")
        xform = result.xform.encode("utf-8")
        form = FormVersion(
            form_id=FORM_ID,
            version=FORM_VERSION,
            title="Cam kết (benchmark)",
            md5=hashlib.md5(xform).hexdigest(),
            media=["provinces.csv", "communes.csv", "hamlets.csv"],
            source="benchmark",
        )
        store.put_form(form, xform, result._survey.to_json_dict(), {})
        units = communes()
        store.put_round(
            Round(
                id="bench",
                name="Benchmark",
                period="2026",
                form_ids=[FORM_ID],
                unit_codes=units,
                state=RoundState.open,
            )
        )
        tokens = {}
        users = {}
        for code in units:
            user, token = create_collector(store, f"Thu thập {code}", [code], ["bench"])
            tokens[code] = token
            users[code] = user.id
        shape = FormShape.from_xform(xform)
        t0 = time.perf_counter()
        created = store.put_many_submissions(_preload(units, users, stored, shape))
        took = time.perf_counter() - t0
        print(
            f"  preload: {created:,} submissions in {took:.1f} s ({created / max(took, 1e-9):,.0f}/s)",
            flush=True,
        )
    finally:
        store.close()
    return tokens


def _preload(
    units: list[str], users: dict[str, str], count: int, shape: FormShape
) -> Iterator[tuple[Submission, bytes, dict[str, bytes]]]:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    for n in range(count):
        commune = units[n % len(units)]
        iid, xml = instance(commune, n)
        parsed = parse_instance(xml, shape)
        sub = Submission(
            instance_id=iid,
            form_id=FORM_ID,
            form_version=FORM_VERSION,
            round_id="bench",
            unit_code=commune,
            collector_id=users[commune],
            received_at=start + timedelta(seconds=n * 7),
            xml_md5=hashlib.md5(xml).hexdigest(),
            fields=parsed.fields,
        )
        yield sub, xml, {}


# --- the server process -----------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """user+system CPU of a process and its children (uvicorn workers), from /proc."""
    return sum(cpu_split(pid))


def cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process and its children; system includes the kernel's fsync work."""
    ticks = os.sysconf("SC_CLK_TCK")
    user = system = 0.0
    for p in [pid] + _children(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user += int(fields[11]) / ticks
        system += int(fields[12]) / ticks
    return user, system


def _children(pid: int) -> list[int]:
    out = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            kids = (task / "children").read_text().split()
            for k in kids:
                out.append(int(k))
                out.extend(_children(int(k)))
    except OSError:
        pass
    return out


NO_FSYNC_HOOK = """import os
os.fsync = os.fdatasync = lambda fd: None
os.sync = lambda: None
"""


def start_server(
    data: Path, port: int, workers: int, no_fsync: bool = False, database_url: str | None = None
) -> subprocess.Popen:
    log = open(data.parent / f"server-{port}.log", "w")  # noqa: SIM115 - lives as long as the server
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if no_fsync:  # diagnosis only: what the HTTP layer and the store's bookkeeping cost without the disk
        hook = data.parent / "no-fsync-hook"
        hook.mkdir(exist_ok=True)
        (hook / "sitecustomize.py").write_text(NO_FSYNC_HOOK)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(hook), env.get("PYTHONPATH")]))
    args = ["serve", "--data", str(data), "--port", str(port), "--no-demo", "--workers", str(workers)]
    if database_url:
        args += ["--database", database_url]
    proc = subprocess.Popen(
        [sys.executable, "-m", "rasoat.core.cli", *args],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                conn.close()
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError((data.parent / f"server-{port}.log").read_text())


@contextlib.contextmanager
def one_collector_server(data: Path) -> Iterator[tuple[subprocess.Popen, int, str, str]]:
    """A new data directory with no submission, served by ``rasoat serve`` (one worker process): the
    process, its port, a commune and the token of its collector; the server is stopped afterwards."""
    tokens = prepare(data, 0)
    commune, token = next(iter(tokens.items()))
    port = free_port()
    proc = start_server(data, port, workers=1)
    try:
        yield proc, port, commune, token
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the load ---------------------------------------------------------------------------------


def run_load(
    port: int, tokens: dict[str, str], n: int, concurrency: int, attachment_bytes: int
) -> tuple[float, list[float], int]:
    """Send ``n`` submissions with ``concurrency`` client threads; returns (seconds, latencies, failures)."""
    units = list(tokens)
    work = list(range(n))
    lock = threading.Lock()
    latencies: list[float] = []
    failures = [0]
    photo = os.urandom(attachment_bytes) if attachment_bytes else b""
    # bodies are built before the clock starts, so the client's own work is not timed
    jobs = []
    for i in work:
        commune = units[i % len(units)]
        name = f"{i}.jpg" if photo else ""
        _, xml = instance(commune, 10_000_000 + i, photo=name)
        body, ctype = multipart(xml, {name: photo} if photo else {})
        jobs.append(
            (f"/v1/key/{tokens[commune]}/projects/1/submission?deviceID=collect%3Abench{i % 97}", body, ctype)
        )
    it = iter(jobs)

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        base_headers = {"X-OpenRosa-Version": "1.0", "User-Agent": "org.odk.collect.android/bench"}
        while True:
            with lock:
                job = next(it, None)
            if job is None:
                break
            path, body, ctype = job
            t0 = time.perf_counter()
            conn.request("HEAD", path, headers=base_headers)
            r = conn.getresponse()
            r.read()
            ok = r.status == 204
            conn.request("POST", path, body=body, headers={**base_headers, "Content-Type": ctype})
            r = conn.getresponse()
            r.read()
            ok = ok and r.status == 201
            took = time.perf_counter() - t0
            with lock:
                latencies.append(took)
                if not ok:
                    failures[0] += 1
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, latencies, failures[0]




# --- PostgreSQL ---------------------------------------------------------------------------------


def commit_ms(url_with_schema: str, count: int = 50) -> float:
    """One bare durable commit (a transaction id, nothing else): the disk's share of every save."""
    import psycopg
    from rasoat.core.storage.postgres import split_schema

    url, _ = split_schema(url_with_schema)
    with psycopg.connect(url) as conn:
        t0 = time.perf_counter()
        for _ in range(count):
            conn.execute("SELECT pg_current_xact_id()")
            conn.commit()
        return (time.perf_counter() - t0) * 1000 / count


def db_cpu(url_with_schema: str | None) -> dict[int, float]:
    """CPU seconds (user+system) of each PostgreSQL process working for the benchmark: its database's
    backends and the WAL writer, checkpointer and background writer (shared with the whole cluster)."""
    if not url_with_schema:
        return {}
    import psycopg
    from rasoat.core.storage.postgres import split_schema

    url, _ = split_schema(url_with_schema)
    with psycopg.connect(url, autocommit=True) as conn:
        pids = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND (datname = current_database()"
            " OR backend_type IN ('walwriter', 'checkpointer', 'background writer'))"
        ).fetchall()
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for (pid,) in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return out


def db_cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU spent between two ``db_cpu`` readings; a backend the pool opened meanwhile counts whole."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,100000")
    ap.add_argument("--concurrency", default="1,8")
    ap.add_argument("-n", type=int, default=2000, help="submissions per measurement")
    ap.add_argument("--workers", type=int, default=1, help="server worker processes")
    ap.add_argument(
        "--attachment-bytes", type=int, default=0, help="a photo of this size with each submission"
    )
    ap.add_argument("--data", help="parent folder for the data directories (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the data directories")
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="reuse data directories a --keep run left in --data (measured runs add to them)",
    )
    ap.add_argument(
        "--no-fsync",
        action="store_true",
        help="diagnosis only: the server process skips fsync (NOT durable; shows the cost of the "
        "HTTP layer and the store's bookkeeping apart from the disk)",
    )
    ap.add_argument("--protected", default="no", help="no, yes or no,yes: the form's identifying fields "
                    "declared, so each submission is sealed on arrival (core.protection)")
    ap.add_argument(
        "--database",
        metavar="URL",
        help="PostgreSQL (e.g. postgresql://postgres@127.0.0.1:5432/rasoat_bench): one schema per size",
    )
    args = ap.parse_args()
    parent = Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="rasoat-bench-"))
    parent.mkdir(parents=True, exist_ok=True)
    rows = []
    # the key-encryption key of the protected runs: a throw-away file beside the data directories
    os.environ.setdefault("RASOAT_KEY_DIR", str(parent / "keys"))
    runs = [(size, mode == "yes") for mode in args.protected.split(",") for size in
            [int(s) for s in args.sizes.split(",")]]
    kept = args.keep or bool(args.data)  # the data directories stay, and their schemas with them
    database, base = None, None  # the URL without the schema it names, if any: each size has its own
    if args.database:
        from rasoat.core.storage.postgres import split_schema  # only a PostgreSQL run needs the driver

        database, base = split_schema(args.database)
    with contextlib.ExitStack() as cleanup:
        if not kept:
            cleanup.callback(shutil.rmtree, parent, ignore_errors=True)
        for size, protected in runs:
            tag = f"{size}{'-protected' if protected else ''}"
            data = parent / f"data-{tag}"
            saved = parent / f"tokens-{tag}.json"
            schema = f"{base or 'bench_ingest'}_{size}{'_protected' if protected else ''}"
            db = cleanup.enter_context(scratch_schema(database, "bench_ingest", name=schema, keep=kept))
            if args.reuse and saved.is_file() and data.is_dir():
                tokens = json.loads(saved.read_text())
                print(f"stored {size:,}: reusing {data}{' and its schema' if db else ''}", flush=True)
            else:
                shutil.rmtree(data, ignore_errors=True)
                if database:
                    drop_schema(database, schema)
                print(f"stored {size:,}{', protected' if protected else ''}:", flush=True)
                tokens = prepare(data, size, db, protected)
                saved.write_text(json.dumps(tokens))
            port = free_port()
            proc = start_server(data, port, args.workers, args.no_fsync, db)
            try:
                # warm-up: caches, first connections (not counted)
                run_load(port, tokens, 50, 2, args.attachment_bytes)
                for c in [int(x) for x in args.concurrency.split(",")]:
                    probe = commit_ms(db) if db else fsync_ms(parent)
                    load = os.getloadavg()[0]
                    user0, sys0, dbcpu0 = *cpu_split(proc.pid), db_cpu(db)
                    secs, lat, failed = run_load(port, tokens, args.n, c, args.attachment_bytes)
                    user1, sys1, dbcpu1 = *cpu_split(proc.pid), db_cpu(db)
                    cpu = (user1 - user0) + (sys1 - sys0)
                    sys_share = (sys1 - sys0) / cpu if cpu else 0.0
                    row = {
                        "protected": protected,
                        "stored": size,
                        "concurrency": c,
                        "n": args.n,
                        "rate": args.n / secs,
                        "p50_ms": pct(lat, 0.50) * 1000,
                        "p99_ms": pct(lat, 0.99) * 1000,
                        "cpu_ms": cpu * 1000 / args.n,
                        "db_cpu_ms": db_cpu_spent(dbcpu0, dbcpu1) * 1000 / args.n if db else None,
                        "failed": failed,
                        "fsync_ms": probe,
                        "load": load,
                        "sys_share": sys_share,
                    }
                    rows.append(row)
                    print(
                        f"  c={c}: {row['rate']:.0f} submissions/s, p50 {row['p50_ms']:.1f} ms, "
                        f"p99 {row['p99_ms']:.1f} ms, server CPU {row['cpu_ms']:.2f} ms/submission "
                        f"({100 * sys_share:.0f}% kernel), "
                        + (f"PostgreSQL CPU {row['db_cpu_ms']:.2f} ms/submission, " if db else "")
                        + f"failed {failed} ({'commit' if db else 'fsync'} {probe:.2f} ms, load {load:.1f})",
                        flush=True,
                    )
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=120)
    print()
    if args.no_fsync:
        print("NOT DURABLE: fsync was switched off in the server (diagnosis run)")
    if args.database:
        print(f"PostgreSQL, {args.workers} server worker(s); 'commit ms' is one bare durable commit")
        print(
            "| protected | stored | concurrency | submissions/s | p50 ms | p99 ms | server CPU ms/submission "
            "| PostgreSQL CPU ms/submission | failed | commit ms | load |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    else:
        print(
            "| protected | stored | concurrency | submissions/s | p50 ms | p99 ms | server CPU ms/submission "
            "| failed | fsync ms | load |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        db_col = f" {r['db_cpu_ms']:.2f} |" if args.database else ""
        print(
            f"| {'yes' if r['protected'] else 'no'} | {r['stored']:,} | {r['concurrency']} | {r['rate']:.0f} "
            f"| {r['p50_ms']:.1f} "
            f"| {r['p99_ms']:.1f} | {r['cpu_ms']:.2f} |{db_col} {r['failed']} | {r['fsync_ms']:.2f} "
            f"| {r['load']:.1f} |"
        )
    for c, protected in sorted({(r["concurrency"], r["protected"]) for r in rows}):
        by = {r["stored"]: r["rate"] for r in rows if r["concurrency"] == c and r["protected"] == protected}
        if len(by) > 1:
            small, big = by[min(by)], by[max(by)]
            print(
                f"c={c}: rate at {max(by):,} stored is {100 * (big - small) / small:+.1f}% of the rate at "
                f"{min(by):,}"
            )
    return 1 if any(r["failed"] for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
