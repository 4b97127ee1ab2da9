"""The QĐ 28/2025 classification rules, pure: figures in, class and flags out. No storage here.

Commune (Art. 4 and 6): Art. 6 (drug-free) is evaluated first; then type I, II, III in that order with
each criterion's band (1 = type-I band, 2 = type-II band, 3 = below type II but above zero, 0 = none).
The gaps the decision leaves open (criteria.md C1, implementation notes) are flagged, never decided
silently. An input that is not known (no population entered, an encrypted register) makes every rule
that needs it unknown; a class is given only when the unknown input cannot change it.
Province (Art. 5): at least 4 of 6 criteria, from its communes' figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rasoat.core.assessment.thresholds import Thresholds
from rasoat.core.problems import Words

CLASS_LABELS: dict[str, Words] = {
    "drug_free": ("Không ma túy", "Drug-free"),
    "type_1": ("Loại I", "Type I"),
    "type_2": ("Loại II", "Type II"),
    "type_3": ("Loại III", "Type III"),
    "unclassified": ("Chưa phân loại được", "Unclassified"),
    "unknown": ("Thiếu số liệu", "Missing data"),
}
PROVINCE_LABELS: dict[str, Words] = {
    "complex": ("Tỉnh trọng điểm, phức tạp về ma túy", "Drug-complex province"),
    "drug_free": ("Tỉnh không ma túy", "Drug-free province"),
    "not_complex": ("Không thuộc diện trọng điểm, phức tạp", "Not a drug-complex province"),
    "unknown": ("Thiếu số liệu", "Missing data"),
}


def class_label(klass: str) -> Words:
    return CLASS_LABELS.get(klass, (klass, klass))


@dataclass(frozen=True)
class Figure:
    """One input: ``value`` (None = not known, ``unknown_reason`` says why), where it came from, how many
    records it was built from, and the figure typed into F10 when one was (shown beside, never used)."""

    value: float | None
    source: Words
    records: int = 0
    unknown_reason: Words = ("", "")
    typed: float | None = None

    @property
    def known(self) -> bool:
        return self.value is not None

    @property
    def disagrees(self) -> bool:
        return self.typed is not None and self.value is not None and abs(self.typed - self.value) > 1e-9


@dataclass(frozen=True)
class Flag:
    """A reason an officer must look at the result: ``code`` for programs, ``message`` in both languages."""

    code: str
    message: Words


@dataclass(frozen=True)
class CommuneInputs:
    """Everything Art. 4 and 6 need for one commune and assessment year."""

    population: Figure  # nhân khẩu hiện đang cư trú (entered or imported by an officer)
    managed: Figure  # R numerator: addicts and users with a management record
    venues: Figure  # P: places organising or harbouring drug use, active
    arrested: Figure  # A numerator: drug offenders arrested in the area
    plants: Figure  # C: plants destroyed
    area_m2: Figure  # C: area destroyed
    on_route: Figure  # đ: lies on a key route (1/0)
    users_not_exempt: Figure  # Art. 6.1: users/addicts outside substitution, community rehab, post-rehab
    residents_violating: Figure  # Art. 6.2
    fugitives_hiding: Figure  # Art. 6.2
    flags: tuple[Flag, ...] = ()  # what reading the registers found doubtful

    def items(self) -> list[tuple[str, Figure]]:
        return [(name, getattr(self, name)) for name in INPUT_LABELS]


INPUT_LABELS: dict[str, Words] = {
    "population": ("Nhân khẩu hiện đang cư trú", "Current residents"),
    "managed": ("Người nghiện, người sử dụng có hồ sơ quản lý (R)", "Addicts and users with a record"),
    "venues": ("Điểm tổ chức, chứa chấp sử dụng (P)", "Places hosting drug use"),
    "arrested": ("Đối tượng phạm tội bị bắt trên địa bàn (A)", "Offenders arrested in the area"),
    "plants": ("Số cây bị phát hiện, triệt phá (C)", "Plants destroyed"),
    "area_m2": ("Diện tích bị phát hiện, triệt phá, m² (C)", "Area destroyed, m²"),
    "on_route": ("Nằm trên tuyến trọng điểm (đ)", "On a key route"),
    "users_not_exempt": ("Người nghiện, sử dụng không thuộc diện loại trừ (Điều 6.1)", "Users not exempt"),
    "residents_violating": ("Người cư trú vi phạm trên địa bàn (Điều 6.2)", "Residents violating"),
    "fugitives_hiding": ("Đối tượng truy nã lẩn trốn (Điều 6.2)", "Fugitives hiding"),
}


@dataclass
class CommuneResult:
    """The class of one commune and how it was reached."""

    klass: str
    r_pct: float | None
    a_pct: float | None
    bands: dict[str, int | None]  # a, b, c, d
    drug_free: bool | None
    conditions: dict[str, bool | None]  # Art. 6 clauses 1, 2, 3
    flags: list[Flag] = field(default_factory=list)

    @property
    def needs_review(self) -> bool:
        return bool(self.flags)


def _band(value: float | None, t1: float, t2: float, positive_is_three: bool = True) -> int | None:
    if value is None:
        return None
    if value >= t1:
        return 1
    if value >= t2:
        return 2
    return 3 if positive_is_three and value > 0 else 0


def _pct(num: Figure, den: Figure) -> float | None:
    if num.value is None or den.value is None or den.value <= 0:
        return None
    return 100.0 * num.value / den.value


def _zero(fig: Figure) -> bool | None:
    return None if fig.value is None else fig.value == 0


def _all(values: Sequence[bool | None]) -> bool | None:
    """Three-valued AND: False if any is False, None if any is unknown, else True."""
    if any(v is False for v in values):
        return False
    return None if any(v is None for v in values) else True


def _types(bands: dict[str, int], on_route: bool, t: Thresholds) -> str:
    """Art. 4: type I, else II, else III, else unclassified, for known bands and route."""
    n1 = sum(1 for b in bands.values() if b == 1)
    n2 = sum(1 for b in bands.values() if b in (1, 2))
    n_any = sum(1 for b in bands.values() if b >= 1)
    n3 = sum(1 for k in ("a", "c", "d") if bands[k] >= 1)  # type III has criteria a, c, d only
    if n1 + int(on_route and n2 >= t.route_min) >= t.t1_min:
        return "type_1"
    if n2 + int(on_route and n_any >= t.route_min) >= t.t2_min:
        return "type_2"
    if n3 >= t.t3_min:
        return "type_3"
    return "unclassified"


def classify_commune(inp: CommuneInputs, t: Thresholds) -> CommuneResult:
    """Art. 6 first, then Art. 4; flags for unknown inputs, F10 disagreements and the open cases."""
    r_pct, a_pct = _pct(inp.managed, inp.population), _pct(inp.arrested, inp.population)
    if inp.population.value == 0:
        r_pct = a_pct = None
    bands: dict[str, int | None] = {
        "a": _band(r_pct, t.t1_r_pct, t.t2_r_pct),
        "b": _band(inp.venues.value, t.t1_p, t.t2_p, positive_is_three=False),
        "c": _band(a_pct, t.t1_a_pct, t.t2_a_pct),
        "d": _crop_band(inp, t),
    }
    conditions = {
        "1": _zero(inp.users_not_exempt),
        "2": _all([_zero(inp.residents_violating), _zero(inp.fugitives_hiding)]),
        "3": _zero(inp.venues),
    }
    drug_free = _all(list(conditions.values()))
    flags = list(inp.flags) + [
        Flag(
            "unknown_input",
            (
                f"Thiếu số liệu: {INPUT_LABELS[name][0]} — {fig.unknown_reason[0]}",
                f"Input not known: {INPUT_LABELS[name][1]} — {fig.unknown_reason[1]}",
            ),
        )
        for name, fig in inp.items()
        if fig.value is None
    ]
    flags += [
        Flag(
            "f10_disagrees",
            (
                f"Số liệu F10 khác sổ: {INPUT_LABELS[name][0]}: F10 {_num(fig.typed)}, sổ {_num(fig.value)}",
                f"F10 total disagrees with the registers: {INPUT_LABELS[name][1]}: "
                f"F10 {_num(fig.typed)}, registers {_num(fig.value)}",
            ),
        )
        for name, fig in inp.items()
        if fig.disagrees
    ]
    if drug_free is True:
        klass = "drug_free"
    elif drug_free is None:
        klass = "unknown"
    else:
        klass = _decide(bands, inp.on_route.value, t)
    if klass in ("type_3", "unclassified") and any(b in (1, 2) for b in bands.values()):
        names = ", ".join(k for k, b in bands.items() if b in (1, 2))
        flags.append(Flag(
            "open_band",
            (
                f"Dưới 3 tiêu chí nhưng tiêu chí {names} ở mức loại II trở lên; QĐ 28 chưa quy định "
                "loại nào áp dụng (chờ hướng dẫn của Bộ Công an, Điều 9.1.a); "
                f"tạm xếp {CLASS_LABELS[klass][0]}",
                f"Fewer than 3 criteria but {names} in the type II band or higher: the decision leaves the "
                "class open (Ministry guidance, Art. 9.1.a, awaited); "
                f"provisionally {CLASS_LABELS[klass][1]}",
            ),
        ))
    if klass == "unclassified":
        flags.append(Flag(
            "no_criterion",
            ("Có ma túy trên địa bàn (không đạt Điều 6) nhưng R, A, C đều bằng 0: không tiêu chí nào đo được",
             "Not drug-free, yet no criterion of Art. 4 measures it"),
        ))
    return CommuneResult(klass, r_pct, a_pct, bands, drug_free, conditions, flags)


def _crop_band(inp: CommuneInputs, t: Thresholds) -> int | None:
    """Criterion d: plants or area, whichever reaches the higher band; unknown only if both are."""
    by_plants = _band(inp.plants.value, t.t1_plants, t.t2_plants)
    by_area = _band(inp.area_m2.value, t.t1_area, t.t2_area)
    known = [b for b in (by_plants, by_area) if b is not None]
    if not known:
        return None
    positive = [b for b in known if b > 0]
    best = min(positive) if positive else 0
    if len(known) < 2 and best != 1:  # the unknown one might reach a higher band
        return None
    return best


def _decide(bands: dict[str, int | None], route: float | None, t: Thresholds) -> str:
    """The type for known bands; when bands or the route are unknown, the type only if every possible
    value of the unknowns gives the same one, else "unknown"."""
    options: list[dict[str, int]] = [{}]
    for key, band in bands.items():
        choices = [band] if band is not None else [0, 1, 2, 3] if key != "b" else [0, 1, 2]
        options = [{**o, key: c} for o in options for c in choices]
    routes = [bool(route)] if route is not None else [False, True]
    outcomes = {_types(o, r, t) for o in options for r in routes}
    return outcomes.pop() if len(outcomes) == 1 else "unknown"


def _num(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:g}".replace(".", ",")


# --- province (Art. 5) ----------------------------------------------------------------------------


@dataclass
class ProvinceResult:
    klass: str
    criteria: dict[str, bool | None]  # "1"…"6"
    values: dict[str, float | None]  # r_pct, p, a_pct, t12_pct, plants, area_m2
    met: int
    unknown: int
    drug_free: bool | None
    flags: list[Flag] = field(default_factory=list)


PROVINCE_CRITERIA: dict[str, Words] = {
    "1": ("R ≥ 0,2 %", "R ≥ 0,2 %"),
    "2": ("P ≥ 5", "P ≥ 5"),
    "3": ("A ≥ 0,05 %", "A ≥ 0,05 %"),
    "4": ("Xã loại I + II ≥ 3 % số xã", "Type I + II communes ≥ 3 %"),
    "5": ("≥ 8.000 cây hoặc ≥ 2.000 m²", "≥ 8,000 plants or ≥ 2,000 m²"),
    "6": ("Nằm trên tuyến trọng điểm liên tỉnh", "On an inter-provincial key route"),
}


def _sum(figs: Sequence[Figure]) -> tuple[float, bool]:
    """Sum of the known values, and whether all were known."""
    return sum(f.value or 0 for f in figs), all(f.value is not None for f in figs)


def _at_least(total: float, complete: bool, threshold: float) -> bool | None:
    """A sum reaches the threshold: yes from the known part alone; no only when every part is known."""
    if total >= threshold:
        return True
    return False if complete else None


def classify_province(
    communes: Sequence[tuple[CommuneInputs, CommuneResult]],
    communes_total: int,
    on_route: Figure,
    t: Thresholds,
) -> ProvinceResult:
    """Art. 5 from the communes' figures (``communes_total``: every commune of the province, with or
    without data); Art. 6 for the province: every commune drug-free."""
    pop, pop_ok = _sum([c.population for c, _ in communes])
    managed, managed_ok = _sum([c.managed for c, _ in communes])
    arrested, arrested_ok = _sum([c.arrested for c, _ in communes])
    venues, venues_ok = _sum([c.venues for c, _ in communes])
    plants, plants_ok = _sum([c.plants for c, _ in communes])
    area, area_ok = _sum([c.area_m2 for c, _ in communes])
    whole = pop_ok and len(communes) == communes_total and pop > 0
    r_pct = 100 * managed / pop if whole and managed_ok else None
    a_pct = 100 * arrested / pop if whole and arrested_ok else None
    t12 = sum(1 for _, r in communes if r.klass in ("type_1", "type_2"))
    undecided = sum(1 for _, r in communes if r.klass == "unknown") + communes_total - len(communes)
    t12_pct = 100 * t12 / communes_total if communes_total else None
    criteria: dict[str, bool | None] = {
        "1": None if r_pct is None else r_pct >= t.prov_r_pct,
        "2": _at_least(venues, venues_ok and len(communes) == communes_total, t.prov_p),
        "3": None if a_pct is None else a_pct >= t.prov_a_pct,
        "4": None if t12_pct is None else (
            True if t12_pct >= t.prov_t12_pct
            else None if undecided and 100 * (t12 + undecided) / communes_total >= t.prov_t12_pct
            else False
        ),
        "5": _any_true([
            _at_least(plants, plants_ok and len(communes) == communes_total, t.prov_plants),
            _at_least(area, area_ok and len(communes) == communes_total, t.prov_area),
        ]),
        "6": None if on_route.value is None else bool(on_route.value),
    }
    met = sum(1 for v in criteria.values() if v is True)
    unknown = sum(1 for v in criteria.values() if v is None)
    drug_free = _all([r.drug_free for _, r in communes] + ([None] if len(communes) < communes_total else []))
    if met >= t.prov_min:
        klass = "complex"
    elif met + unknown < t.prov_min:
        klass = "drug_free" if drug_free else "not_complex"
    else:
        klass = "unknown"
    flags = [
        Flag("unknown_criterion", (
            f"Chưa xác định được tiêu chí {k} ({PROVINCE_CRITERIA[k][0]})",
            f"Criterion {k} not known ({PROVINCE_CRITERIA[k][1]})",
        ))
        for k, v in criteria.items()
        if v is None
    ]
    if len(communes) < communes_total:
        flags.append(Flag(
            "communes_missing",
            (f"{communes_total - len(communes)} xã chưa có số liệu",
             f"{communes_total - len(communes)} communes without figures"),
        ))
    values = {
        "r_pct": r_pct, "p": venues, "a_pct": a_pct, "t12_pct": t12_pct, "plants": plants, "area_m2": area,
    }
    return ProvinceResult(klass, criteria, values, met, unknown, drug_free, flags)


def _any_true(values: Sequence[bool | None]) -> bool | None:
    if any(v is True for v in values):
        return True
    return None if any(v is None for v in values) else False

