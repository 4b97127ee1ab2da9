"""The workbook a province sends with its yearly classification (QĐ 28/2025 Art. 7): the per-commune
list (class, R, P, A, C, route) — the approved figures once the list is approved, else a draft marked
as such —, the province's own class (Art. 5), counts by type against last year, a signature block, and
a sheet of the communes flagged for review. Vietnamese headers with English beside, numbers written as
numbers, each sheet set up to print on A4 landscape.

``province_report`` gathers the rows once; the workbook and the printable web page both read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from rasoat.core.assessment import signoff
from rasoat.core.assessment.compute import assess_province
from rasoat.core.assessment.rules import PROVINCE_CRITERIA, PROVINCE_LABELS, class_label
from rasoat.core.audit import record
from rasoat.core.indicators.periods import vn_today
from rasoat.core.models import User
from rasoat.core.problems import both
from rasoat.core.storage.base import Store
from rasoat.core.units import UnitRegistry, get_units

TYPES = ("type_1", "type_2", "type_3", "drug_free", "unclassified", "unknown")

COMMUNE_HEADERS = [
    "STT / No.",
    "Mã xã / Code",
    "Tên xã, phường / Commune",
    "Phân loại / Class",
    "Nhân khẩu hiện đang cư trú / Residents",
    "Người nghiện, sử dụng có HSQL / With a record",
    "R (%)",
    "P: điểm tổ chức, chứa chấp / Venues",
    "Đối tượng bị bắt / Arrested",
    "A (%)",
    "C: số cây / Plants",
    "C: diện tích (m²) / Area",
    "Tuyến trọng điểm / Key route",
    "Trạng thái / State",
    "Thay đổi sau phê duyệt / Changed since approval",
]


@dataclass
class ProvinceReport:
    code: str
    name: str
    year: int
    approved: bool
    approved_by: str
    approved_at: str
    rows: list[dict[str, Any]]  # one per commune, in code order
    province: dict[str, Any]  # class, criteria, met, values
    counts: dict[str, int]
    last_counts: dict[str, int]
    last_source: str
    review: list[tuple[str, str, str]] = field(default_factory=list)  # code, name, message


def _row(code: str, name: str, fig: dict[str, Any], state: str, changed: dict[str, Any]) -> dict[str, Any]:
    return {"code": code, "name": name, **fig, "state": state, "changed": changed}


def province_report(
    store: Store, user: User, year: int, province: str, registry: UnitRegistry | None = None
) -> ProvinceReport:
    """The rows of the province's report; province officers (and administrators) of that province only."""
    registry = registry or get_units()
    signoff._require_province_role(user, province)
    pa = assess_province(store, year, province, registry)
    lst = signoff.list_doc(store, year, province)
    approved = lst["state"] == "approved"
    changes = signoff.changes_since_approval(lst, pa) if approved else {}
    frozen = lst.get("communes") or {}
    rows, review = [], []
    for c in pa.communes:
        fig = frozen[c.code] if approved and c.code in frozen else signoff.figures_of(c)
        state = signoff.commune_doc(store, year, c.code)["state"]
        rows.append(_row(c.code, c.name, fig, state, changes.get(c.code, {})))
        review += [(c.code, c.name, both(f.message)) for f in c.result.flags]
    prov = lst["province"] if approved else {
        "class": pa.result.klass, "criteria": pa.result.criteria, "met": pa.result.met,
        "values": pa.result.values,
    }
    counts = {t: sum(1 for r in rows if r["class"] == t) for t in TYPES}
    last = signoff.list_doc(store, year - 1, province)
    if last["state"] == "approved":
        last_counts = {t: sum(1 for f in last["communes"].values() if f["class"] == t) for t in TYPES}
        last_source = f"Danh sách {year - 1} đã phê duyệt / approved {year - 1} list"
    else:
        before = assess_province(store, year - 1, province, registry)
        last_counts = {t: sum(1 for c in before.communes if c.result.klass == t) for t in TYPES}
        last_source = f"Tính từ sổ năm {year - 1} (chưa phê duyệt) / computed from {year - 1} registers"
    return ProvinceReport(
        province, pa.name, year, approved, lst.get("approved_by", ""), lst.get("approved_at", ""), rows,
        prov, counts, last_counts, last_source, review,
    )


def _label(klass: str) -> str:
    return both(class_label(klass))


def _tri(value: bool | None) -> str:
    return {True: "Đạt / Met", False: "Không / Not met", None: "Chưa xác định / Unknown"}[value]


def _print_setup(ws: Any, last_col: int, header_row: int | None = None) -> None:
    ws.set_landscape()
    ws.set_paper(9)  # A4
    ws.fit_to_pages(1, 0)  # one page wide, as many tall as needed
    ws.set_margins(left=0.4, right=0.4, top=0.5, bottom=0.5)
    if header_row is not None:
        ws.repeat_rows(header_row)
    ws.print_area(0, 0, 10_000 if header_row is not None else 60, last_col)


def write_workbook(
    store: Store,
    user: User,
    year: int,
    province: str,
    target: str | Path | IO[bytes],
    prepared_by: str = "",
    registry: UnitRegistry | None = None,
) -> ProvinceReport:
    """Write the province's workbook to ``target`` (a path or a binary stream) and audit the export."""
    from xlsxwriter import Workbook

    rep = province_report(store, user, year, province, registry)
    options = {"strings_to_numbers": False, "strings_to_formulas": False, "strings_to_urls": False}
    wb = Workbook(target, options)
    try:
        title = wb.add_format({"bold": True, "font_size": 13, "align": "center"})
        bold = wb.add_format({"bold": True})
        head = wb.add_format({"bold": True, "text_wrap": True, "valign": "vcenter", "align": "center",
                              "border": 1, "bg_color": "#DDEBF7"})
        cell = wb.add_format({"border": 1, "valign": "top", "text_wrap": True})
        integer = wb.add_format({"border": 1, "num_format": "#,##0"})
        pct = wb.add_format({"border": 1, "num_format": "0.000"})
        decimal = wb.add_format({"border": 1, "num_format": "#,##0.0"})

        def num(ws: Any, r: int, c: int, value: Any, fmt: Any) -> None:
            if value is None:
                ws.write_string(r, c, "?", cell)  # unknown stays visibly unknown, never 0
            else:
                ws.write_number(r, c, value, fmt)

        # 1. the per-commune list
        ws = wb.add_worksheet("Danh sách xã")
        status = (
            f"Đã phê duyệt bởi / approved by {rep.approved_by}, {rep.approved_at[:10]}" if rep.approved
            else "DỰ THẢO — chưa phê duyệt / DRAFT — not approved"
        )
        n_cols = len(COMMUNE_HEADERS)
        ws.merge_range(0, 0, 0, n_cols - 1, f"UBND {rep.name.upper()}", title)
        ws.merge_range(1, 0, 1, n_cols - 1, f"DANH SÁCH PHÂN LOẠI ĐỊA BÀN CẤP XÃ VỀ MA TÚY NĂM {year} / "
                       f"Commune drug-area classification {year}", title)
        ws.merge_range(2, 0, 2, n_cols - 1, f"Theo Quyết định 28/2025/QĐ-TTg; kỳ đánh giá 15/12/{year - 1} – "
                       f"14/12/{year} / assessment period. {status}", bold)
        header_row = 4
        for col, text in enumerate(COMMUNE_HEADERS):
            ws.write_string(header_row, col, text, head)
        ws.set_row(header_row, 60)
        for col, width in enumerate((5, 8, 24, 16, 12, 12, 8, 10, 10, 8, 10, 11, 10, 14, 30)):
            ws.set_column(col, col, width)
        r = header_row
        for i, row in enumerate(rep.rows, start=1):
            r += 1
            ws.write_number(r, 0, i, integer)
            ws.write_string(r, 1, row["code"], cell)
            ws.write_string(r, 2, row["name"], cell)
            ws.write_string(r, 3, _label(row["class"]), cell)
            num(ws, r, 4, row["population"], integer)
            num(ws, r, 5, row["managed"], integer)
            num(ws, r, 6, row["r_pct"], pct)
            num(ws, r, 7, row["venues"], integer)
            num(ws, r, 8, row["arrested"], integer)
            num(ws, r, 9, row["a_pct"], pct)
            num(ws, r, 10, row["plants"], integer)
            num(ws, r, 11, row["area_m2"], decimal)
            route = row["on_route"]
            ws.write_string(r, 12, "?" if route is None else "Có / Yes" if route else "Không / No", cell)
            ws.write_string(r, 13, both(signoff.state_names(row["state"])), cell)
            changed = "; ".join(f"{k}: {a} → {b}" for k, (a, b) in row["changed"].items())
            ws.write_string(r, 14, changed, cell)
        ws.freeze_panes(header_row + 1, 3)
        r += 2
        today = vn_today().strftime("%d/%m/%Y")
        ws.write_string(r, 1, "NGƯỜI LẬP BIỂU / Prepared by", bold)
        ws.write_string(r, 8, "NGƯỜI PHÊ DUYỆT / Approved by", bold)
        ws.write_string(r + 1, 1, prepared_by or user.display_name or user.username)
        ws.write_string(r + 1, 8, rep.approved_by or "")
        ws.write_string(r + 2, 1, "(Ký, ghi rõ họ tên / signature, full name)")
        ws.write_string(r + 2, 8, "(Ký tên, đóng dấu / signature and seal)")
        ws.write_string(r + 4, 8, f"Ngày / Date: {today}")
        _print_setup(ws, n_cols - 1, header_row)

        # 2. the province (Art. 5)
        ws = wb.add_worksheet("Tỉnh")
        ws.merge_range(0, 0, 0, 3, f"PHÂN LOẠI CẤP TỈNH (Điều 5) / Province class — {rep.name}", title)
        for col, text in enumerate(("Tiêu chí / Criterion", "Giá trị / Value", "Ngưỡng / Threshold",
                                    "Kết quả / Result")):
            ws.write_string(2, col, text, head)
        values = rep.province["values"]
        keys = ("r_pct", "p", "a_pct", "t12_pct", "plants", None)
        for i, (k, criterion) in enumerate(PROVINCE_CRITERIA.items(), start=3):
            ws.write_string(i, 0, f"{k}. {both(criterion)}", cell)
            vkey = keys[int(k) - 1]
            if vkey is None:
                ws.write_string(i, 1, "", cell)
            else:
                num(ws, i, 1, values.get(vkey), pct if vkey.endswith("pct") else integer)
            ws.write_string(i, 2, criterion[0], cell)
            ws.write_string(i, 3, _tri(rep.province["criteria"].get(k)), cell)
        ws.write_string(10, 0, "Kết luận / Result (≥ 4/6)", bold)
        ws.write_string(10, 1, both(PROVINCE_LABELS[rep.province["class"]]), bold)
        ws.write_string(11, 0, "Số tiêu chí đạt / Criteria met", bold)
        ws.write_number(11, 1, rep.province["met"])
        ws.set_column(0, 0, 50)
        ws.set_column(1, 3, 20)
        _print_setup(ws, 3)

        # 3. counts by type against last year
        ws = wb.add_worksheet("So sánh")
        ws.merge_range(0, 0, 0, 3, f"SỐ XÃ THEO LOẠI, SO VỚI NĂM {year - 1} / Communes by type", title)
        for col, text in enumerate(("Loại / Type", f"Năm {year}", f"Năm {year - 1}", "Tăng, giảm / Change")):
            ws.write_string(2, col, text, head)
        for i, t in enumerate(TYPES, start=3):
            ws.write_string(i, 0, _label(t), cell)
            ws.write_number(i, 1, rep.counts[t], integer)
            ws.write_number(i, 2, rep.last_counts[t], integer)
            ws.write_number(i, 3, rep.counts[t] - rep.last_counts[t], integer)
        ws.write_string(len(TYPES) + 4, 0, f"Nguồn năm trước / last year's source: {rep.last_source}")
        ws.set_column(0, 0, 34)
        ws.set_column(1, 3, 14)
        _print_setup(ws, 3)

        # 4. communes flagged for review
        ws = wb.add_worksheet("Cần xem xét")
        for col, text in enumerate(("Mã xã / Code", "Tên xã / Commune", "Lý do cần xem xét / Why")):
            ws.write_string(0, col, text, head)
        for i, (code, name, message) in enumerate(rep.review, start=1):
            ws.write_string(i, 0, code, cell)
            ws.write_string(i, 1, name, cell)
            ws.write_string(i, 2, message, cell)
        ws.set_column(0, 0, 10)
        ws.set_column(1, 1, 24)
        ws.set_column(2, 2, 110)
        _print_setup(ws, 2, 0)
    finally:
        wb.close()
    record(store, user.username, "export.assessment", target=province, year=year, communes=len(rep.rows))
    return rep
