"""Form media cut to one collector's units: what a phone receives, over the air or in an offline bundle.

Pure functions over the store and the unit registry, shared by the server (manifest and attachment
downloads) and ``mobile_export`` (offline bundles), so both hand a phone the same bytes and Collect
sees the same MD5 either way.

- ``provinces.csv`` / ``communes.csv`` / ``hamlets.csv`` are generated from the unit registry (with the
  hamlet lists officers loaded, ``core.unit_lists``) for the collector's units and the units above them (a
  commune collector sees their province, their commune and its hamlets, nothing else); a commune without
  a hamlet list gets one choice "whole commune" (``<commune>-00``), so a required hamlet question is never
  an empty list;
- ``all_provinces.csv`` / ``all_communes.csv`` are every province and commune of the country, uncut: the
  choice of a commune outside one's own units (F11's receiving commune when a person's file is transferred);
- ``schools.csv`` / ``enterprises.csv`` / ``zones.csv`` are the registers of the collector's communes
  (loaded by officers, else a plugin's), after a row ``other`` for a site not on the list; the form's own
  file (a sample) only when none of those communes has one;
- a CSV named like an entity list (``persons.csv`` once F1 declares the ``persons`` list, issue 23) is that
  list as Collect receives it over the air (``core.entity_media``: the entities of the collector's units,
  names opened for them), so an offline bundle carries the same persons;
- otherwise ``persons.csv`` is last year's roster from the roll-forward, cut to the collector's communes,
  when an open census round carries the form and the roster has anyone on it; otherwise (the first year,
  before any census closed) the form's own ``persons.csv`` (e.g. a list the province uploaded), cut like
  any other CSV;
- any other CSV with a ``hamlet``, ``commune`` or ``province`` column keeps a row when the most precise
  unit it names lies inside the collector's units or above one of them (a commune's schools reach the
  hamlet collectors of that commune; another hamlet's persons do not); a CSV without such a column and
  non-CSV media (images, audio) are passed through unchanged.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

from rasoat.core.entity_media import iter_list_csv, linked_list
from rasoat.core.models import FormVersion
from rasoat.core.rollforward import roster_media
from rasoat.core.rounds import scopes_overlap
from rasoat.core.storage.base import EntityQuery, Store
from rasoat.core.unit_lists import KINDS, OTHER_SITE, sites, units_for
from rasoat.core.units import UnitRegistry, get_units

LOCATION_MEDIA: dict[str, str] = {
    "provinces.csv": "province",
    "communes.csv": "commune",
    "hamlets.csv": "hamlet",
}
LOCATION_HEADERS: dict[str, list[str]] = {
    "province": ["name", "label"],
    "commune": ["name", "label", "province"],
    "hamlet": ["name", "label", "commune"],
}
COUNTRY_MEDIA: dict[str, str] = {  # the whole country's list, whoever asks (no person data in it)
    "all_provinces.csv": "province",
    "all_communes.csv": "commune",
}
ROSTER_MEDIA = "persons.csv"
SITE_MEDIA: dict[str, str] = {k.media: k.key for k in KINDS.values() if k.key != "hamlets"}
SCOPE_COLUMNS = ("hamlet", "commune", "province")  # the columns a CSV is cut by, most precise first


def csv_bytes(header: list[str], rows: Iterable[dict[str, str]]) -> bytes:
    """UTF-8 without BOM (Collect reads the first header as written), LF line ends."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def location_csv(level: str, scope: Iterable[str] | None, units: UnitRegistry | None = None) -> bytes:
    """provinces.csv / communes.csv / hamlets.csv for the units of ``scope`` and those above them, or of
    the whole country when ``scope`` is None (``units``: the store's registry, ``unit_lists.units_for``;
    default the plugins' alone)."""

    units = units or get_units()
    if scope is None:
        return csv_bytes(LOCATION_HEADERS[level], units.choice_rows(level))  # type: ignore[arg-type]
    scope = sorted(scope)
    rows = units.choice_rows(level, scope) if scope else []  # type: ignore[arg-type]
    if level == "hamlet" and scope:
        rows += whole_commune_rows(units, scope, {r["commune"] for r in rows})
    return csv_bytes(LOCATION_HEADERS[level], rows)


NO_HAMLET_LIST = "Toàn xã (chưa có danh sách thôn, xóm) / Whole commune (no hamlet list yet)"


def whole_commune_rows(units: Any, scope: list[str], listed: set[str]) -> list[dict[str, str]]:
    """One choice "<commune>-00" for each commune of the scope without a hamlet list: a required hamlet
    question must never reach a phone with nothing to choose (F1, F2, F5, F6, F7 could not be finished).
    Such a record is filed under its commune (an unlisted hamlet code of the commune, core.ingest)."""
    communes = [r["name"] for r in units.choice_rows("commune", scope)]
    return [{"name": f"{c}-00", "label": NO_HAMLET_LIST, "commune": c} for c in communes if c not in listed]


def sites_media(store: Store, kind: str, scope: Iterable[str], units: UnitRegistry) -> bytes | None:
    """``schools.csv`` / ``enterprises.csv`` / ``zones.csv`` (``name,label,commune``) for a collector of
    ``scope``: the row ``other``, then the sites of the communes in or above the scope. None when none of
    them has a list (loaded or a plugin's): the form's own file is served instead."""
    communes = {r["name"] for r in units.choice_rows("commune", scope)} if scope else set()
    by_commune = sites(store, kind)
    chosen = sorted(c for c in communes if by_commune.get(c))
    if not chosen:
        return None
    rows = [{"name": OTHER_SITE, "label": f"{KINDS[kind].vi} khác, không có trong danh sách / "
             f"{KINDS[kind].en}: another one, not on the list", "commune": ""}]
    for commune in chosen:
        rows += [{"name": s["code"], "label": s["name"], "commune": commune} for s in by_commune[commune]]
    return csv_bytes(["name", "label", "commune"], rows)


def cut_csv(data: bytes, scope: Iterable[str]) -> bytes:
    """Rows whose most precise unit (``hamlet``, else ``commune``, else ``province``) is inside ``scope``
    or above a unit of it; files without those columns unchanged.

    An empty scope keeps no rows: a collector with no units must not receive anyone's list.
    """

    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data
    reader = csv.DictReader(io.StringIO(text))
    header = list(reader.fieldnames or [])
    columns = [c for c in SCOPE_COLUMNS if c in header]
    if not columns:
        return data
    scope = list(scope)
    keep = []
    for row in reader:
        unit = next((row[c].strip() for c in columns if (row.get(c) or "").strip()), "")
        if unit and scope and scopes_overlap([unit], scope):
            keep.append(row)
    return csv_bytes(header, keep)


def collector_media(store: Store, form: FormVersion, name: str, unit_codes: Iterable[str]) -> bytes | None:
    """The bytes of medium ``name`` of ``form`` as a collector with ``unit_codes`` gets them.

    None when the form has no such medium (or the store lost it).
    """
    if name not in form.media:
        return None
    scope = sorted(set(unit_codes))
    if name in LOCATION_MEDIA:
        return location_csv(LOCATION_MEDIA[name], scope, units_for(store))
    if name in COUNTRY_MEDIA:
        return location_csv(COUNTRY_MEDIA[name], None, units_for(store))
    if name in SITE_MEDIA:
        listed = sites_media(store, SITE_MEDIA[name], scope, units_for(store))
        if listed is not None:
            return listed
    if name.lower().endswith(".csv"):
        lst = linked_list(store, form, name)
        if lst is not None:
            units = units_for(store)  # the collector's units and all below them, as OTA (core.scope)
            codes = sorted({c for code in scope
                            for c in (code, *(units.expand([code]) if units.get(code) else ()))})
            return b"".join(iter_list_csv(store, lst, EntityQuery(list_name=lst.name, unit_codes=codes)))
    if name == ROSTER_MEDIA:
        roster = roster_media(store, form.form_id, scope) if scope else None
        if roster is not None and roster.count(b"\n") > 1:  # a header line and at least one person
            return roster
    data = store.form_media(form.form_id, form.version, name)
    if data is None or not name.lower().endswith(".csv"):
        return data
    return cut_csv(data, scope)
