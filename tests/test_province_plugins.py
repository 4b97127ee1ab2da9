"""The five built-in province plugins: loaded through the entry-point group, their plans, forms, hamlets
and indicators, each plugin's own indicators computed on a fixture and judged against its targets, and
conflicts between plugins named at start-up.

ODK Validate for the plugins' forms runs once, in tests/test_national_forms.py
(``test_plugin_forms_in_the_repository_pass_odk_validate``); here forms are compiled with pyxform only.
"""

from __future__ import annotations

import csv
import hashlib
import importlib
import json
import os
import re
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from indicators_support import instance_xml, local_noon
from javarosa_support import compile_form_eval, form_eval
from rasoat.core import hookimpl
from rasoat.core.formreg import FormCatalogue, find_media
from rasoat.core.indicators.engine import evaluate
from rasoat.core.indicators.loading import collect, raw_definitions
from rasoat.core.indicators.models import IndicatorResult, Status
from rasoat.core.instance import FormShape, parse_instance
from rasoat.core.models import Submission
from rasoat.core.payloads import PlanPeriod
from rasoat.core.plugins import PluginConflict, build_manager, results_by_plugin
from rasoat.core.storage.embedded import EmbeddedStore
from rasoat.core.units import HAMLET_TERMS, UnitRegistry, load_units
from rasoat.core.xlsform import CompiledForm

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT.parent / "shared" / "seeds"
VI, EN = "Tiếng Việt (vi)", "English (en)"

# plugin → (province code, form id, indicator/form id prefix, communes that must have hamlets)
PLUGINS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "thai_nguyen": ("19", "tn_xom_checklist", "tn_", ("05563",)),
    "quang_tri": ("44", "qt_03tot", "qt_", ("19363",)),
    "quang_ngai": ("51", "qn_tip", "qn_", ("23293", "23377")),
    "ho_chi_minh": ("79", "hcm_venue", "hcm_", ("26506",)),
    "hung_yen": ("33", "hy_transform", "hy_", ("12127",)),
}
PLAN_NUMBERS = {
    "thai_nguyen": "KH-UBND", "quang_tri": "29/KH-BCĐ", "quang_ngai": "3959/KH-UBND",
    "ho_chi_minh": "208/KH-UBND", "hung_yen": "KH-UBND",
}  # fmt: skip


def module(name: str) -> Any:
    return importlib.import_module(f"rasoat.plugins.{name}")


@pytest.fixture(scope="module")
def pm():
    return build_manager()


@pytest.fixture(scope="module")
def registry(pm) -> UnitRegistry:
    """The national units plus every plugin's hamlets, loaded through the hooks."""
    return load_units(pm)


@pytest.fixture(scope="module")
def catalogue(pm) -> FormCatalogue:
    return FormCatalogue(pm)  # pyxform only; ODK Validate runs in test_national_forms.py


@pytest.fixture(scope="module")
def indicators(pm) -> dict[str, Any]:
    return {i.id: i for i in collect(pm)}


# --- registration, versions, plans ----------------------------------------------------------------


def test_rasoat_plugins_lists_the_five_with_their_versions() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "rasoat.core.cli", "plugins", "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    listed = {p["name"]: p for p in json.loads(out.stdout)}
    for name, (_, form_id, prefix, _) in PLUGINS.items():
        entry = listed[name]
        assert entry["version"] == module(name).__version__, name  # the package's own version
        assert entry["builtin"] is False  # an entry point, exactly as an outside plugin
        assert {"plan_info", "forms", "indicators", "hamlets"} <= set(entry["hooks"])
        assert entry["forms"] == [form_id]
        assert entry["indicators"] and all(i.startswith(prefix) for i in entry["indicators"])


def test_each_plan_carries_its_metadata_and_seed(pm, registry: UnitRegistry) -> None:
    answers = dict(results_by_plugin(pm, "plan_info"))
    for plugin in PLUGINS:
        answer = answers[plugin]  # core.payloads.PlanInfo
        code = PLUGINS[plugin][0]
        assert answer.province_code == code and registry.require(code).level == "province"
        assert answer.issuer and answer.name and answer.date
        assert answer.number and PLAN_NUMBERS[plugin] in answer.number
        assert isinstance(answer.period, PlanPeriod) and answer.period.start and answer.period.end
        assert answer.period.start <= answer.period.end
        legacy = answer.extra("legacy_units")
        assert legacy and all(u["code"] and u["now"] for u in legacy)
        assert answer.hamlet_term
        assert answer.seed and re.fullmatch(r"\d{3}_[0-9a-f]{16}\.txt", answer.seed)
        if SEEDS.is_dir():
            assert (SEEDS / answer.seed).is_file(), answer.seed
        for commune in answer.communes:
            assert registry.require(commune).parent_code == code


# --- hamlets ----------------------------------------------------------------------------------------


def test_hamlet_lists_for_the_seed_communes_marked_sample(registry: UnitRegistry) -> None:
    for plugin, (province, _, _, communes) in PLUGINS.items():
        for commune in communes:
            hamlets = registry.hamlets(commune)
            assert hamlets, commune
            for h in hamlets:
                assert h.source == plugin and h.sample, h.code  # invented: marked sample
                assert h.households and h.term in HAMLET_TERMS
                assert registry.parent(h.code).code == commune
                assert registry.ancestors(h.code)[-1].code == province
    assert registry.require("05563-01").term == "xóm"  # Thái Nguyên says xóm
    assert registry.require("05563-01").legacy_commune_code == "05566"  # Phượng Tiến before July 2025
    assert registry.require("23293-01").legacy_commune_code == "23299"  # Phường Thống Nhất
    assert registry.require("26506-01").term == "khu phố"


# --- forms ------------------------------------------------------------------------------------------


def walk(children: list[dict[str, Any]], prefix: str = "") -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for child in children:
        if child["name"] == "meta":
            continue
        out[prefix + child["name"]] = child
        if child.get("type") in ("group", "repeat"):
            out.update(walk(child.get("children", []), prefix + child["name"] + "/"))
    return out


def plugin_form(catalogue: FormCatalogue, plugin: str) -> CompiledForm:
    entry = catalogue[PLUGINS[plugin][1]]
    assert entry.plugin == plugin
    return entry.form


def test_forms_follow_the_national_conventions(catalogue: FormCatalogue) -> None:
    for plugin, (_, form_id, prefix, _) in PLUGINS.items():
        entry = catalogue[form_id]
        form = entry.form
        assert entry.plugin == plugin and form_id.startswith(prefix) and form.source.stem == form_id
        assert form.languages == [VI, EN] and not form.title.isascii()
        assert re.fullmatch(r"20\d{8}", form.version)
        top = {c["name"]: c for c in form.schema["children"]}
        assert top["province"]["itemset"] == "provinces.csv"
        assert top["commune"]["choice_filter"] == "province=${province}"
        assert top["hamlet"]["choice_filter"] == "commune=${commune}"
        assert {"admin_data_version", "ref_date", "enumerator_role"} <= set(top)
        assert entry.missing_media == []  # placeholders ship next to the form
        for path, field in walk(form.schema["children"]).items():
            if field["type"] in ("calculate", "start", "end", "today", "deviceid", "username"):
                continue
            label = field.get("label")
            assert isinstance(label, dict) and label.get(VI) and label.get(EN), f"{form_id} {path}"
        for items in form.schema.get("choices", {}).values():
            assert all(i["label"].get(VI) and i["label"].get(EN) for i in items), form_id


def test_placeholder_location_media_match_the_plugin_hamlets(catalogue: FormCatalogue, registry) -> None:
    for plugin, (province, form_id, _, _) in PLUGINS.items():
        form = catalogue[form_id].form
        found, _ = find_media(form.source, form_id, form.media)
        with found["hamlets.csv"].open(encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        assert rows and all(registry.require(r["name"]).source == plugin for r in rows)
        with found["provinces.csv"].open(encoding="utf-8") as fh:
            assert [r["name"] for r in csv.DictReader(fh)] == [province]


def test_checklist_and_scorecard_items_are_the_forms_choices(catalogue: FormCatalogue) -> None:
    tn = module("thai_nguyen").checklists()[0]
    choices = plugin_form(catalogue, "thai_nguyen").schema["choices"]
    assert [c["name"] for c in choices["tn_xom_criteria"]] == [i["name"] for i in tn["items"]]
    assert tn["rule"]["kind"] == "all" and tn["form"] == "tn_xom_checklist"
    qt = module("quang_tri").checklists()[0]
    assert [g["name_vi"] for g in qt["groups"]] == ["Phong trào tốt", "Quản lý tốt", "Đấu tranh tốt"]
    choices = plugin_form(catalogue, "quang_tri").schema["choices"]
    fields = walk(plugin_form(catalogue, "quang_tri").schema["children"])
    for group in qt["groups"]:
        assert [c["name"] for c in choices[group["list_name"]]] == [i["name"] for i in group["items"]]
        assert fields[group["field"]]["type"] == "select all that apply"
        assert group["items"] and 0 < group["pass_share"] <= 1
    assert {"is_03tot", "score_pct", "groups_ok"} <= set(fields)


def test_hung_yen_lists_schools_and_enterprises_for_progress() -> None:
    from rasoat.core.unit_lists import plugin_sites

    schools, enterprises = plugin_sites("schools"), plugin_sites("enterprises")
    assert len(schools["12127"]) == 4 and len(enterprises["12127"]) == 4


# --- the forms' logic in JavaRosa: the scorecard rule of the data and of the form agree ------------


@pytest.fixture(scope="module")
def javarosa(tmp_path_factory: pytest.TempPathFactory, catalogue: FormCatalogue):
    """evaluate(form_id, *scenarios, ask=[...]) → one {field: value} per scenario, run by JavaRosa."""
    work = tmp_path_factory.mktemp("javarosa-plugins")
    compile_form_eval(work)

    def evaluate(form_id: str, *scenarios: dict[str, str], ask: list[str]) -> list[dict[str, str]]:
        form = catalogue[form_id].form
        return form_eval(work, form_id, form.xml, form.source.parent, *scenarios, ask=ask)

    return evaluate


def test_the_03tot_form_scores_as_the_scorecard_data_says(javarosa) -> None:
    qt = module("quang_tri")
    card = qt.scorecard()
    every = {g["field"]: " ".join(i["name"] for i in g["items"]) for g in card["groups"]}
    one_short = {**every, "dt_met": " ".join(every["dt_met"].split()[:-1])}
    scenarios = [every, one_short, {"pt_met": every["pt_met"].split()[0]}]
    results = javarosa("qt_03tot", *scenarios, ask=["pt_ok", "ql_ok", "dt_ok", "is_03tot", "score_pct"])
    for scenario, got in zip(scenarios, results, strict=True):
        want = qt.score(scenario, card)
        assert got["is_03tot"] == want["is_03tot"]
        assert float(got["score_pct"]) == pytest.approx(want["score_pct"], abs=0.05)
        for group in card["groups"]:
            prefix = group["field"].split("_")[0]
            assert got[f"{prefix}_ok"] == ("yes" if want["groups"][group["id"]]["ok"] else "no")
    assert [r["is_03tot"] for r in results] == ["yes", "no", "no"]
    assert results[0]["score_pct"] in ("100", "100.0")


def test_the_xom_checklist_meets_the_standard_only_with_every_criterion(javarosa) -> None:
    items = [i["name"] for i in module("thai_nguyen").checklists()[0]["items"]]
    answers = {"households": "i:100", "hh_pledged": "i:100", "new_persons": "i:0", "mailbox": "yes",
               "hotline_board": "yes"}  # fmt: skip
    full, partial = javarosa(
        "tn_xom_checklist",
        {**answers, "criteria_met": " ".join(items)},
        {**answers, "criteria_met": " ".join(items[:-1])},
        ask=["criteria_count", "criteria_total", "meets_standard", "mailbox_and_hotline"],
    )
    assert full["meets_standard"] == "yes" and full["criteria_total"] == str(len(items))
    assert partial["meets_standard"] == "no" and full["mailbox_and_hotline"] == "yes"


# --- indicators: data that cites its seed and plan, fields that exist --------------------------------


def test_indicators_cite_their_seed_and_plan_and_keep_to_their_province(
    indicators: dict[str, Any], catalogue: FormCatalogue, registry: UnitRegistry
) -> None:
    for plugin, (province, _, prefix, _) in PLUGINS.items():
        plan = module(plugin).plan_info()
        own = [i for i in indicators.values() if i.id.startswith(prefix)]
        assert len(own) >= 3, plugin
        assert len([i for i in own if i.target is not None]) >= 2, plugin
        communes = {u.code for u in registry.communes(province)}
        for ind in own:
            assert ind.source.seed == plan["seed"] and ind.source.ref and ind.source.document, ind.id
            if ind.target and ind.target.deadline:
                assert ind.target.deadline <= max(plan["period"]["to"], 2030), ind.id
            for m in ind.measures():
                if not m.form:
                    continue
                scope = {f.field: f.value for f in m.where if f.field in ("province", "commune")}
                named = scope.get("commune")
                named = set(named if isinstance(named, list) else [named])
                assert scope.get("province") == province or named <= communes, f"{ind.id} counts everyone"
                fields = walk(catalogue[m.form].form.schema["children"])
                read = [f.field for f in m.where]
                read += [p for p in (m.distinct, m.date_field, m.latest_by, m.repeat) if p]
                read += [f"{m.repeat}/{f.field}" for f in m.row_where]
                if m.field:
                    read.append(f"{m.repeat}/{m.field}" if m.repeat else m.field)
                missing = [p for p in read if p not in fields]
                assert not missing, f"{ind.id}: {m.form} has no field {missing}"


# --- each plugin's own indicators on a fixture -------------------------------------------------------


class Fixture:
    """Submissions saved into a real EmbeddedStore as the server would (XML first, fields parsed from it),
    and the plugin's own indicators evaluated over them."""

    def __init__(self, tmp_path: Path, province: str, prefix: str, indicators, registry) -> None:
        self.store = EmbeddedStore(tmp_path)
        self.province, self.registry = province, registry
        self.indicators = [i for i in indicators.values() if i.id.startswith(prefix)]

    def add(self, form_id: str, unit: str, day: str, province: str | None = None, **fields: Any) -> None:
        commune = unit.split("-", 1)[0]
        location = {"province": province or self.province, "commune": commune}
        if "-" in unit:
            location["hamlet"] = unit
        answers = {**location, **fields}
        iid = f"uuid:{uuid.uuid4()}"
        xml = instance_xml(form_id, iid, answers)
        shape = FormShape(repeats=frozenset(k for k, v in answers.items() if isinstance(v, list)))
        sub = Submission(instance_id=iid, form_id=form_id, form_version="1", unit_code=unit,
                         received_at=local_noon(day), xml_md5=hashlib.md5(xml).hexdigest(),
                         fields=parse_instance(xml, shape).fields)
        self.store.save_submission(sub, xml, {})

    def results(self, period: str, *units: str) -> dict[tuple[str, str], IndicatorResult]:
        got = evaluate(self.store, period, units=list(units), indicators=self.indicators,
                       registry=self.registry)
        return {(r.unit_code, r.indicator_id): r for r in got}


def person(key: str, day: str, **fields: str) -> dict[str, str]:
    """An F1 record of a person present, as the form computes person_key and present."""
    return {"entry_type": "new", "person_key": key, "present": "yes", "ref_date": day, **fields}


def test_thai_nguyen_targets(tmp_path, indicators, registry) -> None:
    tn = Fixture(tmp_path, "19", "tn_", indicators, registry)
    x1, x2, commune, day = "05563-01", "05563-02", "05563", "2026-03-10"
    tn.add("f2_pledge", x1, day, ref_date=day, households_total="112", households_pledged="112")
    tn.add("f2_pledge", x2, day, ref_date=day, households_total="96", households_pledged="90")
    aid = {"legal_aid_eligible": "yes", "legal_aid_requested": "yes", "legal_aid_provided": "yes"}
    people = [
        person("p1", day, category="addict", has_record="yes", services="counselling methadone", **aid),
        person("p2", day, category="user", has_record="yes", services="counselling"),
        person("p3", day, category="post_rehab", has_record="yes", services="treatment", **aid),
        person("p4", day, category="user", has_record="no", services="rehab"),
    ]
    for answers in people:
        tn.add("f1_person", x1, day, **answers)
    for hamlet, mailbox in ((x1, "yes"), (x2, "no")):
        tn.add("tn_xom_checklist", hamlet, day, ref_date=day, mailbox=mailbox, hotline_board="yes")
    # another province's pledges are not Thái Nguyên's business
    tn.add("f2_pledge", "23293-01", day, province="51", ref_date=day, households_total="50",
           households_pledged="10")
    r = tn.results("2026", x1, commune, "23293")

    assert r[(x1, "tn_household_pledges")].value == 100
    assert r[(x1, "tn_household_pledges")].status is Status.met
    pledges = r[(commune, "tn_household_pledges")]
    assert (pledges.numerator, pledges.denominator) == (202, 208)
    assert pledges.status is Status.on_track  # 97 % in 2026, 100 % due by 2030
    recorded = r[(commune, "tn_persons_recorded")]
    assert recorded.value == 75 and recorded.status is Status.on_track
    support = r[(commune, "tn_support_reach")]
    assert support.value == 100 and support.status is Status.met  # > 90 %
    assert r[(commune, "tn_legal_aid")].value == 100 and r[(commune, "tn_legal_aid")].status is Status.met
    boxes = r[(commune, "tn_xom_mailbox_hotline")]
    # 12.5 % of the way by the end of 2026, when 20 % of 2026–2030 is gone: behind, not "on track"
    assert (boxes.numerator, boxes.denominator) == (1, 8) and boxes.status is Status.not_met
    assert (boxes.progress_pct, round(boxes.elapsed_pct or 0)) == (12.5, 20)
    assert r[(commune, "tn_new_persons")].value == 4
    assert r[(commune, "tn_new_persons")].status is Status.not_met  # no new users, every year
    assert ("23293", "tn_household_pledges") not in r  # Thái Nguyên's plan is not shown in Quảng Ngãi

    # Phượng Tiến must be drug-free in 2027: not met in 2027 with a complex class, met once drug-free
    tn.add("f10_summary", commune, "2027-12-15", period_to="2027-12-14", qd28_final="type_3")
    late = tn.results("2027", commune)[(commune, "tn_commune_drug_free")]
    assert late.value == 0 and late.status is Status.not_met and late.target_deadline == 2027
    tn.add("f10_summary", commune, "2027-12-20", period_to="2027-12-14", qd28_final="drug_free")
    done = tn.results("2027", commune)[(commune, "tn_commune_drug_free")]
    assert done.value == 100 and done.status is Status.met


def test_quang_tri_targets(tmp_path, indicators, registry) -> None:
    qt = Fixture(tmp_path, "44", "qt_", indicators, registry)
    commune, day = "19363", "2024-06-01"
    for year, criminal in ((2023, "20"), (2024, "21")):
        rows = [{"case_kind": "criminal", "cases": criminal}, {"case_kind": "administrative", "cases": "9"}]
        qt.add("f9_case", commune, f"{year}-12-15", period_to=f"{year}-12-14", offence=rows)
    # plan_coverage.md QT7, by hand: of an addict with a dossier, one already in compulsory rehab (F1 asks
    # no dossier of them) and one on methadone, only the first is "không tự nguyện đăng ký cai nghiện":
    # 1 of 1 = 100 % (the old formula gave 1 of 3). Voluntary rehab is not counted either.
    addicts = [
        person("a1", day, category="addict", services="counselling", compulsory_dossier="yes"),
        person("a2", day, category="addict", services="rehab", rehab_type="compulsory"),
        person("a3", day, category="addict", services="methadone counselling", compulsory_dossier="no"),
        person("a4", day, category="addict", services="rehab", rehab_type="voluntary_home"),
    ]
    for answers in addicts:
        qt.add("f1_person", f"{commune}-01", day, **answers)
    for hamlet, ok, score in (("01", "yes", "100"), ("02", "no", "63.6")):
        qt.add("qt_03tot", f"{commune}-{hamlet}", day, ref_date=day, assessed_level="hamlet", is_03tot=ok,
               score_pct=score)
    r = qt.results("2024", "44", commune)

    detected = r[("44", "qt_cases_vs_2023")]
    assert (detected.value, detected.previous_value, detected.previous_period) == (21, 20, "2023")
    assert detected.change_pct == pytest.approx(5.0) and detected.status is Status.met  # +5 % on 2023
    dossiers = r[(commune, "qt_compulsory_dossiers")]
    assert (dossiers.numerator, dossiers.denominator, dossiers.value) == (1, 1, 100)
    assert dossiers.status is Status.met
    # a fifth addict, in no rehab and without a dossier: 1 of 2
    qt.add("f1_person", f"{commune}-02", day, **person("a5", day, category="addict", compulsory_dossier="no"))
    again = qt.results("2024", commune)[(commune, "qt_compulsory_dossiers")]
    assert (again.numerator, again.denominator, again.status) == (1, 2, Status.not_met)
    areas = r[(commune, "qt_areas_03tot")]
    assert areas.value == 50 and areas.status is Status.no_target
    assert r[(commune, "qt_03tot_score")].value == pytest.approx(81.8)


def test_quang_ngai_targets(tmp_path, indicators, registry) -> None:
    qn = Fixture(tmp_path, "51", "qn_", indicators, registry)
    bo_y, kon_tum = "23377", "23293"

    def tip(day: str, no: str, route: str, verified: str) -> None:
        in_scope = "no" if route == "other" else "yes"
        qn.add("qn_tip", bo_y, day, tip_no=no, received_date="2025-03-01", route=route, verified=verified,
               in_scope=in_scope)

    tip("2025-03-02", "01/2025", "border_gate", "yes")
    tip("2025-03-02", "02/2025", "courier", "no")
    tip("2025-04-10", "02/2025", "courier", "yes")  # a later update of the same tip: verified
    tip("2025-03-05", "03/2025", "border_laos", "no")
    tip("2025-03-05", "04/2025", "other", "no")  # inland: not in scope
    # KT5 by hand: "trên 90% số vụ án ma túy được giải quyết, xét xử". Kon Tum: 10 criminal cases (and 12
    # administrative), 10 resolved: 100 %. Bờ Y: 8 criminal (and 12 administrative), 7 resolved: 7/8 =
    # 87.5 %, not met (the old formula divided by all 20 cases: 35 %).
    qn.add("f9_case", kon_tum, "2025-12-15", period_to="2025-12-14", cases_total="22", cases_resolved="10",
           offence=[{"case_kind": "criminal", "cases": "10"}, {"case_kind": "administrative", "cases": "12"}])
    qn.add("f9_case", bo_y, "2025-12-15", period_to="2025-12-14", cases_total="20", cases_resolved="7",
           offence=[{"case_kind": "criminal", "cases": "8"}, {"case_kind": "administrative", "cases": "12"}])
    qn.add("f10_summary", kon_tum, "2025-12-15", period_to="2025-12-14", qd28_final="drug_free")
    qn.add("f10_summary", bo_y, "2025-12-15", period_to="2025-12-14", qd28_final="type_3")
    r = qn.results("2025", "51", bo_y, kon_tum)

    assert r[(bo_y, "qn_tips_received")].value == 3
    verified = r[(bo_y, "qn_tips_verified")]
    assert (verified.numerator, verified.denominator) == (2, 3) and verified.status is Status.not_met
    resolved = r[(kon_tum, "qn_cases_resolved")]
    assert resolved.value == 100 and resolved.status is Status.met  # > 90 %
    behind = r[(bo_y, "qn_cases_resolved")]
    assert (behind.numerator, behind.denominator, behind.value) == (7, 8, 87.5)
    assert behind.status is Status.not_met
    assert r[(kon_tum, "qn_watchlist_relapse")].status is Status.met
    relapse = r[("51", "qn_watchlist_relapse")]
    assert relapse.value == 1 and relapse.status is Status.not_met  # Xã Bờ Y is complex again


def test_ho_chi_minh_targets(tmp_path, indicators, registry) -> None:
    hcm = Fixture(tmp_path, "79", "hcm_", indicators, registry)
    ward, kp = "26506", "26506-01"

    def check(unit: str, licence: str, day: str, violation: str, **more: str) -> None:
        hcm.add("hcm_venue", unit, day, licence_no=licence, check_date=day, business_type="karaoke",
                drug_violation=violation, **more)

    check(kp, "GCN-001", "2025-02-01", "no")
    check(kp, "GCN-002", "2025-02-03", "yes", action="fined")
    check(ward, "GCN-003", "2025-02-05", "yes", action="none")
    for key in ("h1", "h2"):
        hcm.add("f1_person", kp, "2025-02-01",
                **person(key, "2025-02-01", category="addict", psychosis="suspected", has_record="yes"))
    r = hcm.results("2025", ward)
    assert r[(ward, "hcm_venues_checked")].value == 3
    used = r[(ward, "hcm_venues_drug_violation")]
    assert used.value == 2 and used.status is Status.not_met  # target: no venue used for drugs
    handled = r[(ward, "hcm_violations_handled")]
    assert handled.value == 50 and handled.status is Status.not_met
    assert r[(ward, "hcm_psychosis_managed")].status is Status.met

    check(ward, "GCN-003", "2025-03-01", "yes", action="suspended")  # the follow-up check: latest counts
    r = hcm.results("2025", ward)
    assert r[(ward, "hcm_violations_handled")].status is Status.met
    assert r[(ward, "hcm_venues_checked")].value == 3  # one venue, however many checks



def test_the_plans_last_items_in_quang_ngai_and_ho_chi_minh(tmp_path, indicators, registry) -> None:
    """KT1, KT12 (Quảng Ngãi) and BR16 (TP Hồ Chí Minh), computed by hand from the plans' words."""
    qn = Fixture(tmp_path / "qn", "51", "qn_", indicators, registry)
    bo_y, kon_tum = "23377", "23293"
    # "Phấn đấu tăng số xã … không có tệ nạn ma túy": 1 commune in 2024, 2 in 2025 (+1, met)
    qn.add("f10_summary", kon_tum, "2024-12-15", period_to="2024-12-14", qd28_final="drug_free")
    qn.add("f10_summary", bo_y, "2024-12-15", period_to="2024-12-14", qd28_final="type_3")
    qn.add("f10_summary", kon_tum, "2025-12-15", period_to="2025-12-14", qd28_final="drug_free")
    qn.add("f10_summary", bo_y, "2025-12-15", period_to="2025-12-14", qd28_final="drug_free")
    # "Kiểm soát chặt chẽ 100% các loại tiền chất, thuốc gây nghiện…": 3 of 4 premises inspected in Bờ Y
    qn.add("f9_case", bo_y, "2025-12-15", period_to="2025-12-14", controlled_premises="4",
           controlled_premises_checked="3")
    qn.add("f9_case", kon_tum, "2025-12-15", period_to="2025-12-14", controlled_premises="6",
           controlled_premises_checked="6")
    r = qn.results("2025", "51", bo_y, kon_tum)
    up = r[("51", "qn_drug_free_communes_up")]
    assert (up.value, up.previous_value, up.status) == (2, 1, Status.met)
    assert r[(bo_y, "qn_controlled_premises_checked")].value == 75
    assert r[(bo_y, "qn_controlled_premises_checked")].status is Status.not_met
    assert r[(kon_tum, "qn_controlled_premises_checked")].status is Status.met
    assert r[("51", "qn_controlled_premises_checked")].value == 90  # 9 of 10, summed, not averaged

    hcm = Fixture(tmp_path / "hcm", "79", "hcm_", indicators, registry)
    ward = "26506"
    # "không để xảy ra tình trạng mua bán, sử dụng trái phép chất ma túy công khai …"
    hcm.add("f5_hamlet", f"{ward}-01", "2025-06-01", ref_date="2025-06-01", open_dealing="yes")
    hcm.add("f5_hamlet", f"{ward}-02", "2025-06-01", ref_date="2025-06-01", open_dealing="no")
    dealing = hcm.results("2025", ward)[(ward, "hcm_open_dealing")]
    assert dealing.value == 1 and dealing.status is Status.not_met
    hcm.add("f5_hamlet", f"{ward}-01", "2025-09-01", ref_date="2025-09-01", open_dealing="no")  # cleared
    dealing = hcm.results("2025", ward)[(ward, "hcm_open_dealing")]
    assert dealing.value == 0 and dealing.status is Status.met


def test_hung_yen_targets(tmp_path, indicators, registry) -> None:
    hy = Fixture(tmp_path, "33", "hy_", indicators, registry)
    ward = "12127"
    statuses = ["kept_free", "kept_free", "kept_free", "transformed", "transformed", "relapsed",
                "in_progress", "in_progress"]  # fmt: skip
    for n, status in enumerate(statuses, 1):
        day = "2024-11-20" if n == 1 else "2025-11-20"  # a 2024 review still stands at the end of 2025
        free = "yes" if status in ("kept_free", "transformed") else "no"
        hy.add("hy_transform", f"{ward}-{n:02d}", day, ref_date=day, status=status, drug_vice_free=free)
    day = "2025-05-20"
    for n, meets in enumerate(["yes", "yes", "no", "no"], 1):
        hy.add("f3_school", ward, day, ref_date=day, school=f"HY-TH-0{n}", meets_standard=meets)
    hy.add("f4_enterprise", ward, day, ref_date=day, enterprise="HY-DN-01", meets_standard="no")
    r = hy.results("2025", ward)

    free = r[(ward, "hy_areas_drug_free")]
    assert (free.numerator, free.denominator) == (5, 8) and free.status is Status.met  # ≥ 50 % by 2025
    relapse = r[(ward, "hy_no_relapse")]
    assert (relapse.numerator, relapse.denominator) == (2, 3) and relapse.status is Status.not_met  # < 85 %
    schools = r[(ward, "hy_schools_drug_free_2025")]
    assert schools.value == 50 and schools.status is Status.met
    assert r[(ward, "hy_schools_drug_free_2030")].status is Status.on_track  # 100 % due by 2030
    enterprises = r[(ward, "hy_enterprises_drug_free_2025")]
    # one audit, failed; the denominator is the ward's list of four enterprises, not the one audited
    assert (enterprises.numerator, enterprises.denominator) == (0, 4) and enterprises.status is Status.not_met
    assert r[(ward, "hy_census_rounds")].status is Status.no_data  # no commune summary yet


# --- extra checks on submissions ---------------------------------------------------------------------


def test_check_submission_hooks(pm) -> None:
    fields = {"province": "19", "present": "yes", "legal_aid_requested": "yes"}
    messages = [m for answer in pm.hook.check_submission(form_id="f1_person", fields=fields) for m in answer]
    assert len(messages) == 2 and all(m.startswith("Thái Nguyên") for m in messages)
    assert pm.hook.check_submission(form_id="f1_person", fields={**fields, "province": "79"}) == []
    qt = module("quang_tri")
    every = {g["field"]: " ".join(i["name"] for i in g["items"]) for g in qt.scorecard()["groups"]}
    assert qt.check_submission(form_id="qt_03tot", fields={**every, "is_03tot": "yes"}) is None
    outdated = {**every, "pt_met": "pt_old_item", "is_03tot": "yes"}
    wrong = qt.check_submission(form_id="qt_03tot", fields=outdated)
    assert wrong and "pt_old_item" in wrong[0] and "update the form" in wrong[1]


# --- conflicts between plugins, named at start-up ----------------------------------------------------


def write_form(path: Path, form_id: str) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "survey"
    ws.append(["type", "name", "label"])
    ws.append(["integer", "so_ho", "Số hộ"])
    wb.create_sheet("settings").append(["form_id", "version"])
    wb["settings"].append([form_id, "2026112601"])
    wb.save(path)
    return path


class Throwaway:
    """A plugin object with a form file and indicator definitions."""

    def __init__(self, form: Path | None = None, defs: list[dict[str, Any]] | None = None) -> None:
        self.form, self.defs = form, defs

    @hookimpl
    def forms(self):
        return [self.form] if self.form else None

    @hookimpl
    def indicators(self):
        return self.defs


COUNT = {"form": "f5_hamlet", "where": {"mailbox": "yes"}}
# Throwaway plugin names no real province plugin uses, so the tests pass with any plugin installed
# (e.g. the lang_son project the README's `rasoat plugin new` makes).


def test_two_plugins_with_one_form_id_are_named(tmp_path) -> None:
    pm = build_manager()
    pm.register(Throwaway(write_form(tmp_path / "a.xlsx", "tinh_thu_checklist")), name="tinh_thu_a")
    pm.register(Throwaway(write_form(tmp_path / "b.xlsx", "tinh_thu_checklist")), name="tinh_thu_b")
    with pytest.raises(PluginConflict, match=r"tinh_thu_checklist.*'tinh_thu_a'.*'tinh_thu_b'"):
        FormCatalogue(pm)
    pm = build_manager()
    pm.register(Throwaway(write_form(tmp_path / "c.xlsx", "tn_xom_checklist")), name="copycat")
    with pytest.raises(PluginConflict, match=r"'thai_nguyen'.*'copycat'"):
        FormCatalogue(pm)


def test_two_plugins_with_one_indicator_id_are_named() -> None:
    pm = build_manager()
    one = {"id": "ls_mailbox", "name_vi": "Hòm thư", "name_en": "Mailbox", "numerator": COUNT}
    pm.register(Throwaway(defs=[one]), name="tinh_thu_a")
    pm.register(Throwaway(defs=[one]), name="tinh_thu_b")
    with pytest.raises(PluginConflict, match=r"ls_mailbox.*'tinh_thu_a'.*'tinh_thu_b'"):
        collect(pm)
    pm = build_manager()
    pm.register(Throwaway(defs=[{**one, "id": "qt_cases_vs_2023"}]), name="copycat")
    with pytest.raises(PluginConflict, match=r"'quang_tri'.*'copycat'"):
        collect(pm)


def test_a_national_threshold_changes_only_when_declared() -> None:
    national = {i.id: i for i in collect(build_manager())}["nat_services_reach"]
    pm = build_manager()
    silent = {**raw_definitions(national)[0], "target": {"op": ">", "value": 90, "deadline": 2030}}
    pm.register(Throwaway(defs=[silent]), name="tinh_thu_a")
    national_plugin = r"'rasoat\.core\.builtin\.national'"
    with pytest.raises(PluginConflict, match=rf"nat_services_reach.*{national_plugin}.*'tinh_thu_a'"):
        collect(pm)
    pm = build_manager()
    declared = {"overrides": "nat_services_reach", "target": {"op": ">", "value": 90, "deadline": 2030}}
    pm.register(Throwaway(defs=[declared]), name="tinh_thu_a")
    changed = {i.id: i for i in collect(pm)}["nat_services_reach"]
    assert (changed.target.value, changed.target.deadline) == (90, 2030)
    assert changed.numerator == national.numerator  # only the threshold changed
    pm.register(Throwaway(defs=[declared]), name="tinh_thu_b")
    with pytest.raises(PluginConflict, match=r"nat_services_reach.*'tinh_thu_a'.*'tinh_thu_b'"):
        collect(pm)


def fake_install(site: Path, name: str, body: str) -> None:
    """An installed distribution as pip leaves it: a package and a dist-info with the entry point."""
    pkg = site / f"rasoat_{name}"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(body), encoding="utf-8")
    info = site / f"rasoat_{name}-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: rasoat-{name}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[rasoat]\n{name} = rasoat_{name}\n")


@pytest.mark.slow
def test_conflicts_stop_the_command_line_with_both_names(tmp_path) -> None:
    site = tmp_path / "site"
    form = write_form(tmp_path / "shared.xlsx", "shared_checklist")
    for name in ("lang_son", "cao_bang"):
        fake_install(site, name, f"""
            from rasoat.core import hookimpl

            @hookimpl
            def forms():
                return [{str(form)!r}]

            @hookimpl
            def indicators():
                return [{{"id": "shared_mailbox", "name_vi": "Hòm thư", "name_en": "Mailbox",
                          "numerator": {{"form": "f5_hamlet"}}}}]
            """)
    env = {**os.environ, "PYTHONPATH": str(site), "RASOAT_DATA": str(tmp_path / "data")}
    for command in (["forms", "list"], ["indicators", "--definitions"]):
        out = subprocess.run([sys.executable, "-m", "rasoat.core.cli", *command], capture_output=True,
                             text=True, env=env, cwd=tmp_path, timeout=120)
        assert out.returncode == 1, out.stdout
        assert "Traceback" not in out.stderr
        assert "'cao_bang'" in out.stderr and "'lang_son'" in out.stderr, out.stderr
        assert out.stderr.startswith("Lỗi / Error:")


def test_the_plans_added_targets_by_hand(tmp_path, indicators, registry) -> None:
    """Targets added from the plans' own words (issue 19): each value and status worked out by hand."""
    # Thái Nguyên, 2026 (one year of 2026–2030 gone: 20 %)
    tn = Fixture(tmp_path / "tn", "19", "tn_", indicators, registry)
    commune, day = "05563", "2026-05-01"
    tn.add("f8_activity", "05563-01", day, act_date=day, venue_type="hamlet")
    tn.add("f3_school", commune, day, ref_date=day, school="S1", pupils_total="200", pupils_reached="150")
    tn.add("f4_enterprise", commune, day, ref_date=day, enterprise="E1", workers_total="50",
           workers_reached="5")
    tn.add("tn_xom_checklist", "05563-01", day, ref_date=day, violators_known="4", violators_handled="3")
    tn.add("f10_summary", commune, "2026-12-15", period_to="2026-12-14", fugitives_hiding="1")
    r = tn.results("2026", commune)
    xom = r[(commune, "tn_xom_prevention")]
    assert (xom.numerator, xom.denominator) == (1, 8) and xom.status is Status.not_met  # 12.5 % < 20 %
    pupils = r[(commune, "tn_pupils_reached")]
    assert pupils.value == 75 and pupils.status is Status.on_track  # 75 % ≥ 20 %
    workers = r[(commune, "tn_workers_reached")]
    assert workers.value == 10 and workers.status is Status.not_met  # 10 % < 20 %
    handled = r[(commune, "tn_violators_handled")]
    assert handled.value == 75 and handled.status is Status.on_track
    hiding = r[(commune, "tn_fugitives_hiding")]
    assert hiding.value == 1 and hiding.status is Status.not_met  # "= 0": never "on track"

    # Quảng Trị: 26/6 activities in one commune of the province's 78
    qt = Fixture(tmp_path / "qt", "44", "qt_", indicators, registry)
    qt.add("f8_activity", "19363", "2024-06-26", act_date="2024-06-26", campaign="june_26")
    june = qt.results("2024", "44")[("44", "qt_june_campaign")]
    assert june.numerator == 1 and june.denominator == len(registry.communes("44"))

    # Quảng Ngãi: drug-free communes kept (1 → 1), complex communes down (2 → 1)
    qn = Fixture(tmp_path / "qn", "51", "qn_", indicators, registry)
    for year, kon_tum, bo_y in ((2024, "drug_free", "type_3"), (2025, "drug_free", "drug_free")):
        qn.add("f10_summary", "23293", f"{year}-12-15", period_to=f"{year}-12-14", qd28_final=kon_tum)
        qn.add("f10_summary", "23377", f"{year}-12-15", period_to=f"{year}-12-14", qd28_final=bo_y)
    r = qn.results("2025", "51")
    kept, down = r[("51", "qn_drug_free_communes_kept")], r[("51", "qn_complex_communes_down")]
    assert (kept.previous_value, kept.value, kept.status) == (1, 2, Status.met)
    assert (down.previous_value, down.value, down.status) == (1, 0, Status.met)

    # Hồ Chí Minh: one more complex commune than the year before breaks "không để phát sinh"
    hcm = Fixture(tmp_path / "hcm", "79", "hcm_", indicators, registry)
    hcm.add("f10_summary", "26506", "2025-12-15", period_to="2025-12-14", qd28_final="type_2")
    complex_ = hcm.results("2025", "79")[("79", "hcm_complex_communes")]
    assert (complex_.previous_value, complex_.value, complex_.status) == (None, 1, Status.no_data)

    # Hưng Yên: addicts must fall year on year; 2030 enterprises over the ward's list of four
    hy = Fixture(tmp_path / "hy", "33", "hy_", indicators, registry)
    for key, year in (("a", 2025), ("b", 2025), ("a", 2026)):
        hy.add("f1_person", "12127-01", f"{year}-06-01",
               **person(key, f"{year}-06-01", category="addict"))
    hy.add("f4_enterprise", "12127", "2026-06-01", ref_date="2026-06-01", enterprise="HY-DN-01",
           meets_standard="yes")
    r = hy.results("2026", "12127")
    fewer = r[("12127", "hy_addicts_decrease")]
    assert (fewer.previous_value, fewer.value, fewer.status) == (2, 1, Status.met)  # b not listed in 2026
    ent = r[("12127", "hy_enterprises_drug_free_2030")]
    assert (ent.numerator, ent.denominator, ent.value) == (1, 4, 25)
