"""Reporting periods: a year ("2026"), a half ("2026-H1"), a quarter ("2026-Q2"), a month ("2026-03"),
an ISO week ("2026-W07", Monday to Sunday) or the QĐ 28/2025 assessment year ("2026-QD28": 15/12 of the
previous year to 14/12, Decision 28/2025/QĐ-TTg Art. 7). This is the one parser of period names: rounds,
indicators, reports and web filters all read periods here.

Boundaries are local calendar days in Asia/Ho_Chi_Minh (UTC+7, no daylight saving); a submission's
``received_at`` (UTC) is converted before it is placed in a period.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


class PeriodKind(StrEnum):
    year = "year"
    half = "half"
    quarter = "quarter"
    month = "month"
    week = "week"
    qd28 = "qd28"  # the QĐ 28/2025 assessment year, 15/12 (previous year) → 14/12


_PATTERNS = [
    (re.compile(r"^(\d{4})$"), PeriodKind.year),
    (re.compile(r"^(\d{4})-?[Hh]([12])$"), PeriodKind.half),
    (re.compile(r"^(\d{4})-?[Qq]([1-4])$"), PeriodKind.quarter),
    (re.compile(r"^(\d{4})-(\d{1,2})$"), PeriodKind.month),
    (re.compile(r"^(\d{4})-?[Ww](\d{1,2})$"), PeriodKind.week),
    (re.compile(r"^(\d{4})-?[Qq][Dd]28$"), PeriodKind.qd28),
]
ACCEPTED = "2026, 2026-H1, 2026-Q2, 2026-03, 2026-W07, 2026-QD28"
QD28_START = (12, 15)  # the assessment year starts on 15/12 of the year before (QĐ 28/2025 Art. 7)
_MONTHS = {PeriodKind.year: 12, PeriodKind.half: 6, PeriodKind.quarter: 3, PeriodKind.month: 1}


@dataclass(frozen=True, order=True)
class Period:
    """One reporting period; ``index``: 1 for a year or a QĐ 28 year, 1–2 for a half, 1–4 for a quarter,
    1–12 for a month, 1–53 for an ISO week (``year`` is then the ISO week-numbering year)."""

    year: int
    kind: PeriodKind = PeriodKind.year
    index: int = 1

    @classmethod
    def parse(cls, text: str | int | Period) -> Period:
        """Read "2026", "2026-H1", "2026-Q3", "2026-03", "2026-W07" or "2026-QD28"; a ValueError names the
        accepted forms."""
        if isinstance(text, Period):
            return text
        s = str(text).strip()
        for pattern, kind in _PATTERNS:
            m = pattern.match(s)
            if m:
                year = int(m.group(1))
                index = int(m.group(2)) if kind not in (PeriodKind.year, PeriodKind.qd28) else 1
                if kind is PeriodKind.month and not 1 <= index <= 12:
                    break
                if kind is PeriodKind.week and not 1 <= index <= weeks_in_year(year):
                    break
                return cls(year, kind, index)
        raise ValueError(
            f"kỳ không hợp lệ '{s}' (dùng {ACCEPTED}) / invalid period '{s}' (use {ACCEPTED})"
        )

    def __str__(self) -> str:
        if self.kind is PeriodKind.year:
            return f"{self.year}"
        if self.kind is PeriodKind.half:
            return f"{self.year}-H{self.index}"
        if self.kind is PeriodKind.quarter:
            return f"{self.year}-Q{self.index}"
        if self.kind is PeriodKind.week:
            return f"{self.year}-W{self.index:02d}"
        if self.kind is PeriodKind.qd28:
            return f"{self.year}-QD28"
        return f"{self.year}-{self.index:02d}"

    @property
    def first_month(self) -> int:
        """The first calendar month of a year, half, quarter or month."""
        return (self.index - 1) * _MONTHS[self.kind] + 1

    @property
    def start(self) -> date:
        """First local day of the period."""
        if self.kind is PeriodKind.week:
            return date.fromisocalendar(self.year, self.index, 1)
        if self.kind is PeriodKind.qd28:
            return date(self.year - 1, *QD28_START)
        return date(self.year, self.first_month, 1)

    @property
    def end(self) -> date:
        """First local day after the period (exclusive bound)."""
        if self.kind is PeriodKind.week:
            return self.start + timedelta(days=7)
        if self.kind is PeriodKind.qd28:
            return date(self.year, *QD28_START)
        month = self.first_month + _MONTHS[self.kind]
        return date(self.year + (month - 1) // 12, (month - 1) % 12 + 1, 1)

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)

    def utc_bounds(self) -> tuple[datetime, datetime]:
        """[start, end) in UTC, for filtering ``received_at``."""
        start = datetime.combine(self.start, time(), LOCAL_TZ)
        end = datetime.combine(self.end, time(), LOCAL_TZ)
        return start.astimezone(UTC), end.astimezone(UTC)

    def previous(self) -> Period:
        """The period just before, of the same kind (2026-Q1 → 2025-Q4, 2026-W01 → 2025-W52)."""
        if self.kind is PeriodKind.week:
            iso = (self.start - timedelta(days=7)).isocalendar()
            return Period(iso.year, PeriodKind.week, iso.week)
        if self.kind is PeriodKind.qd28:
            return Period(self.year - 1, PeriodKind.qd28)
        if self.index > 1:
            return Period(self.year, self.kind, self.index - 1)
        return Period(self.year - 1, self.kind, 12 // _MONTHS[self.kind])

    def same_in_year(self, year: int) -> Period:
        """The same half/quarter/month/week in another year (the base-year comparison); week 53 of a
        year that has none becomes week 52."""
        if self.kind is PeriodKind.week:
            return Period(year, self.kind, min(self.index, weeks_in_year(year)))
        return Period(year, self.kind, self.index)

    def contains_day(self, iso_day: str) -> bool:
        """Whether an ISO date ("2026-03-05", or a datetime string) falls in the period."""
        day = iso_day[:10]
        return self.start.isoformat() <= day < self.end.isoformat()


def weeks_in_year(year: int) -> int:
    """52 or 53: the ISO week of 28 December is always the year's last."""
    return date(year, 12, 28).isocalendar().week


def vn_today() -> date:
    """Today in Vietnam (deadlines and "this month" are Vietnamese days, whatever the server's zone)."""
    return datetime.now(LOCAL_TZ).date()


def local_day(when: datetime) -> str:
    """The ISO local date (Asia/Ho_Chi_Minh) of a stored UTC time."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(LOCAL_TZ).date().isoformat()
