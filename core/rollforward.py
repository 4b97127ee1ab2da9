"""The person register across census years, and last year's roster as F1 form media.

A person keeps one ``person_key`` for life: F1 computes a fresh key for a new person and copies the
key from ``persons.csv`` when the collector follows up a known one, so follow-ups link by key, never
by instanceID. Records that share a national ID (or its pseudonym) are the same person even under two
keys (the first key seen wins; the others become aliases).

What the server calls: ``roster_media(store, form_id, unit_codes)`` when it serves the media file
``persons.csv`` of a form to a collector (None: the form has no roster in any open census round), and
``record_roster_download`` for each download. The roster is last year's register cut to the
collector's communes. Its statistical part (keys, hamlet, category, status, birth year, pseudonym) is
cached per (round, commune) in the store's kv and rebuilt whenever a source round's history changes
(e.g. reopened and closed again); the names are read from the records at download time
(``core.identities.full_fields``), so no name is ever kept in clear beside them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from rasoat.core.identities import full_fields, record_read
from rasoat.core.models import Round, RoundState, Submission
from rasoat.core.protection import keyring, seal_entity_values
from rasoat.core.review import counted_query
from rasoat.core.rounds import in_scope, open_rounds, parse_period, previous_round
from rasoat.core.storage.base import Store
from rasoat.core.units import fold, get_units

PERSON_FORM = "f1_person"
ROSTER_MEDIA = "persons.csv"
ROSTER_COLUMNS = [
    "name",  # the person_key: the value F1's follow-up select stores
    "label",  # full name (birth year) – hamlet
    "display",  # the same: what the forms' person pickers show (label=display, as on the persons entity list)
    "commune",
    "hamlet",
    "category",  # last category and follow-up status
    "status",
    "full_name",
    "other_name",
    "birth_year",
    "pseudonym",  # keyed hash of the ID number: the same person across years without the number
]
ROSTER_FORMAT = "2"  # part of the cache fingerprint: a cache written by an older rasoat is rebuilt
KV_NAMESPACE = "rollforward"

# F1 field names (docs/forms.md), by meaning. A name matches a key exactly, or a key's last path
# segment, so a province's F1 that nests these in groups still works.
PERSON_FIELDS: dict[str, tuple[str, ...]] = {
    "person_key": ("person_key",),
    "national_id": ("id_number", "national_id"),
    "pseudonym": ("person_pseudonym",),  # core.protection.PSEUDONYM_FIELD: the keyed hash of the ID number
    "full_name": ("person_name", "full_name"),  # person_name = typed name, or the roster's on a follow-up
    "other_name": ("other_name",),
    "birth": ("birth_date", "birth_year"),
    "sex": ("sex",),
    "category": ("category",),
    "status": ("followup_status",),
    "present": ("present",),
    "entry_type": ("entry_type",),
    "commune": ("commune",),
    "hamlet": ("hamlet",),
}
# Follow-up statuses that take a person off the next roster (detained or missing persons stay on it).
LEAVING_STATUSES: frozenset[str] = frozenset({"moved", "deceased"})
# Statuses under which the person was there to be counted this round (F1's ``present``).
PRESENT_STATUSES: frozenset[str] = frozenset({"", "found"})


def pick(fields: dict[str, Any], meaning: str) -> str:
    """The first non-empty value for a meaning in PERSON_FIELDS, looked up by exact key or last segment."""
    names = PERSON_FIELDS[meaning]
    for name in names:
        value = fields.get(name)
        if value not in (None, ""):
            return str(value).strip()
    for key, value in fields.items():
        if isinstance(value, str) and value and key.rsplit("/", 1)[-1] in names:
            return value.strip()
    return ""


def normalise_national_id(value: str) -> str:
    return "".join(c for c in value if c.isdigit())


def commune_of(sub: Submission) -> str:
    commune = pick(sub.fields, "commune")
    if commune:
        return commune
    return (sub.unit_code or "").split("-", 1)[0]


@dataclass
class Person:
    """One person in the register: the latest known state, and every census that saw them."""

    person_key: str
    full_name: str = ""  # empty where the records keep names protected (core.identities reads them)
    birth_year: str = ""
    sex: str = ""
    national_id: str = ""
    pseudonym: str = ""
    commune: str = ""
    hamlet: str = ""
    category: str = ""
    status: str = ""
    first_round: str = ""
    last_round: str = ""
    last_period: str = ""
    instance_id: str = ""
    present: bool = True  # counted on the register in the latest round that saw the person
    aliases: list[str] = field(default_factory=list)
    seen: list[dict[str, str]] = field(default_factory=list)  # one entry per submission, in order

    @property
    def on_roster(self) -> bool:
        """Still followed up next year (not moved away or deceased)."""
        return self.status not in LEAVING_STATUSES

    def seen_in(self, round_id: str) -> bool:
        return any(s["round_id"] == round_id for s in self.seen)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def census_rounds(store: Store, upto: Round | None = None, include: Round | None = None) -> list[Round]:
    """Closed or archived census rounds before ``upto``'s period (plus ``include``), oldest first."""
    limit = parse_period(upto.period)[0] if upto is not None else None
    rounds = [
        r
        for r in store.list_rounds()
        if r.kind == "census"
        and r.state in (RoundState.closed, RoundState.archived)
        and (limit is None or parse_period(r.period)[0] < limit)
        and (include is None or r.id != include.id)
    ]
    if include is not None:
        rounds.append(include)
    return sorted(rounds, key=lambda r: (parse_period(r.period)[0], r.created_at))


def _person_submissions(
    store: Store, rounds: Iterable[Round], form_id: str
) -> Iterator[tuple[Round, Submission]]:
    for rnd in rounds:
        if form_id not in rnd.form_ids:
            continue
        for sub in store.iter_submissions(counted_query(rnd, form_id=form_id)):
            yield rnd, sub


def build_register(
    store: Store, rounds: Iterable[Round], form_id: str = PERSON_FORM, communes: set[str] | None = None
) -> dict[str, Person]:
    """person_key → latest state over the given census rounds (oldest first), merged by national ID.

    ``communes`` keeps only persons whose latest commune is one of them (filtering after merging, so a
    person who moved between communes is judged by where they were last seen).
    """
    people: dict[str, Person] = {}
    alias: dict[str, str] = {}  # any key → canonical key
    by_nid: dict[str, str] = {}  # pseudonym (or national ID) → canonical key
    for rnd, sub in _person_submissions(store, rounds, form_id):
        f = sub.fields
        key = pick(f, "person_key") or sub.instance_id
        key = alias.get(key, key)
        nid = pick(f, "pseudonym") or normalise_national_id(pick(f, "national_id"))
        if nid and nid in by_nid and by_nid[nid] != key:
            canonical = by_nid[nid]
            if key in people:  # two known keys turn out to be one person: fold the later into the first
                _fold(people, alias, people.pop(key), canonical)
            alias[key] = canonical
            if key not in people[canonical].aliases:
                people[canonical].aliases.append(key)
            key = canonical
        person = people.get(key)
        if person is None:
            person = people[key] = Person(person_key=key, first_round=rnd.id)
        if nid:
            by_nid.setdefault(nid, key)
        _update(person, rnd, sub)
    if communes is not None:
        people = {k: p for k, p in people.items() if p.commune in communes}
    return people


def _fold(people: dict[str, Person], alias: dict[str, str], other: Person, canonical: str) -> None:
    target = people[canonical]
    target.seen = sorted(target.seen + other.seen, key=lambda s: s["order"])
    target.aliases.extend(a for a in [*other.aliases] if a not in target.aliases)
    for a in other.aliases:
        alias[a] = canonical


def _update(person: Person, rnd: Round, sub: Submission) -> None:
    f = sub.fields
    for attr, meaning in (
        ("full_name", "full_name"),
        ("sex", "sex"),
        ("category", "category"),
        ("hamlet", "hamlet"),
    ):
        value = pick(f, meaning)
        if value:
            setattr(person, attr, value)
    person.status = pick(f, "status")  # a new registration or a found person has no leaving status
    birth = pick(f, "birth")
    if birth:
        person.birth_year = birth[:4]
    national_id = normalise_national_id(pick(f, "national_id"))
    if national_id:
        person.national_id = national_id
    pseudonym = pick(f, "pseudonym")
    if pseudonym:
        person.pseudonym = pseudonym
    present = pick(f, "present")
    person.present = present == "yes" if present else pick(f, "status") in PRESENT_STATUSES
    person.commune = commune_of(sub) or person.commune
    if not person.hamlet and sub.unit_code and "-" in sub.unit_code:
        person.hamlet = sub.unit_code
    person.last_round, person.last_period, person.instance_id = rnd.id, rnd.period, sub.instance_id
    person.seen.append(
        {
            "round_id": rnd.id,
            "period": rnd.period,
            "instance_id": sub.instance_id,
            "category": pick(f, "category"),
            "status": pick(f, "status"),
            "order": f"{parse_period(rnd.period)[0].isoformat()}|{sub.received_at.isoformat()}",
        }
    )


def person_register(
    store: Store, upto: Round | None = None, communes: Iterable[str] | None = None, form_id: str = PERSON_FORM
) -> dict[str, Person]:
    """The register across years: every closed census before ``upto`` (and ``upto`` itself if given)."""
    rounds = census_rounds(store, upto=upto, include=upto)
    return build_register(store, rounds, form_id, set(communes) if communes is not None else None)


# --- roster media ----------------------------------------------------------------------------


def _hamlet_name(code: str) -> str:
    if not code:
        return ""

    unit = get_units().get(code)  # None for a code the registry does not know
    return unit.name if unit is not None else code


def roster_rows(people: Iterable[Person]) -> list[dict[str, Any]]:
    """The statistical part of the roster (what the cache keeps): one row per person still followed up,
    with ``sources``, the person's records newest first, to read the names from at download time."""
    return [
        {
            "name": p.person_key,
            "commune": p.commune,
            "hamlet": p.hamlet,
            "category": p.category,
            "status": p.status,
            "birth_year": p.birth_year,
            "pseudonym": p.pseudonym,
            "sources": [s["instance_id"] for s in reversed(p.seen)],
        }
        for p in people
        if p.on_roster
    ]


def named_rows(store: Store, rows: Iterable[dict[str, Any]]) -> list[dict[str, str]]:
    """Roster rows with each person's names read from their records (newest first), labelled and sorted
    by commune, hamlet and name: what a collector's phone gets. Only for a download the caller audits."""

    out = []
    for row in rows:
        # the birth date is identifying too (protected at rest): its year is read with the names
        found = {"full_name": "", "other_name": "", "birth": row.get("birth_year") or ""}
        for iid in row.get("sources", []):
            sub = store.get_submission(iid)
            if sub is None:
                continue
            fields = full_fields(store, sub)
            for meaning in found:
                found[meaning] = found[meaning] or pick(fields, meaning)
            if all(found.values()):
                break
        named = {
            "full_name": found["full_name"],
            "other_name": found["other_name"],
            "birth_year": found["birth"][:4],
        }
        label = named["full_name"] or row["name"]
        if named["birth_year"]:
            label += f" ({named['birth_year']})"
        if row.get("hamlet"):
            label += f" – {_hamlet_name(row['hamlet'])}"
        out.append({**{k: str(row.get(k) or "") for k in ROSTER_COLUMNS}, **named, "label": label,
                    "display": label})
    return sorted(out, key=lambda r: (r["commune"], r["hamlet"], fold(r["full_name"]), r["name"]))


def rows_to_csv(rows: Iterable[dict[str, str]]) -> bytes:
    """UTF-8 without BOM (Collect reads the first header as-is), LF line ends."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=ROSTER_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def _fingerprint(rounds: list[Round]) -> str:
    """Changes whenever a source round is reopened, closed again or archived."""
    text = ROSTER_FORMAT + "|" + "|".join(f"{r.id}:{r.state.value}:{len(r.history)}" for r in rounds)
    return hashlib.sha1(text.encode()).hexdigest()


def roster_by_commune(
    store: Store, rnd: Round, communes: set[str], form_id: str
) -> dict[str, list[dict[str, Any]]]:
    """Statistical roster rows (``roster_rows``) per commune for ``rnd``, from the kv cache where it is
    still valid."""
    sources = census_rounds(store, upto=rnd)
    fp = _fingerprint(sources)
    out: dict[str, list[dict[str, Any]]] = {}
    missing: set[str] = set()
    for commune in communes:
        cached = store.kv_get(KV_NAMESPACE, f"{rnd.id}:{commune}")
        if cached and cached.get("fingerprint") == fp:
            out[commune] = cached["rows"]
        else:
            missing.add(commune)
    if missing:
        people = build_register(store, sources, form_id, missing)
        by_commune: dict[str, list[Person]] = {c: [] for c in missing}
        for p in people.values():
            by_commune[p.commune].append(p)
        for commune, plist in by_commune.items():
            rows = roster_rows(plist)
            store.kv_put(
                KV_NAMESPACE,
                f"{rnd.id}:{commune}",
                {"fingerprint": fp, "rows": rows, "sources": [r.id for r in sources]},
            )
            out[commune] = rows
    return out


def persons_media(store: Store, rnd: Round, commune_code: str, form_id: str = PERSON_FORM) -> bytes:
    """``persons.csv`` for one commune: the register of earlier closed census rounds, that commune only."""
    rows = roster_by_commune(store, rnd, {commune_code}, form_id)[commune_code]
    return rows_to_csv(named_rows(store, rows))


def round_communes(rnd: Round) -> set[str]:
    """Every commune in a round's scope (a province expands to its communes; a hamlet names its commune)."""

    units = get_units()
    out: set[str] = set()
    for code in rnd.unit_codes:
        unit = units.get(code)
        level = getattr(unit, "level", None)
        if "-" in code or level == "hamlet":
            out.add(code.split("-", 1)[0])
        elif level == "commune" or (level is None and len(code) == 5):
            out.add(code)
        else:
            out |= {_c(u) for u in units.descendants(code) if _level(u) == "commune"}
    return out


def _c(u: Any) -> str:
    return u if isinstance(u, str) else u.code


def _level(u: Any) -> str:
    if isinstance(u, str):
        return "hamlet" if "-" in u else ("commune" if len(u) == 5 else "province")
    return getattr(u, "level", "")


def prepare_rollforward(store: Store, rnd: Round, form_id: str = PERSON_FORM) -> int:
    """Build and cache the rosters for every commune of a census round (called when it opens).

    Returns how many persons rolled forward; the count goes into the round's history via the caller.
    """
    if form_id not in rnd.form_ids:
        return 0
    rows = roster_by_commune(store, rnd, round_communes(rnd), form_id)
    return sum(len(r) for r in rows.values())


ENTITY_LIST = "persons"  # the entity list F1 creates (docs/forms.md); next year's F1 reads it
_UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def roster_to_entities(
    store: Store, rnd: Round, form_id: str = PERSON_FORM, actor: str = "rollforward"
) -> int:
    """Put the persons of the round's roster who are not yet on the ``persons`` entity list onto it
    (called when a census round opens), so the round's F1 follows them up from the list phones receive
    as ``persons.csv`` (the list is what Collect gets once F1 declares it; core.entity_media) and updates
    them there. Each becomes an entity whose id is its ``person_key`` (F1 made it with ``uuid()``), filed
    under its hamlet or commune, with the properties F1 writes (names sealed, core.protection) and F1's
    names-free label. Returns how many were added; audited with the count, never a name. Nothing happens
    without the list (F1 of an older version) or when every person is on it already."""
    lst = store.get_entity_list(ENTITY_LIST)
    if lst is None or form_id not in rnd.form_ids:
        return 0
    rows = [r for rows in roster_by_commune(store, rnd, round_communes(rnd), form_id).values() for r in rows]
    missing = [r for r in rows if _UUID4.match(str(r["name"])) and store.get_entity(str(r["name"])) is None]
    if not missing:
        return 0

    ring = keyring(store, current=True) if lst.identifying else None
    added = 0
    for row in named_rows(store, missing):
        uuid = row["name"]
        values = {"display": row["label"], "full_name": row["full_name"], "other_name": row["other_name"],
                  "birth_year": row["birth_year"], "commune": row["commune"], "hamlet": row["hamlet"],
                  "category": row["category"], "status": row["status"]}
        data: dict[str, Any] = {k: v for k, v in values.items() if k in lst.properties}
        if ring is not None:
            data = seal_entity_values(ring, uuid, data, lst.identifying)
        label = f"Người {uuid[:8]}" + (f" ({row['birth_year']})" if row["birth_year"] else "")
        try:
            store.write_entity(ENTITY_LIST, uuid, label=label, data=data, actor=actor,
                               unit_code=row["hamlet"] or row["commune"] or None)
        except ValueError:  # created meanwhile (an F1 of this round), or the id was deleted: leave it
            continue
        added += 1
    record_read(store, actor, "roster.to_entities", count=added, target=ENTITY_LIST, round_id=rnd.id)
    return added


def roster_media(store: Store, form_id: str, unit_codes: Iterable[str]) -> bytes | None:
    """What the server serves as ``persons.csv`` for ``form_id`` to a collector with ``unit_codes``.

    The roster of the open census round holding the form, cut to the collector's communes within the
    round's scope; None when no open census round holds the form for those units.
    """
    units = list(unit_codes)
    for rnd in open_rounds(store, units):
        if rnd.kind != "census" or form_id not in rnd.form_ids:
            continue
        in_round = round_communes(rnd)
        wanted = {c for c in in_round if any(in_scope(c, [u]) or in_scope(u, [c]) for u in units)}
        rows_by_commune = roster_by_commune(store, rnd, wanted, form_id)
        return rows_to_csv(named_rows(store, [row for c in sorted(wanted) for row in rows_by_commune[c]]))
    return None


def record_roster_download(store: Store, actor: str, data: bytes, via: str, **details: Any) -> None:
    """Audit one download of a roster: who, the communes it held and how many persons of each (from the
    bytes sent), never a name."""

    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    per_commune: dict[str, int] = {}
    for row in rows:
        commune = row.get("commune") or ""
        per_commune[commune] = per_commune.get(commune, 0) + 1
    record_read(store, actor, "roster.download", count=len(rows), target=ROSTER_MEDIA,
                communes=per_commune, via=via, **details)


# --- counts for the snapshot ------------------------------------------------------------------


def _tally(people: Iterable[Person]) -> dict[str, Any]:
    by_category: dict[str, int] = {}
    by_commune: dict[str, int] = {}
    cross: dict[str, dict[str, int]] = {}
    total = 0
    for p in people:
        total += 1
        category = p.category or ""
        by_category[category] = by_category.get(category, 0) + 1
        by_commune[p.commune] = by_commune.get(p.commune, 0) + 1
        cell = cross.setdefault(p.commune, {})
        cell[category] = cell.get(category, 0) + 1
    return {
        "total": total,
        "by_category": by_category,
        "by_commune": by_commune,
        "by_commune_category": cross,
    }


def _restrict(tally: dict[str, Any], communes: set[str]) -> dict[str, Any]:
    """A frozen tally cut to some communes, so a smaller round compares with the same units last year."""
    cross = {c: dict(v) for c, v in tally.get("by_commune_category", {}).items() if c in communes}
    by_category: dict[str, int] = {}
    for cell in cross.values():
        for category, n in cell.items():
            by_category[category] = by_category.get(category, 0) + n
    by_commune = {c: n for c, n in tally.get("by_commune", {}).items() if c in communes}
    return {
        "total": sum(by_commune.values()),
        "by_category": by_category,
        "by_commune": by_commune,
        "by_commune_category": cross,
    }


def census_counts(store: Store, rnd: Round, form_id: str = PERSON_FORM) -> dict[str, Any]:
    """Person counts for a census round's snapshot, with the previous census's frozen counts beside.

    ``present``: persons seen in this round and there to be counted (F1 ``present = yes``: new, or
    found at follow-up), by category and commune: the register's count at the reference date.
    ``new``: first seen in this round; ``followed_up``: seen before and again now; ``left``: seen now
    as moved or deceased; ``not_followed_up``: on the previous roster of this round's communes but not
    seen now; ``by_status``: follow-up statuses of everyone seen ("" for new registrations).
    ``previous`` and ``change`` compare with the last closed census round's snapshot (the frozen
    counts, not a recomputation), cut to this round's communes so that a round over fewer communes
    compares like with like.
    """
    register = person_register(store, upto=rnd, form_id=form_id)
    communes = round_communes(rnd)
    seen = [p for p in register.values() if p.seen_in(rnd.id)]
    before = build_register(store, census_rounds(store, upto=rnd), form_id, communes)
    counts: dict[str, Any] = {
        "present": _tally(p for p in seen if p.present),
        "seen": len(seen),
        "new": sum(1 for p in seen if p.first_round == rnd.id),
        "followed_up": sum(1 for p in seen if p.first_round != rnd.id),
        "left": sum(1 for p in seen if not p.on_roster),
        "not_followed_up": sum(
            1 for k, p in before.items() if p.on_roster and not _seen_now(register, k, rnd)
        ),
        "by_status": _count_by(seen, "status"),
    }
    prev = previous_round(store, rnd)
    if prev is not None:
        snap = store.get_snapshot(prev.id) or {}
        prev_counts = (snap.get("lifecycle") or {}).get("persons", {}).get("present")
        if prev_counts is not None:
            prev_counts = _restrict(prev_counts, communes)
            counts["previous"] = {"round_id": prev.id, "period": prev.period, **prev_counts}
            counts["change"] = _change(counts["present"], prev_counts)
    return counts


def _seen_now(register: dict[str, Person], key: str, rnd: Round) -> bool:
    person = register.get(key) or next((p for p in register.values() if key in p.aliases), None)
    return person is not None and person.seen_in(rnd.id)


def _count_by(people: Iterable[Person], attr: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in people:
        value = getattr(p, attr) or ""
        out[value] = out.get(value, 0) + 1
    return out


def _change(now: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    def diff(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
        return {k: a.get(k, 0) - b.get(k, 0) for k in sorted(set(a) | set(b))}

    total_before = before.get("total", 0)
    return {
        "total": now["total"] - total_before,
        "total_pct": round(100 * (now["total"] - total_before) / total_before, 1) if total_before else None,
        "by_category": diff(now["by_category"], before.get("by_category", {})),
        "by_commune": diff(now["by_commune"], before.get("by_commune", {})),
    }
