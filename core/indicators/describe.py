"""An indicator's definition in words: what the numerator and denominator count, from which forms, over
which period. One text for the web's definition page and the indicator table in the README, so a figure
on any page links to the same meaning."""

from __future__ import annotations

from rasoat.core.indicators.models import Filter, Indicator, Measure, MeasureKind, Window
from rasoat.core.problems import Words

_LEVEL: dict[str, Words] = {"hamlet": ("thôn, xóm", "hamlets"), "commune": ("xã, phường", "communes"),
                             "province": ("tỉnh, thành phố", "provinces")}
_OPS = {"eq": "=", "ne": "≠", "in": "∈", "not_in": "∉", "gt": ">", "ge": "≥", "lt": "<", "le": "≤"}
_WORD_OPS: dict[str, Words] = {"contains": ("có chọn", "includes"), "exists": ("đã trả lời", "answered"),
                               "missing": ("chưa trả lời", "not answered")}
_WINDOW: dict[Window, Words] = {
    Window.period: ("ghi ngày trong kỳ", "dated in the period"),
    Window.to_date: ("từ trước đến hết kỳ", "up to the period's end"),
    Window.all: ("mọi thời điểm", "whatever the date"),
}


def filter_words(f: Filter) -> Words:
    value = ", ".join(map(str, f.value)) if isinstance(f.value, list) else f.value
    if f.op.value in _WORD_OPS:
        vi, en = _WORD_OPS[f.op.value]
        tail = "" if f.op.value in ("exists", "missing") else f" {value}"
        return f"{f.field} {vi}{tail}", f"{f.field} {en}{tail}"
    text = f"{f.field} {_OPS.get(f.op.value, f.op.value)} {value}"
    return text, text


def _joined(words: list[Words], sep: str) -> Words:
    return sep.join(w[0] for w in words), sep.join(w[1] for w in words)


def measure_words(m: Measure | None) -> Words:
    """What a numerator or denominator counts, in both languages: ("tổng households_pledged (f2_pledge),
    ghi ngày trong kỳ theo ref_date", "sum of households_pledged (f2_pledge), dated in the period by
    ref_date")."""
    if m is None:
        return "—", "—"
    if m.kind is MeasureKind.snapshot:
        return (f"số liệu chốt của đợt {m.round_id}, chỉ tiêu {m.indicator} ({m.part})",
                f"figures frozen by round {m.round_id}, indicator {m.indicator} ({m.part})")
    where = _joined([filter_words(f) for f in m.where], "; ")
    if m.kind is MeasureKind.register:
        vi, en = f"số {m.sites} trong danh sách các xã đã nạp", f"{m.sites} on the communes' loaded lists"
        return (f"{vi}, với {where[0]}", f"{en}, with {where[1]}") if m.where else (vi, en)
    level = _LEVEL.get(m.unit_level.value if m.unit_level else "", ("", ""))
    if m.kind is MeasureKind.units and not m.form:
        return f"số {level[0]} trong danh mục đơn vị", f"{level[1]} listed in the registry"
    if m.kind is MeasureKind.units:
        what = f"số {level[0]} có bản ghi {m.form}", f"{level[1]} with a {m.form} record"
    elif m.kind is MeasureKind.sum:
        rows = (f", từng dòng {m.repeat}", f", each {m.repeat} row") if m.repeat else ("", "")
        what = f"tổng {m.field} ({m.form}{rows[0]})", f"sum of {m.field} ({m.form}{rows[1]})"
    elif m.distinct:
        what = f"số {m.distinct} khác nhau ({m.form})", f"distinct {m.distinct} ({m.form})"
    elif m.repeat:
        what = f"số dòng {m.repeat} ({m.form})", f"{m.repeat} rows ({m.form})"
    else:
        what = f"số bản ghi {m.form}", f"{m.form} records"
    parts = [what]
    if m.where:
        parts.append((f"với {where[0]}", f"with {where[1]}"))
    if m.row_where:
        rows_where = _joined([filter_words(f) for f in m.row_where], "; ")
        parts.append((f"dòng có {rows_where[0]}", f"rows with {rows_where[1]}"))
    if m.latest_by or m.latest_per_unit:
        key = (m.latest_by, m.latest_by) if m.latest_by else (f"mỗi {m.latest_per_unit}",
                                                              f"each {m.latest_per_unit}")
        merged = (" (gộp các lần ghi)", " (answers carried forward)") if m.carry_forward else ("", "")
        parts.append((f"bản ghi mới nhất theo {key[0]}{merged[0]}",
                      f"the latest record by {key[1]}{merged[1]}"))
    window = _WINDOW[m.window]
    by = ((f" theo {m.date_field}", f" by {m.date_field}") if m.date_field
          else (" theo ngày nhận", " by arrival"))
    parts.append((window[0] + by[0], window[1] + by[1]))
    if m.if_empty == "zero":
        parts.append(("không có bản ghi mà đơn vị đã báo cáo trong kỳ = 0",
                      "no record from a unit that reported in the period = 0"))
    return _joined(parts, ", ")


def formula_text(ind: Indicator) -> Words:
    """"tử số ÷ mẫu số × 100" in words, in both languages."""
    num = measure_words(ind.numerator)
    factor = f" × {ind.factor:g}" if ind.factor != 1 else ""
    if ind.denominator is None:
        return num[0] + factor, num[1] + factor
    den = measure_words(ind.denominator)
    return f"[{num[0]}] ÷ [{den[0]}]{factor}", f"[{num[1]}] ÷ [{den[1]}]{factor}"


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
