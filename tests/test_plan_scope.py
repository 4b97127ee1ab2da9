"""A unit's plan decides what is shown and collected (issue 19, item 1).

For each of the five built-in province plans: an indicator report for one of its communes carries the
national pack and that province's indicators, never another province's, and its cover names the plan and
says the figures are a self-assessment; a collector in that commune is offered the province's own form
and not another province's, and a submission of another province's form is refused with 403 and a clear
message, through the real server.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import defusedxml.ElementTree as DET
import openpyxl
import pytest
from rasoat.core.collectors import create_collector
from rasoat.core.excel.from_store import indicator_report
from rasoat.core.formreg import FormCatalogue, publish_form
from rasoat.core.indicators.loading import collect
from rasoat.core.models import Round, RoundState
from rasoat.core.plugins import build_manager, set_manager
from server_support import CollectClient, opened_store, serving

# plugin → (province, a commune of its plan, its own form, the plan number on the cover)
PLANS: dict[str, tuple[str, str, str, str]] = {
    "thai_nguyen": ("19", "05563", "tn_xom_checklist", "KH-UBND"),
    "quang_tri": ("44", "19363", "qt_03tot", "29/KH-BCĐ"),
    "quang_ngai": ("51", "23293", "qn_tip", "3959/KH-UBND"),
    "ho_chi_minh": ("79", "26506", "hcm_venue", "208/KH-UBND"),
    "hung_yen": ("33", "12127", "hy_transform", "KH-UBND"),
}
XFL = "{http://openrosa.org/xforms/xformsList}"


@pytest.fixture(scope="module")
def manager() -> Iterator[None]:
    set_manager(build_manager())
    yield
    set_manager(None)


def report(tmp_path: Path, **where: str) -> openpyxl.Workbook:
    """The indicator report (``unit_code``, ``period``) of the store in ``tmp_path``, as written to a file."""
    out = tmp_path / "report.xlsx"
    with opened_store(tmp_path / "data") as store:
        indicator_report(store, out, **where)
    return openpyxl.load_workbook(out)


def cover_of(wb: openpyxl.Workbook) -> dict[str, str]:
    return {r[0]: r[1] for r in wb["Bìa"].iter_rows(values_only=True) if r[0]}


def shown_in(wb: openpyxl.Workbook) -> set[str]:
    """The indicators on the report's sheets of levels."""
    return {row[2] for ws in wb.worksheets if ws.title.startswith("Cấp")
            for row in ws.iter_rows(min_row=2, values_only=True)}


@pytest.mark.parametrize("plugin", sorted(PLANS))
def test_a_commune_report_holds_the_national_pack_and_its_own_plan_only(
    tmp_path: Path, plugin: str, manager: None
) -> None:
    province, commune, _, number = PLANS[plugin]
    indicators = collect()
    national = {i.id for i in indicators if i.province is None}
    own = {i.id for i in indicators if i.province == province}
    others = {i.id for i in indicators} - national - own
    assert own and others  # every plan brings indicators of its own
    wb = report(tmp_path, unit_code=commune, period="2026")
    shown = shown_in(wb)
    assert shown & others == set()
    assert shown <= national | own
    commune_level = {i.id for i in indicators if i.province == province and i.level.value != "province"}
    assert commune_level <= shown  # the plan's own commune indicators are all there
    cover = cover_of(wb)
    assert number in cover["Kế hoạch / Plan"]
    assert "Chương trình quốc gia" in cover["Kế hoạch / Plan"]
    assert cover["Tính chất số liệu / Status of the figures"].startswith("Tự đánh giá")


def test_a_national_report_names_every_plan(tmp_path: Path, manager: None) -> None:
    cover = cover_of(report(tmp_path, period="2026"))
    for _, _, _, number in PLANS.values():
        assert number in cover["Kế hoạch / Plan"]



# plugin → (a period of the kind its plan reports in, what the cover must say of its cadence and recipients)
REPORTING = {
    "thai_nguyen": ("2026-W10", "hằng tuần, hằng tháng", "UBND tỉnh (qua Công an tỉnh)"),
    "quang_ngai": ("2025-H1", "6 tháng và hằng năm", "Công an tỉnh tổng hợp, báo cáo Bộ Công an, UBND tỉnh"),
    "ho_chi_minh": ("2025", "theo quy định", "Công an tỉnh tổng hợp, báo cáo Bộ Công an"),
    "hung_yen": ("2025", "định kỳ", "UBND xã; Công an tỉnh"),  # the district police named in the plan is gone
}


@pytest.mark.parametrize("plugin", sorted(REPORTING))
def test_the_cover_names_each_plans_cadence_and_recipients(
    tmp_path: Path, plugin: str, manager: None
) -> None:
    """HY16, BR21, KT21, TN21: a report for a commune of the plan, in a period of the plan's own cadence
    (Thái Nguyên reports weekly), says on its cover how often and to whom the plan is reported."""
    _, commune, _, number = PLANS[plugin]
    period, cadence, recipients = REPORTING[plugin]
    cover = cover_of(report(tmp_path, unit_code=commune, period=period))
    assert cover["Kỳ báo cáo / Period"] == period
    line = cover["Định kỳ báo cáo, nơi nhận / Reporting cadence, recipients"]
    assert number in line
    assert cadence in line and recipients in line


def test_a_province_no_plugin_plans_for_gets_the_national_pack_only(tmp_path: Path, manager: None) -> None:
    from rasoat.core.units import get_units

    planned = {province for province, _, _, _ in PLANS.values()}
    other = next(p.code for p in get_units().provinces() if p.code not in planned)
    wb = report(tmp_path, unit_code=other, period="2026")
    cover = cover_of(wb)
    assert cover["Kế hoạch / Plan"] == "Chương trình quốc gia / National programme"
    shown = shown_in(wb)
    assert shown and shown <= {i.id for i in collect() if i.province is None}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, manager: None) -> Iterator[SimpleNamespace]:
    """Every form of every plan published, one open round over one commune of each plan, a collector in
    each commune."""
    with opened_store(tmp_path_factory.mktemp("plan-scope") / "data") as store:
        catalogue = FormCatalogue()
        form_ids = ["f8_activity", *(own for _, _, own, _ in PLANS.values())]
        versions = {}
        for form_id in form_ids:
            entry = catalogue[form_id]
            publish_form(store, entry.form, entry.media_bytes(), entry.plugin)
            versions[form_id] = entry.form.version
        communes = [commune for _, commune, _, _ in PLANS.values()]
        store.put_round(Round(id="r-all", name="Mọi kế hoạch", period="2026", form_ids=form_ids,
                              unit_codes=communes, state=RoundState.open))
        tokens = {
            plugin: create_collector(store, f"Thu thập {plugin}", [commune], ["r-all"])[1]
            for plugin, (_, commune, _, _) in PLANS.items()
        }
        with serving(store) as server:
            yield SimpleNamespace(url=server.url, tokens=tokens, versions=versions)


def _xml(form_id: str, version: str, province: str, commune: str) -> bytes:
    return (
        f'<?xml version="1.0"?><data id="{form_id}" version="{version}">'
        f"<province>{province}</province><commune>{commune}</commune>"
        f"<meta><instanceID>uuid:{uuid.uuid4()}</instanceID></meta></data>"
    ).encode()


@pytest.mark.parametrize("plugin", sorted(PLANS))
def test_a_collector_gets_and_sends_only_their_own_plans_forms(served: SimpleNamespace, plugin: str) -> None:
    province, commune, own, _ = PLANS[plugin]
    client = CollectClient(f"{served.url}/v1/key/{served.tokens[plugin]}/projects/1")
    try:
        listed = DET.fromstring(client.get("/formList").content)
        ids = {xf.find(f"{XFL}formID").text for xf in listed.iter(f"{XFL}xform")}
        assert ids == {"f8_activity", own}
        other = next(o for p, (_, _, o, _) in PLANS.items() if p != plugin)
        resp = client.submit(_xml(other, served.versions[other], province, commune))
        assert resp.status_code == 403
        assert f"Biểu mẫu {other} thuộc kế hoạch" in resp.text
        assert f"không dùng cho đơn vị {commune}" in resp.text
        assert f"Form {other} belongs to the plan of" in resp.text
        assert client.submit(_xml(own, served.versions[own], province, commune)).status_code == 201
    finally:
        client.close()
