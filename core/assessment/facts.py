"""Figures no register holds, entered or imported by an officer for one assessment year: a commune's
current resident population (the base of R and A, "nhân khẩu hiện đang cư trú", QĐ 28 Art. 4) and the
key-route flag of a commune or province (Art. 3; a province's own is Art. 5 criterion 6).

Each value keeps its source (the document or database it was read from), the date it refers to, who
entered it and when; a new value keeps the earlier ones in ``history``. Stored as a small document per
(year, unit) in the store's key-value space, so both backends keep it the same way. Every change is in
the audit log (``assessment.fact``).
"""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from rasoat.core.audit import record
from rasoat.core.models import utcnow
from rasoat.core.problems import Problem
from rasoat.core.storage.base import Store

NAMESPACE = "qd28.facts"
FACTS = ("population", "on_route")


class FactError(Problem, ValueError):
    """A figure that cannot be stored as given; the message is bilingual and one line."""


def _key(year: int, unit: str) -> str:
    return f"{year}/{unit}"


def get_facts(store: Store, year: int, unit: str) -> dict[str, Any]:
    """``{"population": {...}, "on_route": {...}}`` for the unit (missing keys: never entered)."""
    return store.kv_get(NAMESPACE, _key(year, unit)) or {}


def get_facts_many(store: Store, year: int, units: list[str]) -> dict[str, dict[str, Any]]:
    """``get_facts`` of each unit, read at once."""
    found = store.kv_get_many(NAMESPACE, [_key(year, u) for u in units])
    return {u: found.get(_key(year, u)) or {} for u in units}


def _parse_value(name: str, value: Any) -> int:
    text = str(value).strip().lower()
    if name == "on_route":
        if text in ("yes", "có", "co", "1", "true"):
            return 1
        if text in ("no", "không", "khong", "0", "false"):
            return 0
        raise FactError("assessment.yes_or_no", value=value)
    try:
        number = int(text.replace(".", "").replace(",", "").replace(" ", ""))
    except ValueError:
        raise FactError("assessment.population_whole", value=value) from None
    if number <= 0:
        raise FactError("assessment.population_positive", number=number)
    return number


def set_fact(
    store: Store, year: int, unit: str, name: str, value: Any, source: str, as_of: str, actor: str
) -> dict[str, Any]:
    """Store one figure with its source and reference date; the previous value moves to ``history``."""
    if name not in FACTS:
        raise FactError("assessment.unknown_figure", name=name, facts=', '.join(FACTS))
    if not source.strip():
        raise FactError("assessment.source_required")
    try:
        day = date.fromisoformat(as_of.strip())
    except ValueError:
        raise FactError("assessment.bad_date", as_of=as_of) from None
    entry = {
        "value": _parse_value(name, value),
        "source": source.strip(),
        "as_of": day.isoformat(),
        "by": actor,
        "at": utcnow().isoformat(),
    }
    key = _key(year, unit)
    for _ in range(20):  # compare-and-set: two officers entering at once both land in the history
        old = store.kv_get(NAMESPACE, key)
        doc = dict(old or {})
        history = list(doc.get("history", []))
        if name in doc:
            history.append({"name": name, **doc[name]})
        doc[name] = entry
        doc["history"] = history
        if store.kv_cas(NAMESPACE, key, old, doc):
            break
    else:
        raise FactError("assessment.fact_concurrent")
    record(store, actor, "assessment.fact", target=unit, year=year, name=name, value=entry["value"],
           source=entry["source"], as_of=entry["as_of"])
    return entry


def import_facts(store: Store, year: int, text: str, actor: str, known_units: set[str] | None = None) -> int:
    """Read a CSV with columns ``unit,population,source,as_of`` (and optional ``on_route``); every row is
    checked before any is stored, and a bad row is named. Returns the number of rows stored."""
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    missing = {"unit", "source", "as_of"} - set(rows[0] if rows else {})
    if missing or not rows:
        raise FactError("assessment.csv_columns", missing=missing)
    checked: list[tuple[str, str, Any, str, str]] = []
    for line, row in enumerate(rows, start=2):
        unit = (row.get("unit") or "").strip()
        if known_units is not None and unit not in known_units:
            raise FactError("assessment.csv_unit_outside", line=line, unit=unit)
        for name in FACTS:
            value = (row.get(name) or "").strip()
            if value:
                try:
                    _parse_value(name, value)
                    date.fromisoformat((row.get("as_of") or "").strip())
                except (FactError, ValueError) as exc:
                    raise FactError("assessment.csv_line", line=line, detail=exc) from None
                checked.append((unit, name, value, row.get("source") or "", row.get("as_of") or ""))
    for unit, name, value, source, as_of in checked:
        set_fact(store, year, unit, name, value, source, as_of, actor)
    return len(rows)
