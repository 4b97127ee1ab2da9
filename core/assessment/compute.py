"""The assessment of a commune or a whole province for one year: registers → inputs → class."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from pydantic_core import to_json
from rasoat.core.assessment.facts import get_facts, get_facts_many
from rasoat.core.assessment.registers import officer_fact, read_communes
from rasoat.core.assessment.rules import (
    CommuneInputs,
    CommuneResult,
    Flag,
    ProvinceResult,
    class_label,
    classify_commune,
    classify_province,
)
from rasoat.core.assessment.thresholds import Thresholds, load_thresholds
from rasoat.core.storage.base import Store
from rasoat.core.units import UnitRegistry, get_units


@dataclass
class CommuneAssessment:
    code: str
    name: str
    inputs: CommuneInputs
    result: CommuneResult
    f10_class: str | None = None  # what the commune's own F10 computed or set


@dataclass
class ProvinceAssessment:
    code: str
    name: str
    year: int
    communes: list[CommuneAssessment]
    result: ProvinceResult
    flags: list[Flag] = field(default_factory=list)


def _one(code: str, name: str, inputs: CommuneInputs, f10: str | None, t: Thresholds) -> CommuneAssessment:
    result = classify_commune(inputs, t)
    if f10 and f10 != result.klass:
        result.flags.append(Flag(
            "f10_class_differs",
            (
                f"F10 của xã tự xếp {class_label(f10)[0]}, tính từ sổ: {class_label(result.klass)[0]}",
                f"the commune's F10 says {class_label(f10)[1]}, "
                f"the registers give {class_label(result.klass)[1]}",
            ),
        ))
    return CommuneAssessment(code, name, inputs, result, f10)


def assess_communes(
    store: Store,
    year: int,
    codes: list[str],
    registry: UnitRegistry | None = None,
    t: Thresholds | None = None,
) -> list[CommuneAssessment]:
    """Each commune in ``codes`` (reading the registers once for all of them)."""
    registry = registry or get_units()
    t = t or load_thresholds()
    scope = sorted(registry.expand(codes))
    read = read_communes(store, year, codes, scope)
    return [_one(c, registry.require(c).name, *read[c], t) for c in codes]


def assess_province(
    store: Store, year: int, province: str, registry: UnitRegistry | None = None, t: Thresholds | None = None
) -> ProvinceAssessment:
    """Every commune of the province, and the province's own class (Art. 5)."""
    registry = registry or get_units()
    t = t or load_thresholds()
    unit = registry.require(province)
    codes = [u.code for u in registry.communes(province)]
    communes = assess_communes(store, year, codes, registry, t)
    route = officer_fact(get_facts(store, year, province), "on_route")
    result = classify_province([(c.inputs, c.result) for c in communes], len(codes), route, t)
    return ProvinceAssessment(province, unit.name, year, communes, result)


def facts_version(store: Store, year: int, province: str, registry: UnitRegistry | None = None) -> str:
    """A digest of the figures officers entered for the province and its communes (one read): besides the
    records, the only input of ``assess_province`` that changes, so a kept assessment is reused only while
    this and the records are unchanged."""
    registry = registry or get_units()
    codes = [province, *(u.code for u in registry.communes(province))]
    return hashlib.sha256(to_json(get_facts_many(store, year, codes))).hexdigest()
