"""Which plan applies where: a province plugin's indicators and forms belong to its province's units.

A plugin's ``plan_info`` names its ``province_code``; that plan's indicators are computed and shown only
for units inside that province, and its forms are offered to phones and accepted only there. Core's own
pack (no province) applies everywhere. A plan may open one of its forms to every province by listing it
in ``plan.yaml`` under ``shared_forms`` (an explicit choice, never a default).

Every consumer (the indicator engine, the Excel report, the web pages, the JSON API, the form list and
ingest) asks here, so the rule is written once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rasoat.core.plugins import get_manager, results_by_plugin
from rasoat.core.problems import Problem
from rasoat.core.units import get_units

NATIONAL_PLAN = "Chương trình quốc gia / National programme"


@dataclass(frozen=True)
class Plan:
    """A province plugin's plan, as its ``plan_info`` describes it."""

    plugin: str
    province: str
    province_name: str = ""
    name: str = ""
    number: str = ""
    date: str = ""
    issuer: str = ""
    period_from: int | None = None  # first year of the plan: where "on track" starts counting time
    shared_forms: frozenset[str] = field(default_factory=frozenset)
    reporting: str = ""  # the plan's reporting cadence, as its plan.yaml quotes it
    recipients: str = ""  # who receives the report (today's bodies where the plan names abolished ones)

    @property
    def label(self) -> str:
        """"208/KH-UBND – Kế hoạch …" (the number first: officers cite plans by number)."""
        return " – ".join(x for x in (self.number, self.name) if x) or self.plugin


def plan_from_info(plugin: str, answer: Any) -> Plan | None:
    """A ``Plan`` from a ``plan_info`` answer (``core.payloads.PlanInfo`` or a dict of its fields); None when
    it names no province (then it applies everywhere)."""
    info: Mapping[str, Any] = answer.model_dump(by_alias=True) if hasattr(answer, "model_dump") else answer
    if not isinstance(info, Mapping):
        return None
    province = str(info.get("province_code") or "").strip()
    if not province:
        return None
    return Plan(
        plugin=plugin,
        province=province,
        province_name=str(info.get("province_name") or ""),
        name=" ".join(str(info.get("name") or "").split()),
        number=str(info.get("number") or ""),
        date=str(info.get("date") or ""),
        issuer=str(info.get("issuer") or ""),
        period_from=_year((info.get("period") or {}).get("from") if isinstance(info.get("period"), Mapping)
                          else None),
        shared_forms=frozenset(str(f) for f in info.get("shared_forms") or ()),
        reporting=str(info.get("reporting") or ""),
        recipients=str(info.get("recipients") or ""),
    )


def _year(value: Any) -> int | None:
    try:
        return int(str(value)[:4])
    except (TypeError, ValueError):
        return None


_cache: tuple[Any, dict[str, Plan]] | None = None
_lock = threading.Lock()


def plans(pm: Any = None) -> dict[str, Plan]:
    """Plans of the loaded province plugins, by plugin name (cached per plugin manager)."""
    global _cache

    pm = pm or get_manager()
    with _lock:
        if _cache is not None and _cache[0] is pm:
            return _cache[1]
    found: dict[str, Plan] = {}
    for name, info in results_by_plugin(pm, "plan_info"):
        plan = plan_from_info(name, info)
        if plan is not None:
            found[name] = plan
    with _lock:
        _cache = (pm, found)
    return found


def province_of(code: str | None, registry: Any = None) -> str | None:
    """The province a unit lies in (itself for a province); None for an unknown code."""
    if not code:
        return None
    if registry is None:
        registry = get_units()
    unit = registry.get(code)
    if unit is None:
        if "-" in code:  # a hamlet the registry lacks still lies in its commune
            return province_of(code.split("-", 1)[0], registry)
        return code if len(code) == 2 and code.isdigit() else None
    if unit.level == "province":
        return str(unit.code)
    return next((str(u.code) for u in registry.ancestors(code) if u.level == "province"), None)


def plans_for_unit(code: str | None, registry: Any = None, pm: Any = None) -> list[Plan]:
    """The plans that apply in a unit (every plan when no unit is given: a national view)."""
    everything = list(plans(pm).values())
    if not code:
        return everything
    province = province_of(code, registry)
    return [p for p in everything if p.province == province]


def applies_in(province: str | None, unit_province: str | None) -> bool:
    """A plan of ``province`` (None: core's national pack) applies in a unit of ``unit_province``."""
    return province is None or province == unit_province


def form_province(source: str, form_id: str, pm: Any = None) -> str | None:
    """The province a published form is limited to: its plugin's, unless the plan shares the form."""
    plan = plans(pm).get(source)
    if plan is None or form_id in plan.shared_forms:
        return None
    return plan.province


def form_allowed(source: str, form_id: str, unit_codes: Iterable[str], registry: Any = None) -> bool:
    """Whether a form may be offered to someone working in ``unit_codes`` (any of them in its province)."""
    province = form_province(source, form_id)
    if province is None:
        return True
    codes = list(unit_codes)
    if not codes:  # a collector with no unit (an administrator's test phone) sees every form
        return True
    return any(province_of(c, registry) == province for c in codes)


def form_refusal(source: str, form_id: str, unit: str | None, registry: Any = None) -> Problem | None:
    """Why a submission of ``form_id`` for ``unit`` is refused (another province's plan), or None."""
    province = form_province(source, form_id)
    if province is None or unit is None or province_of(unit, registry) == province:
        return None
    plan = plans()[source]
    where = plan.province_name or province
    number = plan.number or plan.plugin
    return Problem("plan.other_province", form=form_id, plan=number, where=where, unit=unit)


def reset_plans() -> None:
    """Forget the cached plans (tests, or after plugins change)."""
    global _cache
    with _lock:
        _cache = None
