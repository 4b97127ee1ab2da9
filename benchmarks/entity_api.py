"""Writing and querying an entity list through the Central API (issue 23), with pyodk 1.3.0 against a real
server, as an officer importing a register would.

    python benchmarks/entity_api.py [--database URL] [--entities 20000] [--updates 200]

A commune officer of one commune, then:

- **create_many** of ``--entities`` persons in one request (pyodk's bulk body; each name sealed at rest,
  all in one transaction);
- **$filter and $count** on that commune's list (two properties: every row is read and tested);
- **$orderby** ``__system/createdAt desc`` with ``$top=100`` (the store orders, the server reads 100);
- **updates**: ``--updates`` PATCH calls with the right ``baseVersion``, one at a time.

Wall time as pyodk sees it (the server runs in this process, in its own thread). The machine is shared:
the load average is printed with the figures. Without ``--database`` the embedded (SQLite) store in a
temporary directory; with it, a fresh schema of that database, dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("RASOAT_KEY_DIR", tempfile.mkdtemp(prefix="rasoat-bench-keys-"))
from entity_support import OFFICER_PASSWORD, A, entity_round  # noqa: E402
from rasoat.core.storage.opening import open_store  # noqa: E402
from rasoat.core.users import create_user  # noqa: E402
from rasoat.server.app import ServerSettings, create_app  # noqa: E402
from scratch import scratch_schema  # noqa: E402  (benchmarks/scratch.py, beside this script)
from server_support import ThreadServer, pyodk_client  # noqa: E402


def timed(label: str, step: object) -> object:
    t0 = time.perf_counter()
    out = step()  # type: ignore[operator]
    print(f"{label:<48} {time.perf_counter() - t0:8.2f} s   load {os.getloadavg()[0]:.1f}", flush=True)
    return out


def run(url: str | None, entities: int, updates: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="rasoat-entity-api-"))
    store = open_store(work / "data", url)
    try:
        entity_round(store)
        create_user(store, "bench-xa", OFFICER_PASSWORD, "commune_officer", [A], actor="bench")
        server = ThreadServer(create_app(store, ServerSettings(access_log=False))).start()
        try:
            with pyodk_client(server.url, work, "bench-xa", OFFICER_PASSWORD) as c:
                rows = [{"label": f"Người {i}", "full_name": f"Nguyễn Văn {i}",
                         "birth_year": str(1950 + i % 50), "status": "quản lý"} for i in range(entities)]
                timed(f"create_many {entities:,}", lambda: c.entities.create_many(rows, "persons"))
                table = timed("$filter (2 properties) + $count", lambda: c.entities.get_table(
                    "persons", filter="birth_year gt 1990 and status eq 'quản lý'", count=True))
                print(f"  matched {table['@odata.count']:,}")  # type: ignore[index]
                timed("$orderby __system/createdAt desc, $top 100", lambda: c.get(
                    "projects/1/datasets/persons.svc/Entities",
                    params={"$orderby": "__system/createdAt desc", "$top": "100"}).json())
                first = c.entities.get_table("persons", top=updates, select="__id")["value"]

                def patch() -> None:
                    for row in first:
                        c.entities.update(row["__id"], "persons", base_version=1,
                                          data={"status": "chuyển đi"})

                timed(f"{len(first)} updates (PATCH with baseVersion), one at a time", patch)
        finally:
            server.stop()
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", help="PostgreSQL URL (default: SQLite in a temporary directory)")
    parser.add_argument("--entities", type=int, default=20000)
    parser.add_argument("--updates", type=int, default=200)
    args = parser.parse_args()
    with scratch_schema(args.database, "entapi_bench") as url:
        print(f"store: {'PostgreSQL' if url else 'SQLite'}   "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}   load average {os.getloadavg()}")
        run(url, args.entities, args.updates)


if __name__ == "__main__":
    main()
