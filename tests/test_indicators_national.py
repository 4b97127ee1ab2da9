"""The national pack on one small, hand-computed province: every built-in indicator, at the province,
its communes and (where meaningful) its hamlets. Units (tests/indicators_support.py): province 19 with
communes C1 (hamlets H11, H12), C2 (hamlet H21) and C3 (hamlet H31, never reports)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from indicators_support import C1, C2, C3, H11, H12, H21, H31, PROVINCE, add, run
from rasoat.core.indicators.loading import load
from rasoat.core.indicators.models import Indicator, MeasureKind, Status
from rasoat.core.models import ReviewState
from rasoat.core.protection import PSEUDONYM_FIELD
from rasoat.core.storage.base import Store

FORMS_DIR = Path(__file__).resolve().parent.parent / "forms"


@pytest.fixture(scope="module")
def national() -> list[Indicator]:
    """The national pack alone (installed province plugins add and override indicators)."""
    import rasoat.core.builtin.national as pack

    return load(pack.indicators())


# --- the definitions match the national forms ------------------------------------------------------


def _form_fields(form_id: str) -> tuple[set[str], dict[str, set[str]]]:
    """Top-level names and, per repeat, its row names, from the XLSForm's survey sheet."""
    ws = openpyxl.load_workbook(FORMS_DIR / f"{form_id}.xlsx", read_only=True)["survey"]
    rows = list(ws.iter_rows(values_only=True))
    head = rows[0]
    t_i, n_i = head.index("type"), head.index("name")
    mark = head.index("bind::rasoat:identifying") if "bind::rasoat:identifying" in head else None
    top: set[str] = set()
    repeats: dict[str, set[str]] = {}
    stack: list[str] = []
    for row in rows[1:]:
        kind, name = str(row[t_i] or "").strip(), row[n_i]
        if kind == "begin repeat":
            repeats[name] = set()
            top.add(name)
            stack.append(name)
        elif kind == "end repeat":
            stack.pop()
        elif kind.startswith(("begin group", "end group")) or not kind:
            continue
        elif name:
            (repeats[stack[-1]] if stack else top).add(name)
        if mark is not None and str(row[mark] or "").strip() == "id":
            top.add(PSEUDONYM_FIELD)  # the server keeps the ID number's keyed pseudonym in clear
    return top, repeats


def test_every_field_a_national_indicator_reads_is_in_its_form(national: list[Indicator]) -> None:
    assert len(national) >= 30
    for ind in national:
        for m in ind.measures():
            if not m.form:
                continue
            top, repeats = _form_fields(m.form)
            names = {f.field for f in m.where} | {p for p in (m.date_field, m.latest_by) if p}
            if m.repeat:
                assert m.repeat in repeats, (ind.id, m.repeat)
                row_names = {f.field for f in m.row_where} | {p for p in (m.field, m.distinct) if p}
                assert row_names <= repeats[m.repeat], (ind.id, row_names - repeats[m.repeat])
            else:
                names |= {p for p in (m.field, m.distinct) if p}
            assert names <= top, (ind.id, m.form, names - top)


def test_national_pack_covers_the_brief(national: list[Indicator]) -> None:
    ids = {i.id for i in national}
    assert {
        "nat_persons_users", "nat_persons_addicts", "nat_persons_post_rehab", "nat_record_coverage",
        "nat_services_reach", "nat_addict_growth", "nat_cases_detected", "nat_hotspots_new",
        "nat_hotspots_eliminated", "nat_hotspots_reemerged", "nat_hotspots_baseline_eliminated",
        "nat_cultivation_sites", "nat_cultivation_destroyed", "nat_prevention_hamlets",
        "nat_prevention_schools", "nat_prevention_enterprises", "nat_schools_drug_free",
        "nat_enterprises_drug_free", "nat_household_pledges", "nat_communes_drug_free",
    } <= ids
    by_id = {i.id: i for i in national}
    assert by_id["nat_services_reach"].target.text() == "> 80 (2025)"
    year = ("năm trước", "the previous year")
    assert by_id["nat_addict_growth"].target.text(year) == (
        "Tăng < 1 % so với năm trước / growth < 1 % on the previous year")
    assert by_id["nat_cases_detected"].target.text(year) == (
        "Tăng ≥ 5 % so với năm trước / growth ≥ 5 % on the previous year")
    assert by_id["nat_communes_drug_free"].target.text() == "≥ 50 (2030)"
    assert by_id["nat_communes_drug_free"].denominator.kind is MeasureKind.units


def test_every_counted_unit_has_an_english_word(national: list[Indicator]) -> None:
    """An English page shows "60 persons", not "60 người": each national indicator counting in a unit of its
    own (not "%" or "‰") names it in English too."""
    words = [i for i in national if i.unit_label and i.unit_label not in ("%", "‰")]
    assert len(words) >= 30
    assert [i.id for i in words if not i.unit_label_en] == []
    by_id = {i.id: i for i in national}
    assert (by_id["nat_persons_users"].label, by_id["nat_persons_users"].label_en) == ("người", "persons")
    assert by_id["nat_services_reach"].label_en == "%"  # a share is the same in both languages
    # and says one of them as English does: "1 site", not "1 sites" (the screenshot review)
    plural = [i for i in words if i.label_en.endswith("s")]
    assert [i.id for i in plural if not i.unit_label_en_one or i.label_en_one.endswith("s")] == []
    assert by_id["nat_hotspots_new"].label_en_one == "site"


# --- one province, every form ------------------------------------------------------------------------


def person(store: Store, key: str, unit: str, day: str, **kw: Any) -> None:
    """An F1 record: a new registration, or a follow-up when ``status`` is given."""
    status = kw.pop("status", None)
    state = kw.pop("state", ReviewState.received)
    fields: dict[str, Any] = {"ref_date": day, "person_key": key}
    if status is None:
        fields |= {"entry_type": "new", "present": "yes", "full_name": f"Người {key}"}
    else:
        fields |= {"entry_type": "followup", "known_person": key, "followup_status": status,
                   "present": "yes" if status == "found" else "no"}
    if fields["present"] == "yes":
        fields |= {"category": kw.pop("category"), "psychosis": kw.pop("psychosis", "no"),
                   "has_record": kw.pop("has_record", "yes"), "services": kw.pop("services", "none")}
    add(store, "f1_person", unit, fields, day=day, state=state)


def site(store: Store, key: str, unit: str, day: str, status: str, **kw: Any) -> None:
    fields: dict[str, Any] = {"ref_date": day, "site_key": key, "status": status}
    if kw.pop("new", False):
        fields |= {"entry_type": "new", "site_kind": "point", "identified_date": kw.pop("identified", day),
                   "baseline": kw.pop("baseline", "no")}
    else:
        fields |= {"entry_type": "update", "known_site": key}
    fields |= kw
    add(store, "f6_hotspot", unit, fields, day=day)


@pytest.fixture(scope="module")
def province(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    from rasoat.core.storage.embedded import EmbeddedStore

    store = EmbeddedStore(tmp_path_factory.mktemp("national") / "data")
    # F1 persons. Present at the end of 2026: P1 C1 user, P2 C1 addict, P3 C1 addict (psychotic, no record),
    # P6 C1 addict (was a user in January), P4 C2 post-rehab. P5 moved away; P7 was rejected; P8 is 2025.
    person(store, "P1", H11, "2026-02-01", category="user", services="counselling")
    person(store, "P2", H11, "2026-02-02", category="addict", services="none")
    person(store, "P3", H12, "2026-02-03", category="addict", has_record="no", psychosis="confirmed")
    person(store, "P4", H21, "2026-02-04", category="post_rehab")
    person(store, "P5", H21, "2026-02-05", category="user", services="methadone")
    person(store, "P5", H21, "2026-06-01", status="moved")
    person(store, "P6", H12, "2026-01-10", category="user")
    person(store, "P6", H12, "2026-09-10", status="found", category="addict", services="rehab vocational")
    person(store, "P7", H11, "2026-03-01", category="addict", state=ReviewState.rejected)
    person(store, "P8", H11, "2025-05-01", category="addict")
    # F9 case reports: criminal cases 2026 = 3 (C1) + 2 (C2); 2025 = 4 (C1).
    add(store, "f9_case", C1, {"period_from": "2026-01-01", "period_to": "2026-06-30", "offence": [
        {"offence_type": "trafficking", "case_kind": "criminal", "cases": "3", "persons": "4"},
        {"offence_type": "illegal_use", "case_kind": "administrative", "cases": "5", "persons": "5"},
    ]}, day="2026-07-02")
    add(store, "f9_case", C2, {"period_from": "2026-01-01", "period_to": "2026-12-14", "offence": [
        {"offence_type": "possession", "case_kind": "criminal", "cases": "2", "persons": "2"},
    ]}, day="2026-12-15")
    add(store, "f9_case", C1, {"period_from": "2025-01-01", "period_to": "2025-12-14", "offence": [
        {"offence_type": "possession", "case_kind": "criminal", "cases": "4", "persons": "4"},
    ]}, day="2025-12-15")
    # F6 hotspots: S1 new in 2026 (C1); S2 baseline, eliminated 2026 (C1); S3 baseline, eliminated 2025,
    # re-emerged 2026 (C2); S4 baseline, still active (C2).
    site(store, "S1", H11, "2026-02-01", "identified", new=True)
    site(store, "S2", H11, "2021-01-10", "identified", new=True, identified="2020-05-01", baseline="yes")
    site(store, "S2", H11, "2026-04-10", "eliminated", eliminated_date="2026-04-10")
    site(store, "S3", H21, "2021-01-10", "identified", new=True, identified="2019-03-01", baseline="yes")
    site(store, "S3", H21, "2025-06-01", "eliminated", eliminated_date="2025-06-01")
    site(store, "S3", H21, "2026-05-02", "reemerged", reemerged_date="2026-05-02")
    site(store, "S4", H21, "2021-01-10", "identified", new=True, identified="2021-01-01", baseline="yes")
    # F7 cultivation: 2026 C1 two sites (100 m² destroyed, 50 m² re-planted, not destroyed); 2025 C2.
    add(store, "f7_cultivation", H11, {"found_date": "2026-03-01", "plant": "cannabis", "area_m2": "100",
                                       "plant_count": "500", "destroyed": "yes", "recultivation": "no"})
    add(store, "f7_cultivation", H12, {"found_date": "2026-04-01", "plant": "opium_poppy", "area_m2": "50",
                                       "plant_count": "200", "destroyed": "no", "recultivation": "yes"})
    add(store, "f7_cultivation", H21, {"found_date": "2025-09-01", "plant": "cannabis", "area_m2": "30",
                                       "plant_count": "90", "destroyed": "yes", "recultivation": "no"},
        day="2025-09-02")
    # F8 activities: 2026 in H11 (hamlet venue, 3 media), at C1 level (school, 2), in H21 (enterprise);
    # 2025: H12 (4 media).
    add(store, "f8_activity", H11, {"act_date": "2026-06-26", "venue_type": "hamlet", "media_products": "3"})
    add(store, "f8_activity", C1, {"act_date": "2026-05-10", "venue_type": "school", "media_products": "2"})
    add(store, "f8_activity", H21, {"act_date": "2026-08-01", "venue_type": "enterprise",
                                    "media_products": "0"})
    add(store, "f8_activity", H12, {"act_date": "2025-06-26", "venue_type": "hamlet", "media_products": "4"},
        day="2025-06-27")
    # Registers, as core.unit_lists keeps officers' lists (written directly: C2 and C3 are units of the
    # test's small registry, not of the national list a file is checked against): C1 lists SC1, SC2 and
    # SC4, which was never audited; C2 lists SC3; enterprises E1, E2 (C1), E3, E4 (C2), of which E1, E3
    # and E4 (never audited) are in an industrial zone; C3 has no list.
    from rasoat.core.unit_lists import NAMESPACE

    for kind, lists in (("schools", {C1: ["SC1", "SC2", "SC4"], C2: ["SC3"]}),
                        ("enterprises", {C1: ["E1", "E2"], C2: ["E3", "E4"]})):
        zones = {"E1": "KCN-01", "E3": "CCN-01", "E4": "CCN-01"}
        store.kv_put(NAMESPACE, kind, {"version": 1, "communes": {
            c: {"version": 1, "rows": [{"code": i, "name": i, **({"zone": zones[i]} if i in zones else {})}
                                       for i in ids]} for c, ids in lists.items()}})
    # F3 schools: SC1 (C1) re-audited in October (280 of 300 pupils, no longer meets the standard),
    # SC2 (C1) no pupils reached but meets it, SC3 (C2).
    add(store, "f3_school", C1, {"ref_date": "2026-03-01", "school": "SC1", "pupils_total": "300",
                                 "pupils_reached": "300", "meets_standard": "yes"})
    add(store, "f3_school", C1, {"ref_date": "2026-10-01", "school": "SC1", "pupils_total": "300",
                                 "pupils_reached": "280", "meets_standard": "no"}, day="2026-10-01")
    add(store, "f3_school", C1, {"ref_date": "2026-03-01", "school": "SC2", "pupils_total": "200",
                                 "pupils_reached": "0", "meets_standard": "yes"})
    add(store, "f3_school", C2, {"ref_date": "2026-03-01", "school": "SC3", "pupils_total": "100",
                                 "pupils_reached": "50", "meets_standard": "yes"})
    # F4 enterprises: E1 (C1, industrial park, sessions), E2 (C1, none), E3 (C2, industrial cluster, none).
    add(store, "f4_enterprise", C1, {"ref_date": "2026-03-01", "enterprise": "E1", "zone": "industrial_park",
                                     "sessions": "2", "workers_total": "100", "workers_reached": "80",
                                     "meets_standard": "yes"})
    add(store, "f4_enterprise", C1, {"ref_date": "2026-03-01", "enterprise": "E2", "zone": "none",
                                     "sessions": "0", "workers_total": "50", "workers_reached": "0",
                                     "meets_standard": "no"})
    add(store, "f4_enterprise", C2, {"ref_date": "2026-03-01", "enterprise": "E3",
                                     "zone": "industrial_cluster", "sessions": "0", "workers_total": "20",
                                     "workers_reached": "0", "meets_standard": "yes"})
    # F2 pledges: H11 list mode 2 of 3; H12 aggregate 1 of 10; H21 reports 0 households (0/0).
    add(store, "f2_pledge", H11, {"ref_date": "2026-04-01", "mode": "list", "household": [
        {"head_name": "A", "pledged": "yes"}, {"head_name": "B", "pledged": "yes"},
        {"head_name": "C", "pledged": "no"}], "households_total": "3", "households_pledged": "2"})
    add(store, "f2_pledge", H12, {"ref_date": "2026-04-01", "mode": "aggregate", "hh_total": "10",
                                  "hh_pledged": "1", "households_total": "10", "households_pledged": "1"})
    add(store, "f2_pledge", H21, {"ref_date": "2026-04-01", "mode": "aggregate", "hh_total": "0",
                                  "hh_pledged": "0", "households_total": "0", "households_pledged": "0"})
    # F10: C1 drug-free in June, type III by December (the latest counts); C2 drug-free; C3 nothing.
    add(store, "f10_summary", C1, {"period_from": "2026-01-01", "period_to": "2026-06-30",
                                   "qd28_final": "drug_free"}, day="2026-07-01")
    add(store, "f10_summary", C1, {"period_from": "2025-12-15", "period_to": "2026-12-14",
                                   "qd28_final": "type_3"}, day="2026-12-15")
    add(store, "f10_summary", C2, {"period_from": "2025-12-15", "period_to": "2026-12-14",
                                   "qd28_final": "drug_free"}, day="2026-12-15")
    yield store
    store.close()


@pytest.fixture(scope="module")
def r(province: Store, national: list[Indicator]) -> dict:
    return run(province, "2026", indicators=national)


def check(r: dict, unit: str, ind: str, value: float | None, num: float | None = None,
          den: float | None = None, status: Status | None = None) -> None:
    res = r[(unit, ind)]
    if value is None:
        assert res.value is None, (unit, ind, res.value)
    else:
        assert res.value == pytest.approx(value), (unit, ind, res.value)
    if num is not None:
        assert res.numerator == pytest.approx(num), (unit, ind, res.numerator)
    if den is not None:
        assert res.denominator == pytest.approx(den), (unit, ind, res.denominator)
    if status is not None:
        assert res.status is status, (unit, ind, res.status)


def test_persons_by_category(r: dict) -> None:
    check(r, PROVINCE, "nat_persons_listed", 5)
    check(r, C1, "nat_persons_listed", 4)
    check(r, C2, "nat_persons_listed", 1)  # P5 moved away: no longer listed here
    check(r, H12, "nat_persons_listed", 2)
    check(r, PROVINCE, "nat_persons_users", 1)  # P6 became an addict in September
    check(r, PROVINCE, "nat_persons_addicts", 3)  # P7 was rejected
    check(r, C1, "nat_persons_addicts", 3)
    check(r, PROVINCE, "nat_persons_post_rehab", 1)
    check(r, C2, "nat_persons_post_rehab", 1)
    check(r, PROVINCE, "nat_persons_psychosis", 1)
    check(r, PROVINCE, "nat_persons_new", 6)  # P1–P6 registered in 2026
    check(r, C2, "nat_persons_new", 2)
    check(r, C3, "nat_persons_listed", None, status=Status.no_data)


def test_management_record_coverage_rolls_up_by_sums(r: dict) -> None:
    check(r, C1, "nat_record_coverage", 75, 3, 4)
    check(r, C2, "nat_record_coverage", 100, 1, 1)
    check(r, PROVINCE, "nat_record_coverage", 80, 4, 5)  # not (75 + 100) / 2


def test_services_reach(r: dict) -> None:
    # managed users + addicts: P1, P2, P6 (all C1); reached: P1 (counselling), P6 (rehab)
    check(r, C1, "nat_services_reach", 200 / 3, 2, 3, Status.not_met)
    check(r, PROVINCE, "nat_services_reach", 200 / 3, 2, 3, Status.not_met)
    check(r, C2, "nat_services_reach", None, 0, 0, Status.no_data)  # nobody managed: 0/0 is no data
    assert (H11, "nat_services_reach") not in r  # commune-level indicator


def test_addict_growth_against_last_year_live(r: dict) -> None:
    res = r[(PROVINCE, "nat_addict_growth")]
    assert (res.value, res.previous_value, res.previous_source) == (3, 1, "live")
    assert res.change == 2 and res.change_pct == pytest.approx(200)
    assert res.status is Status.not_met
    assert (C1, "nat_addict_growth") not in r  # province-level indicator


def test_cases_detected_growth(r: dict) -> None:
    res = r[(PROVINCE, "nat_cases_detected")]
    assert (res.value, res.previous_value) == (5, 4)  # administrative cases are not counted
    assert res.change_pct == pytest.approx(25) and res.status is Status.met


def test_hotspots(r: dict) -> None:
    check(r, PROVINCE, "nat_hotspots_new", 1)
    check(r, C1, "nat_hotspots_new", 1, status=Status.not_met)
    check(r, C2, "nat_hotspots_new", 0, status=Status.met)
    check(r, C2, "nat_hotspots_new", 0, status=Status.met)  # reported in 2026, no hotspot: an empty register
    check(r, C3, "nat_hotspots_new", None, status=Status.no_data)  # never reported: no data, never "met"
    check(r, C1, "nat_hotspots_active", 1)  # S1 (S2 eliminated)
    check(r, C2, "nat_hotspots_active", 2)  # S3 re-emerged, S4
    check(r, PROVINCE, "nat_hotspots_active", 3)
    res = r[(PROVINCE, "nat_hotspots_eliminated")]
    assert (res.value, res.previous_value, res.change_pct, res.status) == (1, 1, 0, Status.not_met)
    check(r, C2, "nat_hotspots_reemerged", 1, status=Status.not_met)
    check(r, C1, "nat_hotspots_reemerged", 0, status=Status.met)
    # baseline S2, S3, S4; eliminated now: S2 only (S3 came back). Baseline flag is on the first record.
    check(r, PROVINCE, "nat_hotspots_baseline_eliminated", 100 / 3, 1, 3, Status.not_met)
    check(r, C1, "nat_hotspots_baseline_eliminated", 100, 1, 1, Status.met)
    check(r, C2, "nat_hotspots_baseline_eliminated", 0, 0, 2, Status.not_met)


def test_cultivation(r: dict) -> None:
    check(r, PROVINCE, "nat_cultivation_sites", 2)
    check(r, C2, "nat_cultivation_sites", 0)  # its site was found in 2025
    check(r, PROVINCE, "nat_cultivation_area", 150)
    check(r, PROVINCE, "nat_cultivation_plants", 700)
    check(r, C1, "nat_cultivation_destroyed", 50, 1, 2)
    check(r, C2, "nat_cultivation_destroyed", None, 0, 0, Status.no_data)
    check(r, C1, "nat_cultivation_replanted", 1, status=Status.not_met)
    check(r, C2, "nat_cultivation_replanted", 0, status=Status.met)


def test_prevention_coverage(r: dict) -> None:
    check(r, PROVINCE, "nat_prevention_communes", 200 / 3, 2, 3, Status.not_met)  # C3 had none
    check(r, C1, "nat_prevention_hamlets", 50, 1, 2)  # H11 only (the school activity is not a hamlet)
    check(r, C2, "nat_prevention_hamlets", 0, 0, 1)
    check(r, PROVINCE, "nat_prevention_hamlets", 25, 1, 4)
    check(r, C3, "nat_prevention_hamlets", None, status=Status.no_data)
    # over the register, not the audits: SC4 was never audited and still counts
    check(r, C1, "nat_prevention_schools", 100 / 3, 1, 3, Status.not_met)
    check(r, C2, "nat_prevention_schools", 100, 1, 1, Status.met)
    check(r, PROVINCE, "nat_prevention_schools", 50, 2, 4)
    check(r, C3, "nat_prevention_schools", None, status=Status.no_data)  # no list, no audit
    check(r, C1, "nat_prevention_pupils", 56, 280, 500)  # the October re-audit replaces March
    check(r, PROVINCE, "nat_prevention_pupils", 55, 330, 600)
    check(r, PROVINCE, "nat_prevention_enterprises", 25, 1, 4)  # E1 of E1–E4 (E4 never audited)
    # over the zone enterprises of the register: E1 (sessions) of E1, E3 (none) and E4 (never audited)
    check(r, C1, "nat_prevention_industrial_zones", 100, 1, 1, Status.met)
    check(r, C2, "nat_prevention_industrial_zones", 0, 0, 2, Status.not_met)
    check(r, PROVINCE, "nat_prevention_industrial_zones", 100 / 3, 1, 3, Status.not_met)
    check(r, PROVINCE, "nat_prevention_workers", 80 / 170 * 100, 80, 170)
    res = r[(PROVINCE, "nat_media_products")]
    assert (res.value, res.previous_value, res.change_pct, res.status) == (5, 4, 25, Status.met)


def test_drug_free_schools_and_enterprises(r: dict) -> None:
    check(r, PROVINCE, "nat_schools_drug_free", 50, 2, 4)  # SC1 failed its October re-audit; SC4 unaudited
    check(r, C1, "nat_schools_drug_free", 100 / 3, 1, 3)
    check(r, PROVINCE, "nat_enterprises_drug_free", 50, 2, 4)
    check(r, C2, "nat_enterprises_drug_free", 50, 1, 2)  # E3 meets it, E4 was never audited


def test_household_pledges_roll_up_and_divide_by_zero(r: dict) -> None:
    check(r, H11, "nat_household_pledges", 200 / 3, 2, 3)
    check(r, H12, "nat_household_pledges", 10, 1, 10)
    check(r, C1, "nat_household_pledges", 300 / 13, 3, 13)  # not the mean of 66.7 and 10
    check(r, H21, "nat_household_pledges", None, 0, 0, Status.no_data)
    check(r, C2, "nat_household_pledges", None, 0, 0, Status.no_data)
    check(r, PROVINCE, "nat_household_pledges", 300 / 13, 3, 13)
    check(r, H31, "nat_household_pledges", None, None, None, Status.no_data)


def test_communes_drug_free_toward_2030(r: dict) -> None:
    # C1's latest summary says type III; C2 drug-free; C3 not classified: 1 of 3 communes
    check(r, PROVINCE, "nat_communes_drug_free", 100 / 3, 1, 3, Status.on_track)
    check(r, PROVINCE, "nat_communes_complex", 1)
    assert (C1, "nat_communes_drug_free") not in r


def test_every_national_indicator_was_checked(r: dict, national: list[Indicator]) -> None:
    """A new national indicator must come with a hand-computed check in this file."""
    source = Path(__file__).read_text(encoding="utf-8")
    checked = source.split("def test_every_national")[0].split("def test_national_pack_covers_the_brief")[1]
    checked += (Path(__file__).parent / "test_indicators_added.py").read_text(encoding="utf-8")
    missing = [i.id for i in national if f'"{i.id}"' not in checked]
    assert not missing, missing
