"""OData paging benchmark: a client pages through every submission of a form with ``$top`` and
``@odata.nextLink``, as Power BI and pyodk do, against a real rasoat server in its own process.

    .venv/bin/python benchmarks/odata_paging.py                      # 100,000 submissions, $top=1000
    .venv/bin/python benchmarks/odata_paging.py --n 20000 --top 500
    .venv/bin/python benchmarks/odata_paging.py --database "postgresql://postgres@127.0.0.1:5432/test?schema=odata_bench"

Data: a small form (location block, name, a ``member`` repeat of two rows) loaded with
``put_many_submissions`` (set-up, not measured). Measured: rows/s over the whole walk, the time of the
first and the last page (keyset paging: the last page must cost what the first does), and the server
process's resident memory after 10 %, 50 % and 100 % of the rows plus its peak (VmHWM): flat memory means
the response is streamed and the store reads one page at a time.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]

FORM_MD = """
| survey |
| | type | name | label |
| | text | commune | Xã |
| | text | hamlet | Thôn |
| | text | name | Họ tên |
| | integer | age | Tuổi |
| | begin_repeat | member | Thành viên |
| | integer | m_age | Tuổi |
| | end_repeat | | |
| settings |
| | form_id | version | form_title |
| | bench_odata | 1 | Biểu đo OData |
"""
USER, PASSWORD = "bench-admin", "mật-khẩu-đo-hiệu-năng"

SERVE = """
import sys, uvicorn
from pathlib import Path
from rasoat.core.storage.opening import open_store
from rasoat.server.app import ServerSettings, create_app
store = open_store(Path(sys.argv[1]), sys.argv[2] or None)
uvicorn.run(create_app(store, ServerSettings(access_log=False)), host="127.0.0.1", port=int(sys.argv[3]),
            log_level="warning")
"""


def load(data_dir: Path, database_url: str | None, n: int) -> None:
    from pyxform.xls2xform import convert
    from rasoat.core.models import FormVersion, Submission
    from rasoat.core.storage.opening import open_store
    from rasoat.core.users import create_user

    store = open_store(data_dir, database_url)
    try:
        if store.get_user_by_name(USER) is None:
            create_user(store, USER, PASSWORD, "admin", actor="bench")
        if store.get_form("bench_odata") is not None and store.count_submissions() >= n:
            n = 0  # loaded by an earlier run
        res = convert(xlsform=FORM_MD, file_type=".md", form_name="data")
        xml = res.xform.encode()
        form = FormVersion(
            form_id="bench_odata", version="1", title="Biểu đo OData", md5=hashlib.md5(xml).hexdigest()
        )
        if n:
            store.put_form(form, xml, res._survey.to_json_dict(), {})
        t0 = datetime(2026, 1, 1, tzinfo=UTC)

        def items():
            for i in range(n):
                iid = f"uuid:{uuid.UUID(int=i + 1)}"
                body = (
                    f'<data id="bench_odata" version="1"><commune>05563</commune><hamlet>05563-0{i % 9}'
                    f"</hamlet><name>Người {i}</name><age>{20 + i % 60}</age><member><m_age>{i % 90}"
                    f"</m_age></member><member><m_age>{(i + 7) % 90}</m_age></member><meta><instanceID>"
                    f"{iid}</instanceID></meta></data>"
                ).encode()
                fields = {
                    "commune": "05563",
                    "hamlet": f"05563-0{i % 9}",
                    "name": f"Người {i}",
                    "age": str(20 + i % 60),
                    "member": [{"m_age": str(i % 90)}, {"m_age": str((i + 7) % 90)}],
                    "meta/instanceID": iid,
                }
                sub = Submission(
                    instance_id=iid,
                    form_id="bench_odata",
                    form_version="1",
                    round_id="bench",
                    unit_code="05563",
                    collector_id="c-bench",
                    received_at=t0 + timedelta(seconds=i * 7),
                    xml_md5=hashlib.md5(body).hexdigest(),
                    fields=fields,
                )
                yield sub, body, {}

        store.put_many_submissions(items())
    finally:
        store.close()
    if database_url:  # what autovacuum does soon after a bulk load: without statistics the planner
        import psycopg  # sorts the whole form instead of walking the page index
        from rasoat.core.storage.postgres import split_schema

        url, schema = split_schema(database_url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'ANALYZE "{schema or "public"}".submissions')


def rss_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--top", type=int, default=1000)
    ap.add_argument("--database", default=None)
    ap.add_argument("--workdir", default=None, help="reuse a loaded data directory")
    args = ap.parse_args()
    data_dir = Path(args.workdir or tempfile.mkdtemp(prefix="rasoat-odata-bench-")) / "data"
    t = time.perf_counter()
    load(data_dir, args.database, args.n)
    print(f"set-up: {args.n} submissions loaded in {time.perf_counter() - t:.1f} s ({data_dir})")

    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-c", SERVE, str(data_dir), args.database or "", str(port)])
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(f"{base}/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        rss_start = rss_kb(server.pid, "VmRSS")
        url = f"{base}/v1/projects/1/forms/bench_odata.svc/Submissions?%24top={args.top}&%24count=true"
        rows = pages = 0
        marks: dict[str, int] = {}
        page_times: list[float] = []
        t0 = time.perf_counter()
        with httpx.Client(auth=(USER, PASSWORD), timeout=120) as client:
            while url:
                p0 = time.perf_counter()
                body = client.get(url).json()
                page_times.append(time.perf_counter() - p0)
                rows += len(body["value"])
                pages += 1
                for share in (0.1, 0.5):
                    if rows >= args.n * share and f"{share:.0%}" not in marks:
                        marks[f"{share:.0%}"] = rss_kb(server.pid, "VmRSS")
                url = body.get("@odata.nextLink")
        elapsed = time.perf_counter() - t0
        marks["100%"] = rss_kb(server.pid, "VmRSS")
        peak = rss_kb(server.pid, "VmHWM")
    finally:
        server.terminate()
        server.wait(30)
    assert rows == args.n, (rows, args.n)
    backend = "PostgreSQL" if args.database else "embedded"
    print(
        f"{backend}: {rows} rows in {pages} pages of {args.top}: {elapsed:.1f} s, "
        f"{rows / elapsed:,.0f} rows/s"
    )
    print(
        f"page time: first {page_times[0] * 1000:.0f} ms, median "
        f"{sorted(page_times)[len(page_times) // 2] * 1000:.0f} ms, last {page_times[-1] * 1000:.0f} ms"
    )
    print(
        f"server RSS MB: start {rss_start / 1024:.0f}, "
        + ", ".join(f"{k} {v / 1024:.0f}" for k, v in marks.items())
        + f"; peak {peak / 1024:.0f}"
    )


if __name__ == "__main__":
    main()
