"""Indicators as data: what to count (Measure), how to judge it (Target), where it comes from (PlanSource).

A definition is plain data a plugin writes in YAML/JSON or builds in Python; the engine
(``core.indicators.engine``) turns it into numbers. Nothing here reads storage.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from rasoat.core.indicators.periods import PeriodKind
from rasoat.core.problems import Words, both


class Level(StrEnum):
    hamlet = "hamlet"
    commune = "commune"
    province = "province"


LEVEL_RANK: dict[Level, int] = {Level.hamlet: 0, Level.commune: 1, Level.province: 2}
LEVEL_LABELS: dict[Level, str] = {
    Level.hamlet: "Thôn/xóm / Hamlet",
    Level.commune: "Xã/phường / Commune",
    Level.province: "Tỉnh / Province",
}


class FilterOp(StrEnum):
    eq = "eq"
    ne = "ne"
    in_ = "in"
    not_in = "not_in"
    gt = "gt"
    ge = "ge"
    lt = "lt"
    le = "le"
    contains = "contains"  # a select_multiple answer ("a b c") holds the value
    lacks = "lacks"  # … holds none of the values
    exists = "exists"  # answered (not missing, not empty)
    missing = "missing"  # not answered


_OP_ALIASES = {"=": "eq", "==": "eq", "!=": "ne", "≠": "ne", ">": "gt", ">=": "ge", "≥": "ge", "<": "lt",
               "<=": "le", "≤": "le", "not in": "not_in", "has": "contains",
               "not_contains": "lacks"}


def _choice_text(value: Any) -> Any:
    """Submitted values are strings. YAML 1.1 reads an unquoted yes/no as a boolean: give it back as the
    choice name it was meant to be, and numbers as their text, so ``eq`` compares like with like."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple | set):
        return [_choice_text(v) for v in value]
    if isinstance(value, int | float):
        return value
    return None if value is None else str(value)


class Filter(BaseModel):
    """A condition on one field: ``{field: category, op: in, value: [addict, user]}``."""

    model_config = ConfigDict(frozen=True)

    field: str
    op: FilterOp = FilterOp.eq
    value: Any = None

    @field_validator("op", mode="before")
    @classmethod
    def _alias(cls, v: Any) -> Any:
        return _OP_ALIASES.get(v, v) if isinstance(v, str) else v

    @field_validator("value", mode="before")
    @classmethod
    def _text(cls, v: Any) -> Any:
        return _choice_text(v)


def _filters(v: Any) -> Any:
    """Accept a list of filters or the shorthand mapping ``{field: value}`` (eq; a list value means in)."""
    if isinstance(v, dict):
        return [
            {"field": k, "op": "in" if isinstance(val, list) else "eq", "value": val} for k, val in v.items()
        ]
    return v


class MeasureKind(StrEnum):
    # the member shadows str.count, which nothing calls on a kind
    count = "count"  # type: ignore[assignment]  # submissions (or repeat rows) that match
    sum = "sum"  # a numeric field over matching submissions (or rows)
    units = "units"  # units of ``unit_level``: all of them, or those with a matching submission
    snapshot = "snapshot"  # a number frozen in a closed round's snapshot
    register = "register"  # entries of the loaded register (schools, enterprises, zones) of the communes in


class Window(StrEnum):
    period = "period"  # submissions dated in the period
    to_date = "to_date"  # everything dated before the period's end (cumulative, e.g. since a baseline)
    all = "all"  # every counted submission, whatever its date


class Measure(BaseModel):
    """A numerator or denominator: a count or a sum over one form's submissions, units, or a snapshot."""

    model_config = ConfigDict(frozen=True)

    kind: MeasureKind = MeasureKind.count
    form: str | None = None
    where: list[Filter] = Field(default_factory=list)  # on the submission's fields
    repeat: str | None = None  # count/sum over this repeat's rows instead of submissions
    row_where: list[Filter] = Field(default_factory=list)  # on each repeat row (paths relative to the row)
    field: str | None = None  # sum: the numeric field (relative to the row with ``repeat``)
    distinct: str | None = None  # count distinct values of this field, de-duplicated across the roll-up
    latest_by: str | None = None  # keep only each key's latest submission (status at the period's end)
    latest_per_unit: Level | None = None  # … or each unit's latest submission (e.g. a commune's summary)
    carry_forward: bool = False  # with latest_*: fold the key's submissions in date order, so answers
    # given once (a site's baseline flag, on its first record) stay unless a later one replaces them
    date_field: str | None = None  # the date that places a submission in a period; default the received time
    window: Window = Window.period
    unit_level: Level | None = None  # kind=units
    round_id: str | None = None  # kind=snapshot: the closed round whose snapshot holds the number
    indicator: str | None = None  # kind=snapshot: which indicator of that snapshot
    part: Literal["numerator", "denominator", "value"] = "numerator"
    if_empty: Literal["no_data", "zero"] = "no_data"  # no submission of the form at all for a unit
    sites: Literal["schools", "enterprises", "zones"] | None = None  # kind=register: which (core.unit_lists)

    @field_validator("where", "row_where", mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        return _filters(v)

    @model_validator(mode="after")
    def _check(self) -> Measure:
        kind = self.kind
        if kind in (MeasureKind.count, MeasureKind.sum) and not self.form:
            raise ValueError(f"measure '{kind}' needs a form / thiếu biểu mẫu (form)")
        if kind is MeasureKind.sum and not self.field:
            raise ValueError("measure 'sum' needs a field / thiếu trường cần cộng (field)")
        if kind is MeasureKind.units and self.unit_level is None:
            raise ValueError("measure 'units' needs unit_level / thiếu cấp đơn vị (unit_level)")
        if kind is MeasureKind.register and self.sites is None:
            raise ValueError(
                "measure 'register' needs sites / thiếu danh sách (sites: schools, enterprises, zones)"
            )
        if kind is MeasureKind.snapshot and not (self.round_id and self.indicator):
            raise ValueError("measure 'snapshot' needs round_id and indicator / thiếu round_id, indicator")
        if self.carry_forward and not (self.latest_by or self.latest_per_unit):
            raise ValueError("carry_forward needs latest_by or latest_per_unit / carry_forward cần latest_by")
        if self.row_where and not self.repeat:
            raise ValueError("row_where needs repeat / row_where cần repeat")
        return self

    def key(self) -> str:
        """A canonical text: equal measures share one accumulator in the engine."""
        return self.model_dump_json(exclude_defaults=True)


class ComparisonKind(StrEnum):
    none = "none"
    previous = "previous"  # the period just before (last year for a yearly indicator)
    base_year = "base_year"  # the same period in a fixed year (e.g. "+5 % on 2023")


class Comparison(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: ComparisonKind = ComparisonKind.none
    base_year: int | None = None

    @model_validator(mode="after")
    def _check(self) -> Comparison:
        if self.kind is ComparisonKind.base_year and self.base_year is None:
            raise ValueError("comparison base_year needs base_year / thiếu năm gốc (base_year)")
        return self


class TargetOp(StrEnum):
    gt = ">"
    ge = ">="
    lt = "<"
    le = "<="
    eq = "="


_TARGET_ALIASES = {"≥": ">=", "≤": "<=", "==": "=", "gt": ">", "ge": ">=", "lt": "<", "le": "<=", "eq": "="}


class TargetOn(StrEnum):
    value = "value"  # the indicator's value
    change = "change"  # value − previous value (absolute; percentage points for a rate)
    change_pct = "change_pct"  # (value − previous) / previous × 100: "growth < 1 %", "+5 % on last year"


class Target(BaseModel):
    """``op value`` on the value (or its change), to reach by ``deadline`` or to hold every period."""

    model_config = ConfigDict(frozen=True)

    op: TargetOp
    value: float
    of: TargetOn = TargetOn.value  # what is compared: the value, or its change ("growth < 1 %")
    deadline: int | None = None  # year by which the target must be met
    start: int | None = None  # first year of the plan: "on track" compares progress with time elapsed since
    each_period: bool = False  # True: it must hold every period (up to the deadline, if any)

    @model_validator(mode="before")
    @classmethod
    def _on(cls, data: Any) -> Any:
        # "on" reads well but YAML 1.1 turns an unquoted `on:` key into True: accept both spellings.
        if isinstance(data, dict):
            for alias in ("on", True):
                if alias in data and "of" not in data:
                    data = {**{k: v for k, v in data.items() if k != alias}, "of": data[alias]}
        return data

    @field_validator("op", mode="before")
    @classmethod
    def _alias(cls, v: Any) -> Any:
        return _TARGET_ALIASES.get(v, v) if isinstance(v, str) else v

    def words(self, compared: Words = ("kỳ trước", "the previous period")) -> Words:
        """"≥ 100 (2030)"; a change target in words, ``compared`` naming what it is compared with:
        ("Tăng ≥ 5 % so với năm 2023", "growth ≥ 5 % on 2023")."""
        op = self.op.value.replace(">=", "≥").replace("<=", "≤")
        by = f" ({self.deadline})" if self.deadline else ""
        if self.of is TargetOn.value:
            return f"{op} {self.value:g}{by}", f"{op} {self.value:g}{by}"
        vi, en = compared
        if self.of is TargetOn.change_pct:
            return f"Tăng {op} {self.value:g} % so với {vi}{by}", f"growth {op} {self.value:g} % on {en}{by}"
        return f"Thay đổi {op} {self.value:g} so với {vi}{by}", f"change {op} {self.value:g} on {en}{by}"

    def text(self, compared: Words = ("kỳ trước", "the previous period")) -> str:
        """``words`` on one line as the CLI and Excel say them: "Tăng ≥ 5 % so với năm 2023 / growth ≥ 5 %
        on 2023"."""
        return both(self.words(compared))


class PlanSource(BaseModel):
    """The document a target comes from, so a report can cite it."""

    model_config = ConfigDict(frozen=True)

    document: str | None = None  # e.g. "3959/KH-UBND"
    date: str | None = None  # ISO date of the document
    issuer: str | None = None
    seed: str | None = None  # the seed file it was read from
    ref: str | None = None  # row id in reference/domain.md §2A (e.g. "001-6")


_FACTOR_LABELS = {100.0: "%", 1000.0: "‰"}


class Indicator(BaseModel):
    """One indicator: value = numerator / denominator × factor (or the numerator when there is none)."""

    model_config = ConfigDict(frozen=True)

    id: str
    name_vi: str
    name_en: str
    group: str = ""
    numerator: Measure
    denominator: Measure | None = None
    factor: float = 1.0
    unit_label: str | None = None  # "%", "‰", "người", "vụ"…; defaults from the factor
    unit_label_en: str | None = None  # its English ("persons", "cases"); none: the Vietnamese word is shown
    unit_label_en_one: str | None = None  # the English for one ("1 person"); none: ``unit_label_en``
    level: Level = Level.hamlet  # the lowest level at which the value means something
    period: PeriodKind = PeriodKind.year
    comparison: Comparison = Field(default_factory=Comparison)
    target: Target | None = None
    source: PlanSource | None = None
    overrides: str | None = None  # id of an indicator this one replaces (explicit, never by accident)
    order: int = 0
    province: str | None = None  # the province whose plan it belongs to (set from the plugin's plan_info);
    # None: national, computed for every unit. See core.plans.
    plan: str | None = None  # that plan's number and name, for reports grouped by plan

    @field_validator("comparison", mode="before")
    @classmethod
    def _comparison_short(cls, v: Any) -> Any:
        return {"kind": v} if isinstance(v, str) else v

    @property
    def label(self) -> str:
        """The unit of measure shown next to the value."""
        if self.unit_label is not None:
            return self.unit_label
        return _FACTOR_LABELS.get(float(self.factor), "")

    @property
    def label_en(self) -> str:
        """The unit of measure on an English page: ``unit_label_en``, else the same as ``label``."""
        return self.unit_label_en or self.label

    @property
    def label_en_one(self) -> str:
        """The English unit of measure after a value of exactly one ("1 site", not "1 sites")."""
        return self.unit_label_en_one or self.label_en

    def measures(self) -> list[Measure]:
        return [m for m in (self.numerator, self.denominator) if m is not None]


class Status(StrEnum):
    met = "met"
    not_met = "not_met"
    on_track = "on_track"  # not met yet, deadline ahead, and not moving away from the target
    no_data = "no_data"  # nothing reported, or a zero denominator
    no_target = "no_target"  # a count to watch, with no threshold
    unknown = "unknown"  # the figure needs records the server cannot read (ODK-encrypted, not derived)


STATUS_LABELS: dict[Status, Words] = {
    Status.met: ("Đạt", "Met"),
    Status.not_met: ("Chưa đạt", "Not met"),
    Status.on_track: ("Đúng hướng", "On track"),
    Status.no_data: ("Không có số liệu", "No data"),
    Status.no_target: ("Không có chỉ tiêu", "No target"),
    Status.unknown: ("Không xác định", "Unknown"),
}


def uncounted_text(n: int) -> Words:
    """What a figure missing ``n`` unreadable records says instead of a number."""
    return f"{n} bản ghi mã hoá chưa tính", f"{n} encrypted records not counted"


class IndicatorResult(BaseModel):
    """One indicator for one unit and period: the row the CLI, the JSON API and the Excel report show."""

    indicator_id: str
    name_vi: str
    name_en: str
    group: str = ""
    unit_code: str
    unit_name: str
    level: Level
    period: str
    value: int | float | None
    numerator: int | float | None
    denominator: int | float | None
    factor: float
    unit_label: str  # "%", "‰", or "" for a plain count
    unit_label_en: str = ""  # the English page's (empty: ``unit_label``)
    unit_label_en_one: str = ""  # the English page's after a value of one (empty: ``unit_label_en``)
    target_op: str | None = None
    target_value: int | float | None = None
    target_on: TargetOn | None = None  # what the target compares: value, change or change_pct
    target_deadline: int | None = None
    target_text: str | None = None
    target_words: Words | None = None  # target_text in each language, for a page
    compared_value: int | float | None = None  # what the target checked: the value, change or change %
    status: Status
    status_label: str
    progress_pct: float | None = None  # value ÷ target × 100, for a reach-by target on a rising value
    elapsed_pct: float | None = None  # share of the plan's time (start → deadline) gone at the period's end
    units_reported: int | None = None  # units of ``reporting_level`` inside this one that sent data
    units_expected: int | None = None  # … of how many the unit registry lists (None: no list)
    reporting_level: Level | None = None
    previous_period: str | None = None
    previous_value: int | float | None = None
    previous_source: str | None = None  # "snapshot:<round id>" or "live" (no closed round for that period)
    change: int | float | None = None  # value − previous value
    change_pct: float | None = None  # (value − previous) / previous × 100
    source_document: str | None = None
    plan: str | None = None  # the province plan it belongs to; None for the national pack
    suppressed: str | None = None  # "< 3": a small person count withheld (core.indicators.privacy)
    # records of its forms the server cannot read (ODK-encrypted, not derived): the value, numerator and
    # denominator are then None and the status unknown, never a bare 0 (``uncounted_text`` says it)
    uncounted_encrypted: int = 0


REPORTING_WORDS: dict[str, str] = {"province": "tỉnh", "commune": "xã", "hamlet": "thôn"}
REPORTING_WORDS_EN: dict[str, str] = {"province": "provinces", "commune": "communes", "hamlet": "hamlets"}
NO_LIST = ("chưa có danh sách", "no list")


def reported_text(row: Any, lang: str | None = None) -> str:
    """"3/5 xã": units that sent data of those listed (any row with ``units_reported``, ``units_expected``
    and ``reporting_level``); "3 xã (chưa có danh sách / no list)" without a list; "" when not counted.
    ``lang`` "vi" or "en": in that language alone (a web page), else the list note in both (Excel, CLI)."""
    reported = getattr(row, "units_reported", None)
    if reported is None:
        return ""
    level = getattr(row, "reporting_level", None)
    words = REPORTING_WORDS_EN if lang == "en" else REPORTING_WORDS
    word = words.get(str(getattr(level, "value", level) or ""), "")
    expected = getattr(row, "units_expected", None)
    if expected is None:
        note = NO_LIST[1] if lang == "en" else NO_LIST[0] if lang == "vi" else " / ".join(NO_LIST)
        return " ".join(x for x in (str(reported), word, f"({note})") if x)
    return f"{reported}/{expected} {word}".strip()
