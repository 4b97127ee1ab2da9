"""An indicator's definition in words: what the numerator and denominator count, from which forms, over
which period. One text for the web's definition page and the indicator table in the README, so a figure
on any page links to the same meaning."""

from __future__ import annotations

from rasoat.core.indicators.models import Filter, Indicator, Measure, MeasureKind, Window

_LEVEL_VI = {"hamlet": "thôn, xóm", "commune": "xã, phường", "province": "tỉnh, thành phố"}
_OPS = {"eq": "=", "ne": "≠", "in": "∈", "not_in": "∉", "gt": ">", "ge": "≥", "lt": "<", "le": "≤",
        "contains": "có chọn", "exists": "đã trả lời", "missing": "chưa trả lời"}
_WINDOW = {
    Window.period: "ghi ngày trong kỳ / dated in the period",
    Window.to_date: "từ trước đến hết kỳ / up to the period's end",
    Window.all: "mọi thời điểm / whatever the date",
}


def filter_text(f: Filter) -> str:
    value = ", ".join(map(str, f.value)) if isinstance(f.value, list) else f.value
    if f.op.value in ("exists", "missing"):
        return f"{f.field} {_OPS[f.op.value]}"
    return f"{f.field} {_OPS.get(f.op.value, f.op.value)} {value}"


def measure_text(m: Measure | None) -> str:
    """"tổng households_pledged (f2_pledge), ghi ngày trong kỳ theo ref_date"."""
    if m is None:
        return "—"
    if m.kind is MeasureKind.snapshot:
        return f"số liệu chốt của đợt {m.round_id}, chỉ tiêu {m.indicator} ({m.part})"
    if m.kind is MeasureKind.register:
        where = f", với {'; '.join(filter_text(f) for f in m.where)}" if m.where else ""
        return f"số {m.sites} trong danh sách các xã đã nạp / {m.sites} on the communes' loaded lists{where}"
    level = _LEVEL_VI.get(m.unit_level.value if m.unit_level else "", "")
    if m.kind is MeasureKind.units and not m.form:
        return f"số {level} trong danh mục đơn vị / {m.unit_level} units listed in the registry"
    if m.kind is MeasureKind.units:
        what = f"số {level} có bản ghi {m.form}"
    elif m.kind is MeasureKind.sum:
        what = f"tổng {m.field} ({m.form}{', từng dòng ' + m.repeat if m.repeat else ''})"
    elif m.distinct:
        what = f"số {m.distinct} khác nhau ({m.form})"
    elif m.repeat:
        what = f"số dòng {m.repeat} ({m.form})"
    else:
        what = f"số bản ghi {m.form}"
    parts = [what]
    if m.where:
        parts.append("với " + "; ".join(filter_text(f) for f in m.where))
    if m.row_where:
        parts.append("dòng có " + "; ".join(filter_text(f) for f in m.row_where))
    if m.latest_by or m.latest_per_unit:
        key = m.latest_by or f"mỗi {m.latest_per_unit}"
        parts.append(f"bản ghi mới nhất theo {key}" + (" (gộp các lần ghi)" if m.carry_forward else ""))
    parts.append(_WINDOW[m.window] + (f" theo {m.date_field}" if m.date_field else " theo ngày nhận"))
    if m.if_empty == "zero":
        parts.append("không có bản ghi mà đơn vị đã báo cáo trong kỳ = 0")
    return ", ".join(parts)


def formula_text(ind: Indicator) -> str:
    """"tử số ÷ mẫu số × 100" in words."""
    num = measure_text(ind.numerator)
    if ind.denominator is None:
        return num if ind.factor == 1 else f"{num} × {ind.factor:g}"
    factor = f" × {ind.factor:g}" if ind.factor != 1 else ""
    return f"[{num}] ÷ [{measure_text(ind.denominator)}]{factor}"


def forms_of(ind: Indicator) -> list[str]:
    return sorted({m.form for m in ind.measures() if m.form})


def fields_read(indicators: list[Indicator]) -> dict[str, set[str]]:
    """Per form, the fields the indicators read (filters, summed and distinct fields, dates, keys; a
    repeat's fields as ``repeat/field``): what docs/forms.md's account of every field is checked against."""
    out: dict[str, set[str]] = {}
    for ind in indicators:
        for m in ind.measures():
            if not m.form:
                continue
            read = out.setdefault(m.form, set())
            read.update(f.field for f in m.where)
            read.update(f"{m.repeat}/{f.field}" for f in m.row_where)
            for path in (m.field, m.distinct):
                if path:
                    read.add(f"{m.repeat}/{path}" if m.repeat else path)
            read.update(p for p in (m.date_field, m.latest_by, m.repeat) if p)
    return out
