"""Raw export benchmark: rasoat's CSV zip and its xlsx workbook with each candidate writer, in one run.

    .venv/bin/pip install -e '.[benchmarks]'            # rustpy-xlsxwriter, pyexcelerate (benchmark only)
    .venv/bin/python benchmarks/export.py --n 10000 --n 100000 --workdir /tmp/rasoat-bench
    .venv/bin/python benchmarks/export.py --n 10000 --profile      # where the xlsx time goes
    .venv/bin/python benchmarks/export.py --fidelity-only          # what each writer keeps
    .venv/bin/python benchmarks/export.py --n 10000 --writers csv --http   # streamed downloads

Data: the national F2 household-pledge form (forms/f2_pledge.xlsx) in household-list mode; each submission
is one hamlet's list with ``--households`` household rows (the ``household`` repeat). They are loaded
into an EmbeddedStore with ``put_many_submissions`` (loading is set-up, not measured; ``--workdir`` keeps
one store per size for the next run).

The rasoat steps write to a file that cannot seek, as an HTTP response cannot, and note when its first
byte came and the step's CPU time (steadier than wall time on a shared machine). Measured, each in its
own process so peak memory (VmHWM) belongs to that step alone, every step reading the store and typing
the cells through ``core.excel.rows`` (the rasoat side is the same for all):
  rows          that rasoat side alone (store read, cell typing, keys), no writer: the floor of every step
  csv           ``export_form(..., format="csv")``: the zip of CSV files (Central's layout)
  xlsxwriter    ``export_form(...)``: the workbook with xlsxwriter ``constant_memory`` (rasoat's writer),
                its main sheet streamed into the zip (core.excel.streaming_workbook)
  unstreamed    the same workbook zipped by xlsxwriter's own ``close()``, as before the streaming
  rustpy        the same rows into rustpy-xlsxwriter (Rust ``rust_xlsxwriter``), one sheet per table
  pyexcelerate  the same rows into PyExcelerate, one sheet per table
Goal (issue 24): the xlsx path ≤ 10 s for 100,000 pledges (ODK Central's CSV export on this machine).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FORM = ROOT / "forms" / "f2_pledge.xlsx"
FORM_ID = "f2_pledge"
SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Hồ", "Lò", "Ma", "Triệu"]
MIDDLE = ["Văn", "Thị", "Đức", "Minh", "Thu", "Hữu", "Ngọc"]
GIVEN = ["An", "Bình", "Cường", "Dũng", "Hà", "Hạnh", "Hùng", "Lan", "Long", "Mai", "Nam", "Phương", "Thảo"]


def rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec,
    so a child would report its parent's peak (e.g. a store conversion done during set-up)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


# --- set-up ----------------------------------------------------------------------------------------


def compile_form() -> tuple[bytes, dict[str, Any], str]:
    from pyxform.xls2xform import convert

    res = convert(xlsform=str(FORM))
    schema = res._survey.to_json_dict()
    return res.xform.encode(), schema, str(schema.get("version") or "1")


def make_items(n: int, households: int, version: str, seed: int = 2026):
    """Deterministic F2 list-mode submissions as (Submission, xml, attachments)."""
    from rasoat.core.models import ReviewState, Submission
    from rasoat.core.units import get_units

    rng = random.Random(seed)
    communes = [c.code for c in get_units().communes("19")]
    start = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
    states = [ReviewState.received, ReviewState.approved, ReviewState.approved, ReviewState.has_issues]
    for i in range(n):
        commune = communes[i % len(communes)]
        hamlet = f"{commune}-{rng.randint(1, 25):02d}"
        when = start + timedelta(seconds=i * 7)
        local_day = (when + timedelta(hours=7)).date().isoformat()
        rows = []
        for h in range(households):
            pledged = rng.random() < 0.9
            row = {
                "head_name": f"{rng.choice(SURNAMES)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}",
                "household_code": f"{hamlet}-{h + 1:03d}",
                "members": str(rng.randint(1, 8)),
                "pledged": "yes" if pledged else "no",
                "pledged_n": "1" if pledged else "0",
            }
            if pledged:
                row["pledge_date"] = local_day
                row["signer_relation"] = rng.choice(["head", "spouse", "adult_member"])
            else:
                row["not_pledged_reason"] = rng.choice(["away", "refused", "in_progress", "other"])
            rows.append(row)
        signed = sum(r["pledged_n"] == "1" for r in rows)
        instance_id = f"uuid:{i:08d}-bench"
        fields = {
            "start": when.isoformat(timespec="milliseconds"),
            "end": (when + timedelta(minutes=12)).isoformat(timespec="milliseconds"),
            "today": local_day,
            "deviceid": f"collect:{i % 300:04d}",
            "username": f"thu{i % 300}",
            "admin_data_version": "2025-07-01",
            "province": "19",
            "commune": commune,
            "hamlet": hamlet,
            "ref_date": local_day,
            "enumerator_role": "hamlet_head",
            "mode": "list",
            "household": rows,
            "hh_listed": str(households),
            "hh_pledged_listed": str(signed),
            "households_total": str(households),
            "households_pledged": str(signed),
            "meta/instanceID": instance_id,
        }
        meta = f"<meta><instanceID>{instance_id}</instanceID></meta>"
        data = f'<data id="{FORM_ID}" version="{version}">{meta}</data>'.encode()
        sub = Submission(
            instance_id=instance_id,
            form_id=FORM_ID,
            form_version=version,
            round_id="r2026",
            unit_code=hamlet,
            collector_id=f"c{i % 300}",
            received_at=when,
            xml_md5=hashlib.md5(data).hexdigest(),
            fields=fields,
            review_state=states[i % len(states)],
        )
        yield sub, data, {}


def prepare(workdir: Path, n: int, households: int) -> Path:
    """A store holding n F2 submissions (reused when a previous run left the same data)."""
    from rasoat.core.models import FormVersion
    from rasoat.core.storage.opening import open_store

    store_dir = workdir / "store"
    store = open_store(store_dir)
    try:
        have = store.count_submissions()
        params = workdir / "params.json"
        if (
            have == n
            and params.exists()
            and json.loads(params.read_text()) == {"n": n, "households": households}
        ):
            print(f"store: reusing {have:,} submissions in {store_dir}", flush=True)
            return store_dir
        if have:
            raise SystemExit(f"{store_dir} holds {have:,} other submissions; use a fresh --workdir")
        xml, schema, version = compile_form()
        store.put_form(
            FormVersion(form_id=FORM_ID, version=version, title="F2", md5=hashlib.md5(xml).hexdigest()),
            xml,
            schema,
            {},
        )
        t0 = time.perf_counter()
        batch: list = []
        done = 0
        for item in make_items(n, households, version):
            batch.append(item)
            if len(batch) == 1000:
                done += store.put_many_submissions(batch)
                batch = []
                rate = done / (time.perf_counter() - t0)
                print(f"\rstore: {done:,}/{n:,} loaded ({rate:,.0f}/s)", end="", file=sys.stderr, flush=True)
        if batch:
            store.put_many_submissions(batch)
        print(f"\nstore: loaded {n:,} submissions in {time.perf_counter() - t0:,.0f} s", flush=True)
        (workdir / "params.json").write_text(json.dumps({"n": n, "households": households}))
    finally:
        store.close()
    return store_dir


# --- measured steps (each runs in a child process) -----------------------------------------------


def _open(workdir: Path) -> Any:
    from rasoat.core.storage.opening import open_store

    return open_store(workdir / "store")


class _FirstByte(io.RawIOBase):
    """A file that cannot seek, as an HTTP response cannot, noting when its first byte came."""

    def __init__(self, path: Path, t0: float) -> None:
        super().__init__()
        self.file, self.t0, self.first = path.open("wb"), t0, 0.0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        if not self.first:
            self.first = time.perf_counter() - self.t0
        return self.file.write(b)

    def close(self) -> None:
        self.file.close()
        super().close()


def _rasoat(workdir: Path, fmt: str, name: str) -> dict[str, Any]:
    from rasoat.core.excel.from_store import export_form
    from rasoat.core.excel.raw import RawExportOptions

    store = _open(workdir)
    out = workdir / name
    before = rss_mb()
    cpu0, t0 = time.process_time(), time.perf_counter()
    target = _FirstByte(out, t0)
    # include_personal: every column, so every writer gets the same cells
    stats = export_form(
        store,
        FORM_ID,
        target,
        format=fmt,  # type: ignore[arg-type]
        options=RawExportOptions(include_personal=True),
        actor="benchmark",
        plugin_sheets=False,
    )
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    target.close()
    store.close()
    return {"seconds": seconds, "cpu": cpu, "first_byte": target.first, "peak_mb": rss_mb(),
            "before_mb": before, "rows": stats.rows, "bytes": out.stat().st_size}


def phase_csv(workdir: Path) -> dict[str, Any]:
    return _rasoat(workdir, "csv", "rasoat.zip")


def phase_xlsxwriter(workdir: Path) -> dict[str, Any]:
    return _rasoat(workdir, "xlsx", "rasoat.xlsx")


def phase_unstreamed(workdir: Path) -> dict[str, Any]:
    """The same workbook zipped by xlsxwriter's own close(), as before issue 24's streaming."""
    import rasoat.core.excel.raw as raw
    from xlsxwriter.workbook import Workbook

    raw.StreamingWorkbook = Workbook  # type: ignore[misc]
    return _rasoat(workdir, "xlsx", "unstreamed.xlsx")


def _table_rows(workdir: Path) -> tuple[Any, Any]:
    """rasoat's own row builder over the store: (builder, iterator of (table, row)) in store order."""
    from rasoat.core.excel.from_store import _collector_names, _registry, prepare_form_export
    from rasoat.core.excel.raw import RawExportOptions, row_builder

    store = _open(workdir)
    units = _registry()
    prep = prepare_form_export(store, FORM_ID, None, RawExportOptions(include_personal=True), units)
    builder, _ = row_builder(prep.schema, FORM_ID, prep.options, units, _collector_names(store))

    def rows() -> Any:
        out: list[tuple[Any, list[Any]]] = []
        emit = lambda table, row: out.append((table, row))  # noqa: E731
        for sub in store.iter_submissions(prep.query):
            builder.rows(sub, emit)
            yield from out
            out.clear()
        store.close()

    return builder, rows()


def phase_rows(workdir: Path) -> dict[str, Any]:
    """The rasoat side alone: read the store and type every cell into rows, write nothing."""
    before = rss_mb()
    t0 = time.perf_counter()
    builder, rows = _table_rows(workdir)
    counts = [0] * len(builder.tables)
    for table, _row in rows:
        counts[table.index] += 1
    return {"seconds": time.perf_counter() - t0, "peak_mb": rss_mb(), "before_mb": before,
            "rows": {t.table.name: counts[t.index] for t in builder.tables}}


def phase_rustpy(workdir: Path) -> dict[str, Any]:
    """Main rows stream into the first sheet; repeat rows wait in memory (the library writes one sheet
    after the other, while a submission gives rows to every table at once)."""
    import rustpy_xlsxwriter as rx

    before = rss_mb()
    t0 = time.perf_counter()
    builder, rows = _table_rows(workdir)
    tables = builder.tables
    held: list[list[dict[str, Any]]] = [[] for _ in tables]
    counts = [0] * len(tables)

    def main_rows() -> Any:
        headers = tables[0].headers
        for table, row in rows:
            counts[table.index] += 1
            if table.index == 0:
                yield dict(zip(headers, row, strict=True))
            else:
                held[table.index].append(dict(zip(table.headers, row, strict=True)))

    def later(i: int) -> Any:
        yield from held[i]

    sheets = [(tables[0].base[:31], main_rows())] + [(t.base[:31], later(t.index)) for t in tables[1:]]
    rx.write_worksheets(sheets, str(workdir / "rustpy.xlsx"), datetime_format="dd/mm/yyyy hh:mm:ss",
                        freeze_panes={"general": {"row": 1, "col": 0}})
    return {"seconds": time.perf_counter() - t0, "peak_mb": rss_mb(), "before_mb": before,
            "rows": dict(zip([t.table.name for t in tables], counts, strict=True))}


def phase_pyexcelerate(workdir: Path) -> dict[str, Any]:
    """PyExcelerate takes each sheet's cells as one list of rows, so every row is held until save()."""
    from pyexcelerate import Workbook

    before = rss_mb()
    t0 = time.perf_counter()
    builder, rows = _table_rows(workdir)
    data: list[list[list[Any]]] = [[list(t.headers)] for t in builder.tables]
    for table, row in rows:
        data[table.index].append(row)
    wb = Workbook()
    for t in builder.tables:
        wb.new_sheet(t.base[:31], data=data[t.index])
    wb.save(str(workdir / "pyexcelerate.xlsx"))
    return {"seconds": time.perf_counter() - t0, "peak_mb": rss_mb(), "before_mb": before,
            "rows": {t.table.name: len(data[t.index]) - 1 for t in builder.tables}}


def phase_profile(workdir: Path) -> dict[str, Any]:
    """cProfile of the xlsx export, own time summed by where the code lives."""
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    _rasoat(workdir, "xlsx", "profile.xlsx")
    prof.disable()
    groups: dict[str, float] = {}
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    for (path, _line, func), (_cc, _nc, tottime, _ct, _callers) in stats.items():
        if "xlsxwriter" in path:
            key = "xlsxwriter (Python)"
        elif "zlib" in func or "compress" in func:
            key = "zlib (zip of the sheets)"
        elif "/storage/" in path or "pydantic" in path or "validate_json" in func or "json" in path:
            key = "store read + parse (rasoat storage, pydantic)"
        elif "/excel/" in path:
            key = "rasoat cell typing and rows (core.excel)"
        elif "write" in func and ("TextIOWrapper" in func or "BufferedWriter" in func):
            key = "xlsxwriter (file writes)"
        elif "re.Pattern" in func:
            key = "xlsxwriter (regex escaping)"
        else:
            key = "other"
        groups[key] = groups.get(key, 0.0) + tottime
    return {"groups": groups}


def phase_token(workdir: Path) -> dict[str, Any]:
    """An admin account with an API token for the download step (made once in the benchmark's store)."""
    from rasoat.core.users import create_user, new_api_token

    store = _open(workdir)
    try:
        if not any(u.username == "bench-officer" for u in store.list_users()):
            create_user(store, "bench-officer", "benchmark-password-1", "admin", [], actor="benchmark")
        return {"token": new_api_token(store, "bench-officer", actor="benchmark")}
    finally:
        store.close()


def downloads(workdir: Path) -> None:
    """Both formats from a real server (``rasoat serve`` in its own process) through the JSON API:
    time to the first body byte, total time, size, and the server's peak memory (VmHWM)."""
    import socket

    import httpx

    token = run_child("token", workdir)["token"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "rasoat.core.cli", "serve", "--data", str(workdir / "store"), "--no-demo",
         "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the server did not start")
            time.sleep(0.2)
        headers = {"Authorization": f"Bearer {token}"}
        print("download through the API (server in its own process):")
        for path in ("export.csv.zip", "export.xlsx"):
            t0 = time.perf_counter()
            first = None
            size = 0
            url = f"{base}/api/v1/forms/{FORM_ID}/{path}?personal=true"
            with httpx.stream("GET", url, headers=headers, timeout=None) as resp:
                resp.raise_for_status()
                for chunk in resp.iter_bytes():
                    if first is None:
                        first = time.perf_counter() - t0
                    size += len(chunk)
            total = time.perf_counter() - t0
            status = Path(f"/proc/{server.pid}/status").read_text().splitlines()
            hwm = next((int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM")), 0.0)
            print(f"  {path:<16} first byte {first or 0:6.1f} s   done {total:6.1f} s   "
                  f"{size / 1e6:6.1f} MB   server peak so far {hwm:5.0f} MB", flush=True)
    finally:
        server.terminate()
        server.wait(30)


PHASES = {
    "token": phase_token,
    "rows": phase_rows,
    "csv": phase_csv,
    "xlsxwriter": phase_xlsxwriter,
    "unstreamed": phase_unstreamed,
    "rustpy": phase_rustpy,
    "pyexcelerate": phase_pyexcelerate,
    "profile": phase_profile,
}


def run_child(phase: str, workdir: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--phase", phase, "--workdir", str(workdir)],
        capture_output=True,
        text=True,
    )
    if proc.returncode:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- fidelity: what each writer keeps (one small workbook each, read back with openpyxl) ------------


def fidelity() -> dict[str, dict[str, str]]:
    import io
    import zipfile
    from datetime import date
    from datetime import time as tod

    import openpyxl

    row = ["=1+1", datetime(2026, 3, 5, 10, 15), date(2026, 3, 5), tod(10, 15), 4, 12.5, "Nguyễn Thị Bích"]
    heads = ["formula", "datetime", "date", "time", "int", "float", "vietnamese"]

    def rasoat_writer(buf: Any) -> None:
        import xlsxwriter
        from rasoat.core.excel.cells import Formats

        wb = xlsxwriter.Workbook(buf, {"constant_memory": True, "strings_to_formulas": False})
        fm = Formats(wb)
        ws = wb.add_worksheet("S")
        ws.write_row(0, 0, heads)
        ws.write_string(1, 0, row[0], fm.text_quoted)
        ws.write_datetime(1, 1, row[1], fm.datetime)
        ws.write_datetime(1, 2, row[2], fm.date)
        ws.write_datetime(1, 3, row[3], fm.time)
        ws.write_number(1, 4, row[4])
        ws.write_number(1, 5, row[5])
        ws.write_string(1, 6, row[6])
        wb.close()

    def rustpy(buf: Any) -> None:
        import rustpy_xlsxwriter as rx

        rx.write_worksheets([("S", [dict(zip(heads, row, strict=True))])], buf,
                            datetime_format="dd/mm/yyyy hh:mm:ss")

    def pyexcelerate(buf: Any) -> None:
        from pyexcelerate import Workbook

        wb = Workbook()
        wb.new_sheet("S", data=[heads, row])
        wb.save(buf)

    report: dict[str, dict[str, str]] = {}
    writers = (("xlsxwriter", rasoat_writer), ("rustpy", rustpy), ("pyexcelerate", pyexcelerate))
    for name, write in writers:
        buf = io.BytesIO()
        try:
            write(buf)
        except Exception as exc:  # a missing candidate or one that refuses a type
            report[name] = {"error": repr(exc)}
            continue
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cells = list(openpyxl.load_workbook(io.BytesIO(buf.getvalue())).worksheets[0][2])
        with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
            has_formula = any(b"<f>" in z.read(n) for n in z.namelist() if "worksheets/sheet" in n)
        got = {h: c for h, c in zip(heads, cells, strict=False)}
        report[name] = {
            "formula text stays text": "yes" if not has_formula and got["formula"].data_type == "s" else "NO",
            "quote prefix on it": "yes" if got["formula"].quotePrefix else "no",
            "datetime": f"{got['datetime'].value!r} [{got['datetime'].number_format}]",
            "date": f"{got['date'].value!r} [{got['date'].number_format}]",
            "time": f"{got['time'].value!r} [{got['time'].number_format}]",
            "int": repr(got["int"].value),
            "vietnamese": "yes" if got["vietnamese"].value == row[6] else "NO",
        }
    return report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, action="append", help="submissions (repeatable)")
    ap.add_argument("--households", type=int, default=4, help="household rows per submission (default 4)")
    ap.add_argument("--workdir", type=Path, help="keep one store per size here (reused when it matches)")
    ap.add_argument("--writers", default="rows,csv,xlsxwriter,rustpy,pyexcelerate", help="steps, in order")
    ap.add_argument("--profile", action="store_true", help="also profile the xlsx export")
    ap.add_argument("--fidelity-only", action="store_true")
    ap.add_argument("--http", action="store_true", help="also download both formats from a real server")
    ap.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        print(json.dumps(PHASES[args.phase](args.workdir)))
        return 0

    print("fidelity (one row written by each writer, read back with openpyxl):")
    for name, props in fidelity().items():
        print(f"  {name}: " + "; ".join(f"{k}: {v}" for k, v in props.items()))
    if args.fidelity_only:
        return 0
    root = args.workdir or Path(tempfile.mkdtemp(prefix="rasoat-bench-"))
    for n in args.n or [10_000, 100_000]:
        workdir = root / f"n{n}"
        workdir.mkdir(parents=True, exist_ok=True)
        prepare(workdir, n, args.households)
        print(f"\n{n:,} F2 submissions x {args.households} households  (load average "
              f"{os.getloadavg()[0]:.1f} at start: the machine is shared)")
        print(f"{'step':<14}{'seconds':>9}{'CPU s':>7}{'first byte':>11}{'peak MB':>9}  rows")
        for step in args.writers.split(","):
            res = run_child(step, workdir)
            if "error" in res:
                print(f"{step:<14}  failed: {res['error']}")
                continue
            rows = ", ".join(f"{k} {v:,}" for k, v in res.get("rows", {}).items())
            cpu = f"{res['cpu']:>7.1f}" if "cpu" in res else f"{'':>7}"
            first = f"{res['first_byte']:>11.1f}" if "first_byte" in res else f"{'':>11}"
            print(f"{step:<14}{res['seconds']:>9.1f}{cpu}{first}{res['peak_mb']:>9.0f}  {rows}", flush=True)
        if args.http:
            downloads(workdir)
        if args.profile:
            groups = run_child("profile", workdir).get("groups", {})
            total = sum(groups.values()) or 1.0
            print("profile of the xlsx export (own time, under cProfile):")
            for key, secs in sorted(groups.items(), key=lambda kv: -kv[1]):
                print(f"  {key:<48}{secs:>7.1f} s {100 * secs / total:>5.1f} %")
        print(f"load average at end: {os.getloadavg()[0]:.1f}")
    print(f"files in {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
