"""Quảng Trị (province 44): plan 29/KH-BCĐ (2024) and the "địa bàn 03 tốt" scorecard of KH 82/KH-UBND.

Adds the scorecard as data (``scorecard.yaml``: three groups Phong trào tốt / Quản lý tốt / Đấu tranh
tốt, their items and the scoring rule, returned by the ``checklists`` hook) and as a form (``qt_03tot``),
the plan's indicators (``indicators.yaml``: detected cases +5 % on 2023, compulsory-rehab dossiers for
every addict not in voluntary rehab, share of thôn rated "03 tốt"), a sample thôn list for Xã Vĩnh Linh
(19363), and a check that a submitted scorecard agrees with the rule in the data.
Source: ../shared/seeds/003_6a27a87a851093aa.txt. Registered through the ``rasoat`` entry-point group.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rasoat import hookimpl
from rasoat.core.plugin_folder import PluginFolder

__version__ = "1.0.0"

HERE = Path(__file__).resolve().parent
_folder = PluginFolder(HERE)
PROVINCE = "44"
SCORECARD_FORM = "qt_03tot"


def scorecard() -> dict[str, Any]:
    """The scorecard definition: groups, items and rule (``scorecard.yaml``)."""
    return _folder.read("scorecard.yaml")


def score(fields: dict[str, Any], card: dict[str, Any] | None = None) -> dict[str, Any]:
    """Apply the scorecard's rule to a submission's answers (the same rule the form computes).

    Returns ``{"groups": {group id: {"met", "total", "ok"}}, "is_03tot": "yes"|"no", "score_pct": float,
    "unknown": [item names not in the scorecard]}``."""
    card = card or scorecard()
    groups: dict[str, dict[str, Any]] = {}
    unknown: list[str] = []
    met_all = total_all = 0
    for group in card["groups"]:
        names = {i["name"] for i in group["items"]}
        ticked = str(fields.get(group["field"]) or "").split()
        unknown += [t for t in ticked if t not in names]
        met = len({t for t in ticked if t in names})
        total = len(names)
        groups[group["id"]] = {"met": met, "total": total, "ok": met >= total * float(group["pass_share"])}
        met_all += met
        total_all += total
    return {
        "groups": groups,
        "is_03tot": "yes" if all(g["ok"] for g in groups.values()) else "no",
        "score_pct": round(100 * met_all / total_all, 1) if total_all else 0.0,
        "unknown": unknown,
    }


plan_info, forms, indicators, hamlets = _folder.hooks()


@hookimpl
def checklists() -> list[dict[str, Any]]:
    return [scorecard()]


@hookimpl
def check_submission(form_id: str, fields: dict[str, Any]) -> list[str] | None:
    """A scorecard whose items or result differ from ``scorecard.yaml`` was filled on an outdated form."""
    if form_id != SCORECARD_FORM:
        return None
    result = score(fields)
    problems = []
    if result["unknown"]:
        names = ", ".join(result["unknown"])
        problems.append(
            f"Quảng Trị 03 tốt: tiêu chí không có trong bộ tiêu chí hiện hành: {names} / "
            f"items not in the current scorecard: {names}"
        )
    claimed, rule = fields.get("is_03tot"), result["is_03tot"]
    if claimed and claimed != rule:
        problems.append(
            f"Quảng Trị 03 tốt: biểu mẫu tính '{claimed}', bộ tiêu chí tính '{rule}' — cập nhật biểu mẫu / "
            f"the form computed '{claimed}', the scorecard rule gives '{rule}': update the form"
        )
    return problems or None
