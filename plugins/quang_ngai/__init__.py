"""Quảng Ngãi (province 51; former Kon Tum): plan 3959/KH-UBND, 2021–2025.

Adds the cross-border and courier tip register (form ``qn_tip``), the plan's indicators
(``indicators.yaml``: 100 % of such tips verified, > 90 % of drug cases resolved, the two watch-list areas
— Phường Kon Tum ← Thống Nhất and Xã Bờ Y — not complex again), and sample hamlet lists for Phường Kon Tum
(23293) and Xã Bờ Y (23377). Source: ../shared/seeds/002_fc385e1f452f2e11.txt.
Registered through the ``rasoat`` entry-point group.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from core import hookimpl

__version__ = "1.0.0"

HERE = Path(__file__).resolve().parent
PROVINCE = "51"


def _read(name: str) -> Any:
    return yaml.safe_load((HERE / name).read_text(encoding="utf-8"))


@hookimpl
def plan_info() -> dict[str, Any]:
    return _read("plan.yaml")


@hookimpl
def forms() -> list[Path]:
    return sorted((HERE / "forms").glob("*.xlsx"))


@hookimpl
def indicators() -> list[dict[str, Any]]:
    pack = _read("indicators.yaml")
    base = pack.get("source") or {}
    return [{**d, "source": {**base, **(d.get("source") or {})}} for d in pack["indicators"]]


@hookimpl
def hamlets() -> list[Path]:
    return [HERE / "hamlets.csv"]
