"""A submission as table rows of typed values: the one place that decides what each exported cell holds.

Both raw exports use it: the xlsx workbook (``core.excel.raw``) and the CSV zip (``core.excel.csv_zip``).
A row is a list with one slot per column; a slot holds None (empty), ``str``, ``int``, ``float``,
``datetime`` (Vietnam wall-clock time, naive), ``date``, ``time`` or a ``Link`` (an attachment with its
URL). Writers only map these types to their format, so typing, choice labels, the 0/1 columns of a
select_multiple, unit names and join keys are written once, here.

Each column gets a converter built once per export (a closure chosen by the question's kind), so the
per-cell work is one dict lookup and one call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple, Protocol
from urllib.parse import quote

from rasoat.core.excel.cells import parse_date, parse_datetime, parse_float, parse_time, to_vn_naive
from rasoat.core.excel.schema import Column, Kind, LabelMode, Table
from rasoat.core.models import REVIEW_LABELS, ReviewState, Submission
from rasoat.core.problems import said

# Header texts of the submission metadata columns, per label mode (names differ from the location
# block's own questions, which every form has).
META_HEADERS: dict[str, tuple[str, ...]] = {
    "vi": (
        "Thời điểm gửi",
        "Đợt rà soát",
        "Mã tỉnh",
        "Tên tỉnh",
        "Mã xã",
        "Tên xã",
        "Mã thôn",
        "Tên thôn, tổ dân phố",
        "Người thu thập",
        "Trạng thái duyệt",
    ),
    "en": (
        "Submitted at",
        "Round",
        "Province code",
        "Province name",
        "Commune code",
        "Commune name",
        "Hamlet code",
        "Hamlet name",
        "Collector",
        "Review state",
    ),
    "none": (
        "submitted_at",
        "round",
        "province_code",
        "province_name",
        "commune_code",
        "commune_name",
        "hamlet_code",
        "hamlet_name",
        "collector",
        "review_state",
    ),
}
REPEAT_KEY_HEADERS: dict[str, tuple[str, ...]] = {
    "vi": ("KEY", "PARENT_KEY", "instanceID", "Thứ tự"),
    "en": ("KEY", "PARENT_KEY", "instanceID", "Position"),
    "none": ("KEY", "PARENT_KEY", "instanceID", "position"),
}

Row = list[Any]
Convert = Callable[[Row, int, Any], None]  # (row, first column, answer) -> fills the row's slots


class Link(NamedTuple):
    """An attachment cell: the file name shown, the URL it opens."""

    url: str
    text: str

    def __str__(self) -> str:  # what a text format (CSV) writes
        return self.url


class UnitLike(Protocol):
    name: str
    parent_code: str | None

    @property
    def level(self) -> str: ...


class UnitLookup(Protocol):
    """What the export needs from ``core.units``' registry."""

    def get(self, code: str) -> UnitLike | None: ...


@dataclass
class TableRows:
    """One output table (the main table or a repeat): its headers and how each answer becomes cells."""

    table: Table
    index: int  # position in ``RowBuilder.tables`` (writers keep their per-table state in a list)
    base: str  # sheet or file name before it is made valid and unique
    headers: list[str]
    plan: list[tuple[str, int, Convert]] = field(default_factory=list)  # (answer key, first column, convert)
    children: list[TableRows] = field(default_factory=list)

    def fill(self, row: Row, answers: Mapping[str, Any]) -> None:
        """Each given answer converted into its cells of ``row`` (an empty answer leaves them empty)."""
        for key, c, convert in self.plan:
            v = answers.get(key)
            if v is not None and v != "":
                convert(row, c, v)


def drop_columns(
    root: Table, include_personal: bool, drop: frozenset[str] | set[str] = frozenset()
) -> list[str]:
    """Remove personal columns (unless asked for) and the named ones from the tables; returns their paths."""
    dropped_paths: list[str] = []

    def dropped(col_or_table: Any, path: str) -> bool:
        if col_or_table.personal and not include_personal:
            return True
        return bool(drop) and (col_or_table.name in drop or path in drop)

    def prune(table: Table) -> None:
        kept = []
        for col in table.columns:
            path = f"{table.path}/{col.key}" if table.path else col.key
            if dropped(col, path):
                dropped_paths.append(path)
            else:
                kept.append(col)
        table.columns = kept
        children = []
        for child in table.children:
            if dropped(child, child.path):
                dropped_paths.append(child.path)
            else:
                prune(child)
                children.append(child)
        table.children = children

    prune(root)
    return dropped_paths


class RowBuilder:
    """Turns submissions into rows for every table of a form, parents before their repeats."""

    def __init__(
        self,
        root: Table,
        *,
        labels: LabelMode = "vi",
        form_id: str,
        main_name: str | None = None,
        units: UnitLookup | None = None,
        collectors: Mapping[str, str] | None = None,
        attachment_url: str | Callable[[str, str], str] | None = None,
    ) -> None:
        self.root, self.mode, self.form_id = root, labels, form_id
        self.units, self.collectors = units, collectors or {}
        self._make_url = _url_maker(attachment_url) if attachment_url is not None else None
        self._unit_cache: dict[str | None, tuple[str | None, ...]] = {}
        self._review = {s: _review_text(s, labels) for s in ReviewState}
        self._instance = ""  # the submission being turned into rows (attachment links need it)
        self.tables: list[TableRows] = []
        meta = list(META_HEADERS[labels])
        self.main = self._table(root, ["KEY", *meta], main_name or form_id)
        self.children = [self._child(t) for t in root.children]

    def _table(self, table: Table, lead: list[str], base: str) -> TableRows:
        headers = lead + [h for col in table.columns for h in col.headers()]
        out = TableRows(table=table, index=len(self.tables), base=base, headers=headers)
        self.tables.append(out)
        col_index = len(lead)
        for col in table.columns:
            out.plan.append((col.key, col_index, self._converter(col)))
            col_index += col.width
        return out

    def _child(self, table: Table) -> TableRows:
        base = table.name if self.mode == "none" else table.label
        out = self._table(table, list(REPEAT_KEY_HEADERS[self.mode]), base)
        out.children = [self._child(t) for t in table.children]
        return out

    # --- converters: one per column, chosen by the question's kind -----------------------------
    def _converter(self, col: Column) -> Convert:
        kind = col.kind
        if kind is Kind.integer or kind is Kind.decimal:
            number: Callable[[str], Any] = _int_or_float if kind is Kind.integer else parse_float
            return _typed(number)
        if kind is Kind.calculated:
            return _typed(_plain_number)
        if kind is Kind.date:
            return _typed(_parse_day)
        if kind is Kind.datetime:
            return _typed(parse_datetime)
        if kind is Kind.time:
            return _typed(parse_time)
        if kind is Kind.select_one:
            shown = dict(col.choices)

            def one(row: Row, c: int, v: Any) -> None:
                row[c] = shown.get(v, v) if v.__class__ is str else _text(v)

            return one
        if kind is Kind.select_multiple:
            return _select_multiple(col)
        if kind is Kind.geopoint:
            return _geopoint
        if kind is Kind.attachment and self._make_url is not None:
            make_url = self._make_url

            def attachment(row: Row, c: int, v: Any) -> None:
                row[c] = Link(make_url(self._instance, v), v) if v.__class__ is str else _text(v)

            return attachment
        return _plain_text

    # --- rows ----------------------------------------------------------------------------------
    def rows(self, sub: Submission, emit: Callable[[TableRows, Row], None]) -> None:
        """Call ``emit(table, row)`` for the submission's main row, then for each repeat row (depth first)."""
        main = self.main
        row: Row = [None] * len(main.headers)
        instance_id = sub.instance_id
        self._instance = instance_id
        fields = sub.fields
        row[0] = instance_id
        row[1] = to_vn_naive(sub.received_at)
        row[2] = sub.round_id or None
        row[3:9] = self._units_of(sub.unit_code, fields)
        if sub.collector_id:
            row[9] = self.collectors.get(sub.collector_id, sub.collector_id)
        row[10] = self._review.get(sub.review_state, str(sub.review_state))
        main.fill(row, fields)
        emit(main, row)
        for child in self.children:
            self._repeat_rows(child, fields, instance_id, instance_id, emit)

    def _repeat_rows(
        self,
        out: TableRows,
        fields: Mapping[str, Any],
        parent_key: str,
        instance_id: str,
        emit: Callable[[TableRows, Row], None],
    ) -> None:
        items = fields.get(out.table.key)
        if not items:
            return
        if isinstance(items, Mapping):  # one occurrence parsed as a dict
            items = [items]
        width = len(out.headers)
        for position, item in enumerate(items, start=1):
            if not isinstance(item, Mapping):
                continue
            # KEY as ODK Central writes it: the parent's key, the repeat's path and its 1-based position.
            key = f"{parent_key}/{out.table.key}[{position}]"
            row: Row = [None] * width
            row[0], row[1], row[2], row[3] = key, parent_key, instance_id, position
            out.fill(row, item)
            emit(out, row)
            for child in out.children:
                self._repeat_rows(child, item, key, instance_id, emit)

    def _units_of(self, unit_code: str | None, fields: Mapping[str, Any]) -> tuple[str | None, ...]:
        code = unit_code or _first_code(fields)
        cached = self._unit_cache.get(code)
        if cached is None:
            cached = tuple(v or None for v in unit_cells(code, self.units, fields))
            self._unit_cache[code] = cached
        return cached


def _typed(parse: Callable[[str], Any]) -> Convert:
    """A converter for a typed answer: the parsed value, or the text as given when it does not parse."""

    def convert(row: Row, c: int, v: Any) -> None:
        parsed = parse(v) if v.__class__ is str else None
        row[c] = _text(v) if parsed is None else parsed

    return convert


def _plain_text(row: Row, c: int, v: Any) -> None:
    row[c] = v if v.__class__ is str else _text(v)


def _geopoint(row: Row, c: int, v: Any) -> None:
    parts = v.split() if v.__class__ is str else []
    nums = [parse_float(p) for p in parts[:4]]
    if len(nums) < 2 or None in nums:
        row[c] = _text(v)
        return
    row[c : c + len(nums)] = nums


def _select_multiple(col: Column) -> Convert:
    shown = dict(col.choices)
    values = [value for value, _ in col.choices] if col.choice_headers else []
    join = " " if all(shown.get(k, k) == k for k in shown) else "; "

    def many(row: Row, c: int, v: Any) -> None:
        if v.__class__ is not str:
            v = _text(v) or ""
        picked = v.split()
        if not picked:
            return
        row[c] = join.join(shown.get(p, p) for p in picked) if shown else v
        if values:
            chosen = set(picked)
            row[c + 1 : c + 1 + len(values)] = [1 if value in chosen else 0 for value in values]

    return many


def _parse_day(text: str) -> date | None:
    d = parse_date(text)
    return d.date() if d is not None else None


def _int_or_float(text: str) -> int | float | None:
    try:
        n = int(text)
    except ValueError:
        return parse_float(text)
    # Excel keeps 15 significant digits (a float), so a longer integer (an ID number) stays text
    return n if abs(n) < 10**15 else None


def _plain_number(text: str) -> int | float | None:
    """A calculate's result as a number, unless it looks like a code: "05563" (leading zero), "+84…",
    "1e5", "2026-03-05" stay text."""
    body = text[1:] if text.startswith("-") else text
    if not body.replace(".", "").isdigit():  # digits and dots only (one C call, not a loop per character)
        return None
    if len(body) > 1 and body[0] == "0" and body[1] != ".":
        return None
    return _int_or_float(text)


def _text(value: Any) -> str | None:
    """A non-string answer (a list from a repeated element, a number from a plugin) as text; None if empty."""
    if isinstance(value, list | tuple):
        value = " ".join(str(v) for v in value)
    return str(value) or None


def _review_text(state: ReviewState, mode: str) -> str:
    if mode == "none":
        return state.value
    return said(REVIEW_LABELS.get(state, state.value), mode)


def _url_maker(spec: str | Callable[[str, str], str]) -> Callable[[str, str], str]:
    if callable(spec):
        return spec
    if "{" in spec:
        return lambda instance_id, name: spec.format(
            instance_id=quote(instance_id, safe=""), name=quote(name, safe="")
        )
    base = spec.rstrip("/")
    return lambda instance_id, name: f"{base}/{quote(instance_id, safe='')}/{quote(name, safe='')}"


def _first_code(fields: Mapping[str, Any]) -> str | None:
    for key in ("hamlet", "commune", "province"):
        value = fields.get(key)
        if isinstance(value, str) and value:
            return value
    return None


_LEVELS = {"province": 0, "commune": 1, "hamlet": 2}


def _level_of(code: str) -> int:
    """0 province, 1 commune, 2 hamlet, by the shape of the code (see the unit-code convention)."""
    if "-" in code:
        return 2
    return 0 if len(code) <= 2 else 1


def unit_cells(code: str | None, units: UnitLookup | None, fields: Mapping[str, Any]) -> tuple[str, ...]:
    """(province code, name, commune code, name, hamlet code, name) for a submission's unit."""
    cells = ["", "", "", "", "", ""]
    seen = 0
    while code and seen < 6:
        seen += 1
        unit = units.get(code) if units is not None else None
        level = _LEVELS.get(unit.level, -1) if unit is not None else -1
        if level < 0:
            level = _level_of(code)
        if not cells[level * 2]:
            cells[level * 2] = code
            cells[level * 2 + 1] = str(getattr(unit, "name", "") or "") if unit is not None else ""
        parent = getattr(unit, "parent_code", None) if unit is not None else None
        if not parent and level == 2:
            parent = code.split("-", 1)[0]
        if not parent and level == 1:
            province = fields.get("province")
            parent = province if isinstance(province, str) and province else None
        code = parent if parent != code else None
    return tuple(cells)



def feed(
    submissions: Iterable[Submission],
    write: Callable[[Submission], None],
    progress: Callable[[int], object] | None,
    every: int,
) -> None:
    """Write each submission, calling ``progress(n)`` every ``every`` submissions and once at the end."""
    pending = 0
    for sub in submissions:
        write(sub)
        pending += 1
        if progress is not None and pending >= every:
            progress(pending)
            pending = 0
    if progress is not None and pending:
        progress(pending)
