"""Officer pages at province scale: every page as every role, with 100,000 submissions in one province.

    .venv/bin/python benchmarks/pages.py --data /tmp/bench-pages/data [--repeat 5]
    .venv/bin/python benchmarks/pages.py --data /tmp/bench-pages/pg \
        --database "postgresql://postgres@127.0.0.1:5432/test?schema=bench_pages"

Data (loaded once with ``put_many_submissions``, a ``loaded.json`` marker lets later runs skip it): the
national forms' records of ``benchmarks/indicators.py`` filed in Thái Nguyên's 92 real communes — 90,000
household pledges, 10,000 person records and a little of every other national form, 90 % dated 2026 —
plus an open round over the province and ``AUDIT`` audit entries (lists and records viewed
over 60 days: the audit page reads them). Accounts: an administrator, the province's manager, a commune
officer and a viewer of the first commune.

``rasoat serve`` then runs in its own process; each role logs in and requests each page once and then
``--repeat`` more times over one keep-alive connection. A figure is the time from sending the request
to the last byte of the answer on localhost (server time plus a loopback round trip), in milliseconds:
the first request apart (the overview and indicators pages compute their figures then and remember them
for two minutes), then p50 and p95 of the others, per page and role. Pages a role may not open (403)
are shown by their status, not timed. The machine is shared: the load average is printed, and beside the
times the server process's own CPU per request (its threads' time on a CPU, from ``/proc``: what the
load does not change much; PostgreSQL's own CPU is not in it).

Then "after one new record", the officer's common case during a census: for the overview, indicators
and assessment pages, ``--new`` times each, one F1 person record is saved in the first commune through
the store (as an upload does) and the page is requested at once; every figure kept for the old data is
then stale. These records stay in the data (a later run finds a few more submissions). ``--new 0`` adds
none, so that a second run's first requests find every figure kept (a restart).
"""

from __future__ import annotations

import argparse
import glob
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from indicators import _sub, generate  # noqa: E402
from ingest import free_port, start_server  # noqa: E402

PROVINCE = "19"
PASSWORD = "mật-khẩu-đo-trang-1"
PLEDGES, PERSONS = 90_000, 10_000
AUDIT = 50_000  # audit entries: each list or record an officer opens is one (a province's few weeks)
JULY = "2026-07-01T00:00:00+00:00_"  # the list's "older" key: what was received before July, deep in it


class ProvinceUnits:
    """What ``indicators.generate`` asks of a registry, over the real province: records are filed in its
    communes (the national list has no hamlets; hamlet-level pages are the commune officer's)."""

    def __init__(self) -> None:
        from rasoat.core.units import get_units

        self.units = get_units().communes(PROVINCE)

    def hamlets(self) -> list[Any]:
        return self.units

    def communes(self) -> list[Any]:
        return self.units


def load(data: Path, database_url: str | None) -> dict[str, str]:
    """Fill the store once; returns the accounts (role → username) and a few ids the pages need."""
    from rasoat.core.formreg import publish_catalogue
    from rasoat.core.models import RoundState
    from rasoat.core.rounds import create_round
    from rasoat.core.storage.opening import open_store
    from rasoat.core.users import create_user

    data.mkdir(parents=True, exist_ok=True)
    marker = data / "loaded.json"
    if marker.exists():
        info = json.loads(marker.read_text())
        if "audit" not in info:  # data loaded before the audit entries were part of it
            info["audit"] = str(add_audit(data, database_url, info))
            marker.write_text(json.dumps(info))
        return info
    reg = ProvinceUnits()
    commune = reg.units[0].code
    store = open_store(data, database_url)
    try:
        publish_catalogue(store)  # the lists check that a form asked for exists
        t0 = time.perf_counter()
        n = store.put_many_submissions(generate(reg, SimpleNamespace(  # type: ignore[arg-type]
            pledges=PLEDGES, persons=PERSONS, households_per_pledge=1)))
        print(f"load: {n:,} submissions in {time.perf_counter() - t0:,.1f} s", file=sys.stderr)
        accounts = {"admin": ("bench.admin", []), "province_manager": ("bench.tinh", [PROVINCE]),
                    "commune_officer": ("bench.xa", [commune]), "viewer": ("bench.xem", [commune])}
        for role, (name, units) in accounts.items():
            create_user(store, name, PASSWORD, role, units, actor="bench")
        rnd = create_round(store, "Cam kết 2026 (đo)", "2026", ["f2_pledge"], [PROVINCE], actor="bench")
        store.put_round(rnd.model_copy(update={"state": RoundState.open}))
        some = store.page_submissions(None, limit=1, descending=True)[0]
        info = {**{role: name for role, (name, _) in accounts.items()}, "round": rnd.id,
                "submission": some.instance_id, "commune": commune, "count": str(store.count_submissions())}
    finally:
        store.close()
    info["audit"] = str(add_audit(data, database_url, info))
    marker.write_text(json.dumps(info))
    return info


def add_audit(data: Path, database_url: str | None, info: dict[str, str]) -> int:
    """``AUDIT`` entries over the last 60 days, as officers leave them: lists and records viewed in the
    province's communes, by the benchmark's accounts and others; one transaction (the store's own
    ``_audit_row``, so each entry is checked as the server's are)."""
    from datetime import timedelta

    from rasoat.core.models import AuditEvent, utcnow
    from rasoat.core.storage.opening import open_store

    communes = [u.code for u in ProvinceUnits().units]
    actors = [info["province_manager"], info["commune_officer"], info["viewer"], info["admin"],
              *(f"can.bo.{i}" for i in range(20))]
    start = utcnow() - timedelta(days=60)
    store = open_store(data, database_url)
    try:
        with store._tx() as cx:  # type: ignore[attr-defined]
            for n in range(AUDIT):
                at = start + timedelta(seconds=n * 60 * 86400 / AUDIT)
                unit = communes[n % len(communes)]
                event = (AuditEvent(at=at, actor=actors[n % len(actors)], action="view.submissions",
                                    target="f2_pledge", details={"unit": unit, "shown": 50})
                         if n % 3 else
                         AuditEvent(at=at, actor=actors[n % len(actors)], action="view.submission",
                                    target=f"uuid:f2_pledge-{n:08d}", details={"unit": unit}))
                store._audit_row(cx, event)  # type: ignore[attr-defined]
    finally:
        store.close()
    return AUDIT


def vacuum(data: Path, database_url: str) -> None:
    """What autovacuum (off on this machine's cluster) does soon after a bulk load or a migration that
    rewrites every row: without it the visibility map is empty and every count reads the table."""
    import psycopg
    from rasoat.core.storage.opening import open_store
    from rasoat.core.storage.postgres import split_schema

    open_store(data, database_url).close()  # a pending migration first (0007 rewrites rows)
    url, schema = split_schema(database_url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'VACUUM ANALYZE "{schema or "public"}".submissions')


def pages(info: dict[str, str]) -> list[tuple[str, str]]:
    q = urllib.parse.quote
    return [
        ("overview", "/"),
        ("indicators (own unit)", "/indicators"),
        ("indicators province, pledges", f"/indicators?unit={PROVINCE}&ind=nat_household_pledges"),
        ("indicators province, search", f"/indicators?unit={PROVINCE}&ind=nat_household_pledges&q=phuong"),
        ("indicators commune", f"/indicators?unit={info['commune']}"),
        ("submissions", "/submissions"),
        ("submissions pledges", "/submissions?form=f2_pledge"),
        ("submissions pledges, older", f"/submissions?form=f2_pledge&older={q(JULY)}"),
        ("submission detail", f"/submissions/{q(info['submission'], safe='')}"),
        ("review queue", "/review"),
        ("rounds", "/rounds"),
        ("round", f"/rounds/{q(info['round'], safe='')}"),
        ("assessment", "/assessment"),
        ("management", "/management"),
        ("collectors", "/collectors"),
        ("exports", "/exports"),
        ("plugins", "/plugins"),
        ("audit", "/audit"),
        ("accounts", "/accounts"),
        ("unit search", "/units/search?q=phuong"),
    ]


def login(conn: http.client.HTTPConnection, username: str) -> dict[str, str]:
    conn.request("GET", "/login")
    resp = conn.getresponse()
    html = resp.read().decode()
    csrf = re.search(r'name="csrf" value="([^"]+)"', html)
    if csrf is None:
        raise RuntimeError("no login form")
    cookie = resp.getheader("set-cookie", "").split(";")[0]
    body = urllib.parse.urlencode({"username": username, "password": PASSWORD, "csrf": csrf.group(1),
                                   "next": "/"})
    conn.request("POST", "/login", body=body, headers={
        "Content-Type": "application/x-www-form-urlencoded", **({"Cookie": cookie} if cookie else {})})
    resp = conn.getresponse()
    resp.read()
    session = resp.getheader("set-cookie", "").split(";")[0]
    if resp.status != 303 or not session:
        raise RuntimeError(f"login of {username} failed: {resp.status}")
    return {"Cookie": session}


def cpu_ms(pid: int) -> float:
    """The CPU time of every thread of process ``pid`` so far (``/proc/…/schedstat``: nanoseconds)."""
    total = 0
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            with open(path) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):  # a thread that ended meanwhile
            pass
    return total / 1e6


def get(
    conn: http.client.HTTPConnection, path: str, headers: dict[str, str], pid: int
) -> tuple[int, float, float]:
    """One request: its status, wall ms and the server's CPU ms."""
    c0, t0 = cpu_ms(pid), time.perf_counter()
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    resp.read()
    return resp.status, (time.perf_counter() - t0) * 1000, cpu_ms(pid) - c0


def measure(port: int, pid: int, username: str, paths: list[tuple[str, str]], repeat: int) -> dict[str, Any]:
    """Per page: the first request's time (the overview and indicators pages compute and remember their
    figures then), the sorted times of ``repeat`` more and their server CPU; or the status when not 200."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    headers = login(conn, username)
    out: dict[str, Any] = {}
    for name, path in paths:
        times, cpu = [], []
        for _ in range(1 + repeat):
            status, wall, used = get(conn, path, headers, pid)
            times.append(wall)
            cpu.append(used)
            if status != 200:
                break
        out[name] = (times[0], sorted(times[1:]), sorted(cpu[1:])) if status == 200 else status
    conn.close()
    return out


AFTER_NEW = ("overview", "indicators (own unit)", "assessment")


def after_new_record(port: int, pid: int, store: Any, info: dict[str, str], username: str,
                     paths: list[tuple[str, str]], times: int) -> dict[str, Any]:
    """Per page of ``AFTER_NEW``: the times of ``times`` requests, each right after a new F1 person record
    in the first commune (saved through the store, as an upload is), with the server's CPU; or a status."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    headers = login(conn, username)
    out: dict[str, Any] = {}
    for name, path in paths:
        if name not in AFTER_NEW:
            continue
        walls, cpu = [], []
        for _ in range(times):
            n = time.time_ns() // 1000  # a new person and instanceID each time, run after run
            sub, xml, files = _sub("f1_person", n, info["commune"], {
                "entry_type": "new", "person_key": f"new{n}", "present": "yes", "category": "user",
                "psychosis": "no", "has_record": "yes", "services": "counselling"}, time.strftime("%Y-%m-%d"))
            store.save_submission(sub, xml, files)
            status, wall, used = get(conn, path, headers, pid)
            if status != 200:
                break
            walls.append(wall)
            cpu.append(used)
        out[name] = (sorted(walls), sorted(cpu)) if status == 200 else status
    conn.close()
    return out


def p95(times: list[float]) -> float:
    return times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]


def main() -> int:
    from rasoat.core.storage.opening import open_store

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--database", default=None)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--new", type=int, default=3, help="requests after one new record, per page and role")
    args = ap.parse_args()
    info = load(args.data, args.database)
    if args.database:
        vacuum(args.data, args.database)
    port = free_port()
    server = start_server(args.data, port, workers=1, database_url=args.database)
    roles = ["admin", "province_manager", "commune_officer", "viewer"]
    paths = pages(info)
    loads = [os.getloadavg()[0]]
    try:
        results = {role: measure(port, server.pid, info[role], paths, args.repeat) for role in roles}
        loads.append(os.getloadavg()[0])
        fresh: dict[str, dict[str, Any]] = {}
        if args.new:  # --new 0: no record added, so that a later run finds every kept figure good
            store = open_store(args.data, args.database)
            try:
                fresh = {role: after_new_record(port, server.pid, store, info, info[role], paths, args.new)
                         for role in roles}
            finally:
                store.close()
            loads.append(os.getloadavg()[0])
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:  # a loaded machine: the figures matter more than a clean exit
            server.kill()
    backend = "PostgreSQL" if args.database else "SQLite (embedded)"
    print(f"{backend}, {int(info['count']):,} submissions, 1 + {args.repeat} requests per page and role, "
          f"load average {' → '.join(f'{x:.1f}' for x in loads)} (shared 2-core machine); "
          "server CPU ms per request: median of the repeats")
    print("| page | " + " | ".join(f"{r}: first · p50 / p95 ms · CPU" for r in roles) + " |")
    print("|---|" + "---:|" * len(roles))
    slow = []
    for name, _ in paths:
        cells = []
        for role in roles:
            got = results[role][name]
            if isinstance(got, int):
                cells.append(f"({got})")
                continue
            first, rest, cpu = got
            cells.append(f"{first:,.0f} · {statistics.median(rest):,.0f} / {p95(rest):,.0f} · "
                         f"{statistics.median(cpu):,.0f}")
            if p95(rest) >= 500:
                slow.append(f"{name} ({role})")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"p95 ≥ 500 ms after the first request: {', '.join(slow) if slow else 'none'}")
    if not fresh:
        return 0
    print(f"\nFirst request after one new record ({args.new} each: p50 / slowest ms · median server CPU ms)")
    print("| page | " + " | ".join(roles) + " |")
    print("|---|" + "---:|" * len(roles))
    for name in AFTER_NEW:
        cells = []
        for role in roles:
            got = fresh[role][name]
            if isinstance(got, int):
                cells.append(f"({got})")
                continue
            walls, cpu = got
            median = statistics.median
            cells.append(f"{median(walls):,.0f} / {walls[-1]:,.0f} · {median(cpu):,.0f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
