"""The ten national forms: every one passes ODK Validate and keeps the contract docs/forms.md describes."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from javarosa_support import compile_form_eval, form_eval
from rasoat.core.formreg import find_media
from rasoat.core.xlsform import CompiledForm, compile_xlsform

ROOT = Path(__file__).resolve().parent.parent
FORMS = ROOT / "forms"
VI, EN = "Tiếng Việt (vi)", "English (en)"
NATIONAL = [
    "f1_person", "f2_pledge", "f3_school", "f4_enterprise", "f5_hamlet",
    "f6_hotspot", "f7_cultivation", "f8_activity", "f9_case", "f10_summary", "f11_management",
    "f12_visit", "f13_test",
]  # fmt: skip


@pytest.fixture(scope="session")
def national() -> dict[str, CompiledForm]:
    """Every shipped form compiled once with ODK Validate (a JVM each, two at a time)."""
    paths = sorted(FORMS.glob("*.xlsx"))
    with ThreadPoolExecutor(max_workers=2) as pool:
        forms = list(pool.map(lambda p: compile_xlsform(p, validate=True), paths))
    return {f.form_id: f for f in forms}


def walk(children: list[dict[str, Any]], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    for child in children:
        if child["name"] == "meta":
            continue
        yield prefix + child["name"], child
        if child.get("type") in ("group", "repeat"):
            yield from walk(child.get("children", []), prefix + child["name"] + "/")


def fields(form: CompiledForm) -> dict[str, dict[str, Any]]:
    return dict(walk(form.schema["children"]))


@pytest.mark.slow
def test_the_ten_forms_pass_odk_validate(national: dict[str, CompiledForm]) -> None:
    assert sorted(national) == sorted(NATIONAL)
    for form_id, form in national.items():
        assert form.source.stem == form_id  # forms/<form_id>.xlsx
        assert re.fullmatch(r"20\d{8}", form.version)
        assert not form.encrypted


@pytest.mark.slow
def test_plugin_forms_in_the_repository_pass_odk_validate() -> None:
    """Province plugins under plugins/ ship XLSForms too: each must pass ODK Validate as well."""
    paths = sorted((ROOT / "plugins").rglob("*.xlsx"))
    with ThreadPoolExecutor(max_workers=2) as pool:
        forms = list(pool.map(lambda p: compile_xlsform(p, validate=True), paths))
    assert len({f.form_id for f in forms}) == len(forms)


def test_settings_and_languages(national: dict[str, CompiledForm]) -> None:
    for form in national.values():
        assert form.languages == [VI, EN], form.form_id
        assert form.schema["default_language"] == VI
        assert not form.title.isascii(), f"{form.form_id}: the title is Vietnamese"


def test_every_question_is_labelled_in_both_languages(national: dict[str, CompiledForm]) -> None:
    for form in national.values():
        for path, field in fields(form).items():
            label = field.get("label")
            if field["type"] in ("calculate", "start", "end", "today", "deviceid", "username"):
                continue
            assert isinstance(label, dict) and label.get(VI) and label.get(EN), f"{form.form_id} {path}"
        for list_name, items in form.schema.get("choices", {}).items():
            for item in items:
                assert item["label"].get(VI) and item["label"].get(EN), f"{form.form_id} {list_name}"


def test_location_block_is_top_level_with_filters(national: dict[str, CompiledForm]) -> None:
    for form in national.values():
        top = {c["name"]: c for c in form.schema["children"]}
        assert top["province"]["itemset"] == "provinces.csv"
        assert top["commune"]["itemset"] == "communes.csv"
        assert top["commune"]["choice_filter"] == "province=${province}"
        assert top["hamlet"]["itemset"] == "hamlets.csv"
        assert top["hamlet"]["choice_filter"] == "commune=${commune}"
        assert {"provinces.csv", "communes.csv", "hamlets.csv"} <= set(form.media)


def test_every_referenced_media_file_ships_next_to_the_forms(national: dict[str, CompiledForm]) -> None:
    for form in national.values():
        _found, missing = find_media(form.source, form.form_id, form.media)
        assert missing == [], form.form_id


def read_csv(name: str) -> list[dict[str, str]]:
    with open(FORMS / name, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_placeholder_media_columns() -> None:
    assert read_csv("provinces.csv") == [{"name": "19", "label": "Thái Nguyên"}]
    assert read_csv("communes.csv") == [{"name": "05563", "label": "Xã Phượng Tiến", "province": "19"}]
    hamlets = read_csv("hamlets.csv")
    assert hamlets and all(h["commune"] == "05563" and h["name"].startswith("05563-") for h in hamlets)
    person = read_csv("persons.csv")[0]
    assert {"name", "label", "commune", "hamlet", "full_name", "category"} <= set(person)
    assert {"other"} <= {r["name"] for r in read_csv("schools.csv")}
    assert {"other"} <= {r["name"] for r in read_csv("enterprises.csv")}
    thresholds = {r["name"]: float(r["value"]) for r in read_csv("qd28_thresholds.csv")}
    assert thresholds["t1_r_pct"] == 0.5 and thresholds["t1_plants"] == 3000 and thresholds["t1_min"] == 3


def choice_names(form: CompiledForm, field: dict[str, Any]) -> set[str]:
    return {c["name"] for c in form.schema["choices"][field["list_name"]]}


def test_f1_person_key_and_followup(national: dict[str, CompiledForm]) -> None:
    form = national["f1_person"]
    f1 = fields(form)
    assert f1["new_person_key"]["bind"]["calculate"] == "once(uuid())"
    assert "${known_person}" in f1["person_key"]["bind"]["calculate"]
    assert f1["known_person"]["itemset"] == "persons.csv"
    assert f1["services"]["type"] == "select all that apply"
    assert choice_names(form, f1["category"]) == {"user", "addict", "post_rehab"}
    assert choice_names(form, f1["followup_status"]) >= {"found", "moved", "deceased"}
    assert choice_names(form, f1["rehab_type"]) == {"voluntary_home", "voluntary_facility", "compulsory"}
    for name in ("has_record", "record_start", "record_end", "legal_aid_provided", "id_number", "psychosis"):
        assert name in f1


def test_f2_has_both_modes_and_a_household_repeat(national: dict[str, CompiledForm]) -> None:
    form = national["f2_pledge"]
    f2 = fields(form)
    assert f2["household"]["type"] == "repeat"
    assert {"household/head_name", "household/members", "household/pledged"} <= set(f2)
    assert choice_names(form, f2["mode"]) == {"list", "aggregate"}
    assert {"hh_total", "hh_pledged", "households_total", "households_pledged"} <= set(f2)


def test_checklists_are_choice_data_with_a_computed_result(national: dict[str, CompiledForm]) -> None:
    for form_id, list_name in (("f3_school", "school_criteria"), ("f4_enterprise", "enterprise_criteria"),
                               ("f5_hamlet", "hamlet_criteria")):
        f = fields(national[form_id])
        assert f["criteria_met"]["list_name"] == list_name
        assert f["meets_standard"]["type"] == "calculate"
        assert f"instance('{list_name}')" in f["criteria_total"]["bind"]["calculate"]


def test_f10_classification_reads_thresholds_from_media(national: dict[str, CompiledForm]) -> None:
    f10 = national["f10_summary"]
    f = fields(f10)
    assert "pulldata('qd28_thresholds'" in f["thr_t1_r_pct"]["bind"]["calculate"]
    assert {c["name"] for c in f10.schema["choices"]["qd28_class"]} == {
        "drug_free", "type_1", "type_2", "type_3", "unclassified"
    }  # fmt: skip
    assert "qd28_final" in f and "on_route" in f


def test_the_set_has_repeats_selects_and_geopoints(national: dict[str, CompiledForm]) -> None:
    types = {field["type"] for form in national.values() for _p, field in walk(form.schema["children"])}
    assert {"repeat", "select all that apply", "geopoint", "integer", "decimal", "date"} <= types


def test_docs_name_every_field(national: dict[str, CompiledForm]) -> None:
    """docs/forms.md is the contract other rooms build on: it must name every field of every form."""
    doc = (ROOT / "docs" / "forms.md").read_text(encoding="utf-8")
    for form in national.values():
        section = doc.split(f"`{form.form_id}`", 1)[1]
        for path, field in fields(form).items():
            if field["type"] == "note":
                continue
            if path in ("start", "end", "today", "deviceid", "username", "admin_data_version", "province",
                        "commune", "hamlet", "ref_date", "enumerator_role"):
                assert f"`{path}`" in doc
                continue
            assert f"`{path}`" in section, f"{form.form_id}: {path} missing from docs/forms.md"


# --- the forms' logic, run in JavaRosa (the engine inside ODK Collect) ------------------------------


@pytest.fixture(scope="session")
def javarosa(tmp_path_factory: pytest.TempPathFactory, national: dict[str, CompiledForm]):
    """evaluate(form_id, *scenarios, ask=[paths]) → one {path: value} per scenario ({path: value} to set)."""
    work = tmp_path_factory.mktemp("javarosa")
    compile_form_eval(work)

    def evaluate(form_id: str, *scenarios: dict[str, str], ask: list[str]) -> list[dict[str, str]]:
        return form_eval(work, form_id, national[form_id].xml, FORMS, *scenarios, ask=ask)

    return evaluate


QD28_INPUTS = {
    "population_resident": "i:10000", "users_listed": "i:0", "addicts_listed": "i:0",
    "with_mgmt_record": "i:0",
    "users_not_exempt": "i:0", "residents_violating": "i:0", "fugitives_hiding": "i:0",
    "use_venues_active": "i:0", "cultivation_area_m2": "d:0", "cultivation_plants": "i:0",
    "offenders_arrested": "i:0", "on_route": "no",
}  # fmt: skip


@pytest.mark.slow
def test_f10_classifies_by_qd28_thresholds(javarosa) -> None:
    def case(**changes: str) -> dict[str, str]:
        return {**QD28_INPUTS, **changes}

    presence = {"users_not_exempt": "i:5"}
    results = javarosa(
        "f10_summary",
        case(),  # nobody, nothing: drug-free (Art. 6)
        case(**presence, with_mgmt_record="i:20"),  # R = 0.2 %: one type-II-band criterion only → type III
        case(**presence, with_mgmt_record="i:20", use_venues_active="i:1", offenders_arrested="i:6"),  # 3× II
        case(**presence, with_mgmt_record="i:60", use_venues_active="i:2", offenders_arrested="i:10"),  # 3× I
        case(**presence, with_mgmt_record="i:60", use_venues_active="i:2", offenders_arrested="i:2"),  # 2× I
        case(**presence, with_mgmt_record="i:60", use_venues_active="i:2", offenders_arrested="i:2",
             on_route="yes"),  # 2× I + route criterion (đ) → type I
        case(**presence, cultivation_area_m2="d:800", cultivation_plants="i:0"),  # C in type-I band alone
        case(**presence, with_mgmt_record="i:20", qd28_override="type_2", justification="x"),
        ask=["crit_a", "crit_b", "crit_c", "crit_d", "drug_free", "qd28_class", "qd28_final"],
    )
    assert [r["qd28_class"] for r in results] == [
        "drug_free", "type_3", "type_2", "type_1", "type_3", "type_1", "type_3", "type_3",
    ]  # fmt: skip
    assert [results[3][c] for c in ("crit_a", "crit_b", "crit_c", "crit_d")] == ["1", "1", "1", "0"]
    assert results[6]["crit_d"] == "1"
    assert results[7]["qd28_final"] == "type_2"  # the commune's override wins, the computed class stays
    assert results[0]["qd28_final"] == "drug_free"


def test_f1_person_key_new_and_followup(javarosa) -> None:
    sample = read_csv("persons.csv")[0]
    new, follow = javarosa(
        "f1_person",
        {"commune": "05563", "entry_type": "new", "full_name": "Nguyễn Văn An", "category": "user",
         "has_record": "yes", "record_start": "date:2026-03-01"},
        {"commune": "05563", "entry_type": "followup", "known_person": sample["name"],
         "followup_status": "found", "category": "addict"},
        ask=["person_key", "new_person_key", "present", "person_name", "category_changed", "record_end"],
    )  # fmt: skip
    assert re.fullmatch(r"[0-9a-f-]{36}", new["person_key"]) and new["person_key"] == new["new_person_key"]
    assert new["record_end"] == "2027-03-01"  # the one-year term of Law 73/2021 Art. 23
    assert new["person_name"] == "Nguyễn Văn An" and new["category_changed"] == "no"
    assert follow["person_key"] == sample["name"] != follow["new_person_key"]
    assert follow["person_name"] == sample["full_name"] and follow["present"] == "yes"
    assert follow["category_changed"] == ("yes" if sample["category"] != "addict" else "no")


def test_f2_totals_in_both_modes_and_f3_meets_standard(javarosa) -> None:
    aggregate, listed = javarosa(
        "f2_pledge",
        {"mode": "aggregate", "hh_total": "i:120", "hh_pledged": "i:97"},
        {"mode": "list", "household/head_name": "Lò Văn Bình", "household/members": "i:4",
         "household/pledged": "yes"},
        ask=["households_total", "households_pledged"],
    )  # fmt: skip
    assert aggregate == {"households_total": "120", "households_pledged": "97"}
    assert listed == {"households_total": "1", "households_pledged": "1"}
    every = " ".join(sorted(c["name"] for c in national_choices("f3_school", "school_criteria")))
    partial, full = javarosa(
        "f3_school", {"criteria_met": "no_user plan"}, {"criteria_met": every},
        ask=["criteria_count", "criteria_total", "meets_standard"],
    )
    assert partial["meets_standard"] == "no" and partial["criteria_count"] == "2"
    assert full["meets_standard"] == "yes" and full["criteria_count"] == full["criteria_total"]


def national_choices(form_id: str, list_name: str) -> list[dict[str, Any]]:
    return compile_xlsform(FORMS / f"{form_id}.xlsx").schema["choices"][list_name]


# --- the persons entity list (issue 23): F1 creates and updates it, F11-F13 update it ------------

ENTITY_FORMS: dict[str, dict[str, str]] = {  # form → field → entity property (save_to)
    "f1_person": {"person_name": "full_name", "ent_other_name": "other_name", "ent_birth_year": "birth_year",
                  "ent_display": "display",
                  "commune": "commune", "hamlet": "hamlet", "followup_status": "status",
                  "ent_category": "category", "ent_mgmt_status": "mgmt_status", "ent_term_end": "term_end"},
    "f11_management": {"ent_mgmt_status": "mgmt_status", "ent_mgmt_kind": "mgmt_kind",
                       "ent_term_end": "term_end", "ent_commune": "commune", "ent_hamlet": "hamlet"},
    "f12_visit": {"visit_date": "last_visit", "check_result": "last_check"},
    "f13_test": {"test_date": "last_test", "test_result": "last_test_result"},
}  # fmt: skip


def test_the_person_forms_write_one_persons_entity_list(national: dict[str, CompiledForm]) -> None:
    """The XForms carry the entity block as pyxform emits it for Collect's offline entities (2024.1.0):
    F1 creates (a new person) or updates (a follow-up), the follow-up forms only update, each picks the
    person from persons.csv, and every property a visitor needs is written by exactly one F1 field."""
    from defusedxml import ElementTree as DET

    ns = {"x": "http://www.w3.org/2002/xforms", "entities": "http://www.opendatakit.org/xforms/entities"}
    saveto = "{http://www.opendatakit.org/xforms/entities}saveto"
    for form_id, expected in ENTITY_FORMS.items():
        form = national[form_id]
        root = DET.fromstring(form.xml)
        model = root.find(".//x:model", ns)
        assert model is not None
        assert model.get("{http://www.opendatakit.org/xforms/entities}entities-version") == "2024.1.0"
        entity = root.find(".//x:instance/x:data/x:meta/x:entity", ns)
        assert entity is not None and entity.get("dataset") == "persons", form_id
        assert entity.get("update") == "1" and entity.get("baseVersion") == entity.get("branchId") == ""
        assert (entity.get("create") == "1") == (form_id == "f1_person"), form_id
        mapped = {b.get("nodeset", "").rsplit("/", 1)[-1]: b.get(saveto) for b in root.iter()
                  if b.get(saveto)}
        assert mapped == expected, form_id
        person = fields(form)["known_person"]
        assert "persons.csv" in form.media and person["itemset"] == "persons.csv"
        assert person["parameters"] == {"label": "display"}, form_id  # the name, sealed at rest
    assert fields(national["f12_visit"])["known_person"]["choice_filter"] == (
        "commune=${commune} and mgmt_status='active'"
    )
    with open(FORMS / "persons.csv", encoding="utf-8") as fh:  # the placeholder has every property
        header = next(csv.reader(fh))
    assert header[:3] == ["name", "label", "__version"]
    assert {p for m in ENTITY_FORMS.values() for p in m.values()} <= set(header)


def test_the_entity_label_and_names_stay_sealed_at_rest(national: dict[str, CompiledForm]) -> None:
    """The entity label is kept in clear wherever the list goes (store, API), so F1 builds it from no
    identifying answer; the name the phones pick by is the property ``display``, written by a field marked
    identifying (sealed at rest, opened for the phones of the person's unit). A label that did use an
    identifying answer would be sealed in the record (core.protection). The follow-up forms seal the
    name they show and the free text, and keep their statistics in clear."""
    import copy

    from rasoat.core.protection import identifying_fields

    f1 = identifying_fields(national["f1_person"])
    assert {"person_name", "ent_display", "ent_other_name", "full_name", "other_name"} <= f1
    assert not {"ent_birth_year", "ent_category", "ent_mgmt_status", "commune", "hamlet"} & f1
    assert "meta/entity/label" not in f1
    schema = copy.deepcopy(national["f1_person"].schema)
    meta = next(c for c in schema["children"] if c["name"] == "meta")
    label = next(c for c in meta["children"][0]["children"] if c["type"] == "label")
    expression = label["bind"]["calculate"]
    assert "${person_key}" in expression and "${person_name}" not in expression
    label["bind"]["calculate"] = "concat(${person_name}, ' ', ${ent_birth_year})"
    assert "meta/entity/label" in identifying_fields(schema)
    for form_id in ("f11_management", "f12_visit", "f13_test"):
        sealed = identifying_fields(national[form_id])
        assert "meta/entity/label" not in sealed and "notes" in sealed, form_id
        assert not set(ENTITY_FORMS[form_id]) & sealed, form_id
    assert {"person_label", "notes"} <= identifying_fields(national["f12_visit"])
    assert "case_summary" in identifying_fields(national["f13_test"])


@pytest.mark.slow
def test_entity_blocks_as_collect_fills_them(javarosa) -> None:
    """In JavaRosa with the placeholder persons.csv: a new person is created with a fresh id and no base
    version; a follow-up of a person not found updates the listed entity (baseVersion 1) without blanking
    what was not asked; a visit and a test update the chosen person."""
    sample = read_csv("persons.csv")[0]
    entity = ["meta/entity/@id", "meta/entity/@create", "meta/entity/@update", "meta/entity/@baseVersion",
              "meta/entity/label"]
    new, moved = javarosa(
        "f1_person",
        {"commune": "05563", "entry_type": "new", "full_name": "Nguyễn Văn An", "other_name": "Tí",
         "birth_date": "date:1994-05-02", "category": "user", "has_record": "no"},
        {"commune": "05563", "entry_type": "followup", "known_person": sample["name"],
         "followup_status": "moved"},
        ask=[*entity, "ent_other_name", "ent_birth_year", "ent_category", "ent_mgmt_status", "ent_term_end",
             "ent_display"],
    )  # fmt: skip
    uuid4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
    assert re.fullmatch(uuid4, new["meta/entity/@id"])
    assert new["meta/entity/@create"].lower() == "true" and new["meta/entity/@update"].lower() == "false"
    assert new["meta/entity/@baseVersion"] == ""
    assert new["meta/entity/label"] == f"Người {new['meta/entity/@id'][:8]} (1994)"
    assert new["ent_display"].startswith("Nguyễn Văn An (1994) – ")
    assert (new["ent_other_name"], new["ent_birth_year"], new["ent_mgmt_status"]) == ("Tí", "1994", "")
    assert moved["meta/entity/@id"] == sample["name"]
    assert moved["meta/entity/@baseVersion"] == sample["__version"]
    assert moved["meta/entity/@update"].lower() == "true" and moved["meta/entity/@create"].lower() == "false"
    assert moved["meta/entity/label"] == sample["label"]
    assert (moved["ent_category"], moved["ent_mgmt_status"], moved["ent_term_end"]) == (
        sample["category"], sample["mgmt_status"], sample["term_end"])
    [visit] = javarosa("f12_visit", {"commune": "05563", "known_person": sample["name"],
                                     "visit_date": "date:2026-12-03", "check_result": "present"},
                       ask=["meta/entity/@id", "meta/entity/@baseVersion", "person_label"])
    assert visit == {"meta/entity/@id": sample["name"], "meta/entity/@baseVersion": sample["__version"],
                     "person_label": sample["display"]}
    [test] = javarosa("f13_test", {"known_person": sample["name"], "test_result": "positive"},
                      ask=["meta/entity/@id", "meta/entity/@update", "test_result"])
    assert test["meta/entity/@id"] == sample["name"] and test["meta/entity/@update"] == "1"  # always


@pytest.mark.slow
def test_f11_decisions_set_the_term_the_server_computes(javarosa) -> None:
    """F11's decisions write mgmt_status, mgmt_kind and term_end to the entity; the term a decision sets on
    the phone is the one core.management computes from core/data/management_terms.csv for that day; a
    record that is no decision (cv, team) does not update the entity."""
    from datetime import date, timedelta

    from rasoat.core.management import terms_on

    sample = read_csv("persons.csv")[0]
    day = date(2026, 3, 1)
    kinds = [("user", None), ("post_rehab", "voluntary"), ("post_rehab", "compulsory_minor"),
             ("post_rehab", "compulsory_adult")]  # fmt: skip
    base = {"known_person": sample["name"], "event": "decision_start", "event_date": f"date:{day}"}
    scenarios = [{**base, "mgmt_kind": k, **({"post_rehab_basis": b} if b else {})} for k, b in kinds]
    scenarios += [{**base, "event": "decision_stop"}, {**base, "event": "cv"}]
    results = javarosa("f11_management", *scenarios,
                       ask=["meta/entity/@update", "ent_mgmt_status", "ent_mgmt_kind", "ent_term_end"])
    for (kind, basis), got in zip(kinds, results, strict=False):
        assert got["ent_term_end"] == (day + timedelta(days=terms_on(day).term_days(kind, basis))).isoformat()
        assert (got["ent_mgmt_status"], got["ent_mgmt_kind"]) == ("active", kind)
    stop, cv = results[-2:]
    assert stop["ent_mgmt_status"] == "stopped" and stop["ent_term_end"] == sample["term_end"]
    assert cv["meta/entity/@update"].lower() == "false"


@pytest.mark.slow
def test_f11_transfer_picks_the_receiving_commune_and_moves_the_person(javarosa) -> None:
    """The receiving commune of a transfer (Mẫu 08) is picked from the country's list, province first; the
    decision writes it to the person's ``commune`` (the server then files the person under it, and the
    receiving commune's phones list them), blanks the hamlet the receiving commune does not know yet and
    keeps the management going (status, kind, term: the receiving commune continues it). Any other
    decision leaves the person in their commune and hamlet."""
    sample = read_csv("persons.csv")[0]
    assert {"05563", "05503"} <= {r["name"] for r in read_csv("all_communes.csv")}
    base = {"commune": "05563", "known_person": sample["name"], "event_date": "date:2026-12-01"}
    moved, stopped = javarosa(
        "f11_management",
        {**base, "event": "transfer", "transfer_province": "19", "transfer_commune": "05503",
         "transfer_no": "08/TB"},
        {**base, "event": "decision_stop"},
        ask=["meta/entity/@update", "ent_commune", "ent_hamlet", "ent_mgmt_status", "ent_mgmt_kind",
             "ent_term_end"],
    )
    assert moved["meta/entity/@update"].lower() == "true"
    assert (moved["ent_commune"], moved["ent_hamlet"]) == ("05503", "")
    assert (moved["ent_mgmt_status"], moved["ent_mgmt_kind"], moved["ent_term_end"]) == (
        sample["mgmt_status"], sample["mgmt_kind"], sample["term_end"])
    assert (stopped["ent_commune"], stopped["ent_hamlet"]) == ("05563", sample["hamlet"])


def test_f11_picks_the_receiving_commune_from_the_whole_country(national: dict[str, CompiledForm]) -> None:
    """The phone's communes.csv holds the collector's own commune only; the receiving commune comes from
    all_communes.csv, which the server fills with every commune (core.media.COUNTRY_MEDIA)."""
    f11 = fields(national["f11_management"])
    assert f11["transfer_province"]["itemset"] == "all_provinces.csv"
    assert f11["transfer_commune"]["itemset"] == "all_communes.csv"
    assert f11["transfer_commune"]["choice_filter"] == "province=${transfer_province}"
    assert f11["transfer_commune"]["bind"]["constraint"] == ". != ${commune}"
    assert "transfer_to" not in f11
