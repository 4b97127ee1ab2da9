"""The raw data workbook: one row per submission, one sheet per repeat group, written as rows arrive.

``write_raw_workbook`` is a pure function over a form schema and an iterable of submissions; it never
holds more than one row in memory (xlsxwriter ``constant_memory``), so its memory does not grow with
the number of submissions. ``core.excel.from_store.export_form`` feeds it from a store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from os import PathLike
from typing import IO, Any, Protocol
from urllib.parse import quote

from rasoat.core.excel.cells import (
    EXCEL_MAX_COLS,
    EXCEL_MAX_ROWS,
    EXCEL_MAX_URLS,
    Formats,
    hyperlink_formula,
    parse_date,
    parse_datetime,
    parse_float,
    parse_time,
    sheet_name,
    to_vn_naive,
    write_header,
    write_text,
)
from rasoat.core.excel.schema import Column, Kind, LabelMode, SchemaOptions, Table, build_tables
from rasoat.core.models import REVIEW_LABELS, ReviewState, Submission
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

Target = str | PathLike[str] | IO[bytes]
WriteCell = Callable[[Worksheet, int, int, Any], None]

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
_FORMULA_FIRST = frozenset("=+-@\t\r")


class UnitLike(Protocol):
    name: str
    parent_code: str | None

    @property
    def level(self) -> str: ...


class UnitLookup(Protocol):
    """What the export needs from ``core.units``' registry."""

    def get(self, code: str) -> UnitLike | None: ...


@dataclass(frozen=True)
class RawExportOptions:
    """How the raw workbook looks and what it may contain."""

    labels: LabelMode = "vi"  # headers: Vietnamese labels, English labels, or field names
    group_prefix: bool = True  # "Hộ gia đình / Tên chủ hộ" or "Tên chủ hộ"
    choice_labels: bool | None = None  # None: choice labels when headers are labels, else choice values
    split_multiple: bool = True  # one 0/1 column per choice beside each select_multiple answer
    include_personal: bool = (
        False  # columns marked P/S (and collector phone metadata) are left out unless True
    )
    drop_fields: frozenset[str] = (
        frozenset()
    )  # names or paths to leave out as well (personal data not yet marked)
    attachment_url: str | Callable[[str, str], str] | None = (
        None  # base URL, "{instance_id}/{name}" template,
    )
    # or a function (instance_id, file name) -> URL; None writes the file name only
    max_rows: int = (
        EXCEL_MAX_ROWS  # rows per sheet including the header; a full sheet continues on "name (2)"
    )
    external_choices: Mapping[str, list[dict[str, Any]]] | None = None  # select_one_from_file CSV rows
    main_sheet: str | None = None  # default: the form id
    tmpdir: str | None = None  # where xlsxwriter keeps its per-sheet temporary files


@dataclass
class ExtraSheet:
    """A sheet a plugin adds (hook ``export_sheets``): a name, headers and its rows."""

    name: str
    headers: Sequence[str]
    rows: Iterable[Sequence[Any]]


@dataclass
class RawExportStats:
    submissions: int = 0
    rows: dict[str, int] = field(default_factory=dict)  # table name -> data rows written
    sheets: list[str] = field(default_factory=list)
    dropped_columns: list[str] = field(default_factory=list)  # personal or asked-for columns left out


class SheetStream:
    """Rows of one table; when a sheet is full, continues on a new sheet with the same header."""

    def __init__(
        self,
        wb: Workbook,
        base: str,
        headers: list[str],
        fmts: Formats,
        max_rows: int,
        used: set[str],
        stats: RawExportStats,
    ) -> None:
        if max_rows < 2:
            raise ValueError("max_rows must leave room for a header and one row")
        if len(headers) > EXCEL_MAX_COLS:
            raise ValueError(f"{base}: {len(headers)} columns, Excel allows {EXCEL_MAX_COLS}")
        self.wb, self.base, self.headers, self.fmts = wb, base, headers, fmts
        self.max_rows, self.used, self.stats = max_rows, used, stats
        self.sheets: list[tuple[Worksheet, int]] = []
        self.count = 0
        self.urls = 0
        self._new_sheet()

    def _new_sheet(self) -> None:
        if self.sheets:
            self._close_current()
        name = sheet_name(self.base, self.used)
        ws = self.wb.add_worksheet(name)
        write_header(ws, self.headers, self.fmts.header)
        self.stats.sheets.append(name)
        self.sheets.append((ws, 0))
        self.ws, self.row, self.urls = ws, 0, 0

    def _close_current(self) -> None:
        ws, _ = self.sheets[-1]
        self.sheets[-1] = (ws, self.row)
        if self.row:
            ws.autofilter(0, 0, self.row, len(self.headers) - 1)

    def next_row(self) -> tuple[Worksheet, int]:
        row = self.row + 1
        if row >= self.max_rows:
            self._new_sheet()
            row = 1
        self.row = row
        self.count += 1
        return self.ws, row

    def finish(self) -> None:
        self._close_current()


def write_raw_workbook(
    schema: Mapping[str, Any],
    submissions: Iterable[Submission],
    target: Target,
    *,
    form_id: str | None = None,
    options: RawExportOptions | None = None,
    units: UnitLookup | None = None,
    collectors: Mapping[str, str] | None = None,
    extra_sheets: Iterable[ExtraSheet] = (),
    about: Sequence[tuple[str, Any]] = (),
    progress: Callable[[int], object] | None = None,
    progress_every: int = 1000,
) -> RawExportStats:
    """Write the raw data workbook to ``target`` (a path or a binary file object), streaming submissions.

    ``units`` names unit codes (``core.units.get_units()``); ``collectors`` maps collector ids to names;
    ``about`` adds (label, value) lines to the last sheet; ``progress(n)`` is called every
    ``progress_every`` submissions with how many were written since the last call.
    """
    opts = options or RawExportOptions()
    form_id = form_id or str(schema.get("id_string") or "data")
    root = build_tables(
        schema,
        form_id,
        SchemaOptions(
            labels=opts.labels,
            group_prefix=opts.group_prefix,
            choice_labels=opts.choice_labels,
            split_multiple=opts.split_multiple,
            external_choices=opts.external_choices,
        ),
    )
    stats = RawExportStats()
    _drop_columns(root, opts, stats)
    wb = Workbook(
        target,
        {
            "constant_memory": True,
            "tmpdir": opts.tmpdir,
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "default_date_format": "dd/mm/yyyy",
        },
    )
    try:
        writer = _RawWriter(wb, root, opts, stats, units, collectors or {}, form_id)
        pending = 0
        for sub in submissions:
            writer.write_submission(sub)
            pending += 1
            if progress is not None and pending >= progress_every:
                progress(pending)
                pending = 0
        if progress is not None and pending:
            progress(pending)
        writer.finish()
        for extra in extra_sheets:
            _write_extra(wb, extra, writer.fmts, writer.used, stats)
        _write_about(wb, writer, stats, about)
    finally:
        wb.close()
    return stats


def _drop_columns(root: Table, opts: RawExportOptions, stats: RawExportStats) -> None:
    drop = opts.drop_fields

    def dropped(col_or_table: Any, path: str) -> bool:
        if col_or_table.personal and not opts.include_personal:
            return True
        return bool(drop) and (col_or_table.name in drop or path in drop)

    def prune(table: Table) -> None:
        kept = []
        for col in table.columns:
            path = f"{table.path}/{col.key}" if table.path else col.key
            if dropped(col, path):
                stats.dropped_columns.append(path)
            else:
                kept.append(col)
        table.columns = kept
        children = []
        for child in table.children:
            if dropped(child, child.path):
                stats.dropped_columns.append(child.path)
            else:
                prune(child)
                children.append(child)
        table.children = children

    prune(root)


class _RawWriter:
    """Holds the per-column writers so the per-cell path is one dict lookup and one call."""

    def __init__(
        self,
        wb: Workbook,
        root: Table,
        opts: RawExportOptions,
        stats: RawExportStats,
        units: UnitLookup | None,
        collectors: Mapping[str, str],
        form_id: str,
    ) -> None:
        self.wb, self.root, self.opts, self.stats = wb, root, opts, stats
        self.units, self.collectors, self.form_id = units, collectors, form_id
        self.fmts = Formats(wb)
        self.used: set[str] = set()
        self.mode = opts.labels
        self._unit_cache: dict[str | None, tuple[str, ...]] = {}
        self._review = {s: _review_text(s, self.mode) for s in ReviewState}
        self._instance = ""  # the submission being written (attachment links need it)
        meta = list(META_HEADERS[self.mode])
        self.main = self._stream(root, ["KEY", *meta], opts.main_sheet or form_id)
        self.meta_width = 1 + len(meta)
        self.main_plan = self._plan(root, self.meta_width, self.main)
        self.children = [self._child(t) for t in root.children]

    # --- set-up ------------------------------------------------------------------------
    def _stream(self, table: Table, lead: list[str], base: str) -> SheetStream:
        headers = lead + [h for col in table.columns for h in col.headers()]
        self.stats.rows[table.name] = 0
        return SheetStream(self.wb, base, headers, self.fmts, self.opts.max_rows, self.used, self.stats)

    def _child(self, table: Table) -> tuple[Table, SheetStream, list[tuple[str, int, WriteCell]], list]:
        lead = list(REPEAT_KEY_HEADERS[self.mode])
        base = table.name if self.mode == "none" else table.label
        stream = self._stream(table, lead, base)
        plan = self._plan(table, len(lead), stream)
        return table, stream, plan, [self._child(t) for t in table.children]

    def _plan(self, table: Table, first: int, stream: SheetStream) -> list[tuple[str, int, WriteCell]]:
        plan = []
        col_index = first
        for col in table.columns:
            plan.append((col.key, col_index, self._cell_writer(col, stream)))
            col_index += col.width
        return plan

    def _cell_writer(self, col: Column, stream: SheetStream) -> WriteCell:
        quoted = self.fmts.text_quoted
        first_bad = _FORMULA_FIRST

        def text(ws: Worksheet, r: int, c: int, v: Any) -> None:
            if v.__class__ is not str:
                v = _as_text(v)
                if not v:
                    return
            if v[0] in first_bad:
                ws.write_string(r, c, v, quoted)
            else:
                ws.write_string(r, c, v)

        kind = col.kind
        if kind is Kind.integer or kind is Kind.decimal:
            convert: Callable[[str], Any] = _int_or_float if kind is Kind.integer else parse_float

            def number(ws: Worksheet, r: int, c: int, v: Any) -> None:
                n = convert(v) if v.__class__ is str else None
                if n is None:
                    text(ws, r, c, v)
                else:
                    ws.write_number(r, c, n)

            return number
        if kind is Kind.calculated:

            def calculated(ws: Worksheet, r: int, c: int, v: Any) -> None:
                n = _plain_number(v) if v.__class__ is str else None
                if n is None:
                    text(ws, r, c, v)
                else:
                    ws.write_number(r, c, n)

            return calculated
        if kind in (Kind.date, Kind.datetime, Kind.time):
            parse: Callable[[str], Any] = {
                Kind.date: parse_date,
                Kind.datetime: parse_datetime,
                Kind.time: parse_time,
            }[kind]
            fmt = {Kind.date: self.fmts.date, Kind.datetime: self.fmts.datetime, Kind.time: self.fmts.time}[
                kind
            ]

            def when(ws: Worksheet, r: int, c: int, v: Any) -> None:
                d = parse(v) if v.__class__ is str else None
                if d is None:
                    text(ws, r, c, v)
                else:
                    ws.write_datetime(r, c, d, fmt)

            return when
        if kind is Kind.select_one:
            shown = dict(col.choices)

            def one(ws: Worksheet, r: int, c: int, v: Any) -> None:
                text(ws, r, c, shown.get(v, v) if v.__class__ is str else v)

            return one
        if kind is Kind.select_multiple:
            shown = dict(col.choices)
            values = [value for value, _ in col.choices] if col.choice_headers else []
            join = " " if all(shown.get(k, k) == k for k in shown) else "; "

            def many(ws: Worksheet, r: int, c: int, v: Any) -> None:
                if v.__class__ is not str:
                    v = _as_text(v)
                picked = v.split()
                if not picked:
                    return
                text(ws, r, c, join.join(shown.get(p, p) for p in picked) if shown else v)
                if values:
                    chosen = set(picked)
                    for i, value in enumerate(values, start=c + 1):
                        ws.write_number(r, i, 1 if value in chosen else 0)

            return many
        if kind is Kind.geopoint:

            def geo(ws: Worksheet, r: int, c: int, v: Any) -> None:
                parts = v.split() if v.__class__ is str else []
                nums = [parse_float(p) for p in parts[:4]]
                if len(nums) < 2 or None in nums:
                    text(ws, r, c, v)
                    return
                for i, n in enumerate(nums):
                    ws.write_number(r, c + i, n)

            return geo
        if kind is Kind.attachment and self.opts.attachment_url is not None:
            link_fmt = self.fmts.link
            make_url = _url_maker(self.opts.attachment_url)

            def attachment(ws: Worksheet, r: int, c: int, v: Any) -> None:
                if v.__class__ is not str:
                    text(ws, r, c, v)
                    return
                url = make_url(self._instance, v)
                if stream.urls < EXCEL_MAX_URLS and len(url) <= 2079:
                    stream.urls += 1
                    ws.write_url(r, c, url, link_fmt, string=v)
                elif len(url) <= 255 and len(v) <= 255:  # string limits inside a formula
                    ws.write_formula(r, c, hyperlink_formula(url, v), link_fmt, v)
                else:
                    text(ws, r, c, v)

            return attachment
        return text

    # --- rows --------------------------------------------------------------------------
    def write_submission(self, sub: Submission) -> None:
        ws, r = self.main.next_row()
        instance_id = sub.instance_id
        self._instance = instance_id
        quoted = self.fmts.text_quoted
        write_text(ws, r, 0, instance_id, quoted)
        ws.write_datetime(r, 1, to_vn_naive(sub.received_at), self.fmts.datetime)
        if sub.round_id:
            write_text(ws, r, 2, sub.round_id, quoted)
        fields = sub.fields
        unit_cells = self._units_of(sub.unit_code, fields)
        for i, value in enumerate(unit_cells, start=3):
            if value:
                write_text(ws, r, i, value, quoted)
        if sub.collector_id:
            write_text(ws, r, 9, self.collectors.get(sub.collector_id, sub.collector_id), quoted)
        ws.write_string(r, 10, self._review.get(sub.review_state, str(sub.review_state)))
        for key, c, write in self.main_plan:
            v = fields.get(key)
            if v is not None and v != "":
                write(ws, r, c, v)
        for child in self.children:
            self._write_repeat(child, fields, instance_id, instance_id)

    def _write_repeat(
        self, child: tuple, fields: Mapping[str, Any], parent_key: str, instance_id: str
    ) -> None:
        table, stream, plan, grandchildren = child
        items = fields.get(table.key)
        if not items:
            return
        if isinstance(items, Mapping):  # one occurrence parsed as a dict
            items = [items]
        quoted = self.fmts.text_quoted
        for position, item in enumerate(items, start=1):
            if not isinstance(item, Mapping):
                continue
            ws, r = stream.next_row()
            key = f"{parent_key}/{table.key}[{position}]"
            write_text(ws, r, 0, key, quoted)
            write_text(ws, r, 1, parent_key, quoted)
            write_text(ws, r, 2, instance_id, quoted)
            ws.write_number(r, 3, position)
            for k, c, write in plan:
                v = item.get(k)
                if v is not None and v != "":
                    write(ws, r, c, v)
            for grandchild in grandchildren:
                self._write_repeat(grandchild, item, key, instance_id)

    def _units_of(self, unit_code: str | None, fields: Mapping[str, Any]) -> tuple[str, ...]:
        code = unit_code or _first_code(fields)
        cached = self._unit_cache.get(code)
        if cached is None:
            cached = _unit_cells(code, self.units, fields)
            self._unit_cache[code] = cached
        return cached

    def finish(self) -> None:
        self.main.finish()
        self.stats.rows[self.root.name] = self.main.count
        self.stats.submissions = self.main.count

        def close(child: tuple) -> None:
            table, stream, _, grandchildren = child
            stream.finish()
            self.stats.rows[table.name] = stream.count
            for g in grandchildren:
                close(g)

        for child in self.children:
            close(child)


def _int_or_float(text: str) -> int | float | None:
    try:
        n = int(text)
    except ValueError:
        return parse_float(text)
    # Excel keeps 15 significant digits and xlsxwriter cannot write an int past a float: keep it as text
    return n if abs(n) < 10**15 else None


def _plain_number(text: str) -> int | float | None:
    """A calculate's result as a number, unless it looks like a code: "05563" (leading zero), "+84…",
    "1e5", "2026-03-05" stay text."""
    body = text[1:] if text.startswith("-") else text
    if not body or not all(ch.isdigit() or ch == "." for ch in body):
        return None
    if len(body) > 1 and body[0] == "0" and body[1] != ".":
        return None
    return _int_or_float(text)


def _as_text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value)
    return str(value)


def _review_text(state: ReviewState, mode: str) -> str:
    if mode == "none":
        return state.value
    vi, _, en = REVIEW_LABELS.get(state, state.value).partition(" / ")
    return vi if mode == "vi" else (en or vi)


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


def _unit_cells(code: str | None, units: UnitLookup | None, fields: Mapping[str, Any]) -> tuple[str, ...]:
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


def _write_extra(
    wb: Workbook, extra: ExtraSheet, fmts: Formats, used: set[str], stats: RawExportStats
) -> None:
    name = sheet_name(extra.name, used)
    ws = wb.add_worksheet(name)
    stats.sheets.append(name)
    write_header(ws, [str(h) for h in extra.headers], fmts.header)
    for r, row in enumerate(extra.rows, start=1):
        for c, value in enumerate(row):
            _write_any(ws, r, c, value, fmts)


def _write_any(ws: Worksheet, r: int, c: int, value: Any, fmts: Formats) -> None:
    if value is None or value == "":
        return
    if isinstance(value, bool):
        ws.write_boolean(r, c, value)
    elif isinstance(value, int | float):
        ws.write_number(r, c, value)
    elif isinstance(value, datetime):
        ws.write_datetime(r, c, to_vn_naive(value) if value.tzinfo else value, fmts.datetime)
    else:
        write_text(ws, r, c, str(value), fmts.text_quoted)


def _write_about(
    wb: Workbook, writer: _RawWriter, stats: RawExportStats, about: Sequence[tuple[str, Any]]
) -> None:
    """A last sheet saying what this file holds, so a copy passed around still explains itself."""
    vi = writer.mode != "en"
    name = sheet_name("Thông tin" if vi else "About", writer.used)
    ws = wb.add_worksheet(name)
    stats.sheets.append(name)
    ws.set_column(0, 0, 34)
    ws.set_column(1, 1, 60)
    lines: list[tuple[str, Any]] = [
        ("Biểu mẫu / Form", writer.form_id),
        ("Số bản ghi / Submissions", stats.submissions),
        *((f"Số dòng: {t} / Rows: {t}", n) for t, n in stats.rows.items() if t != writer.root.name),
        (
            "Dữ liệu cá nhân / Personal data",
            "có / included" if writer.opts.include_personal else "đã loại / left out",
        ),
        *about,
    ]
    if stats.dropped_columns:
        lines.append(("Cột đã loại / Columns left out", ", ".join(stats.dropped_columns)))
    for r, (label, value) in enumerate(lines):
        ws.write_string(r, 0, label, writer.fmts.bold)
        _write_any(ws, r, 1, value, writer.fmts)
