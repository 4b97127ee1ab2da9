"""Entity lists as phones receive them (shared/reference/entities.md §2): a form's ``<list>.csv`` medium
is the entity list of that name when one exists (Central links a dataset to the attachment slot of the
same name), cut to the collector's units, built from the store on request.

- **Scope**: a collector receives only the entities of its own units (an entity's unit is the unit the
  submission that created it was filed under, ``core.ingest.place``); an administrator everything.
  Nothing to configure: the same unit scope as every other medium and record.
- **CSV**: ``name,label,__version`` then every property of the list in first-declared order; one row per
  current, non-deleted entity, streamed by uuid in flat memory (Central orders newest first; Collect does
  not care). Identifying properties are stored sealed and are opened here, only for the phones of the
  entity's own units (the only phones that receive it).
- **Hash**: md5 of the store's state token for that list and scope (``EntityStore.entity_list_state``):
  it changes with any create, update, delete, restore or new property among the entities the collector
  receives, and not for changes elsewhere; computed without reading an entity. The CSV is cached by it.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator

from rasoat.core.entities import EntityList
from rasoat.core.models import FormVersion, User
from rasoat.core.protection import has_sealed_values, keyring, open_entity_label, open_entity_values
from rasoat.core.scope import allowed_units
from rasoat.core.storage.base import EntityQuery, Store

CSV_BATCH = 500  # rows per streamed chunk


def linked_list(store: Store, form: FormVersion, name: str) -> EntityList | None:
    """The entity list medium ``name`` of ``form`` stands for (``persons.csv`` → list ``persons``)."""
    if name not in form.media or not name.lower().endswith(".csv"):
        return None
    return store.get_entity_list(name[:-4])


def entity_scope(user: User) -> list[str] | None:
    """The unit codes whose entities ``user``'s phone receives (None: every unit)."""

    allowed = allowed_units(user)
    return None if allowed is None else sorted(allowed)


def list_query(list_name: str, user: User) -> EntityQuery:
    return EntityQuery(list_name=list_name, unit_codes=entity_scope(user))


def list_hash(store: Store, query: EntityQuery) -> str:
    """The manifest hash (hex, without ``md5:``) of the list ``query`` selects."""
    token = store.entity_list_state(query)
    scope = ",".join(query.unit_codes) if query.unit_codes is not None else "*"
    return hashlib.md5(f"{token}|{scope}".encode(), usedforsecurity=False).hexdigest()


def iter_list_csv(store: Store, lst: EntityList, query: EntityQuery) -> Iterator[bytes]:
    """The CSV, a chunk of ``CSV_BATCH`` rows at a time (UTF-8, no BOM, ``\\n`` line ends)."""

    columns = ["name", "label", "__version", *lst.properties]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    ring = None
    for n, entity in enumerate(store.iter_entities(query), 1):
        props, label = entity.properties, entity.label
        if has_sealed_values(props, label):
            ring = ring or keyring(store)
            values = open_entity_values(ring, entity.uuid, props)
            label = open_entity_label(ring, entity.uuid, label)
        else:
            values = {k: str(v) for k, v in props.items()}
        writer.writerow([entity.uuid, label, entity.version,
                         *(values.get(p, "") for p in lst.properties)])
        if n % CSV_BATCH == 0:
            yield buf.getvalue().encode("utf-8")
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode("utf-8")

