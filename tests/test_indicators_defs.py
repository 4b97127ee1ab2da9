"""Indicator definitions as data (YAML/JSON/Python, overrides between plugins), periods, target status,
and the ``rasoat indicators`` command."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from indicators_support import C1, H11, add
from rasoat.core import hookimpl
from rasoat.core.cli import main
from rasoat.core.indicators.loading import IndicatorError, collect, load
from rasoat.core.indicators.models import FilterOp, Indicator, Status, Target, TargetOn
from rasoat.core.indicators.periods import Period
from rasoat.core.indicators.status import elapsed_pct, judge, progress_pct
from rasoat.core.plugins import PluginConflict

MINIMAL = {"id": "x", "name_vi": "Chỉ tiêu x", "name_en": "Indicator x", "numerator": {"form": "f2_pledge"}}


# --- loading ---------------------------------------------------------------------------------------


def test_yaml_pack_with_shorthand_and_yaml_booleans(tmp_path: Path) -> None:
    path = tmp_path / "pack.yaml"
    path.write_text(
        "source: {document: 80/KH-UBND, date: '2026-03-04'}\n"
        "indicators:\n"
        "  - id: a\n"
        "    name_vi: Tỷ lệ\n"
        "    name_en: Share\n"
        "    numerator: {form: f1_person, where: {has_record: yes, category: [user, addict], n: 0}}\n"
        "    denominator: {form: f1_person}\n"
        "    factor: 100\n"
        "    target: {op: ≥, value: 90, on: change_pct, deadline: 2030}\n",
        encoding="utf-8",
    )
    (ind,) = load(path)
    f = {x.field: x for x in ind.numerator.where}
    assert f["has_record"].value == "yes"  # YAML read yes as True; it is a choice name again
    assert f["category"].op is FilterOp.in_ and f["category"].value == ["user", "addict"]
    assert f["n"].value == 0
    assert ind.target == Target(op=">=", value=90, of=TargetOn.change_pct, deadline=2030)
    assert ind.source is not None and ind.source.document == "80/KH-UBND"  # the pack's source
    assert ind.label == "%"


def test_json_file_dicts_and_models_load_alike(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text(json.dumps([MINIMAL]), encoding="utf-8")
    from_json = load(path)
    from_dict = load(MINIMAL)
    from_model = load(Indicator.model_validate(MINIMAL))
    assert from_json == from_dict == from_model


@pytest.mark.parametrize(
    "change, message",
    [
        ({"numerator": {"kind": "sum", "form": "f2_pledge"}}, "field"),
        ({"numerator": {"kind": "units"}}, "unit_level"),
        ({"numerator": {"kind": "count"}}, "form"),
        ({"numerator": {"form": "f", "row_where": {"a": "b"}}}, "repeat"),
        ({"target": {"op": "≈", "value": 1}}, "target.op"),
        ({"comparison": {"kind": "base_year"}}, "base_year"),
    ],
)
def test_bad_definitions_name_the_indicator_and_the_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(IndicatorError, match=message) as info:
        load({**MINIMAL, **change})
    assert "'x'" in str(info.value)


def test_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("indicators: [\n", encoding="utf-8")
    with pytest.raises(IndicatorError, match="bad.yaml"):
        load(bad)
    with pytest.raises(IndicatorError, match="missing.yaml"):
        load(tmp_path / "missing.yaml")


class _Plugin:
    def __init__(self, items: list[Any]) -> None:
        self.items = items

    @hookimpl
    def indicators(self) -> list[Any]:
        return self.items


def _manager(**plugins: list[Any]) -> Any:
    """Core's national pack and the given test plugins, without the installed province plugins."""
    import pluggy
    import rasoat.core.builtin.national as pack
    from rasoat.core import hookspecs
    from rasoat.core.hooks import PROJECT

    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(pack, name="rasoat.core.builtin.national")
    for name, items in plugins.items():
        pm.register(_Plugin(items), name=name)
    return pm


def test_a_province_overrides_a_national_threshold_explicitly() -> None:
    national = {i.id: i for i in collect(_manager())}
    pm = _manager(test_province=[{"overrides": "nat_services_reach",
                                "target": {"op": ">", "value": 90, "deadline": 2030}}])
    merged = collect(pm)
    by_id = {i.id: i for i in merged}
    assert by_id["nat_services_reach"].target.text() == "> 90 (2030)"
    assert by_id["nat_services_reach"].numerator == national["nat_services_reach"].numerator  # kept
    assert [i.id for i in merged] == list(national)  # same place in the report


def test_a_plain_duplicate_id_is_a_conflict_naming_both_plugins() -> None:
    pm = _manager(test_province=[{**MINIMAL, "id": "nat_services_reach"}])
    with pytest.raises(PluginConflict, match="core.builtin.national.*test_province"):
        collect(pm)


def test_override_conflicts_and_unknown_targets() -> None:
    twice = {"overrides": "nat_addict_growth", "target": {"op": "<", "value": 2, "of": "change_pct"}}
    with pytest.raises(PluginConflict, match="a_province.*b_province|b_province.*a_province"):
        collect(_manager(a_province=[twice], b_province=[twice]))
    with pytest.raises(IndicatorError, match="no_such"):
        collect(_manager(p=[{"overrides": "no_such", "factor": 1}]))
    with pytest.raises(PluginConflict, match="twice"):
        collect(_manager(p=[MINIMAL, MINIMAL]))


def test_plugin_indicators_from_a_yaml_path_and_python(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("indicators:\n  - {id: p1, name_vi: a, name_en: a, numerator: {form: f5_hamlet}}\n",
                    encoding="utf-8")
    ids = [i.id for i in collect(_manager(p=[path, Indicator.model_validate({**MINIMAL, "id": "p2"})]))]
    assert ids[-2:] == ["p1", "p2"] or {"p1", "p2"} <= set(ids)


def test_plugins_command_lists_the_national_indicators(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--json"]) == 0
    plugins = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert "nat_communes_drug_free" in plugins["rasoat.core.builtin.national"]["indicators"]


# --- periods -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, start, end, previous",
    [
        ("2026", "2026-01-01", "2027-01-01", "2025"),
        ("2026-H2", "2026-07-01", "2027-01-01", "2026-H1"),
        ("2026-Q1", "2026-01-01", "2026-04-01", "2025-Q4"),
        ("2026-01", "2026-01-01", "2026-02-01", "2025-12"),
        ("2026-12", "2026-12-01", "2027-01-01", "2026-11"),
    ],
)
def test_periods(text: str, start: str, end: str, previous: str) -> None:
    p = Period.parse(text)
    assert (p.start.isoformat(), p.end.isoformat(), str(p.previous()), str(p)) == (start, end, previous, text)


def test_period_bounds_are_local_midnight_in_utc() -> None:
    start, end = Period.parse("2026").utc_bounds()
    assert start == datetime(2025, 12, 31, 17, tzinfo=UTC) and end == datetime(2026, 12, 31, 17, tzinfo=UTC)


@pytest.mark.parametrize("bad", ["26", "2026-13", "2026-Q5", "2026-H3", "năm 2026"])
def test_bad_periods_are_refused_in_both_languages(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid period"):
        Period.parse(bad)


# --- status ----------------------------------------------------------------------------------------


def end_of(year: int, month: int = 12) -> date:
    """The exclusive end of a period that closes with ``month`` of ``year``."""
    return date(year + month // 12, month % 12 + 1, 1)


def test_status_rules() -> None:
    # a 2026–2030 plan: by the end of 2026 one year of five is gone (20 %), by the end of 2028 three (60 %)
    reach = Target(op=">", value=80, deadline=2030, start=2026)
    assert judge(reach, end_of(2026), 85) is Status.met
    assert judge(reach, end_of(2026), 16) is Status.on_track  # 16 / 80 = 20 % done, 20 % of the time gone
    assert judge(reach, end_of(2026), 15) is Status.not_met  # 18.75 % done < 20 %
    assert judge(reach, end_of(2026, 6), 8) is Status.on_track  # half a year of five gone: 10 %; 8/80 = 10 %
    assert judge(reach, end_of(2028), 48) is Status.not_met  # 60 % done < 1096 / 1826 days = 60.02 %
    assert judge(reach, end_of(2028), 49) is Status.on_track  # 61.25 %
    assert judge(reach, end_of(2030), 70) is Status.not_met  # deadline reached
    assert judge(reach, end_of(2026), 0) is Status.not_met  # 0 % is never on track
    assert judge(reach, end_of(2026), None) is Status.no_data
    # without a start year the time gone is unknown: never "on track"
    assert judge(Target(op=">", value=80, deadline=2030), end_of(2026), 79) is Status.not_met
    # a value to bring down has no baseline to measure progress from: not met until it is
    assert judge(Target(op="=", value=0, deadline=2030, start=2026), end_of(2026), 3) is Status.not_met
    zero = Target(op="=", value=0, each_period=True)
    assert judge(zero, end_of(2026), 0) is Status.met and judge(zero, end_of(2026), 1) is Status.not_met
    growth = Target(op="<", value=1, of="change_pct", each_period=True)
    assert judge(growth, end_of(2026), 100, 100, 0, 0.0) is Status.met
    assert judge(growth, end_of(2026), 102, 100, 2, 2.0) is Status.not_met
    assert judge(growth, end_of(2026), 102) is Status.no_data  # no previous year
    assert judge(None, end_of(2026), 5) is Status.no_target
    assert judge(None, end_of(2026), None) is Status.no_data
    assert judge(Target(op=">=", value=50), end_of(2026), 50.0000000001 - 1e-10) is Status.met


def test_progress_and_time_gone_are_shown() -> None:
    reach = Target(op=">=", value=100, deadline=2030, start=2026)
    assert elapsed_pct(reach, end_of(2027)) == pytest.approx(40.0, abs=0.05)  # 730 of 1826 days
    assert progress_pct(reach, 35) == 35
    assert elapsed_pct(Target(op=">=", value=100, each_period=True), end_of(2027)) is None


# --- the command -------------------------------------------------------------------------------------


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    from rasoat.core.storage.embedded import EmbeddedStore

    store = EmbeddedStore(tmp_path / "data")
    add(store, "f2_pledge", H11, {"ref_date": "2026-04-01", "households_total": "8",
                                  "households_pledged": "6"})
    add(store, "f2_pledge", f"{C1}-02", {"ref_date": "2026-04-01", "households_total": "2",
                                         "households_pledged": "2"})
    store.close()
    return tmp_path / "data"


def test_cli_json(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["indicators", "--data", str(data_dir), "--unit", C1, "--level", "hamlet", "--period", "2026",
                 "--json", "--indicator", "nat_household_pledges"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    values = {r["unit_code"]: r["value"] for r in rows}
    assert rows[0]["unit_code"] == C1  # the unit first, then its hamlets (an installed plugin may list more)
    assert (values[C1], values[H11], values[f"{C1}-02"]) == (80, 75, 100)
    assert rows[0]["unit_name"] == "Xã Phượng Tiến" and rows[0]["status"] == "no_target"
    assert {"indicator_id", "name_vi", "name_en", "level", "numerator", "denominator", "factor",
            "unit_label", "target_op", "target_value", "target_deadline", "status", "previous_value",
            "change"} <= set(rows[0])


def test_cli_table_in_vietnamese(data_dir: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # a wide terminal: no cell is wrapped onto two lines
    assert main(["indicators", "--data", str(data_dir), "--unit", "Phượng Tiến", "--period", "2026"]) == 0
    out = capsys.readouterr().out
    assert "Tỷ lệ hộ gia đình ký cam kết" in out and "80 %" in out
    assert "Không có số liệu" not in out.splitlines()[0]


def test_cli_errors_are_one_line(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["indicators", "--data", str(data_dir), "--period", "2026-Q7"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Lỗi / Error:") and "invalid period" in err and "Traceback" not in err
    assert main(["indicators", "--data", str(data_dir), "--unit", "99999"]) == 1
    assert main(["indicators", "--data", str(data_dir), "--indicator", "nope"]) == 1


def test_cli_definitions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["indicators", "--definitions", "--json"]) == 0
    defs = json.loads(capsys.readouterr().out)
    assert any(d["id"] == "nat_communes_drug_free" and d["target"]["value"] == 50 for d in defs)


def test_the_readme_table_covers_every_indicator() -> None:
    """core/indicators/README.md lists every indicator with its source sentence and a test that exists."""
    import ast
    import re

    from rasoat.core.plugins import build_manager

    root = Path(__file__).resolve().parent.parent
    readme = (root / "core" / "indicators" / "README.md").read_text(encoding="utf-8")
    readme = readme.split("## Every indicator")[1]
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([a-z0-9_]+)` \|.*$", readme, re.M)}
    ids = [i.id for i in collect(build_manager())]
    assert [i for i in ids if i not in rows] == []
    for ind_id, row in rows.items():
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells[3]) > 5, (ind_id, "source sentence")
        file_name, test_name = cells[6].strip("`").split("::")
        tree = ast.parse((root / "tests" / file_name).read_text(encoding="utf-8"))
        assert test_name in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}, (ind_id, cells[6])
