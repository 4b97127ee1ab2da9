"""Excel export benchmark: rasoat's raw export from the embedded store against plain writers.

    /tmp/venv/bin/python benchmarks/export.py             # 100,000 F2 submissions, 4 households each
    /tmp/venv/bin/python benchmarks/export.py --n 10000 --skip-pandas
    /tmp/venv/bin/python benchmarks/export.py --workdir /tmp/rasoat-bench   # reuse a loaded store

Data: the national F2 household-pledge form (forms/f2_pledge.xlsx) in household-list mode; each submission
is one hamlet's list with ``--households`` household rows (the ``household`` repeat). They are loaded
into an EmbeddedStore with ``put_many_submissions`` (loading is set-up, not measured).

Measured, each in its own process so peak memory (ru_maxrss) belongs to that step alone:
  rasoat      ``export_form(store, "f2_pledge", …)``: reads the store, types every cell, writes xlsx
  xlsxwriter  plain xlsxwriter (constant_memory) writing the very same rows (read back from rasoat's file)
              from memory, with type-specific write calls: the floor for this writer
  pandas      the same rows as DataFrames, ``to_excel`` with the openpyxl engine (pandas is only a
              benchmark dependency: ``pip install pandas``)
Goals (issue 6): rasoat ≤ 1.5 × xlsxwriter, ≥ 4 × faster than pandas, peak memory < 300 MB.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import pickle
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
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


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
    from rasoat.core.storage import open_store

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


def phase_rasoat(workdir: Path) -> dict[str, Any]:
    from rasoat.core.excel.from_store import export_form
    from rasoat.core.excel.raw import RawExportOptions
    from rasoat.core.storage import open_store

    store = open_store(workdir / "store")
    out = workdir / "rasoat.xlsx"
    before = rss_mb()
    t0 = time.perf_counter()
    # include_personal: every column, so the plain writers get exactly the same cells
    stats = export_form(
        store,
        FORM_ID,
        out,
        options=RawExportOptions(include_personal=True),
        actor="benchmark",
        plugin_sheets=False,
    )
    seconds = time.perf_counter() - t0
    store.close()
    return {
        "seconds": seconds,
        "peak_mb": rss_mb(),
        "before_mb": before,
        "rows": stats.rows,
        "bytes": out.stat().st_size,
    }


def phase_rows(workdir: Path) -> dict[str, Any]:
    """Set-up for the plain writers: rasoat's cells, read back, kept as Python rows (not measured)."""
    import openpyxl

    wb = openpyxl.load_workbook(workdir / "rasoat.xlsx", read_only=True)
    sheets = {ws.title: [list(r) for r in ws.iter_rows(values_only=True)] for ws in wb.worksheets}
    with (workdir / "rows.pickle").open("wb") as fh:
        pickle.dump(sheets, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return {"cells": sum(len(r) for rows in sheets.values() for r in rows)}


def _load_rows(workdir: Path) -> dict[str, list[list[Any]]]:
    with (workdir / "rows.pickle").open("rb") as fh:
        rows = pickle.load(fh)
    # Millions of long-lived cells would make every garbage collection walk them all; freezing them keeps
    # the plain writers' timings about the writer, not about holding the data in memory.
    gc.collect()
    gc.freeze()
    return rows


def phase_xlsxwriter(workdir: Path) -> dict[str, Any]:
    import xlsxwriter

    sheets = _load_rows(workdir)
    before = rss_mb()
    t0 = time.perf_counter()
    wb = xlsxwriter.Workbook(str(workdir / "plain.xlsx"), {"constant_memory": True})
    date_fmt = wb.add_format({"num_format": "dd/mm/yyyy hh:mm:ss"})
    for name, rows in sheets.items():
        ws = wb.add_worksheet(name)
        write_string, write_number, write_datetime = ws.write_string, ws.write_number, ws.write_datetime
        for r, row in enumerate(rows):
            for c, v in enumerate(row):
                if v is None:
                    continue
                t = v.__class__
                if t is str:
                    write_string(r, c, v)
                elif t is int or t is float:
                    write_number(r, c, v)
                elif t is datetime:
                    write_datetime(r, c, v, date_fmt)
                else:
                    ws.write(r, c, v)
    wb.close()
    return {"seconds": time.perf_counter() - t0, "peak_mb": rss_mb(), "before_mb": before}


def phase_pandas(workdir: Path) -> dict[str, Any]:
    import pandas as pd

    sheets = _load_rows(workdir)
    frames = {name: pd.DataFrame(rows[1:], columns=rows[0]) for name, rows in sheets.items() if rows}
    before = rss_mb()
    t0 = time.perf_counter()
    with pd.ExcelWriter(workdir / "pandas.xlsx", engine="openpyxl") as writer:
        for name, df in frames.items():
            df.to_excel(writer, sheet_name=name, index=False)
    return {"seconds": time.perf_counter() - t0, "peak_mb": rss_mb(), "before_mb": before}


PHASES = {"rasoat": phase_rasoat, "rows": phase_rows, "xlsxwriter": phase_xlsxwriter, "pandas": phase_pandas}


def run_child(phase: str, workdir: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--phase", phase, "--workdir", str(workdir)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="submissions (default 100,000)")
    ap.add_argument("--households", type=int, default=4, help="household rows per submission (default 4)")
    ap.add_argument("--workdir", type=Path, help="keep the store and files here (reused when it matches)")
    ap.add_argument("--skip-pandas", action="store_true")
    ap.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        print(json.dumps(PHASES[args.phase](args.workdir)))
        return 0

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="rasoat-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    prepare(workdir, args.n, args.households)
    results: dict[str, dict[str, Any]] = {}
    results["rasoat"] = run_child("rasoat", workdir)
    print(
        f"rasoat      {results['rasoat']['seconds']:7.1f} s  peak {results['rasoat']['peak_mb']:6.0f} MB",
        flush=True,
    )
    run_child("rows", workdir)
    results["xlsxwriter"] = run_child("xlsxwriter", workdir)
    print(f"xlsxwriter  {results['xlsxwriter']['seconds']:7.1f} s", flush=True)
    if not args.skip_pandas:
        try:
            import pandas  # noqa: F401
        except ImportError:
            print("pandas      not installed (pip install pandas); skipped")
        else:
            results["pandas"] = run_child("pandas", workdir)
            print(f"pandas      {results['pandas']['seconds']:7.1f} s", flush=True)

    ours = results["rasoat"]
    rows = ours["rows"]
    print()
    print(
        f"{args.n:,} F2 submissions, {sum(rows.values()) - rows.get(FORM_ID, 0):,} household rows; "
        f"xlsx {ours['bytes'] / 1e6:.1f} MB"
    )
    print(f"{'writer':<12}{'seconds':>9}{'peak MB':>9}{'× rasoat':>10}")
    for name, res in results.items():
        print(
            f"{name:<12}{res['seconds']:>9.1f}{res['peak_mb']:>9.0f}{res['seconds'] / ours['seconds']:>10.2f}"
        )
    vs_plain = ours["seconds"] / results["xlsxwriter"]["seconds"]
    print(f"\nrasoat / plain xlsxwriter = {vs_plain:.2f}  (goal ≤ 1.5)")
    if "pandas" in results:
        print(f"pandas / rasoat = {results['pandas']['seconds'] / ours['seconds']:.1f}  (goal ≥ 4)")
    print(
        f"rasoat peak memory = {ours['peak_mb']:.0f} MB ({ours['before_mb']:.0f} MB before the export)  "
        "(goal < 300)"
    )
    print(f"files in {workdir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
