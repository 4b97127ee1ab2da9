"""Management of illegal drug users and post-rehab management (Law 73/2021 Art. 23 and 40, Decree
105/2021): each person's management record built from the F11 events (decisions Mẫu 07/09/10, the
Mẫu 05 CV details F1 lacks, the Tổ quản lý, transfers Mẫu 08) and the F12 monthly visits (a ``moved``
result; F11 versions before 2026120730 recorded the check as an event ``residence_check``), and the lists
a commune officer needs each month: terms ending within 30 days (or already past with no end decision),
persons who moved with the state of their transfer note. Who was not visited this month is not
recomputed here: it is the persons list's answer (``core.followup.overdue``, from the entity versions),
which the management page and ``rasoat management lists`` show, so the two pages never disagree.

Term lengths and deadlines are data (core/data/management_terms.csv, each row with the date it takes
effect), so the Law 120/2025 changes from 1/7/2026 (a 24-hour notice instead of 5 working days) apply
by date, and a later decree changes a row, not this code. Working days skip Saturdays and Sundays only
(public holidays are not modelled: the officer counts them).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from rasoat.core.models import DEFAULT_COUNTED_STATES, Submission, unread
from rasoat.core.storage.base import Store, SubmissionQuery

TERMS_FILE = Path(__file__).resolve().parent / "data" / "management_terms.csv"
FORM_ID = "f11_management"
VISIT_FORM = "f12_visit"  # the monthly residence check (Decree 105/2021), read as F11's old residence_check


def load_terms(path: str | Path = TERMS_FILE) -> list[tuple[str, int, date, str]]:
    """(name, value, effective from, source) rows, oldest first; a bad row is an error naming it."""
    out = []
    with open(path, encoding="utf-8", newline="") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            try:
                since = date.fromisoformat(row["effective_from"])
                out.append((row["name"].strip(), int(row["value"]), since, row.get("source") or ""))
            except (KeyError, ValueError, AttributeError):
                raise ValueError(f"{path}, dòng {line}: không đọc được / line {line}: unreadable") from None
    return sorted(out, key=lambda r: r[2])


@dataclass(frozen=True)
class Terms:
    """The values in force on one day (``terms_on``)."""

    values: dict[str, int]
    sources: dict[str, str]

    def term_days(self, kind: str, basis: str | None) -> int:
        if kind == "post_rehab":
            return self.values[f"post_rehab_{basis or 'voluntary'}_days"]
        return self.values["user_term_days"]

    def transfer_due(self, moved: date) -> date:
        """The last day to send the file (Mẫu 08) for a person who moved on ``moved``."""
        if "transfer_hours" in self.values:
            return moved + timedelta(days=max(1, -(-self.values["transfer_hours"] // 24)))
        return add_working_days(moved, self.values["transfer_working_days"])


def terms_on(day: date, rows: list[tuple[str, int, date, str]] | None = None) -> Terms:
    values: dict[str, int] = {}
    sources: dict[str, str] = {}
    for name, value, since, source in rows if rows is not None else load_terms():
        if since <= day:
            values[name], sources[name] = value, source
    return Terms(values, sources)


def add_working_days(day: date, n: int) -> date:
    while n > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            n -= 1
    return day


@dataclass
class Record:
    """One person's management record as the events tell it."""

    person_key: str
    commune: str
    kind: str | None = None  # "user" (Art. 23) or "post_rehab" (Art. 40)
    basis: str | None = None
    decision_no: str = ""
    start: date | None = None
    end: date | None = None  # start + term (a new decision restarts it)
    active: bool = False
    closed: str = ""  # "stopped:<reason>" or "ended"
    moved: tuple[date, str] | None = None
    transfer: dict[str, Any] | None = None
    team: list[dict[str, str]] = field(default_factory=list)
    cv: dict[str, Any] = field(default_factory=dict)


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


CV_FIELDS = ("ethnicity", "ethnicity_other", "religion", "nationality", "use_route", "prior_rehab",
             "prior_rehab_count", "prior_rehab_place", "use_frequency", "use_times", "dose")


Rows = list[tuple[str, int, date, str]]


class Records(dict[str, Record]):
    """person_key → Record, and how many F11 events could not be read (encrypted, no key): the lists
    then say they are incomplete instead of silently leaving persons out."""

    unreadable: int = 0


def records(store: Store, units: list[str], rows: Rows | None = None) -> Records:
    """Every person's record from the F11 events and F12 visits of ``units`` (codes already expanded), in
    date order."""
    rows = rows if rows is not None else load_terms()
    events: list[tuple[date, Any, Submission, str]] = []
    out = Records()
    for form_id, date_field in ((FORM_ID, "event_date"), (VISIT_FORM, "visit_date")):
        query = SubmissionQuery(form_id=form_id, unit_codes=units, review_states=list(DEFAULT_COUNTED_STATES))
        for sub in store.iter_submissions(query):
            if unread(sub):
                out.unreadable += 1
                continue
            day = _day(sub.fields.get(date_field))
            if day is not None and sub.fields.get("person_key"):
                events.append((day, sub.received_at, sub, form_id))
    for day, _, sub, form_id in sorted(events, key=lambda e: (e[0], e[1])):
        f = sub.fields
        key = str(f["person_key"])
        rec = out.setdefault(key, Record(key, (sub.unit_code or "").split("-", 1)[0]))
        event = "residence_check" if form_id == VISIT_FORM else f.get("event")
        if event == "decision_start":
            rec.kind, rec.basis = f.get("mgmt_kind") or "user", f.get("post_rehab_basis")
            rec.decision_no, rec.start = str(f.get("decision_no") or ""), day
            rec.active, rec.closed = True, ""
            rec.end = day + timedelta(days=terms_on(day, rows).term_days(rec.kind or "user", rec.basis))
            rec.moved = rec.transfer = None
        elif event == "decision_stop":
            rec.active, rec.closed = False, f"stopped:{f.get('stop_reason') or ''}"
        elif event == "decision_end":
            rec.active, rec.closed = False, "ended"
        elif event == "residence_check":
            if f.get("check_result") == "moved":
                rec.moved = (_day(f.get("moved_date")) or day, str(f.get("moved_to") or ""))
        elif event == "transfer":
            rec.transfer = {"date": day, "to": f.get("transfer_commune") or f.get("transfer_to"),
                            "no": f.get("transfer_no"),
                            "items": str(f.get("transfer_items") or "").split()}
        elif event == "team":
            rows_ = f.get("member") or []
            rec.team = [
                {"name": r.get("member_name", ""), "role": r.get("member_role", ""),
                 "helper": r.get("member_helper", "")}
                for r in (rows_ if isinstance(rows_, list) else [rows_]) if isinstance(r, dict)
            ]
        elif event == "cv":
            rec.cv = {k: f[k] for k in CV_FIELDS if k in f}
    return out


@dataclass
class MonthlyLists:
    month: str
    ending: list[tuple[Record, int]]  # days left (negative: past, no end decision yet)
    moved: list[tuple[Record, date, bool]]  # transfer due date, overdue
    unreadable: int = 0  # encrypted F11 events left out: the lists are incomplete


def monthly_lists(recs: dict[str, Record], as_of: date, rows: Rows | None = None) -> MonthlyLists:
    """The two lists for the month of ``as_of`` (the third, visits not made, is ``core.followup.overdue``)."""
    terms = terms_on(as_of, rows)
    month = as_of.isoformat()[:7]
    notice = terms.values["ending_notice_days"]
    ending, moved = [], []
    for rec in sorted(recs.values(), key=lambda r: r.person_key):
        if not rec.active or rec.start is None or rec.end is None:
            continue
        left = (rec.end - as_of).days
        if left <= notice:
            ending.append((rec, left))
        if rec.moved is not None:
            due = terms_on(rec.moved[0], rows).transfer_due(rec.moved[0])
            sent = rec.transfer is not None and rec.transfer["date"] >= rec.moved[0]
            moved.append((rec, due, not sent and as_of > due))
    ending.sort(key=lambda e: e[1])
    return MonthlyLists(month, ending, moved, getattr(recs, "unreadable", 0))


def terms_table(day: date, rows: Rows | None = None) -> list[tuple[str, int, str]]:
    """(name, value, source) in force on ``day``: what the CLI and docs show."""
    t = terms_on(day, rows)
    return [(k, v, t.sources[k]) for k, v in t.values.items()]


def by_commune(recs: dict[str, Record]) -> dict[str, list[Record]]:
    out: dict[str, list[Record]] = defaultdict(list)
    for r in recs.values():
        out[r.commune].append(r)
    return out
