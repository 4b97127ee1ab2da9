"""A form's OData shape, read from its XForm as ODK Central reads it: the primary instance gives the tree
(groups, repeats, fields), the ``<bind type>`` gives each field's type, ``<repeat nodeset>`` says which
elements repeat. ``Submissions`` is the table of the root; each repeat is its own table named
``Submissions.<path>`` (groups included, each segment sanitised as Central does)."""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from threading import Lock

import defusedxml.ElementTree as SafeET
from rasoat.core.storage.base import Store

ROOT_TABLE = "Submissions"

# bind type -> EDM type (Central lib/formats/odata.js); everything else is Edm.String
EDM_TYPES = {
    "int": "Edm.Int64",
    "decimal": "Edm.Decimal",
    "boolean": "Edm.Boolean",
    "date": "Edm.Date",
    "dateTime": "Edm.DateTimeOffset",
    "geopoint": "Edm.GeographyPoint",
    "geotrace": "Edm.GeographyLineString",
    "geoshape": "Edm.GeographyPolygon",
}


_OTHER = re.compile(r"[^A-Za-z0-9_]+")
_START = re.compile(r"[A-Za-z_]")


@lru_cache(maxsize=4096)
def sanitize(name: str) -> str:
    """An OData identifier as Central makes one: runs of other characters become ``_``, and a name that
    does not start with a letter or ``_`` gets a ``_`` in front."""
    out = _OTHER.sub("_", name)
    return out if _START.match(out) else "_" + out


@dataclass(frozen=True)
class Node:
    """One element of the instance: a field (``kind="field"``), a group or a repeat."""

    name: str  # the raw element name
    key: str  # the key in the flattened fields of the table it lives in ("meta/instanceID")
    kind: str  # "field" | "group" | "repeat"
    type: str = "string"  # the bind type of a field
    children: tuple[Node, ...] = ()
    table: str = ""  # for a repeat: its table name

    @property
    def odata_name(self) -> str:
        return sanitize(self.name)


@dataclass(frozen=True)
class Table:
    """An entity set: ``Submissions`` or one repeat's rows."""

    name: str
    children: tuple[Node, ...]
    parent: str | None = None  # the parent table's name
    segments: tuple[tuple[str, str], ...] = ()  # (kind, raw name) from the root down to the repeat

    @property
    def parent_key(self) -> str | None:
        """``__Submissions-id`` / ``__Submissions-children-child-id``: the parent row's ``__id``."""
        return None if self.parent is None else f"__{self.parent.replace('.', '-')}-id"


@dataclass
class FormSchema:
    form_id: str
    version: str
    tables: dict[str, Table] = field(default_factory=dict)  # Submissions first, then repeats in order

    @property
    def root(self) -> Table:
        return self.tables[ROOT_TABLE]

    def repeats(self) -> Iterator[Table]:
        return (t for name, t in self.tables.items() if name != ROOT_TABLE)


def _local(tag: object) -> str:
    text = str(tag)
    return text.rsplit("}", 1)[-1].split(":")[-1]


def _strip_root(path: str) -> str:
    parts = [p.split(":")[-1] for p in path.strip().strip("/").split("/")]
    return "/".join(parts[1:])


def parse_xform(form_id: str, version: str, xform: bytes) -> FormSchema:
    """The OData shape of one XForm."""
    doc = SafeET.fromstring(xform, forbid_dtd=True)
    model = next((el for el in doc.iter() if _local(el.tag) == "model"), None)
    if model is None:
        raise ValueError(f"form {form_id} has no model")
    instance = next((el for el in model if _local(el.tag) == "instance" and not el.get("id")), None)
    root = next((c for c in instance if isinstance(c.tag, str)), None) if instance is not None else None
    if root is None:
        raise ValueError(f"form {form_id} has no primary instance")
    types: dict[str, str] = {}
    repeats: set[str] = set()
    for el in doc.iter():
        tag = _local(el.tag)
        if tag == "bind" and el.get("nodeset"):
            types[_strip_root(el.get("nodeset", ""))] = (el.get("type") or "string").split(":")[-1]
        elif tag == "repeat" and el.get("nodeset"):
            repeats.add(_strip_root(el.get("nodeset", "")))
    schema = FormSchema(form_id, version)
    schema.tables[ROOT_TABLE] = Table(ROOT_TABLE, ())  # keeps Submissions first in the order
    children = _walk(root, "", "", schema, ROOT_TABLE, (), types, repeats)
    schema.tables[ROOT_TABLE] = Table(ROOT_TABLE, children)
    return schema


def _walk(
    el: object,
    path: str,
    rel: str,
    schema: FormSchema,
    table: str,
    segments: tuple[tuple[str, str], ...],
    types: dict[str, str],
    repeats: set[str],
) -> tuple[Node, ...]:
    out: list[Node] = []
    seen: set[str] = set()
    for child in el:  # type: ignore[attr-defined]
        if not isinstance(child.tag, str):
            continue
        name = _local(child.tag)
        if name in seen:  # a repeat's jr:template and its first instance
            continue
        seen.add(name)
        full = f"{path}{name}"
        if full in repeats:
            segs = (*segments, ("repeat", name))
            tname = ROOT_TABLE + "." + ".".join(sanitize(n) for _k, n in segs)
            schema.tables[tname] = Table(tname, (), table, segs)  # reserve its place before nested ones
            kids = _walk(child, f"{full}/", "", schema, tname, segs, types, repeats)
            schema.tables[tname] = Table(tname, kids, table, segs)
            out.append(Node(name, f"{rel}{name}", "repeat", children=(), table=tname))
        elif len(child):
            kids = _walk(
                child,
                f"{full}/",
                f"{rel}{name}/",
                schema,
                table,
                (*segments, ("group", name)),
                types,
                repeats,
            )
            out.append(Node(name, f"{rel}{name}", "group", children=kids))
        else:
            out.append(Node(name, f"{rel}{name}", "field", types.get(full, "string")))
    return tuple(out)


class SchemaCache:
    """FormSchema per (form id, version): a published version never changes."""

    def __init__(self, size: int = 256) -> None:
        self._items: OrderedDict[tuple[str, str], FormSchema] = OrderedDict()
        self._size = size
        self._lock = Lock()

    def get(self, store: Store, form_id: str, version: str) -> FormSchema:
        key = (form_id, version)
        with self._lock:
            hit = self._items.get(key)
        if hit is not None:
            return hit
        schema = parse_xform(form_id, version, store.form_xml(form_id, version))
        with self._lock:
            self._items[key] = schema
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return schema
