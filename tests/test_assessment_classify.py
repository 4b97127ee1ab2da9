"""QĐ 28/2025 classification computed from the registers, against figures worked out by hand.

Every commune below has 10,000 current residents (entered by an officer with its source), so R and A are
counts ÷ 100 in per cent: 30 users with a record → R = 0,30 %; 7 arrested → A = 0,07 %.
"""

from __future__ import annotations

import pytest
from assessment_support import (
    YEAR,
    cases,
    crop,
    encrypted_f1,
    f10,
    hotspot,
    opened,
    person,
    persons,
    population,
    route,
)
from indicators_support import C1, C2, C3, H11, H21, PROVINCE, small_registry
from rasoat.core.assessment.compute import assess_communes, assess_province

REG = small_registry()


def one(store, code: str = C1):
    return assess_communes(store, YEAR, [code], REG)[0]


def codes(flags) -> set[str]:
    return {f.code for f in flags}


def test_drug_free_with_the_exemptions_of_article_6(tmp_path, backend_url) -> None:
    with opened(tmp_path, backend_url) as store:
        population(store, C1, 10_000)
        route(store, C1, False)
        person(store, H11, "addict", services="methadone")  # substitution treatment: exempt
        person(store, H11, "user", services="rehab", rehab_type="voluntary_home")  # community rehab: exempt
        person(store, H11, "post_rehab")  # post-rehab management: exempt
        person(store, H11, "user", followup_status="moved", present="no")  # moved away: not a resident
        hotspot(store, H11, use_venue=True, status="eliminated")  # eliminated: no longer a place
        hotspot(store, H11, use_venue=False)  # trading, not a use venue
        cases(store, C1, arrested=0, residents=0)
        f10(store, C1, fugitives_hiding=0)
        a = one(store)
        i = a.inputs
        assert (i.managed.value, i.users_not_exempt.value, i.venues.value, i.residents_violating.value) == (
            2, 0, 0, 0
        )
        assert i.managed.records == 4 and "f1_person" in i.managed.source[0]
        assert a.result.conditions == {"1": True, "2": True, "3": True}
        assert a.result.klass == "drug_free" and not a.result.flags
        assert a.result.r_pct == pytest.approx(0.02)


def test_type_3(tmp_path, backend_url) -> None:
    with opened(tmp_path, backend_url) as store:
        population(store, C1, 10_000)
        route(store, C1, False)
        persons(store, H11, 3, "user")  # R = 0,03 % (< 0,1 %: band III)
        cases(store, C1, arrested=2, residents=1)  # A = 0,02 %
        crop(store, H11, plants=100)  # < 500 plants
        f10(store, C1)
        a = one(store)
        assert a.result.r_pct == pytest.approx(0.03) and a.result.a_pct == pytest.approx(0.02)
        assert a.result.bands == {"a": 3, "b": 0, "c": 3, "d": 3}
        assert (a.result.drug_free, a.result.klass, a.result.flags) == (False, "type_3", [])
        assert a.inputs.plants.value == 100 and a.inputs.plants.records == 1


def test_type_2(tmp_path, backend_url) -> None:
    with opened(tmp_path, backend_url) as store:
        population(store, C1, 10_000)
        route(store, C1, False)
        persons(store, H11, 30, "addict")  # R = 0,30 %: band II
        hotspot(store, H11)  # P = 1: band II
        cases(store, C1, arrested=7)  # A = 0,07 %: band II
        f10(store, C1)
        a = one(store)
        assert a.result.bands == {"a": 2, "b": 2, "c": 2, "d": 0}
        assert a.result.klass == "type_2" and not a.result.flags


def test_type_1_through_the_key_route_criterion(tmp_path, backend_url) -> None:
    with opened(tmp_path, backend_url) as store:
        population(store, C1, 10_000)
        route(store, C1, True)
        persons(store, H11, 60, "user")  # R = 0,60 %: band I
        hotspot(store, H11)
        hotspot(store, H11)  # P = 2: band I
        cases(store, C1, arrested=7)  # A = 0,07 %: band II
        f10(store, C1, on_route="yes")
        a = one(store)
        # two type-I criteria + đ (on a route with ≥ 2 type-II-or-higher criteria) = 3 → type I
        assert a.result.bands == {"a": 1, "b": 1, "c": 2, "d": 0}
        assert a.result.klass == "type_1" and not a.result.flags
        route(store, C1, False)  # the same figures off the route: 3 criteria in band II or higher → type II
        assert one(store).result.klass == "type_2"


def test_fewer_than_3_criteria_but_r_in_the_type_2_band_is_flagged(tmp_path, backend_url) -> None:
    with opened(tmp_path, backend_url) as store:
        population(store, C1, 10_000)
        route(store, C1, False)
        persons(store, H11, 30, "user")  # R = 0,30 %, and nothing else
        f10(store, C1)
        a = one(store)
        assert a.result.r_pct == pytest.approx(0.3) and a.result.bands["a"] == 2
        assert a.result.klass == "type_3"  # the suggested fallback, not a silent decision:
        [flag] = a.result.flags
        vi, en = flag.message  # each language whole, so a page shows one
        assert flag.code == "open_band" and "Điều 9.1.a" in vi and "type II band" in en


def test_an_f10_total_that_disagrees_is_shown_beside_the_registers_and_flagged(tmp_path, backend_url) -> None:
    with opened(tmp_path, backend_url) as store:
        population(store, C1, 10_000)
        route(store, C1, False)
        persons(store, H11, 3, "user")
        cases(store, C1, arrested=2)
        f10(store, C1, with_mgmt_record=5, offenders_arrested=2, population_resident=10_000,
            qd28_final="type_3")
        a = one(store)
        assert (a.inputs.managed.value, a.inputs.managed.typed, a.inputs.managed.disagrees) == (3, 5, True)
        assert not a.inputs.arrested.disagrees and not a.inputs.population.disagrees
        assert a.result.klass == "type_3"  # computed from the registers, never from the typed 5
        assert codes(a.result.flags) == {"f10_disagrees"}
        assert all("F10 5" in text and "3" in text for text in a.result.flags[0].message)


def test_missing_population_and_encrypted_persons_are_unknown_never_zero(tmp_path, backend_url) -> None:
    with opened(tmp_path, backend_url) as store:
        persons(store, H11, 30, "user")
        cases(store, C1, arrested=7)
        f10(store, C1)
        a = one(store)
        assert a.inputs.population.value is None and a.result.r_pct is None
        assert a.result.klass == "unknown" and "unknown_input" in codes(a.result.flags)
        population(store, C1, 10_000)
        route(store, C1, False)
        encrypted_f1(store, H11)
        b = one(store)
        assert b.inputs.managed.value is None and "mã hoá" in b.inputs.managed.unknown_reason[0]
        assert b.result.klass == "unknown"
        assert any("encrypted" in f.message[1] for f in b.result.flags)


def test_province_article_5(tmp_path, backend_url) -> None:
    """Province 19 with three communes (residents 10,000 + 20,000 + 10,000 = 40,000):

    C1: 60 users with a record, 2 venues, 12 arrested → type I (3 type-I criteria).
    C2: 2 users with a record, 3 venues, 9,000 plants destroyed → type III (flagged: b and d in band I).
    C3: nothing → drug-free.
    Criteria: (1) R = 62/40,000 = 0,155 % < 0,2 ✗; (2) P = 5 ≥ 5 ✓; (3) A = 12/40,000 = 0,03 % ✗;
    (4) 1 of 3 communes type I/II = 33 % ≥ 3 % ✓; (5) 9,000 plants ≥ 8,000 ✓; (6) inter-provincial route ✓.
    4 of 6 → a drug-complex province; without the route decision entered, criterion 6 is unknown and so is
    the class (3 met + 1 unknown could still reach 4)."""
    with opened(tmp_path, backend_url) as store:
        for code, pop in ((C1, 10_000), (C2, 20_000), (C3, 10_000)):
            population(store, code, pop)
            route(store, code, False)
            f10(store, code)
        persons(store, H11, 60, "user")
        hotspot(store, H11)
        hotspot(store, H11)
        cases(store, C1, arrested=12)
        persons(store, H21, 2, "user")
        for _ in range(3):
            hotspot(store, H21)
        crop(store, H21, plants=9_000)
        p = assess_province(store, YEAR, PROVINCE, REG)
        by = {c.code: c.result.klass for c in p.communes}
        assert by == {C1: "type_1", C2: "type_3", C3: "drug_free"}
        assert p.result.values["r_pct"] == pytest.approx(0.155)
        assert p.result.values["a_pct"] == pytest.approx(0.03)
        assert p.result.criteria == {"1": False, "2": True, "3": False, "4": True, "5": True, "6": None}
        assert p.result.klass == "unknown"
        route(store, PROVINCE, True)
        p = assess_province(store, YEAR, PROVINCE, REG)
        assert (p.result.met, p.result.klass, p.result.drug_free) == (4, "complex", False)
