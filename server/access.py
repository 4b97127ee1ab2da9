"""What a collector may see and send: forms of the open rounds they are assigned to, units in their scope,
and the form media cut to those units.

Rules: a form is listed when an **open** round names it in ``form_ids`` and names the collector in
``collector_ids`` (and the round's units overlap the collector's). A submission's unit (its ``hamlet``,
else ``commune``, else ``province`` field, which must agree) must lie inside the collector's units and the
round's units. The rules live in ``core.rounds.assigned_open_rounds`` and ``core.ingest.place``, so an
offline bundle and an import follow them too. Media bytes come from ``core.media.collector_media`` — the
same bytes an offline bundle carries, so the MD5 a phone sees is the same either way.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from threading import Lock

from rasoat.core.ingest import LOCATION_FIELDS, filing_unit
from rasoat.core.media import LOCATION_MEDIA, ROSTER_MEDIA, collector_media
from rasoat.core.models import FormVersion, User
from rasoat.core.rounds import assigned_forms, assigned_open_rounds, in_scope, scopes_overlap
from rasoat.core.storage.base import Store

__all__ = ["LOCATION_FIELDS", "MediaCache", "assigned_open_rounds", "in_scope", "media_bytes",
           "scopes_overlap", "filing_unit", "visible_forms"]


visible_forms = assigned_forms  # the latest version of each form the collector's phone should hold


class MediaCache:
    """Generated media by (form, version, name, scope), for inputs that never change (location CSVs and a
    published version's stored CSVs); a small LRU."""

    def __init__(self, size: int = 512) -> None:
        self._items: OrderedDict[tuple, bytes | None] = OrderedDict()
        self._size = size
        self._lock = Lock()

    def peek(self, key: tuple) -> bytes | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key: tuple, value: bytes) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def get_or_make(self, key: tuple, make: Callable[[], bytes | None]) -> bytes | None:
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


def media_bytes(store: Store, form: FormVersion, name: str, user: User, cache: MediaCache) -> bytes | None:
    """One medium of ``form`` as this collector gets it, or None if the form has no such file."""
    if name not in form.media:
        return None
    scope = sorted(set(user.unit_codes))
    cacheable = name in LOCATION_MEDIA or (name.lower().endswith(".csv") and name != ROSTER_MEDIA)
    if not cacheable:  # the roster follows the rounds; images are big and served as stored
        return collector_media(store, form, name, scope)
    key = (form.form_id, form.version, name, tuple(scope))
    return cache.get_or_make(key, lambda: collector_media(store, form, name, scope))
