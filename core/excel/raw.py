"""The raw data workbook: one row per submission, one sheet per repeat group, written as rows arrive.

``write_raw_workbook`` is a pure function over a form schema and an iterable of submissions; it never
holds more than one row in memory (xlsxwriter ``constant_memory``), so its memory does not grow with
the number of submissions; the main sheet's rows leave as they are written
(``core.excel.streaming_workbook``), so a download starts at once. What each cell holds is decided in
``core.excel.rows`` (shared with the CSV zip); this module maps those typed values to xlsxwriter calls
and formats. ``core.excel.from_store.export_form`` feeds it from a store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from os import PathLike
from typing import IO, Any

from rasoat.core.excel.cells import (
    EXCEL_MAX_COLS,
    EXCEL_MAX_ROWS,
    EXCEL_MAX_URLS,
    Formats,
    hyperlink_formula,
    sheet_name,
    to_vn_naive,
    write_header,
    write_text,
)
from rasoat.core.excel.rows import (
    META_HEADERS,
    REPEAT_KEY_HEADERS,
    Link,
    RowBuilder,
    TableRows,
    UnitLike,
    UnitLookup,
    drop_columns,
    feed,
)
from rasoat.core.excel.schema import LabelMode, SchemaOptions, build_tables
from rasoat.core.excel.streaming_workbook import StreamingWorkbook
from rasoat.core.models import Submission
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

Target = str | PathLike[str] | IO[bytes]
__all__ = [
    "META_HEADERS",  # defined in core.excel.rows, still importable from here
    "REPEAT_KEY_HEADERS",
    "ExtraSheet",
    "RawExportOptions",
    "RawExportStats",
    "SheetStream",
    "Target",
    "UnitLike",
    "UnitLookup",
    "row_builder",
    "write_raw_workbook",
]

_FORMULA_FIRST = frozenset("=+-@\t\r")


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


def row_builder(
    schema: Mapping[str, Any],
    form_id: str | None,
    opts: RawExportOptions,
    units: UnitLookup | None = None,
    collectors: Mapping[str, str] | None = None,
) -> tuple[RowBuilder, list[str]]:
    """The tables of a form as the options shape them, and the paths of the columns left out."""
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
    dropped = drop_columns(root, opts.include_personal, opts.drop_fields)
    builder = RowBuilder(
        root,
        labels=opts.labels,
        form_id=form_id,
        main_name=opts.main_sheet,
        units=units,
        collectors=collectors,
        attachment_url=opts.attachment_url,
    )
    return builder, dropped


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
    """Write the raw data workbook to ``target`` (a path or a binary file object, which need not be
    seekable), streaming submissions.

    ``units`` names unit codes (``core.units.get_units()``); ``collectors`` maps collector ids to names;
    ``about`` adds (label, value) lines to the last sheet; ``progress(n)`` is called every
    ``progress_every`` submissions with how many were written since the last call.
    """
    opts = options or RawExportOptions()
    builder, dropped = row_builder(schema, form_id, opts, units, collectors)
    stats = RawExportStats(dropped_columns=dropped)
    wb = StreamingWorkbook(
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
        writer = _RawWriter(wb, builder, opts, stats)
        feed(submissions, writer.write_submission, progress, progress_every)
        writer.finish()
        for extra in extra_sheets:
            _write_extra(wb, extra, writer.fmts, writer.used, stats)
        _write_about(wb, writer, stats, about)
    except BaseException:
        wb.discard()
        raise
    wb.close()
    return stats


class _RawWriter:
    """One sheet stream per table; writes the RowBuilder's typed rows with one call per cell."""

    def __init__(
        self, wb: Workbook, builder: RowBuilder, opts: RawExportOptions, stats: RawExportStats
    ) -> None:
        self.wb, self.builder, self.opts, self.stats = wb, builder, opts, stats
        self.form_id, self.mode, self.root = builder.form_id, builder.mode, builder.root
        self.fmts = Formats(wb)
        self.used: set[str] = set()
        self.streams = [self._stream(t) for t in builder.tables]
        self._emit = self.write_row

    def _stream(self, out: TableRows) -> SheetStream:
        self.stats.rows[out.table.name] = 0
        opts = self.opts
        return SheetStream(self.wb, out.base, out.headers, self.fmts, opts.max_rows, self.used, self.stats)

    def write_submission(self, sub: Submission) -> None:
        self.builder.rows(sub, self._emit)

    def write_row(self, out: TableRows, row: list[Any]) -> None:
        stream = self.streams[out.index]
        ws, r = stream.next_row()
        fmts = self.fmts
        quoted = fmts.text_quoted
        bad = _FORMULA_FIRST
        write_string, write_number, write_datetime = ws.write_string, ws.write_number, ws.write_datetime
        for c, v in enumerate(row):
            if v is None:
                continue
            t = v.__class__
            if t is str:
                if v[0] in bad:  # stays text even when the cell is edited (formula injection)
                    write_string(r, c, v, quoted)
                else:
                    write_string(r, c, v)
            elif t is int or t is float:
                write_number(r, c, v)
            elif t is datetime:
                write_datetime(r, c, v, fmts.datetime)
            elif t is date:
                write_datetime(r, c, v, fmts.date)
            elif t is time:
                write_datetime(r, c, v, fmts.time)
            elif t is Link:
                _write_link(ws, r, c, v, stream, fmts)
            else:
                write_text(ws, r, c, str(v), quoted)

    def finish(self) -> None:
        for out, stream in zip(self.builder.tables, self.streams, strict=True):
            stream.finish()
            self.stats.rows[out.table.name] = stream.count
        self.stats.submissions = self.streams[0].count


def _write_link(ws: Worksheet, r: int, c: int, link: Link, stream: SheetStream, fmts: Formats) -> None:
    url, shown = link
    if stream.urls < EXCEL_MAX_URLS and len(url) <= 2079:
        stream.urls += 1
        ws.write_url(r, c, url, fmts.link, string=shown)
    elif len(url) <= 255 and len(shown) <= 255:  # string limits inside a formula
        ws.write_formula(r, c, hyperlink_formula(url, shown), fmts.link, shown)
    else:
        write_text(ws, r, c, shown, fmts.text_quoted)


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
