"""Paging benchmark: the officers' submission list (web page) and OData's ``Submissions`` on a full store.

    python benchmarks/paging.py --data /tmp/bench/data-100000 [--database URL] [--repeat 5]

Uses a data directory (or database) that ``benchmarks/ingest.py --keep`` filled, adds an administrator
with a password and an API token (once), starts ``rasoat serve`` on it and times, through HTTP with
keep-alive: OData's first page of the first form (``$top=100``), a page deep in it by ``$skip`` (the
middle and the end), a walk of ``--walk`` pages by ``@odata.nextLink``, and the web list's first page and
a page deep in it (``?page=N``, 50 rows a page). Each figure is the median of ``--repeat``
requests, in milliseconds, measured on the client (the machine is shared: the load average is printed).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import sys
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import free_port, start_server  # noqa: E402
from rasoat.core.storage.opening import open_store  # noqa: E402
from rasoat.core.users import create_user, new_api_token  # noqa: E402

USER, PASSWORD = "bench-admin", "mật-khẩu-đo-tốc-độ-1"


def prepare(data: Path, database_url: str | None) -> str:
    """The administrator's API token (created once and kept beside the data)."""
    saved = data.parent / f"paging-token-{data.name}.txt"
    if saved.exists():
        return saved.read_text().strip()
    store = open_store(data, database_url)
    try:
        if store.get_user_by_name(USER) is None:
            create_user(store, USER, PASSWORD, "admin")
        token = new_api_token(store, USER)
        total = store.count_submissions()
    finally:
        store.close()
    saved.write_text(token)
    print(f"prepared {data} ({total:,} submissions)")
    return token


def timed(conn: http.client.HTTPConnection, path: str, headers: dict[str, str]) -> tuple[float, bytes]:
    t0 = time.perf_counter()
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    body = resp.read()
    elapsed = (time.perf_counter() - t0) * 1000
    if resp.status != 200:
        raise RuntimeError(f"{path}: {resp.status} {body[:300]!r}")
    return elapsed, body


def web_session(conn: http.client.HTTPConnection) -> dict[str, str]:
    conn.request("GET", "/login")
    resp = conn.getresponse()
    page = resp.read().decode()
    cookie = resp.getheader("set-cookie", "").split(";")[0]
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    if csrf is None:
        raise RuntimeError("no login form")
    fields = {"username": USER, "password": PASSWORD, "csrf": csrf.group(1), "next": "/"}
    form = urllib.parse.urlencode(fields)
    conn.request("POST", "/login", body=form, headers={
        "Content-Type": "application/x-www-form-urlencoded", **({"Cookie": cookie} if cookie else {})})
    resp = conn.getresponse()
    resp.read()
    session = resp.getheader("set-cookie", "").split(";")[0]
    if resp.status != 303 or not session:
        raise RuntimeError(f"login failed: {resp.status}")
    return {"Cookie": session}


def median(conn: http.client.HTTPConnection, path: str, headers: dict[str, str], repeat: int) -> float:
    timed(conn, path, headers)  # warm
    return statistics.median(timed(conn, path, headers)[0] for _ in range(repeat))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--database")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--walk", type=int, default=50, help="pages of 100 walked by @odata.nextLink")
    args = ap.parse_args()
    token = prepare(args.data, args.database)
    port = free_port()
    server = start_server(args.data, port, 1, database_url=args.database)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        api = {"Authorization": f"Bearer {token}"}
        form = json.loads(timed(conn, "/v1/projects/1/forms", api)[1])[0]["xmlFormId"]
        odata = f"/v1/projects/1/forms/{urllib.parse.quote(form)}.svc/Submissions?$top=100"
        _, first = timed(conn, odata + "&$count=true", api)
        doc = json.loads(first)
        total = doc["@odata.count"]
        out: dict[str, float] = {}
        out["OData first page"] = median(conn, odata, api, args.repeat)
        out["OData $skip middle"] = median(conn, f"{odata}&$skip={total // 2}", api, args.repeat)
        out["OData $skip end"] = median(conn, f"{odata}&$skip={max(total - 100, 0)}", api, args.repeat)
        link, times = doc.get("@odata.nextLink"), []
        for _ in range(args.walk):
            if not link:
                break
            parts = urllib.parse.urlsplit(link)
            ms, body = timed(conn, f"{parts.path}?{parts.query}", api)
            times.append(ms)
            link = json.loads(body).get("@odata.nextLink")
        if times:
            out[f"OData nextLink walk ({len(times)} pages), per page"] = statistics.median(times)
        web = web_session(conn)
        pages = (total + 49) // 50
        listing = f"/submissions?form={urllib.parse.quote(form)}"
        _, html = timed(conn, listing, web)
        shown = re.search(rb'class="total">([^<]+)<', html)
        if shown is None or re.sub(rb"\D", b"", shown.group(1)) != str(total).encode():
            raise RuntimeError("the web list does not show the stored total: not the page measured")
        out["web page 1"] = median(conn, listing, web, args.repeat)
        out[f"web page {pages // 2}"] = median(conn, f"{listing}&page={pages // 2}", web, args.repeat)
        out[f"web page {pages}"] = median(conn, f"{listing}&page={pages}", web, args.repeat)
        conn.close()
    finally:
        server.terminate()
        server.wait(30)
    load = os.getloadavg()[0]
    print(f"{total:,} submissions, median of {args.repeat} (load {load:.1f}):")
    for name, ms in out.items():
        print(f"  {name}: {ms:.1f} ms")


if __name__ == "__main__":
    main()
