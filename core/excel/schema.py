"""From a pyxform JSON schema to export tables: the main table, one per repeat, each with its columns.

Pure: no storage, no workbook. The raw-data writer turns these into sheets; other exports (CSV, an
API) can reuse them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

LabelMode = Literal["vi", "en", "none"]


class Kind(StrEnum):
    text = "text"
    integer = "integer"
    decimal = "decimal"
    date = "date"
    datetime = "datetime"
    time = "time"
    select_one = "select_one"
    select_multiple = "select_multiple"
    geopoint = "geopoint"
    attachment = "attachment"
    calculated = "calculated"  # a calculate: a number when it reads as one, else text


_KINDS: dict[str, Kind] = {
    "integer": Kind.integer,
    "int": Kind.integer,
    "decimal": Kind.decimal,
    "range": Kind.decimal,
    "date": Kind.date,
    "today": Kind.date,
    "dateTime": Kind.datetime,
    "datetime": Kind.datetime,
    "start": Kind.datetime,
    "end": Kind.datetime,
    "time": Kind.time,
    "select one": Kind.select_one,
    "select_one": Kind.select_one,
    "select one external": Kind.select_one,
    "select all that apply": Kind.select_multiple,
    "select_multiple": Kind.select_multiple,
    "rank": Kind.text,
    "geopoint": Kind.geopoint,
    "photo": Kind.attachment,
    "image": Kind.attachment,
    "audio": Kind.attachment,
    "video": Kind.attachment,
    "file": Kind.attachment,
    "background-audio": Kind.attachment,
    "background-video": Kind.attachment,
    "audit": Kind.attachment,
}
# Schema rows that never hold an answer.
_NO_DATA = {"note", "xml-external", "csv-external", "trigger", "entity"}
# Phone metadata about the collector that is personal data of staff (domain analysis §2C).
PERSONAL_METADATA_TYPES = frozenset(
    {"deviceid", "username", "email", "phonenumber", "simserial", "subscriberid"}
)
# Kept as submission metadata columns already; the schema's copies would repeat them.
_SKIP_PATHS = {"meta/instanceID", "meta/deprecatedID"}
# Sensitivity marks (domain analysis legend): P basic personal, S sensitive personal.
PERSONAL_LEVELS = frozenset({"P", "S"})
_TRUE = {"yes", "true", "true()", "1"}

_GEO_PARTS = {
    "vi": ("vĩ độ", "kinh độ", "độ cao", "độ chính xác"),
    "en": ("latitude", "longitude", "altitude", "accuracy"),
    "none": ("Latitude", "Longitude", "Altitude", "Accuracy"),
}


@dataclass
class Column:
    """One question as it appears in a table; ``key`` reads it from a field dict (relative to the table)."""

    key: str
    name: str
    kind: Kind
    header: str
    geo_headers: tuple[str, ...] = ()
    choices: list[tuple[str, str]] = field(default_factory=list)  # (value, shown label) for select questions
    choice_headers: list[str] = field(default_factory=list)  # the 0/1 columns of a select_multiple
    itemset: str | None = None  # a select_one_from_file CSV name, when the choices live there
    personal: bool = False
    groups: tuple[str, ...] = ()  # labels of the groups it sits in, outermost first (a page's headings)
    source_type: str = ""  # its XLSForm type ("start", "deviceid", "calculate"…): tells phone metadata apart
    labelled: bool = True  # False when the form gives it no label (the header is then its name)

    @property
    def width(self) -> int:
        """How many worksheet columns this question takes."""
        if self.kind is Kind.geopoint:
            return 4
        if self.kind is Kind.select_multiple:
            return 1 + len(self.choice_headers)
        return 1

    def headers(self) -> list[str]:
        if self.kind is Kind.geopoint:
            return list(self.geo_headers)
        if self.kind is Kind.select_multiple:
            return [self.header, *self.choice_headers]
        return [self.header]


@dataclass
class Table:
    """The main submission table or one repeat group. ``key`` is where its rows sit in the parent's dict."""

    name: str
    key: str
    label: str
    path: str  # full path below the root ('' for the main table)
    columns: list[Column] = field(default_factory=list)
    children: list[Table] = field(default_factory=list)
    personal: bool = False
    position: int = 0  # how many of the parent's columns come before it in the form (a page lays it there)
    groups: tuple[str, ...] = ()  # labels of the groups it sits in within its parent, outermost first

    def walk(self) -> Iterable[Table]:
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass(frozen=True)
class SchemaOptions:
    labels: LabelMode = "vi"
    group_prefix: bool = True
    choice_labels: bool | None = None  # None: labels when headers are labels
    split_multiple: bool = True
    external_choices: Mapping[str, list[dict[str, Any]]] | None = None  # itemset file -> choice rows


def pick_label(label: Any, mode: LabelMode, default: str) -> str:
    """The label in the wanted language: a plain string as is, a {language: text} dict by language."""
    if mode == "none" or not label:
        return default
    if isinstance(label, str):
        return _clean(label) or default
    if isinstance(label, Mapping):
        for lang, text in label.items():
            if text and _lang_matches(str(lang), mode):
                return _clean(str(text)) or default
        for key in ("default", *label.keys()):
            text = label.get(key)
            if text:
                return _clean(str(text)) or default
    return default


def _lang_matches(lang: str, mode: str) -> bool:
    low = lang.casefold()
    if mode == "vi":
        return low in {"vi", "vie"} or "(vi)" in low or "việt" in low or "vietnam" in low
    return low in {"en", "eng"} or "(en)" in low or low.startswith("english")


def _clean(text: str) -> str:
    """One line, no markdown bold, composed (NFC) diacritics so Excel filters and sorts match typed text."""
    return unicodedata.normalize("NFC", " ".join(text.replace("**", "").split()))


def is_personal(node: Mapping[str, Any]) -> bool:
    """A schema row is personal when marked P or S (``bind::rasoat:sensitive``, ``instance::…`` or a
    ``sensitive``/``sensitivity`` key), or is phone metadata that identifies the collector."""
    if node.get("type") in PERSONAL_METADATA_TYPES:
        return True
    for where in (node, node.get("bind") or {}, node.get("instance") or {}):
        for key, value in where.items():
            local = str(key).rsplit(":", 1)[-1].casefold()
            if local in {"sensitive", "sensitivity", "personal"} and value is not None:
                mark = str(value).strip()
                if mark.upper() in PERSONAL_LEVELS or mark.casefold() in _TRUE:
                    return True
    return False


def build_tables(
    schema: Mapping[str, Any], form_id: str | None = None, options: SchemaOptions | None = None
) -> Table:
    """The main table with its repeat tables, in form order."""
    opts = options or SchemaOptions()
    choice_labels = opts.choice_labels if opts.choice_labels is not None else opts.labels != "none"
    ctx = _Ctx(opts, choice_labels, schema.get("choices") or {})
    name = form_id or str(schema.get("id_string") or schema.get("name") or "data")
    root = Table(name=name, key="", label=pick_label(schema.get("title"), opts.labels, name), path="")
    ctx.walk(
        schema.get("children") or [], root, key_prefix="", path_prefix="", header_prefix="", personal=False
    )
    return root


@dataclass
class _Ctx:
    opts: SchemaOptions
    choice_labels: bool
    choices: Mapping[str, Any]

    def walk(
        self,
        children: Iterable[Mapping[str, Any]],
        table: Table,
        key_prefix: str,
        path_prefix: str,
        header_prefix: str,
        personal: bool,
        groups: tuple[str, ...] = (),
    ) -> None:
        mode = self.opts.labels
        for node in children:
            kind = str(node.get("type", ""))
            name = str(node.get("name", ""))
            if not name or kind in _NO_DATA:
                continue
            key = f"{key_prefix}{name}"
            path = f"{path_prefix}{name}"
            node_personal = personal or is_personal(node)
            label = pick_label(node.get("label"), mode, name)
            if kind in {"group", "loop"}:
                if mode == "none":
                    prefix = f"{header_prefix}{name}/" if self.opts.group_prefix else ""
                else:
                    prefix = f"{header_prefix}{label} / " if self.opts.group_prefix else ""
                self.walk(node.get("children") or [], table, f"{key}/", f"{path}/", prefix, node_personal,
                          (*groups, label))
                continue
            if kind == "repeat":
                child = Table(name=name, key=key, label=label, path=path, personal=node_personal,
                              position=len(table.columns), groups=groups)
                table.children.append(child)
                self.walk(node.get("children") or [], child, "", f"{path}/", "", node_personal)
                continue
            if path in _SKIP_PATHS:
                continue
            col = self.column(node, kind, key, name, label, header_prefix, node_personal)
            col.groups, col.source_type = groups, kind
            col.labelled = mode != "none" and pick_label(node.get("label"), mode, "") != ""
            table.columns.append(col)

    def column(
        self, node: Mapping[str, Any], kind: str, key: str, name: str, label: str, prefix: str, personal: bool
    ) -> Column:
        mode = self.opts.labels
        shown = f"{prefix}{name if mode == 'none' else label}"
        col = Column(key=key, name=name, kind=_KINDS.get(kind, Kind.text), header=shown, personal=personal)
        bind_type = (node.get("bind") or {}).get("type")
        if kind == "calculate":
            col.kind = _KINDS.get(str(bind_type), Kind.calculated)
        if col.kind is Kind.geopoint:
            parts = _GEO_PARTS[mode]
            col.geo_headers = tuple(f"{shown}-{p}" if mode == "none" else f"{shown} - {p}" for p in parts)
        elif col.kind in (Kind.select_one, Kind.select_multiple):
            rows = self._choice_rows(node)
            # Choice labels follow the header language; with field-name headers, the form's Vietnamese.
            lang: LabelMode = ("vi" if mode == "none" else mode) if self.choice_labels else "none"
            col.choices = [
                (str(c.get("name")), pick_label(c.get("label"), lang, str(c.get("name"))))
                for c in rows
                if c.get("name") is not None
            ]
            if col.kind is Kind.select_multiple and self.opts.split_multiple:
                col.choice_headers = [
                    f"{shown}/{value}"
                    if mode == "none"
                    else f"{shown}: {pick_label(c.get('label'), mode, value)}"
                    for value, c in ((str(c.get("name")), c) for c in rows if c.get("name") is not None)
                ]
        return col

    def _choice_rows(self, node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        rows = node.get("children")
        if rows:
            return list(rows)
        itemset = node.get("itemset") or node.get("list_name")
        if itemset and itemset in self.choices:
            return list(self.choices[itemset])
        external = self.opts.external_choices or {}
        if itemset and itemset in external:
            return list(external[itemset])
        return []


def itemset_files(schema: Mapping[str, Any]) -> set[str]:
    """CSV files (select_one_from_file) the schema's select questions take their choices from."""
    found: set[str] = set()

    def walk(children: Iterable[Mapping[str, Any]]) -> None:
        for node in children:
            itemset = node.get("itemset")
            if isinstance(itemset, str) and itemset.endswith(".csv") and not node.get("children"):
                found.add(itemset)
            walk(node.get("children") or [])

    walk(schema.get("children") or [])
    return found


def merge_schemas(schemas: list[Mapping[str, Any]]) -> dict[str, Any]:
    """One schema for several versions of a form: the newest first, then questions only older versions
    had, appended where their group ends, so an export across versions loses no answers."""
    if not schemas:
        return {"children": []}
    merged = _deep_copy(schemas[-1])
    for older in reversed(schemas[:-1]):
        _merge_children(merged.setdefault("children", []), older.get("children") or [])
        for list_name, rows in (older.get("choices") or {}).items():
            merged.setdefault("choices", {}).setdefault(list_name, rows)
    return merged


def _merge_children(target: list[dict[str, Any]], extra: Iterable[Mapping[str, Any]]) -> None:
    by_name = {c.get("name"): c for c in target}
    for node in extra:
        same = by_name.get(node.get("name"))
        if same is None:
            copy = _deep_copy(node)
            target.append(copy)
            by_name[copy.get("name")] = copy
        elif same.get("type") in {"group", "repeat"} and node.get("type") == same.get("type"):
            _merge_children(same.setdefault("children", []), node.get("children") or [])


def _deep_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value
