"""TP Hồ Chí Minh (province 79; former Bà Rịa – Vũng Tàu): plan 208/KH-UBND for "Dự án 3", 2022–2025.

Adds the conditional-business venues register (form ``hcm_venue``: karaoke, bars, massage, lodging,
pawnshops — one record per check, keyed by the security-conditions certificate number), the plan's
indicators (``indicators.yaml``: no venue used for drugs, every violating venue dealt with, every
psychotic user under management), and a sample khu phố list for Phường Vũng Tàu (26506).
Source: ../shared/seeds/001_ac66488a0c2c4e20.txt (truncated). Registered through the ``rasoat``
entry-point group.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from core import hookimpl

__version__ = "1.0.0"

HERE = Path(__file__).resolve().parent
PROVINCE = "79"


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
