"""Reporting periods: a year ("2026"), a half ("2026-H1"), a quarter ("2026-Q2") or a month ("2026-03").

Boundaries are local calendar days in Asia/Ho_Chi_Minh (UTC+7, no daylight saving); a submission's
``received_at`` (UTC) is converted before it is placed in a period.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


class PeriodKind(StrEnum):
    year = "year"
    half = "half"
    quarter = "quarter"
    month = "month"


_PATTERNS = [
    (re.compile(r"^(\d{4})$"), PeriodKind.year),
    (re.compile(r"^(\d{4})-?[Hh]([12])$"), PeriodKind.half),
    (re.compile(r"^(\d{4})-?[Qq]([1-4])$"), PeriodKind.quarter),
    (re.compile(r"^(\d{4})-(\d{1,2})$"), PeriodKind.month),
]
_MONTHS = {PeriodKind.year: 12, PeriodKind.half: 6, PeriodKind.quarter: 3, PeriodKind.month: 1}


@dataclass(frozen=True, order=True)
class Period:
    """One reporting period; ``index``: 1 for a year, 1–2 for a half, 1–4 for a quarter, 1–12 for a month."""

    year: int
    kind: PeriodKind = PeriodKind.year
    index: int = 1

    @classmethod
    def parse(cls, text: str | int | Period) -> Period:
        """Read "2026", "2026-H1", "2026-Q3" or "2026-03"; a ValueError names the accepted forms."""
        if isinstance(text, Period):
            return text
        s = str(text).strip()
        for pattern, kind in _PATTERNS:
            m = pattern.match(s)
            if m:
                index = int(m.group(2)) if kind is not PeriodKind.year else 1
                if kind is PeriodKind.month and not 1 <= index <= 12:
                    break
                return cls(int(m.group(1)), kind, index)
        raise ValueError(
            f"kỳ không hợp lệ '{s}' (dùng 2026, 2026-H1, 2026-Q2, 2026-03) / "
            f"invalid period '{s}' (use 2026, 2026-H1, 2026-Q2, 2026-03)"
        )

    def __str__(self) -> str:
        if self.kind is PeriodKind.year:
            return f"{self.year}"
        if self.kind is PeriodKind.half:
            return f"{self.year}-H{self.index}"
        if self.kind is PeriodKind.quarter:
            return f"{self.year}-Q{self.index}"
        return f"{self.year}-{self.index:02d}"

    @property
    def first_month(self) -> int:
        return (self.index - 1) * _MONTHS[self.kind] + 1

    @property
    def start(self) -> date:
        """First local day of the period."""
        return date(self.year, self.first_month, 1)

    @property
    def end(self) -> date:
        """First local day after the period (exclusive bound)."""
        month = self.first_month + _MONTHS[self.kind]
        return date(self.year + (month - 1) // 12, (month - 1) % 12 + 1, 1)

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)

    def utc_bounds(self) -> tuple[datetime, datetime]:
        """[start, end) in UTC, for filtering ``received_at``."""
        start = datetime(self.start.year, self.start.month, 1, tzinfo=LOCAL_TZ)
        end = datetime(self.end.year, self.end.month, 1, tzinfo=LOCAL_TZ)
        return start.astimezone(UTC), end.astimezone(UTC)

    def previous(self) -> Period:
        """The period just before, of the same kind (2026-Q1 → 2025-Q4)."""
        if self.index > 1:
            return Period(self.year, self.kind, self.index - 1)
        return Period(self.year - 1, self.kind, 12 // _MONTHS[self.kind])

    def same_in_year(self, year: int) -> Period:
        """The same half/quarter/month in another year (the base-year comparison)."""
        return Period(year, self.kind, self.index)

    def contains_day(self, iso_day: str) -> bool:
        """Whether an ISO date ("2026-03-05", or a datetime string) falls in the period."""
        day = iso_day[:10]
        return self.start.isoformat() <= day < self.end.isoformat()


def local_day(when: datetime) -> str:
    """The ISO local date (Asia/Ho_Chi_Minh) of a stored UTC time."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(LOCAL_TZ).date().isoformat()
