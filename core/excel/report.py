"""The indicator report workbook: a cover sheet, then one sheet per level (province, communes, hamlets)
with each indicator's value against its target, the status in colour, last year's change and charts.

The writer takes already-computed results (``core.indicators.engine.evaluate`` gives ``IndicatorResult``s,
which fit ``IndicatorRow``); it computes nothing itself. A report holds a few thousand rows at most,
so it is written in normal (not constant-memory) mode, which conditional formats and charts need.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from rasoat.core.excel.cells import FMT_CHANGE, Formats, sheet_name, to_vn_naive, write_text
from rasoat.core.excel.raw import Target
from rasoat.core.indicators.models import REPORTING_WORDS, reported_text, uncounted_text
from rasoat.core.models import utcnow
from rasoat.core.problems import both
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

LEVEL_ORDER = ("province", "commune", "hamlet")
LEVEL_SHEETS = {"province": "Cấp tỉnh", "commune": "Cấp xã", "hamlet": "Cấp thôn"}
LEVEL_TITLES = {
    "province": "Tỉnh, thành phố / Province",
    "commune": "Xã, phường, đặc khu / Communes",
    "hamlet": "Thôn, xóm, tổ dân phố / Hamlets",
}
# Status: (Vietnamese text written in the cell, English, fill colour, font colour).
STATUS_STYLE: dict[str, tuple[str, str, str, str]] = {
    "met": ("Đạt", "Met", "#C6EFCE", "#006100"),
    "not_met": ("Chưa đạt", "Not met", "#FFC7CE", "#9C0006"),
    "on_track": ("Đúng hướng", "On track", "#FFEB9C", "#9C5700"),
    "no_data": ("Không có số liệu", "No data", "#EDEDED", "#595959"),
    "no_target": ("Không có chỉ tiêu", "No target", "#FFFFFF", "#404040"),
    "unknown": ("Không xác định", "Unknown", "#FCE4D6", "#833C0B"),
}
COLUMNS = (
    ("Mã đơn vị\nUnit code", 11),
    ("Đơn vị\nUnit", 26),
    ("Mã chỉ tiêu\nIndicator id", 11),
    ("Chỉ tiêu\nIndicator", 44),
    ("Indicator (English)", 30),
    ("Giá trị\nValue", 11),
    ("Đơn vị tính\nUnit of measure", 10),
    ("Tử số\nNumerator", 11),
    ("Mẫu số\nDenominator", 11),
    ("Chỉ tiêu đề ra\nTarget", 16),
    ("Ngưỡng\nTarget value", 10),
    ("Thời hạn\nDeadline", 9),
    ("Đánh giá\nStatus", 16),
    ("Kỳ trước\nPrevious", 11),
    ("Thay đổi\nChange", 11),
    ("Thay đổi %\nChange %", 11),
    ("Đơn vị đã báo cáo\nUnits reported", 12),
    ("Tiến độ % (giá trị / chỉ tiêu)\nProgress %", 12),
    ("Thời gian đã qua %\nTime gone %", 12),
)
COL_VALUE, COL_TARGET_VALUE, COL_STATUS = 5, 10, 12
COL_REPORTED, COL_PROGRESS, COL_ELAPSED = 16, 17, 18
CHART_COL = len(COLUMNS) + 1
CHART_ROWS = 18
CHART_DATA_SHEET = "Số liệu biểu đồ"  # hidden: each chart's bars, sorted, which the level sheets are not
LEVEL_UNITS = REPORTING_WORDS


class IndicatorRow(Protocol):
    """One indicator for one unit, as the report needs it (``core.indicators.IndicatorResult`` fits)."""

    indicator_id: str
    name_vi: str
    name_en: str
    unit_code: str
    unit_name: str
    level: Any  # "province" | "commune" | "hamlet" (a str enum is fine)
    value: float | None
    numerator: float | None
    denominator: float | None
    unit_label: str
    target_op: str | None
    target_value: float | None
    target_deadline: int | None
    status: Any  # "met" | "not_met" | "on_track" | "no_data" | "no_target" | "unknown"
    previous_value: float | None
    change: float | None


@dataclass
class IndicatorResultRow:
    """A plain row for callers that do not use the indicator engine (tests, other sources)."""

    indicator_id: str
    name_vi: str
    name_en: str
    unit_code: str
    unit_name: str
    level: str
    value: float | None
    numerator: float | None = None
    denominator: float | None = None
    unit_label: str = ""
    target_op: str | None = None
    target_value: float | None = None
    target_deadline: int | None = None
    status: str = "no_data"
    previous_value: float | None = None
    change: float | None = None
    change_pct: float | None = None
    target_text: str | None = None
    target_on: str | None = None


@dataclass
class ReportMeta:
    """What the cover sheet says."""

    plan: str = ""
    reporting: str = ""  # each plan's cadence and recipients (core.plans.Plan), one plan per line
    period: str = ""
    unit_code: str | None = None
    unit_name: str = ""
    generated_by: str = ""
    generated_at: datetime = field(default_factory=utcnow)
    title: str = "BÁO CÁO KẾT QUẢ THỰC HIỆN CÁC CHỈ TIÊU"
    title_en: str = "Indicator report"
    # Who stands behind the figures. Nothing here is "được công nhận" (recognised) until the competent
    # authority approves it; until then the figures are the units' own self-assessment.
    approved_by: str | None = None
    notes: list[str] = field(default_factory=list)  # what the reader must know (records not counted, …)


SELF_ASSESSMENT = (
    "Tự đánh giá của đơn vị, chưa được cấp có thẩm quyền phê duyệt / "
    "Self-assessment by the units, not approved by the competent authority"
)


@dataclass(frozen=True)
class ReportOptions:
    charts: bool = True
    bars_per_chart: int = 30  # a longer list is split across several charts (readable labels)


@dataclass
class ReportStats:
    sheets: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)  # sheet -> data rows
    charts: int = 0


def write_report_workbook(
    rows: Iterable[IndicatorRow],
    target: Target,
    meta: ReportMeta | None = None,
    options: ReportOptions | None = None,
) -> ReportStats:
    """Write the report to a path or a binary file object."""
    meta = meta or ReportMeta()
    opts = options or ReportOptions()
    by_level = _group(rows)
    stats = ReportStats()
    wb = Workbook(
        target, {"strings_to_numbers": False, "strings_to_formulas": False, "strings_to_urls": False}
    )
    try:
        fmts = Formats(wb)
        styles = _Styles(wb)
        used: set[str] = set()
        cover = wb.add_worksheet(sheet_name("Bìa", used))
        stats.sheets.append(cover.name)
        summaries = []
        sheets = []
        for level, level_rows in by_level:
            name = sheet_name(LEVEL_SHEETS.get(level, level or "Khác"), used)
            sheets.append((wb.add_worksheet(name), level, level_rows))
            stats.sheets.append(name)
            stats.rows[name] = len(level_rows)
            summaries.append((name, LEVEL_TITLES.get(level, level), _status_counts(level_rows)))
        data = None
        if opts.charts and any(r.value is not None for _, _, rows_ in sheets for r in rows_):
            data = _ChartData(wb.add_worksheet(sheet_name(CHART_DATA_SHEET, used)))
        for ws, level, level_rows in sheets:
            _write_level(ws, level_rows, fmts, styles)
            if data is not None:
                stats.charts += _charts(wb, ws, level, level_rows, data, opts)
        _write_cover(cover, meta, summaries, fmts, styles)
        cover.activate()
    finally:
        wb.close()
    return stats


def _group(rows: Iterable[IndicatorRow]) -> list[tuple[str, list[IndicatorRow]]]:
    """Rows by level (province first), each level by indicator (first-seen order) then unit code, so
    every indicator's units sit in one block a chart can point at."""
    levels: dict[str, list[IndicatorRow]] = {}
    order: dict[str, int] = {}
    for row in rows:
        levels.setdefault(_text(row.level), []).append(row)
        order.setdefault(row.indicator_id, len(order))
    ranked = sorted(levels, key=lambda lv: (LEVEL_ORDER.index(lv) if lv in LEVEL_ORDER else 99, lv))
    return [
        (lv, sorted(levels[lv], key=lambda r: (order[r.indicator_id], str(r.unit_code)))) for lv in ranked
    ]


def _text(value: Any) -> str:
    return str(getattr(value, "value", value) or "")


class _Styles:
    def __init__(self, wb: Workbook) -> None:
        self.header = wb.add_format(
            {"bold": True, "text_wrap": True, "valign": "top", "bg_color": "#DDEBF7", "border": 1}
        )
        self.status = {
            key: wb.add_format({"bg_color": fill, "font_color": font})
            for key, (_, _, fill, font) in STATUS_STYLE.items()
        }
        self.int = wb.add_format({"num_format": "#,##0"})
        self.dec = wb.add_format({"num_format": "#,##0.0"})
        self.change = wb.add_format({"num_format": FMT_CHANGE})
        self.change_pct = wb.add_format({"num_format": '+#,##0.0"%";-#,##0.0"%";0.0"%"'})
        self.wrap = wb.add_format({"text_wrap": True, "valign": "top"})


def _number(ws: Worksheet, r: int, c: int, value: Any, styles: _Styles, fmt: Any = None) -> None:
    if value is None or isinstance(value, bool):
        return
    try:
        x = float(value)
    except (TypeError, ValueError):
        return
    if x != x or x in (float("inf"), float("-inf")):
        return
    ws.write_number(r, c, x, fmt or (styles.int if x.is_integer() else styles.dec))


def _target_text(row: IndicatorRow) -> str:
    text = getattr(row, "target_text", None)
    if text:
        return str(text)
    if row.target_op is None or row.target_value is None:
        return ""
    op = str(_text(row.target_op)).replace(">=", "≥").replace("<=", "≤")
    deadline = f" ({row.target_deadline})" if row.target_deadline else ""
    return f"{op} {row.target_value:g}{deadline}"


def _write_level(ws: Worksheet, rows: list[IndicatorRow], fmts: Formats, styles: _Styles) -> None:
    for c, (header, width) in enumerate(COLUMNS):
        ws.write_string(0, c, header, styles.header)
        ws.set_column(c, c, width)
    ws.set_row(0, 30)
    quoted = fmts.text_quoted
    for r, row in enumerate(rows, start=1):
        write_text(ws, r, 0, str(row.unit_code), quoted)
        write_text(ws, r, 1, str(row.unit_name or ""), quoted)
        write_text(ws, r, 2, str(row.indicator_id), quoted)
        write_text(ws, r, 3, str(row.name_vi or ""), quoted)
        write_text(ws, r, 4, str(row.name_en or ""), quoted)
        suppressed = getattr(row, "suppressed", None)
        uncounted = getattr(row, "uncounted_encrypted", 0)
        if uncounted:  # records it needs cannot be read: no number, never a bare 0
            write_text(ws, r, COL_VALUE, both(uncounted_text(uncounted)), quoted)
        elif suppressed:  # a small person count withheld (core.indicators.privacy)
            write_text(ws, r, COL_VALUE, str(suppressed), quoted)
        else:
            _number(ws, r, COL_VALUE, row.value, styles)
        if row.unit_label:
            write_text(ws, r, 6, str(row.unit_label), quoted)
        _number(ws, r, 7, row.numerator, styles)
        _number(ws, r, 8, row.denominator, styles)
        target = _target_text(row)
        if target:
            write_text(ws, r, 9, target, quoted)
        if _target_on_value(row):
            _number(ws, r, COL_TARGET_VALUE, row.target_value, styles)
        if row.target_deadline:
            ws.write_number(r, 11, int(row.target_deadline))
        status = _text(row.status)
        ws.write_string(r, COL_STATUS, STATUS_STYLE.get(status, (status,))[0])
        _number(ws, r, 13, row.previous_value, styles)
        _number(ws, r, 14, row.change, styles, styles.change)
        _number(ws, r, 15, getattr(row, "change_pct", None), styles, styles.change_pct)
        reported = reported_text(row)
        if reported:
            write_text(ws, r, COL_REPORTED, reported, quoted)
        _number(ws, r, COL_PROGRESS, getattr(row, "progress_pct", None), styles, styles.dec)
        _number(ws, r, COL_ELAPSED, getattr(row, "elapsed_pct", None), styles, styles.dec)
    last = len(rows)
    ws.freeze_panes(1, 2)
    if last:
        ws.autofilter(0, 0, last, len(COLUMNS) - 1)
        _status_colours(ws, last, styles)


def _target_on_value(row: IndicatorRow) -> bool:
    """A target line belongs on a value chart only when the target is on the value (not on a change)."""
    return _text(getattr(row, "target_on", None) or "value") == "value"


def _status_colours(ws: Worksheet, last: int, styles: _Styles) -> None:
    """Colour the status cell, and the value beside it, by the status text (conditional formats, so a
    user who edits a status sees the colour follow)."""
    status_col = _col_letter(COL_STATUS)
    for key, (text, _, _, _) in STATUS_STYLE.items():
        fmt = styles.status[key]
        ws.conditional_format(
            1,
            COL_STATUS,
            last,
            COL_STATUS,
            {"type": "cell", "criteria": "==", "value": f'"{text}"', "format": fmt},
        )
        ws.conditional_format(
            1,
            COL_VALUE,
            last,
            COL_VALUE,
            {"type": "formula", "criteria": f'=${status_col}2="{text}"', "format": fmt},
        )


def _col_letter(col: int) -> str:
    letters = ""
    col += 1
    while col:
        col, rem = divmod(col - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


class _ChartData:
    """The hidden sheet the charts read: one block of (unit, value, target) rows per chart."""

    def __init__(self, ws: Worksheet) -> None:
        self.ws = ws
        self.row = 0
        ws.hide()
        ws.write_row(0, 0, ["Đơn vị / Unit", "Giá trị / Value", "Chỉ tiêu / Target"])
        self.row = 1

    def block(self, rows: list[IndicatorRow], with_target: bool) -> tuple[str, str, str]:
        """Write the rows; the (categories, values, targets) ranges for a chart."""
        first = self.row
        for row in rows:
            self.ws.write_string(self.row, 0, str(row.unit_name or row.unit_code))
            self.ws.write_number(self.row, 1, float(row.value))  # type: ignore[arg-type]
            if with_target and row.target_value is not None:
                self.ws.write_number(self.row, 2, float(row.target_value))
            self.row += 1
        last = self.row
        name = self.ws.get_name().replace("'", "''")
        ref = f"'{name}'"
        return (f"={ref}!$A${first + 1}:$A${last}", f"={ref}!$B${first + 1}:$B${last}",
                f"={ref}!$C${first + 1}:$C${last}")


def _worst_first(rows: list[IndicatorRow]) -> list[IndicatorRow]:
    """Units with data, the furthest from the target first: lowest first for a value that must rise,
    highest first for one that must stay down (or without a target)."""
    op = _text(rows[0].target_op) if rows else ""
    rising = op in (">", ">=") and _target_on_value(rows[0])
    return sorted(rows, key=lambda r: (float(r.value) if rising else -float(r.value), str(r.unit_code)))  # type: ignore[arg-type]


def _charts(
    wb: Workbook, ws: Worksheet, level: str, rows: list[IndicatorRow], data: _ChartData, opts: ReportOptions
) -> int:
    """Per indicator: its units with data as bars, worst first, the target as a line, split into charts
    of ``bars_per_chart`` bars; the title says how many units had no data."""
    blocks: dict[str, list[IndicatorRow]] = {}
    for row in rows:
        blocks.setdefault(row.indicator_id, []).append(row)
    made = 0
    word = LEVEL_UNITS.get(level, "")
    for block in blocks.values():
        with_data = _worst_first([r for r in block if r.value is not None])
        if not with_data:
            continue
        missing = len(block) - len(with_data)
        head = block[0]
        with_target = _target_on_value(head) and any(r.target_value is not None for r in with_data)
        size = max(1, opts.bars_per_chart)
        parts = [with_data[i : i + size] for i in range(0, len(with_data), size)]
        for n, part in enumerate(parts, start=1):
            cats, values, targets = data.block(part, with_target)
            chart = wb.add_chart({"type": "column"})
            chart.add_series({"name": "Giá trị / Value", "categories": cats, "values": values,
                              "fill": {"color": "#4472C4"}})
            if with_target:
                line = wb.add_chart({"type": "line"})
                line.add_series({"name": "Chỉ tiêu / Target", "categories": cats, "values": targets,
                                 "line": {"color": "#C00000", "width": 2, "dash_type": "dash"},
                                 "marker": {"type": "none"}})
                chart.combine(line)
            unit = f" ({head.unit_label})" if head.unit_label else ""
            part_text = f" [{n}/{len(parts)}]" if len(parts) > 1 else ""
            no_data = (f" — {missing} {word} không có số liệu / no data".replace("  ", " ")
                       if missing else "")
            chart.set_title({"name": f"{head.indicator_id}: {head.name_vi}{unit}{part_text}{no_data}"[:250],
                             "name_font": {"size": 11}})
            chart.set_legend({"position": "bottom"})
            chart.set_y_axis({"num_format": "#,##0.0", "major_gridlines": {"visible": True}})
            chart.set_x_axis({"num_font": {"rotation": -45}})
            chart.set_size({"width": 720, "height": CHART_ROWS * 20})
            ws.insert_chart(1 + made * (CHART_ROWS + 1), CHART_COL, chart)
            made += 1
    return made


def _status_counts(rows: Sequence[IndicatorRow]) -> dict[str, int]:
    counts = dict.fromkeys(STATUS_STYLE, 0)
    for row in rows:
        key = _text(row.status)
        counts[key] = counts.get(key, 0) + 1
    return counts


def _write_cover(
    ws: Worksheet,
    meta: ReportMeta,
    summaries: list[tuple[str, str, dict[str, int]]],
    fmts: Formats,
    styles: _Styles,
) -> None:
    ws.set_column(0, 0, 34)
    ws.set_column(1, 1, 60)
    ws.set_column(2, 6, 16)
    ws.write_string(0, 0, meta.title, fmts.title)
    ws.write_string(1, 0, meta.title_en, fmts.bold)
    unit = " – ".join(x for x in (meta.unit_code or "", meta.unit_name) if x) or "Toàn bộ / All"
    lines: list[tuple[str, Any]] = [
        ("Kế hoạch / Plan", meta.plan),
        ("Định kỳ báo cáo, nơi nhận / Reporting cadence, recipients", meta.reporting),
        ("Tính chất số liệu / Status of the figures",
         f"Đã phê duyệt / Approved: {meta.approved_by}" if meta.approved_by else SELF_ASSESSMENT),
        ("Kỳ báo cáo / Period", meta.period),
        ("Đơn vị / Unit", unit),
        ("Thời điểm lập (giờ Việt Nam) / Generated at (Vietnam time)", to_vn_naive(meta.generated_at)),
        ("Người lập / Generated by", meta.generated_by),
    ]
    lines += [("Ghi chú / Note", note) for note in meta.notes]
    r = 3
    for label, value in lines:
        ws.write_string(r, 0, label, fmts.bold)
        if isinstance(value, datetime):
            ws.write_datetime(r, 1, value, fmts.vn_datetime)
        elif value:
            write_text(ws, r, 1, str(value), fmts.text_quoted)
        r += 1
    r += 1
    ws.write_string(r, 0, "Tổng hợp đánh giá / Summary", fmts.bold)
    r += 1
    ws.write_string(r, 0, "Trang / Sheet", styles.header)
    ws.write_string(r, 1, "Cấp / Level", styles.header)
    for c, key in enumerate(STATUS_STYLE, start=2):
        vi, en, _, _ = STATUS_STYLE[key]
        ws.write_string(r, c, f"{vi}\n{en}", styles.header)
    ws.set_row(r, 30)
    for name, title, counts in summaries:
        r += 1
        ws.write_url(r, 0, f"internal:'{name}'!A1", string=name)
        ws.write_string(r, 1, title)
        for c, key in enumerate(STATUS_STYLE, start=2):
            ws.write_number(r, c, counts.get(key, 0))
    r += 2
    ws.write_string(r, 0, "Chú giải / Legend", fmts.bold)
    for key, (vi, en, _, _) in STATUS_STYLE.items():
        r += 1
        ws.write_string(r, 0, vi, styles.status[key])
        ws.write_string(r, 1, en)
    r += 2
    ws.write_string(
        r,
        0,
        "Số hiển thị theo định dạng của máy (cài đặt Tiếng Việt: 1.234,5) / "
        "Numbers follow the computer's regional settings (Vietnamese: 1.234,5)",
    )
