"""The national pack: the lifecycle forms every province uses (and, as they land, indicators)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from rasoat.core import hookimpl
from rasoat.core.indicators.loading import raw_definitions

# `forms` is a package of data files, so the XLSForms travel inside the wheel.
FORMS_DIR = Path(str(files("rasoat.forms")))


@hookimpl
def plan_info() -> dict:
    return {
        "name": "Bộ biểu mẫu và chỉ tiêu quốc gia",
        "name_en": "National forms and indicators",
        "issuer": "rasoat core",
        "province_code": None,
    }


@hookimpl
def forms() -> list[Path]:
    return sorted(FORMS_DIR.glob("*.xlsx"))


@hookimpl
def indicators() -> list[dict]:
    # Data, not code: core/indicators/national.yaml (a province overrides a threshold with `overrides`).
    # Read here, so `rasoat plugins` lists the ids rather than a file name.

    return raw_definitions(Path(__file__).resolve().parent.parent / "indicators" / "national.yaml")
