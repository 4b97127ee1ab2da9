"""Cell helpers shared by both workbooks: typing answers, Vietnam time, safe text, sheet names, formats.

Everything here is small and hot: the raw export calls these once per cell, so they avoid work
that can be done once per column.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

try:
    from zoneinfo import ZoneInfo

    VN_TZ: Any = ZoneInfo("Asia/Ho_Chi_Minh")
except Exception:  # no tz database (e.g. Windows without tzdata): Vietnam is UTC+7, no DST since 1975
    VN_TZ = timezone(timedelta(hours=7), "ICT")

EXCEL_MAX_ROWS = 1_048_576
EXCEL_MAX_COLS = 16_384
EXCEL_MAX_URLS = 65_530  # hyperlinks per worksheet Excel accepts; beyond that we write HYPERLINK()

# Number formats. Excel stores format codes with '.' for the decimal point and ',' for thousands and
# shows them with the viewer's system separators, so on a Vietnamese Windows '#,##0.0' reads
# "1.234,5". The locale tag [$-42A] (vi-VN) only changes date words (month/day names).
FMT_DATE = "dd/mm/yyyy"
FMT_DATETIME = "dd/mm/yyyy hh:mm:ss"
FMT_TIME = "hh:mm:ss"
FMT_VN_DATETIME = "[$-42A]dd/mm/yyyy hh:mm"
FMT_INT = "#,##0"
FMT_DEC1 = "#,##0.0"
FMT_CHANGE = "+#,##0.0;-#,##0.0;0.0"

# A spreadsheet treats text starting with these as a formula (CSV/DDE injection, OWASP).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")


def is_formula_like(text: str) -> bool:
    """True when a spreadsheet could read this text as a formula if it were re-entered."""
    return text.startswith(_FORMULA_START)


def to_vn_naive(when: datetime) -> datetime:
    """A UTC (or any aware) time as a naive Asia/Ho_Chi_Minh wall-clock time, which is what Excel stores."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(VN_TZ).replace(tzinfo=None)


def parse_date(text: str) -> datetime | None:
    """An XForm date ("2026-03-05", maybe with a time part) as a naive datetime; None if unreadable."""
    try:
        d = date.fromisoformat(text[:10])
    except ValueError:
        return None
    if d.year < 1900:  # Excel's calendar starts in 1900
        return None
    return datetime(d.year, d.month, d.day)


def parse_datetime(text: str) -> datetime | None:
    """An XForm dateTime ("2026-03-05T10:15:00.000+07:00") in Vietnam time, naive; None if unreadable."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(VN_TZ).replace(tzinfo=None)
    if when.year < 1900:
        return None
    return when


def parse_time(text: str) -> time | None:
    """An XForm time ("10:15:00.000+07:00") as the wall-clock time the phone recorded; None if unreadable."""
    try:
        return time.fromisoformat(text).replace(tzinfo=None)
    except ValueError:
        return None


def parse_int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def parse_float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and value not in (float("inf"), float("-inf")) else None


def sheet_name(base: str, used: set[str]) -> str:
    """A valid, unique worksheet name: no []:*?/\\, at most 31 characters, unique ignoring case."""
    clean = _SHEET_BAD.sub("_", base).strip().strip("'") or "Sheet"
    if clean.casefold() == "history":  # reserved by Excel
        clean = "History_"
    name = clean[:31]
    n = 2
    while name.casefold() in used:
        suffix = f" ({n})"
        name = clean[: 31 - len(suffix)] + suffix
        n += 1
    used.add(name.casefold())
    return name


def column_width(header: str, minimum: int = 8, maximum: int = 40) -> float:
    """A width that shows a header on at most two lines."""
    return float(max(minimum, min(maximum, len(header) // 2 + 4 if len(header) > 24 else len(header) + 2)))


def write_header(ws: Worksheet, headers: Iterable[str], fmt: Any, row: int = 0) -> int:
    """Write a header row, size columns to it, freeze it; returns how many columns."""
    n = 0
    for col, text in enumerate(headers):
        ws.write_string(row, col, text, fmt)
        ws.set_column(col, col, column_width(text))
        n += 1
    ws.freeze_panes(row + 1, 0)
    return n


class Formats:
    """The workbook's cell formats, created once (xlsxwriter formats belong to one workbook)."""

    def __init__(self, wb: Workbook) -> None:
        self.header = wb.add_format(
            {"bold": True, "text_wrap": True, "valign": "top", "bg_color": "#DDEBF7", "border": 1}
        )
        self.date = wb.add_format({"num_format": FMT_DATE})
        self.datetime = wb.add_format({"num_format": FMT_DATETIME})
        self.time = wb.add_format({"num_format": FMT_TIME})
        self.text_quoted = wb.add_format({"quote_prefix": True})  # Excel keeps it as text even on edit
        self.link = wb.add_format({"font_color": "#0563C1", "underline": 1})
        self.int = wb.add_format({"num_format": FMT_INT})
        self.dec1 = wb.add_format({"num_format": FMT_DEC1})
        self.change = wb.add_format({"num_format": FMT_CHANGE})
        self.title = wb.add_format({"bold": True, "font_size": 14})
        self.bold = wb.add_format({"bold": True})
        self.vn_datetime = wb.add_format({"num_format": FMT_VN_DATETIME, "align": "left"})
        self.wrap = wb.add_format({"text_wrap": True, "valign": "top"})


def write_text(ws: Worksheet, row: int, col: int, text: str, quoted_fmt: Any) -> None:
    """Write a string as a string: never a formula, and marked as text when it looks like one."""
    if text.startswith(_FORMULA_START):
        ws.write_string(row, col, text, quoted_fmt)
    else:
        ws.write_string(row, col, text)


def hyperlink_formula(url: str, text: str) -> str:
    """A HYPERLINK() formula: no per-sheet limit, unlike native links (Excel stops at 65,530)."""
    return f'=HYPERLINK("{url.replace(chr(34), "%22")}","{text.replace(chr(34), chr(34) * 2)}")'
