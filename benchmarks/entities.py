"""Entities benchmark (issue 23): one list of 100,000 persons over 100 communes.

    python benchmarks/entities.py [--database URL] [--entities 100000] [--communes 100] [--updates 2000]

Loads the list (the register and visit test forms of tests/entity_support.py; each person's name and a
label built from it sealed as ingest seals them), then measures:

- **one commune's CSV** (``core.entity_media.iter_list_csv``: what a phone of that commune downloads,
  identifying values opened), and its manifest hash (``list_hash``: no entity read);
- **the whole list's CSV** (an administrator's phone);
- **2,000 updates**: visit submissions, each stored with its entity change in one transaction
  (``save_submission(entities=...)``, the path of an upload after parsing), with the right base version.

Time is wall-clock; memory is the Python heap's peak during the step (tracemalloc) and the process's
resident peak (VmHWM) at its end. The machine is shared: the load average is printed with the figures.
Without ``--database`` the embedded (SQLite) store in a temporary directory; with it, a fresh schema
``entcore_bench_<random>`` of that database, dropped afterwards.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from entity_support import publish, visit_xml  # noqa: E402
from rasoat.core.entities import Entity, EntityVersion, EntityWork, read_blocks  # noqa: E402
from rasoat.core.entity_media import iter_list_csv, list_hash  # noqa: E402
from rasoat.core.ingest import ShapeCache  # noqa: E402
from rasoat.core.models import Submission, utcnow  # noqa: E402
from rasoat.core.protection import keyring, seal_entity_label, seal_entity_values  # noqa: E402
from rasoat.core.storage.base import EntityQuery, Store  # noqa: E402
from rasoat.core.storage.opening import open_store  # noqa: E402
from scratch import scratch_schema  # noqa: E402  (benchmarks/scratch.py, beside this script)


def vmhwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def communes(n: int) -> list[str]:
    return [f"{5000 + i:05d}" for i in range(n)]


def load(store: Store, total: int, units: list[str], batch: int = 1000) -> float:
    """``total`` persons, written as the create path writes them (a version each), ``batch`` a transaction."""
    ring = keyring(store)
    secret = store.get_entity_list("persons").identifying  # type: ignore[union-attr]
    t0 = time.perf_counter()
    now = utcnow()
    done = 0
    while done < total:
        with store.entity_transaction() as tx:  # type: ignore[attr-defined]
            for i in range(done, min(done + batch, total)):
                eid = str(uuid.UUID(int=random.getrandbits(128), version=4))
                name = f"Nguyễn Văn Người {i}"
                data = seal_entity_values(ring, eid, {"full_name": name, "birth_year": str(1960 + i % 45),
                                                      "status": "quản lý"}, secret)
                label = seal_entity_label(ring, eid, f"{name} {1960 + i % 45}")
                entity = Entity(uuid=eid, list_name="persons", label=label, properties=data, version=1,
                                unit_code=units[i % len(units)], deleted=False, conflict=None, created_at=now,
                                created_by="bench", updated_at=now, updated_by="bench")
                version = EntityVersion(uuid=eid, version=1, base_version=None, trunk_version=None,
                                        branch_id=None, branch_base_version=None, instance_id=None,
                                        actor="bench", at=now, label=label, data=data, conflict=None,
                                        conflicting=(), source_action="create")
                tx.write(entity, version, created=True)
        done = min(done + batch, total)
        print(f"  loaded {done:,}", end="\r", flush=True)
    print()
    return time.perf_counter() - t0


def measure(label: str, step):  # type: ignore[no-untyped-def]
    tracemalloc.start()
    t0 = time.perf_counter()
    result = step()
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{label:<34} {seconds:8.2f} s   heap peak {peak / 1e6:7.1f} MB   VmHWM {vmhwm_mb():6.0f} MB"
          f"   {result}")
    return seconds


def csv_size(store: Store, query: EntityQuery) -> str:
    lst = store.get_entity_list("persons")
    assert lst is not None
    size = rows = 0
    for chunk in iter_list_csv(store, lst, query):
        size += len(chunk)
        rows += chunk.count(b"\n")
    return f"{rows - 1:,} rows, {size / 1e6:.1f} MB"


def updates(store: Store, commune: str, n: int) -> str:
    shapes = ShapeCache()
    decls = shapes.entities(store, "ent_visit", "1")
    targets = [e.uuid for e in store.page_entities(EntityQuery(list_name="persons", unit_codes=[commune]),
                                                   limit=n)]
    versions = {t: 1 for t in targets}
    for i in range(n):
        eid = targets[i % len(targets)]
        iid, xml = visit_xml(eid, versions[eid], status=f"thăm {i}", note="đã gặp", commune=commune)
        blocks, problems = read_blocks(xml, decls)
        sub = Submission(instance_id=iid, form_id="ent_visit", form_version="1", unit_code=commune,
                         collector_id="bench", xml_md5=hashlib.md5(xml).hexdigest(), fields={})
        store.save_submission(sub, xml, {}, entities=EntityWork(tuple(blocks), tuple(problems), "bench",
                                                                 (commune,)))
        versions[eid] += 1
    changed = sum(v - 1 for v in versions.values())
    return f"{changed:,} entity versions added over {len(targets):,} persons"


def run(store: Store, args: argparse.Namespace) -> None:
    publish(store, "register")
    publish(store, "visit")
    units = communes(args.communes)
    seconds = load(store, args.entities, units)
    print(f"load {args.entities:,} entities over {len(units)} communes: {seconds:.1f} s")
    one = EntityQuery(list_name="persons", unit_codes=[units[0]])
    measure("hash of one commune's list", lambda: list_hash(store, one))
    measure("CSV of one commune", lambda: csv_size(store, one))
    measure("CSV of one commune (again)", lambda: csv_size(store, one))
    measure("CSV of the whole list", lambda: csv_size(store, EntityQuery(list_name="persons")))
    measure(f"{args.updates:,} updates (submission + change)", lambda: updates(store, units[0], args.updates))
    print(f"load average {os.getloadavg()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", help="PostgreSQL URL (default: the embedded SQLite store)")
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--communes", type=int, default=100)
    parser.add_argument("--updates", type=int, default=2000)
    args = parser.parse_args()
    random.seed(23)
    os.environ.setdefault("RASOAT_KEY_DIR", tempfile.mkdtemp(prefix="entcore-bench-keys-"))
    with tempfile.TemporaryDirectory(prefix="entcore-bench-") as tmp, \
            scratch_schema(args.database, "entcore_bench") as url:
        print(f"store: {'PostgreSQL' if url else 'SQLite'}   load average {os.getloadavg()}")
        store = open_store(Path(tmp) / "data", url)
        try:
            run(store, args)
        finally:
            store.close()


if __name__ == "__main__":
    main()
