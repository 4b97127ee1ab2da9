"""Exports read from a real embedded store: filters, unit names, the audit log, and the CLI commands."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from rasoat.core import hookimpl
from rasoat.core.cli import main
from rasoat.core.excel.from_store import ExportError, ExportFilters, export_form, indicator_report
from rasoat.core.excel.raw import RawExportOptions
from rasoat.core.models import ReviewState, Round, User
from rasoat.core.storage.opening import open_store
from rasoat.core.units import get_units
from test_excel_raw import by_header, make_sub, publish_test_form


def _other_commune() -> str:
    return next(c.code for c in get_units().communes("19") if c.code != "05563")


def _other_province_commune() -> str:
    return next(c.code for c in get_units().communes() if c.parent_code != "19")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A store with the test form and six submissions across units, rounds, states and years."""
    root = tmp_path / "data"
    store = open_store(root)
    publish_test_form(store)
    store.put_user(User(id="u1", username="thu", display_name="Lò Văn Thu", role="collector"))
    store.put_round(Round(id="r2026", name="Đợt 2026", period="2026"))
    plan: list[tuple[str, str | None, ReviewState, datetime]] = [
        ("05563", "r2026", ReviewState.approved, datetime(2026, 3, 5, 3, tzinfo=UTC)),
        ("05563", "r2026", ReviewState.rejected, datetime(2026, 3, 6, 3, tzinfo=UTC)),
        (_other_commune(), "r2026", ReviewState.received, datetime(2026, 4, 1, 3, tzinfo=UTC)),
        (_other_province_commune(), "r2026", ReviewState.approved, datetime(2026, 4, 2, 3, tzinfo=UTC)),
        ("05563", None, ReviewState.approved, datetime(2025, 6, 1, 3, tzinfo=UTC)),
        ("05563", "r2026", ReviewState.has_issues, datetime(2025, 12, 31, 18, tzinfo=UTC)),  # 1/1/2026 in VN
    ]
    items = []
    for n, (unit, round_id, state, when) in enumerate(plan, start=1):
        sub = make_sub(n)
        raw = f"<data id='hh_test'><n>{n}</n></data>".encode()
        sub = sub.model_copy(
            update={
                "unit_code": unit,
                "round_id": round_id,
                "review_state": state,
                "received_at": when,
                "xml_md5": hashlib.md5(raw).hexdigest(),
                "fields": {**sub.fields, "commune": unit},
            }
        )
        items.append((sub, raw, {}))
    store.put_many_submissions(items)
    store.close()
    return root


def _keys(path: Path) -> list[str]:
    return [r["KEY"] for r in by_header(openpyxl.load_workbook(path)["hh_test"])]


def test_filters_by_unit_round_state_and_period(data_dir: Path, tmp_path: Path) -> None:
    store = open_store(data_dir)
    out = tmp_path / "x.xlsx"
    try:
        export_form(store, "hh_test", out, filters=ExportFilters(unit_codes=["19"]))
        assert _keys(out) == ["uuid:0005", "uuid:0006", "uuid:0001", "uuid:0002", "uuid:0003"]
        export_form(store, "hh_test", out, filters=ExportFilters(unit_codes=["05563"], round_id="r2026"))
        assert _keys(out) == ["uuid:0006", "uuid:0001", "uuid:0002"]
        states = [ReviewState.approved, ReviewState.has_issues]
        export_form(store, "hh_test", out, filters=ExportFilters(review_states=states))
        assert _keys(out) == ["uuid:0005", "uuid:0006", "uuid:0001", "uuid:0004"]
        export_form(store, "hh_test", out, filters=ExportFilters(period="2026"))  # Vietnam calendar year
        assert _keys(out) == ["uuid:0006", "uuid:0001", "uuid:0002", "uuid:0003", "uuid:0004"]
        with pytest.raises(ExportError):
            export_form(store, "hh_test", out, filters=ExportFilters(period="năm ngoái"))
        with pytest.raises(ExportError):
            export_form(store, "no_such_form", out)
    finally:
        store.close()


def test_names_from_the_registry_and_collectors(data_dir: Path, tmp_path: Path) -> None:
    store = open_store(data_dir)
    out = tmp_path / "x.xlsx"
    try:
        export_form(store, "hh_test", out, filters=ExportFilters(unit_codes=["05563"], period="2026"))
    finally:
        store.close()
    row = by_header(openpyxl.load_workbook(out)["hh_test"])[-1]
    assert row["Tỉnh"] == "Tỉnh Thái Nguyên"  # select_one_from_file labelled from the unit registry
    assert row["Tên xã"] == "Xã Phượng Tiến" and row["Tên tỉnh"] == "Tỉnh Thái Nguyên"
    assert row["Người thu thập"] == "Lò Văn Thu"
    assert row["Trạng thái duyệt"] == "Bị từ chối"


def test_every_export_is_audited(data_dir: Path, tmp_path: Path) -> None:
    store = open_store(data_dir)
    try:
        export_form(store, "hh_test", tmp_path / "a.xlsx", actor="officer1")
        options = RawExportOptions(include_personal=True)
        export_form(store, "hh_test", tmp_path / "b.xlsx", options=options, actor="officer2")
        events = [e for e in store.iter_audit() if e.action == "export.raw"]
    finally:
        store.close()
    assert [(e.actor, e.details["include_personal"]) for e in events] == [
        ("officer1", False),
        ("officer2", True),
    ]
    assert events[0].details["submissions"] == 6 and "hh/head_name" in events[0].details["dropped_columns"]


def test_cli_export(data_dir: Path, tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "cli.xlsx"
    argv = ["export", "hh_test", "-o", str(out), "--data", str(data_dir), "--unit", "19", "-q"]
    assert main([*argv, "--states", "approved,rejected", "--labels", "en"]) == 0
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == ["hh_test", "Member", "Visit", "About"]
    assert [r["KEY"] for r in by_header(wb["hh_test"])] == ["uuid:0005", "uuid:0001", "uuid:0002"]
    assert "3" in capsys.readouterr().out

    assert main([*argv, "--include-personal", "--labels", "none"]) == 0
    header = [c.value for c in openpyxl.load_workbook(out)["hh_test"][1]]
    assert "hh/head_name" in header

    assert main([*argv, "--states", "done"]) == 1
    assert "unknown state 'done'" in capsys.readouterr().err
    assert main(["export", "nope", "-o", str(out), "--data", str(data_dir), "-q"]) == 1
    assert main(["export", "hh_test", "-o", str(tmp_path / "x.csv"), "--data", str(data_dir)]) == 1


def test_cli_export_is_audited_as_rasoat_user(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every command names the same actor: $RASOAT_USER when set (the export named the OS user)."""
    monkeypatch.setenv("RASOAT_USER", "can.bo.xa")
    assert main(["export", "hh_test", "-o", str(tmp_path / "by.xlsx"), "--data", str(data_dir), "-q"]) == 0
    store = open_store(data_dir)
    try:
        actors = [e.actor for e in store.iter_audit() if e.action == "export.raw"]
    finally:
        store.close()
    assert actors == ["can.bo.xa"]


@pytest.mark.slow
def test_cli_report(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.xlsx"
    assert (
        main(["report", "-o", str(out), "--unit", "19", "--period", "2026", "--data", str(data_dir), "-q"])
        == 0
    )
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames[:3] == ["Bìa", "Cấp tỉnh", "Cấp xã"]
    cover = {r[0]: r[1] for r in wb["Bìa"].iter_rows(values_only=True) if r[0]}
    assert cover["Kỳ báo cáo / Period"] == "2026"
    assert cover["Đơn vị / Unit"] == "19 – Tỉnh Thái Nguyên"
    assert main(["report", "-o", str(out), "--unit", "99999", "--data", str(data_dir), "-q"]) == 1


def test_report_from_store_names_the_unit(data_dir: Path, tmp_path: Path) -> None:
    store = open_store(data_dir)
    try:
        stats = indicator_report(
            store, tmp_path / "r.xlsx", unit_code="05563", period="2026", generated_by="me"
        )
        assert any(e.action == "export.report" for e in store.iter_audit())
    finally:
        store.close()
    assert stats.sheets[:2] == ["Bìa", "Cấp xã"]


class _SheetPlugin:
    """A province plugin adding a sheet to the export through the ``export_sheets`` hook."""

    @hookimpl
    def export_sheets(self, form_id: str) -> list:
        def rows(store: Any) -> list:
            return [["Số bản ghi", store.count_submissions()], ["=cmd|' /C calc'!A0", 1]]

        return [("Tổng hợp xã", ["Chỉ số", "Giá trị"], rows)] if form_id == "hh_test" else []


def test_plugins_add_sheets(data_dir: Path, tmp_path: Path) -> None:
    from rasoat.core.plugins import build_manager, set_manager

    pm = build_manager()
    pm.register(_SheetPlugin(), name="test_sheet_plugin")
    set_manager(pm)
    store = open_store(data_dir)
    try:
        export_form(store, "hh_test", tmp_path / "p.xlsx")
    finally:
        store.close()
        set_manager(None)
    wb = openpyxl.load_workbook(tmp_path / "p.xlsx")
    assert wb.sheetnames[-2:] == ["Tổng hợp xã", "Thông tin"]
    assert list(wb["Tổng hợp xã"].iter_rows(values_only=True)) == [
        ("Chỉ số", "Giá trị"),
        ("Số bản ghi", 6),
        ("=cmd|' /C calc'!A0", 1),  # text, not a formula
    ]
