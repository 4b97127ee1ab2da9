"""Hưng Yên (province 33): the Dương Quang plan for the Mỹ Hào scheme "chuyển hóa, xây dựng … không có
ma túy" 2023–2025, vision 2030 (Dương Quang is now part of Phường Thượng Hồng, 12127).

Adds the transformation tracking per thôn (form ``hy_transform``: baseline class, current status,
transformed and relapse dates), the plan's indicators (``indicators.yaml``: ≥ 50 % of thôn free of drug
vice and ≥ 85 % of transformed thôn not relapsing by 2025; 50 % of schools and enterprises drug-free in
2024–2025, 100 % by 2030; a census every year), a sample thôn list for Phường Thượng Hồng, and sample
school and enterprise lists (the ``checklists`` hook's site lists) so progress can count them.
Source: ../shared/seeds/000_ca503e62cb277c1a.txt. Registered through the ``rasoat`` entry-point group.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rasoat import hookimpl
from rasoat.core.plugin_folder import PluginFolder

__version__ = "1.0.0"

HERE = Path(__file__).resolve().parent
_folder = PluginFolder(HERE)
PROVINCE = "33"

plan_info, forms, indicators, hamlets = _folder.hooks()


@hookimpl
def checklists() -> list[dict[str, Any]]:
    # The schools and enterprises the plan's 50 % / 100 % targets count (F3/F4 audits); sample lists.
    return [
        {"sites": "schools", "csv": HERE / "schools.csv"},
        {"sites": "enterprises", "csv": HERE / "enterprises.csv"},
    ]
