"""The persons pages' work (issue 23): one commune's persons under management on the ``persons`` list.

    python benchmarks/persons_pages.py [--database URL] [--persons 1000] [--visits 12]

Publishes the national F1 and F12 into a fresh store (the ``persons`` list with its sealed properties),
writes ``--persons`` persons under management in one commune (plus as many in a second commune), each with
``--visits`` monthly visits (one version each), then measures:

- **the month's list** (``core.followup.monthly_visits``: every managed person of the commune and the
  versions of each, what ``/persons`` reads);
- **one person's history** (``core.followup.history`` over its versions, what ``/persons/{id}`` reads);
- **the OData feed** of the commune's persons as an officer reads it (``EntityStore.page_entities``, a
  thousand at a time).

Wall-clock time and the Python heap's peak (tracemalloc); the machine is shared, so the load average is
printed with the figures. Without ``--database`` the embedded (SQLite) store in a temporary directory;
with it, a fresh schema ``entforms_bench_<random>`` of that database, dropped afterwards.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from rasoat.core.followup import history, monthly_visits  # noqa: E402
from rasoat.core.models import FormVersion  # noqa: E402
from rasoat.core.protection import keyring, seal_entity_values  # noqa: E402
from rasoat.core.storage.base import EntityQuery  # noqa: E402
from rasoat.core.storage.opening import open_store  # noqa: E402
from rasoat.core.units import get_units  # noqa: E402
from rasoat.core.xlsform import compile_xlsform  # noqa: E402
from scratch import scratch_schema  # noqa: E402  (benchmarks/scratch.py, beside this script)

COMMUNE, OTHER = "05563", "05503"


def measure(name: str, step: Callable[[], Any]) -> Any:
    tracemalloc.start()
    start = time.perf_counter()
    result = step()
    took = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{name:<42} {took * 1000:9.1f} ms   heap peak {peak / 1e6:7.1f} MB")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database")
    ap.add_argument("--persons", type=int, default=1000)
    ap.add_argument("--visits", type=int, default=12)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="persons-bench-") as tmp:
        os.environ.setdefault("RASOAT_KEY_DIR", str(Path(tmp) / "keys"))
        with scratch_schema(args.database, "entforms_bench") as url:
            store = open_store(Path(tmp) / "data", url)
            try:
                run(store, args)
            finally:
                store.close()
    print(f"load average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} {os.getloadavg()[2]:.1f}")


def run(store: Any, args: argparse.Namespace) -> None:
    for form_id in ("f1_person", "f12_visit"):
        c = compile_xlsform(ROOT / "forms" / f"{form_id}.xlsx")
        store.put_form(FormVersion(form_id=c.form_id, version=c.version, title=c.title,
                                   md5=hashlib.md5(c.xml).hexdigest(), media=list(c.media), source="b"),
                       c.xml, c.schema, {})
    lst = store.get_entity_list("persons")
    assert lst is not None
    ring = keyring(store)
    start = time.perf_counter()
    first = ""
    for commune in (COMMUNE, OTHER):
        for n in range(args.persons):
            eid = str(uuid.uuid4())
            first = first or eid
            data = seal_entity_values(ring, eid, {
                "display": f"Người thử {n} (1990) – Xóm 1", "full_name": f"Người thử {n}",
                "commune": commune, "hamlet": f"{commune}-01", "mgmt_status": "active",
                "term_end": "2027-12-31", "birth_year": "1990"}, lst.identifying)
            store.write_entity("persons", eid, label=f"Người {eid[:8]} (1990)", data=data, actor="bench",
                               unit_code=f"{commune}-01")
            for month in range(1, args.visits + 1 if n % 5 else args.visits):  # every 5th misses December
                store.write_entity("persons", eid, label=None, actor="bench", base_version=month,
                                   data={"last_visit": f"2026-{month:02d}-05", "last_check": "present"})
    took = time.perf_counter() - start
    print(f"loaded {2 * args.persons} persons × {args.visits} visits in {took:.0f} s"
          f" ({args.database and 'PostgreSQL' or 'SQLite'})")
    units = sorted(get_units().expand([COMMUNE]))
    rows = measure(f"month list 2026-12, {args.persons} persons",
                   lambda: monthly_visits(store, units, "2026-12"))
    print(f"{'':<42} {sum(not r.visited for r in rows)} not visited in 2026-12")
    rows = measure(f"month list 2026-06 (versions), {args.persons}",
                   lambda: monthly_visits(store, units, "2026-06"))
    measure("one person's history", lambda: history(store.entity_versions(first)))

    def odata() -> int:
        q, after, n = EntityQuery(list_name="persons", unit_codes=units), None, 0
        while True:
            page = store.page_entities(q, limit=1000, after=after)
            n += len(page)
            if len(page) < 1000:
                return n
            after = page[-1].uuid

    measure("OData pages of one commune", odata)


if __name__ == "__main__":
    main()
