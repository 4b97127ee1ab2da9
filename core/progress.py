"""Completeness of a round: expected units against the submissions that count.

Expected: every hamlet in the round's scope, every school and enterprise on a commune's register (the
lists officers load, else the plugins': ``core.unit_lists``), and for a census every person on last year's
roster. Households pledged are compared with each hamlet's household count (``households`` in its list).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rasoat.core.models import Round
from rasoat.core.review import counted_query
from rasoat.core.rollforward import (
    PERSON_FORM,
    build_register,
    census_rounds,
    roster_by_commune,
    round_communes,
)
from rasoat.core.rounds import in_scope
from rasoat.core.storage.base import Store, SubmissionQuery
from rasoat.core.unit_lists import OTHER_SITE, sites, units_for

# Which form audits which kind of site: (kind, field holding the site's code, field with a typed name).
# The code is the ``name`` column of schools.csv / enterprises.csv; "other" is a site not on the list.
SITE_FORMS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "f3_school": ("schools", ("school",), ("school_name",)),
    "f4_enterprise": ("enterprises", ("enterprise",), ("ent_name",)),
}
SITE_KINDS = tuple(kind for kind, _, _ in SITE_FORMS.values())
PLEDGE_FORM = "f2_pledge"
# F2 (docs/forms.md): mode "aggregate" gives the hamlet's totals (the latest row wins, as a correction);
# mode "list" gives a repeat of households (households accumulate across rows, once per household).
PLEDGE_COUNT = ("households_pledged", "hh_pledged")
PLEDGE_TOTAL = ("households_total", "hh_total")
PLEDGE_REPEAT = "household"
PLEDGE_FLAG = ("pledged",)
PLEDGE_HOUSEHOLD = ("household_code", "head_name")

def pct(part: int | None, whole: int | None) -> float | None:
    """Percentage with one decimal; None when there is nothing to divide by."""
    if part is None or not whole:
        return None
    return round(100 * part / whole, 1)


def _get(fields: dict[str, Any], names: Iterable[str]) -> str:
    names = tuple(names)
    for name in names:
        value = fields.get(name)
        if isinstance(value, str) and value:
            return value.strip()
    for key, value in fields.items():
        if isinstance(value, str) and value and key.rsplit("/", 1)[-1] in names:
            return value.strip()
    return ""


def _int(value: str) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


# --- the report -------------------------------------------------------------------------------


class _Hamlet:
    __slots__ = ("by_form", "submissions", "agg_signed", "agg_total", "households_signed")

    def __init__(self) -> None:
        self.by_form: dict[str, int] = {}
        self.submissions = 0
        self.agg_signed: int | None = None  # aggregate mode: the latest row wins (a correction)
        self.agg_total: int | None = None
        self.households_signed: set[str] = set()  # household-list mode


def round_progress(store: Store, rnd: Round, records: bool = True) -> dict[str, Any]:
    """Coverage of a round per commune and hamlet; see the module docstring for what is expected. A record
    counts for the unit it is filed under. Coverage and counts come from the store's counts per unit and
    form (an index, no record read); the pledge and site figures read those forms' records, unless
    ``records`` is False (the web pages: their pledge figure is the indicator's, they list no sites)."""

    units = units_for(store)
    communes = sorted(round_communes(rnd))
    hamlet_stats: dict[str, _Hamlet] = {}
    commune_subs: dict[str, int] = dict.fromkeys(communes, 0)
    sites_seen: dict[str, dict[str, set[str]]] = {k: {} for k in SITE_KINDS}
    sites_meeting: dict[str, dict[str, dict[str, bool]]] = {k: {} for k in SITE_KINDS}
    pledge = records and PLEDGE_FORM in rnd.form_ids

    counted = 0
    for (filed, form_id), n in store.count_by_unit(counted_query(rnd)).items():
        counted += n
        commune = (filed or "").split("-", 1)[0]
        if commune in commune_subs:
            commune_subs[commune] += n
        if filed and "-" in filed:
            h = hamlet_stats.setdefault(filed, _Hamlet())
            h.submissions += n
            h.by_form[form_id] = h.by_form.get(form_id, 0) + n
    read = [f for f in rnd.form_ids if records and (f in SITE_FORMS or f == PLEDGE_FORM)]
    for sub in (s for f in read for s in store.iter_submissions(counted_query(rnd, form_id=f))):
        filed = sub.unit_code or ""
        commune = filed.split("-", 1)[0]
        if sub.form_id == PLEDGE_FORM and "-" in filed:
            _add_pledge(hamlet_stats.setdefault(filed, _Hamlet()), sub.fields, sub.instance_id)
        if sub.form_id in SITE_FORMS:
            kind, code_fields, name_fields = SITE_FORMS[sub.form_id]
            site_id = _get(sub.fields, code_fields)
            if site_id == OTHER_SITE:
                site_id = f"{OTHER_SITE}: {_get(sub.fields, name_fields)}".rstrip(": ")
            if site_id:
                sites_seen[kind].setdefault(commune, set()).add(site_id)
                meets = sites_meeting[kind].setdefault(commune, {})
                meets[site_id] = _get(sub.fields, ("meets_standard",)) == "yes"  # the latest audit wins
    received = store.count_submissions(SubmissionQuery(round_id=rnd.id))

    site_kinds = [SITE_FORMS[f][0] for f in read if f in SITE_FORMS]
    registers = {k: sites(store, k) for k in site_kinds}
    persons = _census_progress(store, rnd) if rnd.kind == "census" and PERSON_FORM in rnd.form_ids else None

    rows = []
    for code in communes:
        unit = units.get(code)
        hamlets = [h for h in units.hamlets(code) if in_scope(h.code, rnd.unit_codes)] if unit else []
        hamlet_rows = [_hamlet_row(h, hamlet_stats.get(h.code), pledge) for h in hamlets]
        row: dict[str, Any] = {
            "code": code,
            "name": unit.name if unit else code,
            "submissions": commune_subs.get(code, 0),
            "hamlets_expected": len(hamlet_rows),
            "hamlets_covered": sum(1 for h in hamlet_rows if h["covered"]),
        }
        row["hamlets_pct"] = pct(row["hamlets_covered"], row["hamlets_expected"])
        if pledge:
            row.update(_pledge_sums(hamlet_rows))
        for kind in site_kinds:
            expected = registers[kind].get(code, [])
            seen = sites_seen[kind].get(code, set())
            ids = {s["code"] for s in expected}
            meeting = sum(1 for i, ok in sites_meeting[kind].get(code, {}).items() if ok and i in ids)
            row[kind] = {
                "expected": len(expected),
                "covered": len(ids & seen),
                "pct": pct(len(ids & seen), len(expected)),
                "meeting_standard": meeting,
                "meeting_pct": pct(meeting, len(expected)),
                "missing": [s for s in expected if s["code"] not in seen],
                "not_on_list": sorted(seen - ids),
            }
        if persons is not None:
            row["persons"] = persons.get(code, {"roster": 0, "followed_up": 0, "new": 0, "pct": None})
        row["hamlets"] = hamlet_rows
        rows.append(row)

    return {
        "round_id": rnd.id,
        "name": rnd.name,
        "kind": rnd.kind,
        "period": rnd.period,
        "state": rnd.state.value,
        "forms": rnd.form_ids,
        "counted_states": [s.value for s in rnd.counted_states],
        "totals": _totals(rows, received, counted, pledge, site_kinds, persons is not None),
        "communes": rows,
    }


def _add_pledge(h: _Hamlet, fields: dict[str, Any], instance_id: str) -> None:
    rows = fields.get(PLEDGE_REPEAT)
    mode = _get(fields, ("mode",))
    if mode == "list" or (not mode and isinstance(rows, list)):
        for n, rec in enumerate(rows if isinstance(rows, list) else []):
            if isinstance(rec, dict) and _get(rec, PLEDGE_FLAG) == "yes":
                key = " ".join(_get(rec, PLEDGE_HOUSEHOLD).lower().split()) or f"{instance_id}#{n}"
                h.households_signed.add(key)
        return
    pledged = _int(_get(fields, PLEDGE_COUNT))
    if pledged is not None:
        h.agg_signed = pledged
        h.agg_total = _int(_get(fields, PLEDGE_TOTAL))


def _pledge_sums(hamlets: list[dict[str, Any]]) -> dict[str, Any]:
    """Households over hamlets. The percentage only uses hamlets whose household count is known
    (``households_pledged_counted`` over ``households``); ``households_pledged`` counts every pledge."""
    known = [h for h in hamlets if h["households"] is not None]
    households = sum(h["households"] for h in known) if known else None
    counted = sum(h["households_pledged"] or 0 for h in known)
    return {
        "households": households,
        "households_pledged": sum(h["households_pledged"] or 0 for h in hamlets),
        "households_pledged_counted": counted,
        "hamlets_without_households": len(hamlets) - len(known),
        "pledged_pct": pct(counted, households),
    }


def _hamlet_row(unit: Any, stats: _Hamlet | None, pledge: bool) -> dict[str, Any]:
    row: dict[str, Any] = {
        "code": unit.code,
        "name": unit.name,
        "submissions": stats.submissions if stats else 0,
        "by_form": dict(stats.by_form) if stats else {},
        "covered": bool(stats and stats.submissions),
    }
    if pledge:
        households = unit.households
        if households is None and stats is not None:
            households = stats.agg_total
        pledged = 0
        if stats is not None:
            pledged = stats.agg_signed if stats.agg_signed is not None else len(stats.households_signed)
        row["households"] = households
        row["households_pledged"] = pledged
        row["pledged_pct"] = pct(pledged or 0, households)
    return row


def _census_progress(store: Store, rnd: Round) -> dict[str, dict[str, Any]]:
    """Per commune: persons on last year's roster, how many were followed up now, and new ones."""

    communes = round_communes(rnd)
    roster = roster_by_commune(store, rnd, communes, PERSON_FORM)
    now = build_register(store, census_rounds(store, upto=rnd, include=rnd), PERSON_FORM)
    out: dict[str, dict[str, Any]] = {}
    for commune in communes:
        keys = {r["name"] for r in roster.get(commune, [])}
        followed = 0
        for p in now.values():
            if p.seen_in(rnd.id) and (p.person_key in keys or keys & set(p.aliases)):
                followed += 1
        new = sum(1 for p in now.values() if p.first_round == rnd.id and p.commune == commune)
        out[commune] = {
            "roster": len(keys),
            "followed_up": followed,
            "new": new,
            "pct": pct(followed, len(keys)),
        }
    return out


def _totals(
    rows: list[dict[str, Any]], received: int, counted: int, pledge: bool, site_kinds: list[str], census: bool
) -> dict[str, Any]:
    t: dict[str, Any] = {
        "communes": len(rows),
        "received": received,
        "counted": counted,
        "hamlets_expected": sum(r["hamlets_expected"] for r in rows),
        "hamlets_covered": sum(r["hamlets_covered"] for r in rows),
    }
    t["hamlets_pct"] = pct(t["hamlets_covered"], t["hamlets_expected"])
    if pledge:
        t.update(_pledge_sums([h for r in rows for h in r["hamlets"]]))
    for kind in site_kinds:
        expected = sum(r[kind]["expected"] for r in rows)
        covered = sum(r[kind]["covered"] for r in rows)
        meeting = sum(r[kind]["meeting_standard"] for r in rows)
        t[kind] = {
            "expected": expected,
            "covered": covered,
            "pct": pct(covered, expected),
            "meeting_standard": meeting,
            "meeting_pct": pct(meeting, expected),
        }
    if census:
        roster = sum(r["persons"]["roster"] for r in rows)
        followed = sum(r["persons"]["followed_up"] for r in rows)
        t["persons"] = {
            "roster": roster,
            "followed_up": followed,
            "new": sum(r["persons"]["new"] for r in rows),
            "pct": pct(followed, roster),
        }
    return t
