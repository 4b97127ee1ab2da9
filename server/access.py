"""What a collector may see and send: forms of the open rounds they are assigned to, units in their scope,
and the form media cut to those units.

Rules: a form is listed when an **open** round names it in ``form_ids`` and names the collector in
``collector_ids``. A submission's unit (its ``hamlet``, else ``commune``, else ``province`` field) must lie
inside the collector's units and the round's units. The location CSVs (``provinces.csv``,
``communes.csv``, ``hamlets.csv``) are generated from the unit registry for the collector's units; any
other CSV medium with a ``commune`` (or ``province``) column is cut to the collector's units the same way.
"""

from __future__ import annotations

import csv
import io
from collections import OrderedDict
from collections.abc import Iterable
from threading import Lock

from core.models import FormVersion, Round, RoundState, User
from core.storage.base import Store

LOCATION_MEDIA = {"provinces.csv": "province", "communes.csv": "commune", "hamlets.csv": "hamlet"}
LOCATION_FIELDS = ("hamlet", "commune", "province")  # most precise first


def _units():
    from core.units import get_units

    return get_units()


def in_scope(code: str, scope: Iterable[str]) -> bool:
    """``code`` is one of ``scope`` or lies below one of them."""
    scope = set(scope)
    if code in scope:
        return True
    units = _units()
    if units.get(code) is None:
        return "-" in code and code.split("-", 1)[0] in scope  # a hamlet no plugin listed yet
    return any(u.code in scope for u in units.ancestors(code))


def scopes_overlap(a: Iterable[str], b: Iterable[str]) -> bool:
    a, b = list(a), list(b)
    return any(in_scope(x, b) for x in a) or any(in_scope(y, a) for y in b)


def assigned_open_rounds(store: Store, user: User) -> list[Round]:
    """Open rounds that name this collector and overlap their units."""
    out = []
    for rnd in store.list_rounds():
        if rnd.state is not RoundState.open or user.id not in rnd.collector_ids:
            continue
        if rnd.unit_codes and user.unit_codes and not scopes_overlap(user.unit_codes, rnd.unit_codes):
            continue
        out.append(rnd)
    return out


def visible_forms(store: Store, user: User) -> list[FormVersion]:
    """The latest version of each form the collector's phone should hold, in round order."""
    seen: dict[str, FormVersion] = {}
    for rnd in assigned_open_rounds(store, user):
        for form_id in rnd.form_ids:
            if form_id in seen:
                continue
            form = store.get_form(form_id)
            if form is not None:  # a round naming a form not yet published simply lists nothing for it
                seen[form_id] = form
    return list(seen.values())


def submission_unit(fields: dict, user: User) -> str | None:
    """The most precise unit a submission names; for a form without a location block, the collector's unit."""
    for name in LOCATION_FIELDS:
        value = fields.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return user.unit_codes[0] if len(user.unit_codes) == 1 else None


# --- media ----------------------------------------------------------------------------------


class MediaCache:
    """Generated media by (form, version, name, scope): all inputs are immutable, so this is only a cache."""

    def __init__(self, size: int = 512) -> None:
        self._items: OrderedDict[tuple, bytes | None] = OrderedDict()
        self._size = size
        self._lock = Lock()

    def get_or_make(self, key: tuple, make) -> bytes | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = make()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value


def _csv_bytes(header: list[str], rows: Iterable[dict[str, str]]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def location_csv(level: str, scope: list[str]) -> bytes:
    """provinces.csv / communes.csv / hamlets.csv for the units of ``scope`` (and those above them)."""
    header = {"province": ["name", "label"], "commune": ["name", "label", "province"],
              "hamlet": ["name", "label", "commune"]}[level]
    rows = _units().choice_rows(level, scope) if scope else []
    return _csv_bytes(header, rows)


def cut_csv(data: bytes, scope: list[str]) -> bytes:
    """Keep the rows whose ``commune`` (else ``province``) column lies in ``scope``; other CSVs unchanged."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    column = next((c for c in ("commune", "province") if c in header), None)
    if column is None or not scope:
        return data
    keep = [row for row in reader if row.get(column) and in_scope(row[column], scope)]
    return _csv_bytes(list(header), keep)


def media_bytes(store: Store, form: FormVersion, name: str, user: User, cache: MediaCache) -> bytes | None:
    """One medium of ``form`` as this collector gets it, or None if the form has no such file."""
    if name not in form.media:
        return None
    scope = sorted(user.unit_codes)
    if name not in LOCATION_MEDIA and not name.lower().endswith(".csv"):
        return store.form_media(form.form_id, form.version, name)  # images etc.: not cut, not cached
    key = (form.form_id, form.version, name, tuple(scope))

    def make() -> bytes | None:
        if name in LOCATION_MEDIA:
            return location_csv(LOCATION_MEDIA[name], scope)
        data = store.form_media(form.form_id, form.version, name)
        return cut_csv(data, scope) if data is not None else None

    return cache.get_or_make(key, make)
