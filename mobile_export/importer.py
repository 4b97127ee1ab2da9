"""Import a phone's ``instances`` folder (copied off the device over USB) as if the phone had sent it.

Collect keeps each saved form in its own folder, named after the form and the time it was started::

    instances/F1 Person_2026-05-04_09-12-33/F1 Person_2026-05-04_09-12-33.xml
    instances/F1 Person_2026-05-04_09-12-33/1714551234567.jpg

Every instance goes through the acceptance path an upload takes (``core.ingest.accept``) with the
collector as the sender, so the rules are exactly an upload's (``core.ingest.place``, the one scope rule):
known form and version, an open round assigned to the collector, the unit inside the collector's and the
round's units, an edit only of a record of the same form in the collector's units, plugin checks, and
ODK Central's duplicate rules (an identical resend is recognised as a duplicate; the same instanceID
with different content is a conflict). A file that is refused changes nothing; the others are stored.

Without ``collector``, each instance is attributed to the one active collector assigned to an open
round with its form whose units contain the unit it names; if there is not exactly one, the instance
is reported and the officer reruns with ``--collector``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rasoat.core.collectors import CollectorError
from rasoat.core.ingest import IngestError, Refusal, ShapeCache, accept, filing_unit
from rasoat.core.instance import InstanceError, parse_instance
from rasoat.core.models import Role, RoundState, User
from rasoat.core.rounds import in_scope, is_assigned
from rasoat.core.storage.base import SaveOutcome, Store
from rasoat.core.unit_lists import units_for

MAX_DEPTH = 4  # DIR, DIR/instances, DIR/instances/<one form>: phones never nest deeper
SKIP_NAMES = {".nomedia", "Thumbs.db", ".DS_Store"}
OUTCOMES = {Refusal.conflict: "conflict", Refusal.forbidden: "refused"}  # any other refusal: "broken"


@dataclass
class InstanceResult:
    file: str  # path relative to the imported folder
    outcome: str = "broken"  # created | duplicate | conflict | refused | broken
    instance_id: str = ""
    form_id: str = ""
    collector_id: str = ""
    message: str = ""


@dataclass
class ImportReport:
    results: list[InstanceResult] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.results if r.outcome == outcome)

    @property
    def failed(self) -> list[InstanceResult]:
        return [r for r in self.results if r.outcome not in ("created", "duplicate")]

    def summary(self) -> str:
        created, dup, failed = self.count("created"), self.count("duplicate"), len(self.failed)
        return (
            f"Đã nhập {created}, trùng (đã có) {dup}, lỗi {failed} / "
            f"Imported {created}, duplicates {dup}, failed {failed}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.count("created"),
            "duplicate": self.count("duplicate"),
            "failed": len(self.failed),
            "results": [asdict(r) for r in self.results],
        }


def find_instances(root: Path) -> Iterator[tuple[Path, list[Path]]]:
    """(instance XML, attachment files) for each instance folder under ``root``, in path order.

    In a folder, the XML named like the folder is the instance (Collect's layout); a folder without
    one holds instances in each of its ``.xml`` files. Other files in the folder are its attachments.
    """
    root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        depth = len(here.relative_to(root).parts)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")) if depth < MAX_DEPTH else []
        files = sorted(f for f in filenames if f not in SKIP_NAMES and not f.startswith("."))
        own = f"{here.name}.xml"
        xmls = [own] if own in files else [f for f in files if f.lower().endswith(".xml")]
        others = [here / f for f in files if f not in xmls and (here / f).is_file()]
        for name in xmls:
            yield here / name, others


def _collector_for(store: Store, xml: bytes) -> tuple[User | None, str]:
    """The one collector who could have sent this instance, else None and why."""

    parsed = parse_instance(xml)
    # the unit accept() will check and file under
    unit = filing_unit(parsed.fields, None, parsed.encrypted, units=units_for(store))
    rounds = [r for r in store.list_rounds() if r.state is RoundState.open and parsed.form_id in r.form_ids]
    candidates: dict[str, User] = {}
    for rnd in rounds:
        if unit is not None and rnd.unit_codes and not in_scope(unit, rnd.unit_codes):
            continue
        for cid in rnd.collector_ids:
            user = store.get_user(cid)
            if user is None or not user.active or user.role is not Role.collector:
                continue
            if not is_assigned(rnd, user.id, user.unit_codes):  # the server's rule for who may send it
                continue
            if unit is not None and not in_scope(unit, user.unit_codes):
                continue
            candidates[user.id] = user
    if len(candidates) == 1:
        return next(iter(candidates.values())), ""
    if not candidates:
        return None, (
            f"Không có người thu thập nào được giao biểu mẫu {parsed.form_id} cho đơn vị {unit or '—'} / "
            f"No collector is assigned form {parsed.form_id} for unit {unit or '—'}"
        )
    return None, (
        f"Có {len(candidates)} người thu thập phù hợp; hãy chỉ rõ --collector / "
        f"{len(candidates)} collectors match; name one with --collector"
    )


def import_instances(
    store: Store,
    root: str | Path,
    collector: User | None = None,
    check_hook: Any = None,
    progress: bool = False,
) -> ImportReport:
    """Import every instance under ``root``; one result per instance XML, in path order."""
    if collector is not None and (not collector.active or collector.role is not Role.collector):
        raise CollectorError("collector.not_active", username=collector.username)
    root = Path(root)
    found = list(find_instances(root))
    shapes = ShapeCache()
    report = ImportReport()
    items: Iterable[tuple[Path, list[Path]]] = found
    if progress:
        from tqdm import tqdm

        items = tqdm(found, desc="Nhập / Import", unit="bản ghi", disable=None)
    for xml_path, files in items:
        rel = xml_path.resolve().relative_to(root.resolve()).as_posix()
        result = InstanceResult(file=rel)
        report.results.append(result)
        try:
            xml = xml_path.read_bytes()
            user = collector
            if user is None:
                user, why = _collector_for(store, xml)
                if user is None:
                    result.outcome, result.message = "refused", why
                    continue
            attachments = {f.name: f.read_bytes() for f in files}
            outcome = accept(store, user, xml, attachments, shapes, check_hook, via="import")
        except InstanceError as exc:
            result.outcome, result.message = "broken", exc.message
            continue
        except IngestError as exc:
            result.outcome = OUTCOMES.get(exc.reason, "broken")
            result.message = exc.message
            continue
        except OSError as exc:
            result.outcome, result.message = "broken", f"Không đọc được tệp / Cannot read file: {exc}"
            continue
        result.outcome = "created" if outcome.outcome is SaveOutcome.created else "duplicate"
        result.instance_id, result.message = outcome.instance_id, outcome.message
        result.collector_id = user.id
        sub = store.get_submission(outcome.instance_id)
        if sub is not None:
            result.form_id = sub.form_id
    return report
