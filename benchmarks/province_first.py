"""The province's indicator evaluation when the server has nothing in memory (after a restart, or after a
new record: the pages' two-minute memo is keyed by the record count), in process, over the data of
``benchmarks/pages.py`` (load it with that script first).

    .venv/bin/python benchmarks/province_first.py --data /tmp/bench-pages/data [--repeat 2]
    .venv/bin/python benchmarks/province_first.py --data /tmp/bench-pages/pg \
        --database "postgresql://postgres@127.0.0.1:5432/test?schema=bench_pages"

Each round: the kept totals emptied (``kept_groups``, the kept scans and their folds), then the province
manager's evaluation (``evaluate(units=[19], level=commune)``, what the overview computes) four times: with
nothing kept, with everything kept (a restart), after one more pledge and after one more person record in the
first commune (both saved through the store, as an upload is; they stay in the data). Printed: this
process's CPU (on PostgreSQL the database's own CPU is not in it) and the wall time, and the load.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import time
import uuid
from pathlib import Path

from rasoat.core.indicators.engine import evaluate
from rasoat.core.indicators.kept_scans import FOLDS, NAMESPACE
from rasoat.core.storage.base import Store, SubmissionQuery
from rasoat.core.storage.opening import open_store

PROVINCE = "19"


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def one_more(store: Store, form_id: str, commune: str) -> None:
    """A copy of one of the commune's records of ``form_id`` under a new instanceID."""
    sub = store.page_submissions(SubmissionQuery(form_id=form_id, unit_codes=[commune]), limit=1)[0]
    xml = store.submission_xml(sub.instance_id)
    assert xml is not None
    iid = f"uuid:{uuid.uuid4()}"
    xml = xml.replace(sub.instance_id.encode(), iid.encode())
    copy = sub.model_copy(update={"instance_id": iid, "xml_md5": hashlib.md5(xml).hexdigest()})
    store.save_submission(copy, xml, {})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--database", default=None)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    commune = json.loads((args.data / "loaded.json").read_text())["commune"]
    store = open_store(args.data, args.database)

    def timed(name: str) -> None:
        c0, t0 = cpu(), time.perf_counter()
        evaluate(store, "2026", units=[PROVINCE], level="commune")
        print(f"| {name} | {cpu() - c0:.2f} | {time.perf_counter() - t0:.2f} | {os.getloadavg()[0]:.1f} |",
              flush=True)

    print(f"{'PostgreSQL' if args.database else 'SQLite'}, {store.count_submissions():,} submissions")
    print("| evaluation | CPU s | wall s | load |\n|---|---:|---:|---:|")
    try:
        for _ in range(args.repeat):
            with store._cx() as cx:  # type: ignore[attr-defined]
                cx.execute("DELETE FROM kept_groups")
                for namespace in (NAMESPACE, FOLDS):
                    cx.execute(store._q("DELETE FROM kv WHERE namespace = ?"), (namespace,))  # type: ignore[attr-defined]
            timed("nothing kept")
            timed("all kept (a restart)")
            one_more(store, "f2_pledge", commune)
            timed("after one new pledge")
            one_more(store, "f1_person", commune)
            timed("after one new person record")
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
