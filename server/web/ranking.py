"""The units below the one an officer looks at, for one indicator, kept clear at province scale (a
province has about a hundred communes): the units that reported first, worst first, then those without
data; found by name (with or without diacritics) or code; shown a page at a time. The chart beside the
table draws every unit that has data and counts the others in its title (``charts.bar_chart``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rasoat.core.units import fold

PAGE_SIZE = 15
# worst first: off target, then on track, then met; a figure without a target last
STATUS_RANK = {"not_met": 0, "on_track": 1, "met": 2, "no_target": 3}


def on_value(raw: Any) -> bool:
    """Whether an indicator's target compares the value itself (not its change on a previous period)."""
    return raw.target_on is None or raw.target_on.value == "value"


def rises(raw: Any) -> bool:
    """Whether the target asks the value itself to reach a floor (then the lowest value is the worst)."""
    return raw.target_op in (">", ">=") and on_value(raw)


def worst_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows (``pages_overview.row_view``) of units with data, furthest from the target first, then the
    units without data by name."""
    with_data = [r for r in rows if r["raw"].value is not None]
    without = sorted((r for r in rows if r["raw"].value is None), key=lambda r: fold(r["unit_name"]))
    if with_data:
        rising = rises(with_data[0]["raw"])
        with_data.sort(key=lambda r: (STATUS_RANK.get(r["status"], 3),
                                      r["raw"].value if rising else -r["raw"].value, r["unit_code"]))
    return with_data + without


def matches(row: dict[str, Any], query: str) -> bool:
    """A unit's name contains the query, ignoring case and diacritics, or its code starts with it."""
    q = query.strip()
    return not q or row["unit_code"].startswith(q) or fold(q) in fold(row["unit_name"])


@dataclass(frozen=True)
class UnitPage:
    rows: list[dict[str, Any]]  # this page's rows
    page_no: int  # 1-based, clamped to the pages there are
    pages: int
    matched: int  # rows the search kept (all rows without a search)
    start: int  # how many matched rows come before this page


def page_of(rows: list[dict[str, Any]], query: str, page_no: int, size: int = PAGE_SIZE) -> UnitPage:
    """The search applied to ``rows`` (already in order), then page ``page_no`` of it."""
    kept = [r for r in rows if matches(r, query)]
    pages = max(1, -(-len(kept) // size))
    page_no = min(max(1, page_no), pages)
    start = (page_no - 1) * size
    return UnitPage(kept[start : start + size], page_no, pages, len(kept), start)
