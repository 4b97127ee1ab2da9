"""Indicator benchmark: every national indicator for a province and each of its communes.

    /tmp/venv/bin/python benchmarks/indicators.py [--pledges 1000000] [--households-per-pledge 1]
        [--persons 20000] [--communes 100] [--hamlets 1500] [--backend embedded|postgres]
        [--database postgresql://…] [--data DIR] [--repeat 2] [--national-only] [--only ID,ID,…]
        [--scan-only] [--both]

The data: one synthetic province ("19") with ``--communes`` communes and ``--hamlets`` hamlets;
``--pledges`` F2 household-pledge submissions (list mode, ``--households-per-pledge`` household rows
each), ``--persons`` F1 person records, and a little of every other national form (a school and an
enterprise audit, an activity and a summary per commune, a hotspot and a cultivation site per ten
communes, a case report per commune). 90 % of it is dated 2026, 10 % 2025 (so last-year comparisons
have something to compute). It is loaded with ``Store.put_many_submissions`` (the backend's bulk path)
and kept in ``--data`` (a ``loaded.json`` marker lets a second run skip loading).

Then ``core.indicators.engine.evaluate(store, "2026", units=["19"], level="commune")`` runs ``--repeat``
times: the province and its communes, all national indicators, comparisons computed live (no closed
rounds), plus the row-level pledge count over the household repeat. Wall seconds and the process's CPU
seconds (``time.process_time``: this process only, so a loaded machine inflates it far less than wall
time; PostgreSQL's own CPU is not in it) are printed per run with the number of result rows, and the load
time separately. ``--only`` keeps the indicators named (to compare like for like with a version that
had fewer).

``--scan-only`` measures the store's part alone: the engine is first run against a recorder that answers
nothing, to learn the queries and field lists it asks ``iter_facts`` for; then each run replays the
F2 pledge scans (the same query, the same fields) on the real store and only counts the facts.

``--both`` runs each evaluation two ways, alternating which goes first: the store totalling counts and
sums itself (``Store.aggregate``, SQL group-bys) and the engine reading every record (that switched off,
as before issue 21's group-bys), so that both are timed under the same load; their results must be
equal. On PostgreSQL (on this machine) the CPU of the server process answering is added.

The script uses only calls older versions have too, so it can be run with another checkout's code on
that checkout's data (``cd OTHER && .venv/bin/python /path/to/this/indicators.py --data DIR``).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rasoat.core.indicators.engine import evaluate
from rasoat.core.indicators.loading import load
from rasoat.core.indicators.models import Indicator
from rasoat.core.indicators.periods import LOCAL_TZ
from rasoat.core.models import ReviewState, Submission
from rasoat.core.storage.base import Fact
from rasoat.core.units import Unit, UnitRegistry

PROVINCE = "19"
ROW_PLEDGES = Indicator.model_validate({
    "id": "bench_pledged_rows",
    "name_vi": "Số hộ đã ký cam kết (đếm theo danh sách hộ)",
    "name_en": "Households pledged (counted over the household rows)",
    "numerator": {"form": "f2_pledge", "date_field": "ref_date", "repeat": "household",
                  "row_where": {"pledged": "yes"}},
    "level": "hamlet",
})


def registry(communes: int, hamlets: int) -> UnitRegistry:
    units = [Unit(PROVINCE, "Tỉnh Thử Nghiệm", "province", None, "tỉnh")]
    codes = [f"{90001 + i:05d}" for i in range(communes)]
    units += [Unit(c, f"Xã {i + 1}", "commune", PROVINCE, "xã") for i, c in enumerate(codes)]
    for h in range(hamlets):
        commune = codes[h % communes]
        units.append(Unit(f"{commune}-{h // communes + 1:02d}", f"Xóm {h + 1}", "hamlet", commune, "xóm"))
    return UnitRegistry(units)


def _sub(form_id: str, n: int, unit: str, fields: dict[str, Any], day: str) -> tuple[Submission, bytes, dict]:
    iid = f"uuid:{form_id}-{n:08d}"
    commune = unit.split("-")[0]
    location = {"province": PROVINCE, "commune": commune, **({"hamlet": unit} if "-" in unit else {})}
    fields = {**location, "ref_date": day, **fields, "meta/instanceID": iid}
    xml = (f'<data id="{form_id}" version="1"><commune>{commune}</commune>'
           f"<ref_date>{day}</ref_date><meta><instanceID>{iid}</instanceID></meta></data>").encode()
    received = datetime.fromisoformat(day).replace(hour=12, tzinfo=LOCAL_TZ)
    sub = Submission.model_construct(
        instance_id=iid, form_id=form_id, form_version="1", round_id=None, unit_code=unit, collector_id=None,
        received_at=received, xml_md5=hashlib.md5(xml).hexdigest(), fields=fields, attachments=[],
        expected_attachments=[], review_state=ReviewState.received, review_history=[], deprecated_id=None,
        current=True, encrypted=False,
    )
    return sub, xml, {}


def _day(rnd: random.Random) -> str:
    year = 2025 if rnd.random() < 0.1 else 2026
    return (datetime(year, 1, 1) + timedelta(days=rnd.randrange(340))).date().isoformat()


def generate(reg: UnitRegistry, args: argparse.Namespace) -> Iterator[tuple[Submission, bytes, dict]]:
    rnd = random.Random(2026)
    hamlets = [u.code for u in reg.hamlets()]
    communes = [u.code for u in reg.communes()]
    k = args.households_per_pledge
    for n in range(args.pledges):
        rows = [{"head_name": f"Hộ {n}-{i}", "pledged": "yes" if rnd.random() < 0.9 else "no"}
                for i in range(k)]
        yes = sum(r["pledged"] == "yes" for r in rows)
        yield _sub("f2_pledge", n, hamlets[n % len(hamlets)], {
            "mode": "list", "household": rows, "hh_listed": str(k), "hh_pledged_listed": str(yes),
            "households_total": str(k), "households_pledged": str(yes)}, _day(rnd))
    categories = ["user", "addict", "post_rehab"]
    for n in range(args.persons):
        yield _sub("f1_person", n, hamlets[n % len(hamlets)], {
            "entry_type": "new", "person_key": f"p{n}", "present": "yes", "category": categories[n % 3],
            "psychosis": "confirmed" if n % 50 == 0 else "no", "has_record": "yes" if n % 4 else "no",
            "services": "counselling" if n % 5 else "none"}, _day(rnd))
    for i, c in enumerate(communes):
        day = _day(rnd)
        yield _sub("f3_school", i, c, {"school": f"S{i}", "pupils_total": "400", "pupils_reached": "350",
                                       "meets_standard": "yes" if i % 2 else "no"}, day)
        yield _sub("f4_enterprise", i, c, {"enterprise": f"E{i}", "zone": "industrial_park", "sessions": "1",
                                           "workers_total": "50", "workers_reached": "40",
                                           "meets_standard": "yes"}, day)
        yield _sub("f8_activity", i, hamlets[i], {"act_date": day, "venue_type": "hamlet",
                                                  "media_products": "2"}, day)
        yield _sub("f9_case", i, c, {"period_from": "2026-01-01", "period_to": day, "offence": [
            {"offence_type": "possession", "case_kind": "criminal", "cases": "2", "persons": "2"}]}, day)
        yield _sub("f10_summary", i, c, {"period_from": "2025-12-15", "period_to": day,
                                         "qd28_final": "drug_free" if i % 3 == 0 else "type_3"}, day)
        if i % 10 == 0:
            yield _sub("f6_hotspot", i, hamlets[i], {"entry_type": "new", "site_key": f"site{i}",
                                                     "site_kind": "point", "identified_date": day,
                                                     "baseline": "yes", "status": "identified"}, day)
            yield _sub("f7_cultivation", i, hamlets[i], {"found_date": day, "area_m2": "20",
                                                         "plant_count": "50", "destroyed": "yes",
                                                         "recultivation": "no"}, day)


class MemoryFacts:
    """Not a store: just the calls the engine makes, over facts held in a list, so a run measures the
    engine alone (no disk, no parsing). Loading it is building the list."""

    def __init__(self) -> None:
        self.facts: dict[str, list[Fact]] = {}

    def put_many_submissions(self, items: Iterator[tuple[Submission, bytes, dict]]) -> int:
        n = 0
        for sub, _, _ in items:
            self.facts.setdefault(sub.form_id, []).append(
                Fact(sub.instance_id, sub.round_id, sub.unit_code, sub.received_at, "received", sub.fields))
            n += 1
        return n

    def iter_facts(self, query: Any, field_paths: Any) -> Iterator[Fact]:
        return iter(self.facts.get(query.form_id, []))  # all fields: the engine reads only its own

    def filed_unit_codes(self) -> set[str]:
        return {f.unit_code for facts in self.facts.values() for f in facts if f.unit_code}

    def kv_get(self, namespace: str, key: str) -> None:  # loaded unit lists, uploaded site lists: none
        return None

    def list_rounds(self) -> list[Any]:
        return []

    def get_snapshot(self, round_id: str) -> None:
        return None

    def close(self) -> None:
        pass


class Recorder(MemoryFacts):
    """Holds nothing and notes every ``iter_facts`` call: (query, field list); what else the engine asks
    of a store that shapes its queries (the unit codes records are filed under) comes from ``real``."""

    def __init__(self, real: Any) -> None:
        super().__init__()
        self.real = real
        self.calls: list[tuple[Any, list[str]]] = []

    def filed_unit_codes(self) -> set[str]:
        return set(self.real.filed_unit_codes()) if hasattr(self.real, "filed_unit_codes") else set()

    def iter_facts(self, query: Any, field_paths: Any) -> Iterator[Fact]:
        self.calls.append((query, list(field_paths)))
        return iter(())


def national_pack() -> list[Indicator]:
    """The national indicators alone (installed province plugins would add their own)."""
    import rasoat.core.builtin.national as pack

    return load(pack.indicators())


def open_backend(args: argparse.Namespace, data: Path) -> Any:
    if args.backend == "memory":
        return MemoryFacts()
    if args.backend == "postgres":
        from rasoat.core.storage.postgres import PostgresStore

        return PostgresStore(args.database, files_dir=data, schema=args.schema)
    from rasoat.core.storage.embedded import EmbeddedStore

    return EmbeddedStore(data)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pledges", type=int, default=1_000_000)
    ap.add_argument("--households-per-pledge", type=int, default=1)
    ap.add_argument("--persons", type=int, default=20_000)
    ap.add_argument("--communes", type=int, default=100)
    ap.add_argument("--hamlets", type=int, default=1500)
    ap.add_argument("--backend", choices=["embedded", "postgres", "memory"], default="embedded")
    ap.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--schema", default="bench_indicators")
    ap.add_argument("--data", type=Path, help="keep the loaded store here (reused when the marker matches)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--national-only", action="store_true",
                    help="without the extra indicator that counts the household rows")
    ap.add_argument("--only", metavar="ID,ID,…", help="only these indicators (ids, comma-separated)")
    ap.add_argument("--scan-only", action="store_true",
                    help="only the F2 pledge scans the indicators ask for, replayed on the store")
    ap.add_argument("--both", action="store_true",
                    help="each run with the store's group-bys and then with every record read")
    args = ap.parse_args()

    data = args.data or Path(tempfile.mkdtemp(prefix="rasoat-bench-ind-"))
    keys = ("pledges", "households_per_pledge", "persons", "communes", "hamlets", "backend", "schema")
    shape = {k: getattr(args, k) for k in keys}
    data.mkdir(parents=True, exist_ok=True)
    marker = data / "loaded.json"
    reg = registry(args.communes, args.hamlets)
    store = open_backend(args, data)
    try:
        if args.backend != "memory" and marker.exists() and json.loads(marker.read_text()) == shape:
            print(f"using the loaded store in {data}", file=sys.stderr)
        else:
            if marker.exists():
                raise SystemExit(f"{data} holds another data set; remove it or pick another --data")
            from tqdm import tqdm

            total = args.pledges + args.persons + 5 * args.communes + 2 * ((args.communes + 9) // 10)
            t0 = time.perf_counter()
            created = store.put_many_submissions(tqdm(generate(reg, args), total=total, unit=" sub",
                                                      file=sys.stderr, mininterval=2))
            load_s = time.perf_counter() - t0
            if args.backend != "memory":
                marker.write_text(json.dumps(shape))
            print(f"load: {created:,} submissions in {load_s:,.1f} s ({created / load_s:,.0f}/s)")
        gc.collect()
        gc.freeze()  # the memory backend holds a million dicts: keep the collector from re-walking them
        indicators = [*national_pack(), *([] if args.national_only else [ROW_PLEDGES])]
        if args.only:
            wanted = [i for i in args.only.split(",") if i]
            known = {ind.id for ind in indicators}
            if missing := [i for i in wanted if i not in known]:
                raise SystemExit(f"unknown indicators: {', '.join(missing)}")
            indicators = [ind for ind in indicators if ind.id in wanted]
        if args.scan_only:
            scan(store, reg, indicators, args.repeat)
            return 0
        server_cpu = lambda: 0.0  # noqa: E731
        if args.both and args.backend == "postgres":  # one connection, whose server process is timed too
            from rasoat.core.storage.postgres import PostgresStore

            store.close()
            store = PostgresStore(args.database, files_dir=data, schema=args.schema, min_pool=1, max_pool=1)
            with store._cx() as cx:
                server_cpu = backend_cpu(cx.execute("SELECT pg_backend_pid()").fetchone()[0])
        ways = [("grouped", store), ("scanned", Scanning(store))] if args.both else [("", store)]
        for i in range(args.repeat):
            found = []
            for way, where in ways if i % 2 == 0 else ways[::-1]:
                t0, c0, s0 = time.perf_counter(), time.process_time(), server_cpu()
                results = evaluate(where, "2026", units=[PROVINCE], level="commune", indicators=indicators,
                                   registry=reg)
                wall, cpu, server = time.perf_counter() - t0, time.process_time() - c0, server_cpu() - s0
                units = {r.unit_code for r in results}
                print(f"run {i + 1}{' ' + way if way else ''}: {len(indicators)} indicators × {len(units)}"
                      f" units → {len(results)} results in {wall:.2f} s (CPU {cpu:.2f} s"
                      f"{f' + PostgreSQL {server:.2f} s' if server else ''}), load {os.getloadavg()[0]:.1f}")
                found.append([r.model_dump() for r in results])
            if found[1:] and found[1] != found[0]:
                raise SystemExit("the grouped and scanned results differ")
        if args.repeat < 1:
            return 0
        by = {(r.unit_code, r.indicator_id): r for r in results}
        for ind in ("nat_household_pledges", "bench_pledged_rows", "nat_persons_listed",
                    "nat_record_coverage", "nat_communes_drug_free"):
            if (PROVINCE, ind) not in by:
                continue
            r = by[(PROVINCE, ind)]
            print(f"  {ind}: value={r.value} numerator={r.numerator} denominator={r.denominator} "
                  f"status={r.status.value} previous={r.previous_value}")
    finally:
        store.close()
        if args.data is None:
            shutil.rmtree(data, ignore_errors=True)
    return 0


def backend_cpu(pid: int) -> Any:
    """A function giving the CPU seconds the PostgreSQL server process ``pid`` has used (on this machine)."""
    tick = os.sysconf("SC_CLK_TCK")

    def seconds() -> float:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(stat[11]) + int(stat[12])) / tick  # utime + stime

    return seconds


class Scanning:
    """The store with its group-bys switched off: the engine reads every record."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def aggregate(self, *args: Any) -> None:
        return None


def scan(store: Any, reg: UnitRegistry, indicators: list[Indicator], repeat: int) -> None:
    """Replay the engine's F2 pledge ``iter_facts`` calls on ``store``, ``repeat`` times."""
    recorder = Recorder(store)
    evaluate(recorder, "2026", units=[PROVINCE], level="commune", indicators=indicators, registry=reg)
    calls = [(q, paths) for q, paths in recorder.calls if q.form_id == "f2_pledge"]
    for q, paths in calls:
        shown = q.model_dump(exclude_defaults=True)
        if shown.get("unit_codes"):
            shown["unit_codes"] = f"{len(shown['unit_codes'])} codes"
        print(f"scan: {shown} fields {', '.join(paths)}")
    for i in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        n = sum(1 for q, paths in calls for _ in store.iter_facts(q, paths))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"scan {i + 1}: {n:,} facts in {wall:.2f} s (CPU {cpu:.2f} s)")


if __name__ == "__main__":
    raise SystemExit(main())
