"""Helpers for the indicator tests: a small unit tree and real submissions (XML parsed by core.instance)
saved into a real EmbeddedStore."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape

from rasoat.core.indicators.engine import evaluate
from rasoat.core.indicators.models import IndicatorResult
from rasoat.core.indicators.periods import LOCAL_TZ, Period
from rasoat.core.instance import FormShape, parse_instance
from rasoat.core.models import ReviewState, Round, RoundState, Submission
from rasoat.core.storage.base import Store
from rasoat.core.units import Unit, UnitRegistry

PROVINCE, C1, C2, C3 = "19", "05563", "05564", "05565"
H11, H12, H21, H31 = f"{C1}-01", f"{C1}-02", f"{C2}-01", f"{C3}-01"


def small_registry() -> UnitRegistry:
    """Province 19 with three communes (C3 never reports) and four hamlets."""
    return UnitRegistry([
        Unit(PROVINCE, "Tỉnh Thái Nguyên", "province", None, "tỉnh"),
        Unit(C1, "Xã Phượng Tiến", "commune", PROVINCE, "xã"),
        Unit(C2, "Xã Một", "commune", PROVINCE, "xã"),
        Unit(C3, "Xã Hai", "commune", PROVINCE, "xã"),
        Unit(H11, "Xóm Nà Kéo", "hamlet", C1, "xóm"),
        Unit(H12, "Xóm Đồng Chùa", "hamlet", C1, "xóm"),
        Unit(H21, "Xóm Một", "hamlet", C2, "xóm"),
        Unit(H31, "Xóm Hai", "hamlet", C3, "xóm"),
    ])


def _element(name: str, value: Any) -> str:
    if isinstance(value, list):
        return "".join(
            f"<{name}>{''.join(_element(k, v) for k, v in row.items())}</{name}>" for row in value
        )
    return f"<{name}>{escape(str(value))}</{name}>"


def instance_xml(
    form_id: str, instance_id: str, fields: dict[str, Any], deprecated_id: str | None = None
) -> bytes:
    body = "".join(_element(k, v) for k, v in fields.items())
    dep = f"<deprecatedID>{deprecated_id}</deprecatedID>" if deprecated_id else ""
    return (
        f'<data id="{form_id}" version="1">{body}'
        f"<meta><instanceID>{instance_id}</instanceID>{dep}</meta></data>"
    ).encode()


def local_noon(day: str) -> datetime:
    """A received time: noon, local time, on the given ISO day."""
    return datetime.fromisoformat(day).replace(hour=12, tzinfo=LOCAL_TZ)


def add(
    store: Store,
    form_id: str,
    unit: str,
    fields: dict[str, Any],
    *,
    day: str = "2026-03-01",
    state: ReviewState | str = ReviewState.received,
    round_id: str | None = None,
    instance_id: str | None = None,
    deprecated_id: str | None = None,
    received: datetime | None = None,
) -> Submission:
    """Save one submission the way the server would: XML first, fields parsed from it."""
    commune = unit.split("-", 1)[0]
    location = {"province": PROVINCE if commune.isdigit() and len(commune) == 5 else unit, "commune": commune}
    if "-" in unit:
        location["hamlet"] = unit
    all_fields = {**location, **fields}
    iid = instance_id or f"uuid:{uuid.uuid4()}"
    xml = instance_xml(form_id, iid, all_fields, deprecated_id)
    repeats = frozenset(k for k, v in all_fields.items() if isinstance(v, list))
    parsed = parse_instance(xml, FormShape(repeats=repeats))
    sub = Submission(
        instance_id=iid,
        form_id=form_id,
        form_version="1",
        round_id=round_id,
        unit_code=unit,
        received_at=received or local_noon(day),
        xml_md5=hashlib.md5(xml).hexdigest(),
        fields=parsed.fields,
        review_state=ReviewState(state),
        deprecated_id=deprecated_id,
    )
    store.save_submission(sub, xml, {})
    return sub


def closed_round(store: Store, round_id: str, period: str, form_ids: list[str], **kw: Any) -> Round:
    rnd = Round(id=round_id, name=round_id, period=period, form_ids=form_ids, state=RoundState.closed, **kw)
    store.put_round(rnd)
    return rnd


def table(results: list[IndicatorResult]) -> dict[tuple[str, str], IndicatorResult]:
    return {(r.unit_code, r.indicator_id): r for r in results}


def run(store: Store, period: str = "2026", **kw: Any) -> dict[tuple[str, str], IndicatorResult]:
    kw.setdefault("registry", small_registry())
    kw.setdefault("units", [u.code for u in kw["registry"]])
    return table(evaluate(store, Period.parse(period), **kw))


def days_after(day: str, n: int) -> str:
    return (datetime.fromisoformat(day) + timedelta(days=n)).date().isoformat()


class Scanning:
    """The store with its grouping (``Store.aggregate``) switched off: every record is read, the path
    the SQL group-bys must agree with."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def aggregate(self, *args: Any, **kwargs: Any) -> None:
        return None
