"""Indicators for fields that were collected but never reported (issue 19, item 4): each value computed
by hand from a few records of the national forms, in Thái Nguyên's small unit tree (indicators_support)."""

from __future__ import annotations

import pytest
from indicators_support import C1, C2, C3, H11, H12, H21, PROVINCE, add, run
from rasoat.core.indicators.loading import collect
from rasoat.core.indicators.models import Indicator, Status
from rasoat.core.plugins import build_manager
from rasoat.core.storage.base import Store
from rasoat.core.storage.embedded import EmbeddedStore

DAY = "2026-05-01"


@pytest.fixture(scope="module")
def indicators() -> list[Indicator]:
    return collect(build_manager())


@pytest.fixture
def store(tmp_path) -> Store:
    s = EmbeddedStore(tmp_path / "data")
    yield s
    s.close()


def person(key: str, **fields: str) -> dict[str, str]:
    return {"person_key": key, "present": "yes", "ref_date": DAY, **fields}


def test_hamlet_checklists_mailbox_hotline_models_and_drug_free(store: Store, indicators) -> None:
    add(store, "f5_hamlet", H11, {"ref_date": DAY, "mailbox": "yes", "hotline_board": "yes",
                                  "tips_received": "3", "models_active": "2", "meets_standard": "yes"})
    add(store, "f5_hamlet", H12, {"ref_date": DAY, "mailbox": "no", "hotline_board": "yes",
                                  "tips_received": "1", "models_active": "1", "meets_standard": "no"})
    r = run(store, indicators=indicators)
    # C1 lists two hamlets: one has a mailbox (50 %), both a hotline board (100 %), one meets the standard
    assert (r[(C1, "nat_hamlets_mailbox")].numerator, r[(C1, "nat_hamlets_mailbox")].denominator) == (1, 2)
    assert r[(C1, "nat_hamlets_hotline")].value == 100
    assert r[(C1, "nat_hamlets_drug_free")].value == 50
    assert r[(C1, "nat_mailbox_tips")].value == 4 and r[(H11, "nat_mailbox_tips")].value == 3
    assert r[(C1, "nat_models_active")].value == 3
    assert r[(C2, "nat_hamlets_mailbox")].status is Status.no_data  # C2 sent no checklist


def test_persons_id_employment_returned_prisoners_and_dossiers(store: Store, indicators) -> None:
    for answers in (
        # as the server stores F1: the ID number sealed, its keyed pseudonym in clear (core.protection)
        person("p1", category="post_rehab", person_pseudonym="9f1c…p1", employment="stable"),
        person("p2", category="post_rehab", employment="none", returned_from_prison="yes",
               supervisor_name="Nguyễn Văn Bảo"),
        person("p3", category="addict", person_pseudonym="9f1c…p3", returned_from_prison="yes",
               compulsory_dossier="yes"),
        person("p4", category="addict", services="methadone"),
    ):
        add(store, "f1_person", H11, answers)
    r = run(store, indicators=indicators)
    assert (r[(C1, "nat_id_coverage")].numerator, r[(C1, "nat_id_coverage")].denominator) == (2, 4)
    assert r[(C1, "nat_post_rehab_employed")].value == 50  # p1 of p1, p2
    assert r[(C1, "nat_returned_prisoners_supported")].value == 50  # p2 has a helper, p3 none
    dossiers = r[(C1, "nat_compulsory_dossiers")]
    assert (dossiers.numerator, dossiers.denominator) == (1, 1)  # p4 is on methadone: not concerned


def test_pupils_activities_cases_and_sites(store: Store, indicators) -> None:
    add(store, "f3_school", C1, {"ref_date": DAY, "school": "SC1", "pupils_involved": "2"})
    add(store, "f3_school", C1, {"ref_date": "2026-09-01", "school": "SC1", "pupils_involved": "3"})  # latest
    add(store, "f8_activity", H11, {"act_date": DAY, "channel": "mobile_trial meeting",
                                    "audience": "ethnic_minorities youth"})
    add(store, "f8_activity", H12, {"act_date": DAY, "channel": "social_media", "audience": "general"})
    add(store, "f9_case", C1, {"period_to": "2026-12-14", "fugitives_arrested": "2", "tips_received": "8",
                               "tips_verified": "6"})
    add(store, "f6_hotspot", H11, {"ref_date": DAY, "identified_date": DAY, "site_key": "S1",
                                   "entry_type": "new", "site_kind": "at_risk", "is_use_venue": "yes",
                                   "status": "identified"})
    add(store, "f6_hotspot", H12, {"ref_date": DAY, "identified_date": "2025-02-01", "site_key": "S2",
                                   "is_use_venue": "yes", "status": "eliminated", "site_kind": "point"})
    add(store, "f7_cultivation", H21, {"found_date": DAY, "area_m2": "30", "destroyed": "yes"})
    add(store, "f7_cultivation", H21, {"found_date": DAY, "area_m2": "10", "destroyed": "no"})
    r = run(store, indicators=indicators)
    assert r[(C1, "nat_pupils_involved")].value == 3
    assert r[(C1, "nat_mobile_trials")].value == 1
    assert r[(C1, "nat_ethnic_minority_activities")].value == 1
    assert r[(C1, "nat_high_risk_activities")].value == 1  # youth; "general" is not a high-risk group
    assert r[(C1, "nat_social_media_activities")].value == 1
    assert r[(C1, "nat_fugitives_arrested")].value == 2
    assert r[(C1, "nat_tips_verified")].value == 75
    assert r[(C1, "nat_use_venues_eliminated")].value == 50  # S2 of S1, S2
    assert r[(C1, "nat_at_risk_sites_new")].value == 1
    assert r[(C2, "nat_cultivation_area_destroyed")].value == 75  # 30 of 40 m²
    # Thái Nguyên's own targets on the same records
    assert r[(C1, "tn_use_venues_eliminated")].status is Status.on_track  # 50 % done, 20 % of 2026–2030 gone
    assert r[(C2, "tn_cultivation_area_destroyed")].status is Status.on_track  # 75 % ≥ 20 % of 2026–2030
    assert r[(C1, "tn_at_risk_sites_new")].status is Status.not_met  # "= 0" every period
    assert r[(PROVINCE, "nat_fugitives_arrested")].value == 2


def test_the_plans_last_items_from_the_case_count_form(store: Store, indicators) -> None:
    """BR7, BR18, TN12, TN13, TN15, TN20, HY15/KT12: the commune police's period counts (F9), by hand."""
    add(store, "f9_case", C1, {
        "period_to": "2026-12-14", "networks_found": "2", "networks_dismantled": "1", "patrols": "12",
        "drug_tests": "30", "addiction_assessments": "4", "serious_cases_unlisted": "1",
        "legal_aid_requested": "4", "legal_aid_given": "3", "controlled_premises": "5",
        "controlled_premises_checked": "4"})
    add(store, "f9_case", C2, {
        "period_to": "2026-12-14", "networks_found": "0", "networks_dismantled": "0", "patrols": "3",
        "drug_tests": "10", "addiction_assessments": "1", "serious_cases_unlisted": "0",
        "legal_aid_requested": "0", "legal_aid_given": "0", "controlled_premises": "2",
        "controlled_premises_checked": "2",
        "offence": [{"offence_type": "production", "case_kind": "criminal", "cases": "1"}]})
    r = run(store, indicators=indicators)
    assert r[(C1, "nat_networks_dismantled")].value == 1
    assert r[(PROVINCE, "nat_networks_found")].value == 2
    assert r[(PROVINCE, "nat_patrols")].value == 15  # 12 + 3
    assert r[(PROVINCE, "nat_drug_tests")].value == 40
    assert r[(PROVINCE, "nat_addiction_assessments")].value == 5
    assert r[(C1, "nat_serious_cases_unlisted")].value == 1
    aid = r[(C1, "nat_legal_aid_violators")]
    assert (aid.numerator, aid.denominator, aid.value) == (3, 4, 75)
    assert r[(C2, "nat_legal_aid_violators")].status is Status.no_data  # nobody asked: no ratio
    premises = r[(PROVINCE, "nat_controlled_premises_checked")]
    assert (premises.numerator, premises.denominator) == (6, 7)  # 4 of 5 and 2 of 2
    # Thái Nguyên's targets: "Không có … ổ nhóm, đường dây …; không có vụ việc … sản xuất trái phép" (TN13),
    # "Không để sót, lọt …" (TN15), "trợ giúp pháp lý cho 100% …" (TN12): each period
    assert r[(C1, "tn_networks_found")].status is Status.not_met
    assert r[(C2, "tn_networks_found")].status is Status.met
    production = r[(C2, "tn_production_cases")]
    assert production.value == 1 and production.status is Status.not_met
    assert r[(C1, "tn_production_cases")].status is Status.met  # it reported, no production offence
    assert r[(C1, "tn_serious_cases_unlisted")].status is Status.not_met
    assert r[(C2, "tn_serious_cases_unlisted")].status is Status.met
    assert r[(C1, "tn_legal_aid_violators")].status is Status.not_met  # 75 %; every period wants 100 %
    assert r[(C3, "tn_networks_found")].status is Status.no_data  # C3 sent nothing


def test_the_plans_last_items_from_hamlets_persons_sites_and_the_summary(store: Store, indicators) -> None:
    """BR16, BR2 (F5); HY12, KT18 (F1); TN13 (F6, F7); TN6 (F10), by hand."""
    add(store, "f5_hamlet", H11, {"ref_date": DAY, "open_dealing": "yes", "chosen_for_transform": "yes"})
    add(store, "f5_hamlet", H12, {"ref_date": DAY, "open_dealing": "no", "chosen_for_transform": "no"})
    for answers in (
        person("p1", category="addict", rehab_registered="yes", ethnic_minority="yes",
               employment="stable"),
        person("p2", category="addict", rehab_registered="no", ethnic_minority="no", employment="stable"),
        person("p3", category="post_rehab", ethnic_minority="yes", employment="none"),
        person("p4", category="user", ethnic_minority="yes", employment="stable"),  # a user: not concerned
    ):
        add(store, "f1_person", H11, answers)
    add(store, "f6_hotspot", H11, {"ref_date": DAY, "identified_date": DAY, "site_key": "S1",
                                   "entry_type": "new", "site_kind": "at_risk", "status": "identified"})
    add(store, "f6_hotspot", H12, {"ref_date": DAY, "identified_date": "2025-02-01", "site_key": "S2",
                                   "site_kind": "point", "status": "eliminated"})
    add(store, "f7_cultivation", H21, {"found_date": DAY, "area_m2": "30", "destroyed": "yes"})
    add(store, "f10_summary", C1, {"period_to": "2026-12-14", "agencies_total": "8", "agencies_reached": "6"})
    r = run(store, indicators=indicators)
    assert r[(C1, "nat_hamlets_open_dealing")].value == 1
    assert r[(C1, "nat_hamlets_chosen_transform")].value == 1
    assert r[(C2, "nat_hamlets_open_dealing")].status is Status.no_data  # C2 sent no hamlet checklist
    assert r[(C1, "nat_rehab_registered")].value == 50  # p1 of the addicts p1, p2
    assert r[(C1, "nat_ethnic_minority_employed")].value == 50  # p1 of p1, p3 (not p2; p4 is a user)
    # "Không có điểm, tụ điểm phức tạp …, điểm có nguy cơ phức tạp …; không có vụ việc trồng cây" (TN13)
    active = r[(C1, "tn_sites_active")]
    assert active.value == 1 and active.status is Status.not_met  # S1 still active, S2 eliminated
    assert r[(C2, "tn_cultivation_found")].status is Status.not_met
    # "tuyên truyền … tại 100% các xóm, đơn vị trên địa bàn" (TN6): 6 of 8 agencies, on track in 2026
    agencies = r[(C1, "tn_agencies_reached")]
    assert agencies.value == 75 and agencies.status is Status.on_track
