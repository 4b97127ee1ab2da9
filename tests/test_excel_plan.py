"""An indicator report names the plan of the province it is about, not every installed province's plan."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from rasoat.core.excel.from_store import indicator_report
from rasoat.core.plugins import build_manager, set_manager
from rasoat.core.storage import open_store
from rasoat.core.units import get_units

NATIONAL = "Bộ biểu mẫu và chỉ tiêu quốc gia / National forms and indicators"


@pytest.fixture(scope="module")
def plans() -> Iterator[dict[str, str]]:
    """Plan name by province code, as the installed province plugins declare them."""
    from rasoat.core.plugins import DEFAULT_PLUGINS, results_by_plugin

    pm = build_manager()
    set_manager(pm)
    out = {}
    for name, info in results_by_plugin(pm, "plan_info"):
        if name not in DEFAULT_PLUGINS and info.province_code:
            number = f" ({info.number})" if info.number else ""
            out[info.province_code] = f"{info.name}{number}"
    assert {"19", "79"} <= set(out)  # Thái Nguyên and Hồ Chí Minh ship with rasoat
    yield out
    set_manager(None)


def cover_plan(tmp_path: Path, unit_code: str | None) -> str:
    store = open_store(tmp_path / "data")
    out = tmp_path / f"report-{unit_code}.xlsx"
    try:
        indicator_report(store, out, unit_code=unit_code, period="2026")
    finally:
        store.close()
    cover = {r[0]: r[1] for r in openpyxl.load_workbook(out)["Bìa"].iter_rows(values_only=True) if r[0]}
    return str(cover["Kế hoạch / Plan"])


def test_a_commune_report_names_its_provinces_plan_only(tmp_path: Path, plans: dict[str, str]) -> None:
    assert cover_plan(tmp_path, "05563") == plans["19"]  # Xã Phượng Tiến, Thái Nguyên


def test_a_province_report_names_its_own_plan(tmp_path: Path, plans: dict[str, str]) -> None:
    assert cover_plan(tmp_path, "79") == plans["79"]


def test_a_province_without_a_plugin_falls_back_to_the_national_pack(
    tmp_path: Path, plans: dict[str, str]
) -> None:
    other = next(p.code for p in get_units().provinces() if p.code not in plans)
    assert cover_plan(tmp_path, other) == NATIONAL


def test_a_report_over_every_province_names_the_national_pack(tmp_path: Path, plans: dict[str, str]) -> None:
    assert cover_plan(tmp_path, None) == NATIONAL
