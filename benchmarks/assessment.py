"""QĐ 28 assessment benchmark: a whole province's classification computed from its registers, the work
behind ``rasoat assessment show PROVINCE``, the status page and every sign-off step of a province.

    .venv/bin/python benchmarks/assessment.py [--communes 100] [--hamlets 1500] [--persons 20000]
        [--backend embedded|postgres] [--database postgresql://…] [--repeat 3]

The data: one synthetic province ("19") with ``--communes`` communes; ``--persons`` F1 records (a tenth
of them a second, later follow-up of the same person), a use venue per two communes (F6), a cultivation
site per five (F7), twelve monthly F9 reports and one yearly F10 per commune, and a population entered
per commune. Loaded with ``Store.put_many_submissions``. Then ``assess_province`` runs ``--repeat`` times
(wall seconds each): every register read once for the province, every commune classified, Art. 5.

``--both`` runs each assessment twice in turn, the store counting the persons and sites itself
(``Store.aggregate``, SQL group-bys) and every record read (that switched off, as before issue 21's
group-bys), so that both are timed under the same load; their results must be equal.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from indicators import PROVINCE, Scanning, _sub, registry  # noqa: E402  (the synthetic province)
from rasoat.core.assessment.compute import assess_province  # noqa: E402
from rasoat.core.assessment.facts import set_fact  # noqa: E402
from rasoat.core.storage.base import Store  # noqa: E402
from rasoat.core.storage.opening import open_store  # noqa: E402
from rasoat.core.units import UnitRegistry  # noqa: E402
from scratch import scratch_schema  # noqa: E402  (benchmarks/scratch.py, beside this script)


def generate(reg, persons: int):
    rnd = random.Random(28)
    hamlets = [u.code for u in reg.hamlets()]
    communes = [u.code for u in reg.communes()]
    n = 0
    for p in range(persons):
        h = hamlets[p % len(hamlets)]
        category = ("user", "addict", "post_rehab")[p % 3]
        fields = {"person_key": f"p{p}", "present": "yes", "category": category,
                  "has_record": "yes" if p % 4 else "no",
                  "services": "methadone" if p % 7 == 0 else "counselling"}
        n += 1
        yield _sub("f1_person", n, h, fields, f"2026-0{1 + rnd.randrange(5)}-10")
        if p % 10 == 0:
            n += 1
            moved = {**fields, "followup_status": "moved", "present": "no"}
            yield _sub("f1_person", n, h, moved, "2026-09-01")
    for i, c in enumerate(communes):
        if i % 2 == 0:
            n += 1
            yield _sub("f6_hotspot", n, hamlets[i], {"site_key": f"s{i}", "is_use_venue": "yes",
                                                     "status": "identified"}, "2026-03-01")
        if i % 5 == 0:
            n += 1
            yield _sub("f7_cultivation", n, hamlets[i], {"destroyed": "yes", "destroyed_date": "2026-02-01",
                                                         "plant_count": "600", "area_m2": "0"}, "2026-02-01")
        for m in range(1, 13):
            n += 1
            start, stop = f"2026-{m:02d}-01", f"2026-{m:02d}-10"
            yield _sub("f9_case", n, c, {"period_from": start, "period_to": stop, "offenders_arrested": "1",
                                         "offence": [{"persons_resident": "1"}]}, stop)
        n += 1
        yield _sub("f10_summary", n, c, {"period_type": "year", "period_from": "2025-12-15",
                                         "period_to": "2026-12-14", "fugitives_hiding": "0"}, "2026-12-10")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--communes", type=int, default=100)
    ap.add_argument("--hamlets", type=int, default=1500)
    ap.add_argument("--persons", type=int, default=20_000)
    ap.add_argument("--backend", choices=["embedded", "postgres"], default="embedded")
    ap.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--both", action="store_true",
                    help="each run with the store's group-bys and then with every record read")
    args = ap.parse_args()
    reg = registry(args.communes, args.hamlets)
    database = args.database if args.backend == "postgres" else None
    with tempfile.TemporaryDirectory(prefix="bench-assessment-") as tmp, \
            scratch_schema(database, "bench_assessment") as url:
        store = open_store(Path(tmp) / "data", url)
        try:
            measure(store, reg, args)
        finally:
            store.close()


def measure(store: Store, reg: UnitRegistry, args: argparse.Namespace) -> None:
    """Load the synthetic province into ``store``, then time its assessment ``--repeat`` times."""
    t0 = time.perf_counter()
    loaded = store.put_many_submissions(generate(reg, args.persons))
    for c in reg.communes():
        set_fact(store, 2026, c.code, "population", 10_000, "bench", "2026-11-30", "bench")
        set_fact(store, 2026, c.code, "on_route", "no", "bench", "2026-11-30", "bench")
    print(f"{args.backend}: loaded {loaded} submissions in {time.perf_counter() - t0:.1f} s")
    ways = [("grouped", store), ("scanned", Scanning(store))] if args.both else [("", store)]
    for run in range(args.repeat):
        found = []
        for way, where in ways:
            t0 = time.perf_counter()
            pa = assess_province(where, 2026, PROVINCE, reg)
            classes = {c.result.klass for c in pa.communes}
            print(f"run {run + 1}{' ' + way if way else ''}: {time.perf_counter() - t0:.2f} s,"
                  f" {len(pa.communes)} communes, classes {sorted(classes)}, province {pa.result.klass},"
                  f" load {os.getloadavg()[0]:.1f}")
            found.append(pa)
        if found[1:] and found[1] != found[0]:
            raise SystemExit("the grouped and scanned assessments differ")


if __name__ == "__main__":
    main()
