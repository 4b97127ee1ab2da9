"""A commune's QĐ 28 figures for one assessment year, read from the registers in the store.

* R numerator (Art. 4a): persons in F1 whose latest record before the year's end is present, of category
  ``user`` or ``addict``, with ``has_record = yes`` (a management record, Decree 105/2021 Art. 40).
* Art. 6.1: the same persons, less those exempt: on substitution treatment (``services`` has
  ``methadone``), in home/community rehab (``rehab_type = voluntary_home``); post-rehab persons are their
  own category and never counted.
* P (Art. 4b, 6.3): F6 sites whose latest record before the year's end is a use venue
  (``is_use_venue = yes``) still active (``identified`` or ``reemerged``).
* A (Art. 4c): ``offenders_arrested`` of the F9 reports whose period lies in the year; Art. 6.2:
  ``offence/persons_resident`` of the same reports. Overlapping reports are flagged (they could count a
  case twice).
* C (Art. 4d): ``plant_count`` and ``area_m2`` of F7 records destroyed in the year.
* Population and key route: the officer-entered facts (core.assessment.facts). Fugitives hiding
  (Art. 6.2): no register holds them, so the figure typed into F10 is the source.

The commune's F10 for the year (the latest yearly summary) is read for what it typed: a typed total that
disagrees with the registers is shown beside it and flagged, never used instead. A register the server
cannot read (ODK-encrypted records and no key) makes its figures unknown, never zero.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from rasoat.core.assessment.facts import get_facts_many
from rasoat.core.assessment.rules import CommuneInputs, Figure, Flag
from rasoat.core.indicators.periods import Period, local_day
from rasoat.core.models import DEFAULT_COUNTED_STATES, UNREAD_FIELD
from rasoat.core.problems import Words
from rasoat.core.storage.base import Condition, Fact, Latest, Span, Store, SubmissionQuery, Tally

# F10 field typed for each input; on_route is yes/no.
F10_FIELDS = {
    "population": "population_resident",
    "managed": "with_mgmt_record",
    "venues": "use_venues_active",
    "arrested": "offenders_arrested",
    "plants": "cultivation_plants",
    "area_m2": "cultivation_area_m2",
    "on_route": "on_route",
    "users_not_exempt": "users_not_exempt",
    "residents_violating": "residents_violating",
    "fugitives_hiding": "fugitives_hiding",
}


def commune_of(unit_code: str | None) -> str:
    return (unit_code or "").split("-", 1)[0]


def _num(value: Any) -> float:
    try:
        return float(str(value).strip() or 0)
    except ValueError:
        return 0.0


@dataclass
class _Acc:
    """What one commune's registers hold, gathered in one pass per form."""

    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # records read per form
    encrypted: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    states: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # _STATES' counts by name
    plants: float = 0.0
    area: float = 0.0
    crops: int = 0
    arrested: float = 0.0
    violating: float = 0.0
    reports: list[tuple[str, str]] = field(default_factory=list)  # F9 (from, to)
    f10: Fact | None = None

    def add(self, form: str, records: int, sealed: int = 0) -> None:
        """``records`` more records of ``form``, ``sealed`` of them unreadable."""
        self.counts[form] += records
        if sealed:
            self.encrypted[form] += sealed

    def sealed(self, form: str, fact: Fact) -> bool:
        """Whether the server cannot read ``fact`` (then counted as one of ``form``'s unreadable records)."""
        if not unread(fact):
            return False
        self.add(form, 1, 1)
        return True


# the answers each register is read for (the records are read as facts: only these keys, no models)
_FIELDS: dict[str, tuple[str, ...]] = {
    "f1_person": ("person_key", "present", "category", "has_record", "services", "rehab_type"),
    "f6_hotspot": ("site_key", "is_use_venue", "status"),
    "f7_cultivation": ("destroyed_date", "found_date", "destroyed", "plant_count", "area_m2"),
    "f9_case": ("period_from", "period_to", "offenders_arrested", "offence"),
    "f10_summary": ("period_type", "period_to", "qd28_final", "qd28_class", *F10_FIELDS.values()),
}


_USER = (Condition("present", "eq", ("yes",)), Condition("category", "eq", ("user", "addict")))
_VENUE = Condition("is_use_venue", "eq", ("yes",))
# The registers of states (a person, a site: each record its state then), counted at each key's latest
# record in the commune: (form, key, counts by name; a name given twice is their sum).
_STATES: tuple[tuple[str, str, tuple[tuple[str, tuple[Condition, ...]], ...]], ...] = (
    ("f1_person", "person_key", (
        ("users", _USER),  # present users and addicts (post-rehab is its own category)
        ("managed", (*_USER, Condition("has_record", "eq", ("yes",)))),
        ("not_exempt", (*_USER, Condition("services", "word", ("methadone",), negate=True),
                        Condition("rehab_type", "eq", ("voluntary_home",), negate=True))),
    )),
    ("f6_hotspot", "site_key", (  # an active use venue; a site with no status is as identified
        ("venues", (_VENUE, Condition("status", "eq", ("identified", "reemerged")))),
        ("venues", (_VENUE, Condition("status", "absent"))),
    )),
)


def _query(form_id: str, units: list[str], before: Any) -> SubmissionQuery:
    """The counted records of one register under ``units`` received before ``before``."""
    return SubmissionQuery(
        form_id=form_id, unit_codes=units, review_states=list(DEFAULT_COUNTED_STATES), received_to=before
    )


def _scan(store: Store, form_id: str, units: list[str], before: Any) -> Iterable[Fact]:
    """``_query``'s records as facts, in no order."""
    return store.iter_facts(_query(form_id, units, before), [UNREAD_FIELD, *_FIELDS[form_id]])


def unread(fact: Fact) -> bool:
    """A record the server cannot read (ODK-encrypted, its statistics not derived), as the engine says."""
    return UNREAD_FIELD in fact.fields


def _later(new: Fact, kept: Fact | None) -> bool:
    """The latest record wins (a tie in receipt time: the larger instanceID, so the order read is moot)."""
    return kept is None or (kept.received_at, kept.instance_id) <= (new.received_at, new.instance_id)


def _in_year(day: str, period: Period) -> bool:
    return bool(day) and period.contains_day(day)


def gather(store: Store, period: Period, units: list[str]) -> dict[str, _Acc]:
    """One pass over each register for every commune under ``units`` (codes already expanded)."""
    acc: dict[str, _Acc] = defaultdict(_Acc)
    _, end_utc = period.utc_bounds()
    for form_id, key_field, counts in _STATES:
        if not _count_states(store, form_id, key_field, counts, units, end_utc, acc):
            _fold_states(store, form_id, key_field, counts, units, end_utc, acc)
    # The rest is read record by record, as no count under conditions can say it: each F9 report's span
    # is kept for the overlap flag and its residents are summed inside a repeat (and a report is counted
    # by two dates); F10 is one yearly record whose typed answers are shown. Both are few (a commune's
    # monthly reports, one summary a year).
    if not _count_crops(store, period, units, acc):
        _fold_crops(store, period, units, acc)
    for sub in _scan(store, "f9_case", units, end_utc):
        a = acc[commune_of(sub.unit_code)]
        if a.sealed("f9_case", sub):
            continue
        f = sub.fields
        start = str(f.get("period_from") or local_day(sub.received_at))
        stop = str(f.get("period_to") or start)
        if not (_in_year(start, period) and _in_year(stop, period)):
            continue
        a.add("f9_case", 1)
        a.reports.append((start, stop))
        a.arrested += _num(f.get("offenders_arrested"))
        rows = f.get("offence") or []
        for row in rows if isinstance(rows, list) else [rows]:
            a.violating += _num(row.get("persons_resident")) if isinstance(row, dict) else 0
    for sub in _scan(store, "f10_summary", units, end_utc):
        a = acc[commune_of(sub.unit_code)]
        f = sub.fields
        yearly = f.get("period_type") == "year" and _in_year(str(f.get("period_to") or ""), period)
        if unread(sub) or not yearly:
            continue
        if _later(sub, a.f10):
            a.f10 = sub
    return acc


def _count_states(
    store: Store, form_id: str, key_field: str, counts: tuple[tuple[str, tuple[Condition, ...]], ...],
    units: list[str], before: Any, acc: dict[str, _Acc],
) -> bool:
    """``_STATES``' counts of one register totalled by the store (one SQL group-by, no record read here);
    False when it cannot total them exactly."""
    groups = store.aggregate(
        _query(form_id, units, before), [Span(None, "", "", None, None)],
        [Tally(0, where) for _, where in counts], UNREAD_FIELD, Latest(key_field),
    )
    if groups is None:
        return False
    for g in groups:
        a = acc[commune_of(g.unit_code)]
        a.add(form_id, g.records[0], g.sealed[0])
        for (name, _), total in zip(counts, g.totals, strict=True):
            a.states[name] += int(total)
    return True


def _fold_states(
    store: Store, form_id: str, key_field: str, counts: tuple[tuple[str, tuple[Condition, ...]], ...],
    units: list[str], before: Any, acc: dict[str, _Acc],
) -> None:
    """``_count_states`` record by record: each key's latest readable record in the commune, then its
    counts, the same conditions tested in Python."""
    kept: dict[tuple[str, str], Fact] = {}
    for sub in _scan(store, form_id, units, before):
        commune = commune_of(sub.unit_code)
        a = acc[commune]
        if a.sealed(form_id, sub):
            continue
        a.add(form_id, 1)
        key = (commune, str(sub.fields.get(key_field) or sub.instance_id))
        if _later(sub, kept.get(key)):
            kept[key] = sub
    for (commune, _), sub in kept.items():
        states = acc[commune].states
        for name, where in counts:
            if all(c.holds(sub.fields) for c in where):
                states[name] += 1


_DESTROYED = Condition("destroyed", "eq", ("yes",))
_DAY_GIVEN = Condition("destroyed_date", "answered")


def _count_crops(store: Store, period: Period, units: list[str], acc: dict[str, _Acc]) -> bool:
    """F7 crops destroyed in the year, their plants and area, totalled by the store: dated by
    ``destroyed_date``, else ``found_date``, else the day received (two spans: the first date given, the
    second only where it is not); every sealed record counted. False when it cannot total exactly."""
    lo_utc, hi_utc = period.utc_bounds()
    year = (period.start.isoformat(), period.end.isoformat(), lo_utc, hi_utc)
    spans = [Span("destroyed_date", *year), Span("found_date", *year), Span(None, "", "", None, None)]
    given, not_given = (_DESTROYED, _DAY_GIVEN), (_DESTROYED, _DAY_GIVEN._replace(negate=True))
    tallies = [Tally(span, where, sums) for span, where in ((0, given), (1, not_given))
               for sums in (None, "plant_count", "area_m2")]
    groups = store.aggregate(_query("f7_cultivation", units, hi_utc), spans, tallies, UNREAD_FIELD)
    if groups is None:
        return False
    for g in groups:
        a = acc[commune_of(g.unit_code)]
        crops, plants, area = (g.totals[k] + g.totals[k + 3] for k in range(3))
        a.add("f7_cultivation", int(crops) + g.sealed[2], g.sealed[2])
        a.crops += int(crops)
        a.plants += plants
        a.area += area
    return True


def _fold_crops(store: Store, period: Period, units: list[str], acc: dict[str, _Acc]) -> None:
    """``_count_crops`` record by record."""
    for sub in _scan(store, "f7_cultivation", units, period.utc_bounds()[1]):
        a = acc[commune_of(sub.unit_code)]
        if a.sealed("f7_cultivation", sub):
            continue
        f = sub.fields
        day = str(f.get("destroyed_date") or f.get("found_date") or local_day(sub.received_at))
        if f.get("destroyed") == "yes" and _in_year(day, period):
            a.add("f7_cultivation", 1)
            a.crops += 1
            a.plants += _num(f.get("plant_count"))
            a.area += _num(f.get("area_m2"))


def _records(form: str, a: _Acc, what: Words) -> Words:
    n = a.counts.get(form, 0)
    return f"{form}: {what[0]} ({n} bản ghi)", f"{form}: {what[1]} ({n} records)"


def _from_register(form: str, a: _Acc, value: float, what: Words) -> Figure:
    n_enc = a.encrypted.get(form, 0)
    if n_enc:
        return Figure(
            None,
            _records(form, a, what),
            a.counts.get(form, 0),
            (f"{n_enc} bản ghi {form} được mã hoá, máy chủ không đọc được",
             f"{n_enc} {form} records encrypted, unreadable by the server"),
        )
    return Figure(value, _records(form, a, what), a.counts.get(form, 0))


def officer_fact(facts: dict[str, Any], name: str) -> Figure:
    """A figure officers enter (population, key route: on the assessment page or with ``rasoat assessment``,
    docs/assessment.md), its source in each language whole so a page shows one."""
    entry = facts.get(name)
    if not entry:
        return Figure(None, ("Chưa nhập", "Not entered"), 0, ("chưa nhập", "not entered"))
    src, day, by = entry["source"], entry["as_of"], entry["by"]
    source = (f"{src}, ngày {day} (nhập bởi {by})", f"{src}, as of {day} (by {by})")
    return Figure(float(entry["value"]), source, 1)


def _typed(f10: Fact | None, name: str) -> float | None:
    if f10 is None:
        return None
    raw = f10.fields.get(F10_FIELDS[name])
    if raw is None or str(raw).strip() == "":
        return None
    if name == "on_route":
        return 1.0 if raw == "yes" else 0.0
    return _num(raw)


def commune_inputs(a: _Acc, facts: dict[str, Any]) -> CommuneInputs:
    """The inputs of Art. 4 and 6 for one commune, each with its source and any F10 typed figure."""
    users, managed = a.states["users"], a.states["managed"]
    not_exempt, venues = a.states["not_exempt"], a.states["venues"]
    fugitives = _typed(a.f10, "fugitives_hiding")
    reports: Words = (f"{len(a.reports)} báo cáo", f"{len(a.reports)} reports")
    crops: Words = (f"{a.crops} vụ đã triệt phá", f"{a.crops} destroyed")
    figures = {
        "population": officer_fact(facts, "population"),
        "managed": _from_register(
            "f1_person", a, managed, (f"{managed} người có hồ sơ quản lý", f"{managed} with a record")
        ),
        "venues": _from_register(
            "f6_hotspot", a, venues, (f"{venues} điểm đang hoạt động", f"{venues} active venues")
        ),
        "arrested": _from_register("f9_case", a, a.arrested, reports),
        "plants": _from_register("f7_cultivation", a, a.plants, crops),
        "area_m2": _from_register("f7_cultivation", a, a.area, crops),
        "on_route": officer_fact(facts, "on_route"),
        "users_not_exempt": _from_register(
            "f1_person", a, not_exempt, (f"{users} người nghiện, sử dụng", f"{users} users and addicts")
        ),
        "residents_violating": _from_register("f9_case", a, a.violating, reports),
        "fugitives_hiding": Figure(
            fugitives,
            ("F10 (nhập tay, không sổ nào ghi)", "typed in F10, no register holds it"),
            0 if a.f10 is None else 1,
            ("", "") if fugitives is not None else ("chưa có báo cáo năm F10", "no yearly F10 report"),
        ),
    }
    figures = {
        k: fig if k == "fugitives_hiding" else replace(fig, typed=_typed(a.f10, k))
        for k, fig in figures.items()
    }
    flags: list[Flag] = []
    spans = sorted(a.reports)
    if any(later[0] <= earlier[1] for earlier, later in zip(spans, spans[1:], strict=False)):
        flags.append(Flag(
            "f9_overlap",
            ("Các báo cáo F9 có kỳ chồng nhau, có thể tính trùng", "F9 reports overlap and may count twice"),
        ))
    return CommuneInputs(**figures, flags=tuple(flags))


def f10_class(a: _Acc) -> str | None:
    """The class the commune's own F10 gave (``qd28_final``), to show beside the computed one."""
    return None if a.f10 is None else (a.f10.fields.get("qd28_final") or a.f10.fields.get("qd28_class"))


def read_communes(
    store: Store, year: int, communes: list[str], scope: list[str]
) -> dict[str, tuple[CommuneInputs, str | None]]:
    """Inputs and the F10 class for each commune, reading the registers once for the whole ``scope``."""
    acc = gather(store, Period.parse(f"{year}-QD28"), scope)
    facts = get_facts_many(store, year, communes)
    out = {}
    for code in communes:
        a = acc.get(code, _Acc())
        out[code] = (commune_inputs(a, facts[code]), f10_class(a))
    return out
