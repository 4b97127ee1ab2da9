"""The QĐ 28 registers of states (F1 persons, F6 sites) counted by the store in SQL at each key's latest
record (``Store.aggregate`` with ``Latest``, issue 21 item 8), and the F7 crops destroyed in the year
totalled there, give exactly the figures of the record-by-record fold, on both backends: a province of
random registers, with records updated many times (in other hamlets of the commune, at the same instant,
with a blank key, in another commune), encrypted, rejected, after the year, crops dated by either day or
none, assessed both ways; every commune's inputs and class and the province's are compared, and a few are
checked against counts worked out here. Sums use halves and quarters, exact in binary."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from assessment_support import IN_YEAR, YEAR, cases, encrypted_f1, f10, opened, population, route
from indicators_support import (
    C1,
    C2,
    C3,
    H11,
    H12,
    H21,
    PROVINCE,
    Scanning,
    add,
    local_noon,
    small_registry,
)
from rasoat.core.assessment.compute import assess_province
from rasoat.core.models import ReviewState
from rasoat.core.storage.base import Store

REG = small_registry()
UNITS = [C1, C2, C3, H11, H12, H21]
CATEGORIES = ["user", "addict", "post_rehab", "", None]
SERVICES = ["methadone", "counselling methadone", "counselling", "methadone_x", "", None]
STATUSES = ["identified", "reemerged", "dismantled", "", None]


class Grouping(Scanning):
    """The store, noting the forms it totalled itself and every form read record by record."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.totalled: set[str] = set()
        self.scanned: set[str] = set()

    def aggregate(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        groups = self.store.aggregate(query, *args, **kwargs)
        if groups is not None:
            self.totalled.add(query.form_id)
        return groups

    def iter_facts(self, query: Any, paths: Any) -> Any:
        self.scanned.add(query.form_id)
        return self.store.iter_facts(query, paths)


def _maybe(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def _registers(store: Store, rng: random.Random) -> None:
    pick = rng.choice
    for n in range(120):  # persons, each recorded 1–4 times, in the commune's hamlets or the commune
        key = pick([f"p{n}", f"p{n}", f"p{n}", ""])  # a blank key: each record stands alone
        unit = pick(UNITS)
        day = local_noon(pick(["2026-01-05", "2026-03-01", "2026-06-01", "2026-09-09"]))
        for k in range(rng.randint(1, 4)):
            if unit != (commune := unit.split("-", 1)[0]) or rng.random() < 0.3:
                unit = pick([u for u in UNITS if u.split("-", 1)[0] == commune])  # moves within the commune
            if rng.random() < 0.05:
                unit = pick(UNITS)  # the same key in another commune: another person
            day += timedelta(days=rng.choice([0, 0, 3, 40]))  # 0: received at the same instant
            after_year = rng.random() < 0.05
            add(store, "f1_person", unit, _maybe({
                "person_key": key, "present": pick(["yes", "yes", "no"]), "category": pick(CATEGORIES),
                "has_record": pick(["yes", "no", None]), "services": pick(SERVICES),
                "rehab_type": pick(["voluntary_home", "centre", None]),
            }), received=local_noon("2026-12-20") if after_year else day,
                state=pick([ReviewState.received] * 6 + [ReviewState.approved, ReviewState.rejected]))
            if k == 0 and rng.random() < 0.05:
                encrypted_f1(store, unit)
    for n in range(40):  # sites, each recorded 1–3 times
        unit = pick(UNITS)
        for _ in range(rng.randint(1, 3)):
            add(store, "f6_hotspot", unit, _maybe({
                "site_key": f"s{n}", "is_use_venue": pick(["yes", "yes", "no"]), "status": pick(STATUSES),
            }), day=pick(["2026-02-01", "2026-05-05", "2026-08-08"]))
    encrypted_f1(store, H21, "f6_hotspot")
    for _ in range(40):  # crops dated by the day destroyed, else found, else received; in the year or not
        add(store, "f7_cultivation", pick(UNITS), _maybe({
            "destroyed": pick(["yes", "yes", "no"]),
            "destroyed_date": pick(["2026-02-01", "2025-12-01", "", None]),
            "found_date": pick(["2026-03-03", "2026-12-20", "", None]),
            "plant_count": pick(["600", "2.5", "", None, "0", "3500"]),
            "area_m2": pick(["12.25", "0", "", "800"]),
        }), day=pick(["2026-01-10", "2025-12-01", "2026-12-12"]))
    encrypted_f1(store, C3, "f7_cultivation")
    for commune in (C1, C2, C3):
        population(store, commune, rng.choice([2_000, 10_000, 50_000]))
        cases(store, commune, rng.randint(0, 9), rng.randint(0, 2))
    f10(store, C2, with_mgmt_record=3)
    route(store, PROVINCE, False)


def _assessed(store: Any) -> Any:
    return assess_province(store, YEAR, PROVINCE, REG)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_registers_counted_in_sql_give_the_fold_figures(tmp_path, backend_url, seed) -> None:
    with opened(tmp_path, backend_url) as store:
        _registers(store, random.Random(seed))
        grouping = Grouping(store)
        grouped, scanned = _assessed(grouping), _assessed(Scanning(store))
        assert {"f1_person", "f6_hotspot", "f7_cultivation"} <= grouping.totalled
        assert not {"f1_person", "f6_hotspot", "f7_cultivation"} & grouping.scanned  # none read in Python
        assert [c.code for c in grouped.communes] == [C1, C2, C3]
        for ours, theirs in zip(grouped.communes, scanned.communes, strict=True):
            assert ours.inputs == theirs.inputs, ours.code  # every figure, its source text, records, flags
            assert ours.result == theirs.result, ours.code  # class, R and A, bands, Art. 6, flags
            assert ours.f10_class == theirs.f10_class
        assert grouped.result == scanned.result
        assert sum(c.inputs.managed.records for c in grouped.communes) > 100  # the data reached the rules


def test_known_counts_of_updated_persons_and_sites(tmp_path, backend_url) -> None:
    """Worked out by hand: what each commune's persons and sites are at their latest record."""
    noon = local_noon(IN_YEAR)
    with opened(tmp_path, backend_url) as store:
        for commune in (C1, C2):
            population(store, commune, 10_000)
        # p1 managed, then moved to the other hamlet without a record: counted, not managed
        add(store, "f1_person", H11, {"person_key": "p1", "present": "yes", "category": "user",
                                      "has_record": "yes"}, received=noon)
        add(store, "f1_person", H12, {"person_key": "p1", "present": "yes", "category": "user",
                                      "has_record": "no"}, received=noon + timedelta(days=1))
        # p2 at one instant twice: the larger instanceID wins (managed, on methadone: exempt)
        add(store, "f1_person", H11, {"person_key": "p2", "present": "yes", "category": "addict",
                                      "has_record": "no"}, received=noon, instance_id="uuid:a")
        add(store, "f1_person", C1, {"person_key": "p2", "present": "yes", "category": "addict",
                                     "has_record": "yes", "services": "counselling methadone"},
            received=noon, instance_id="uuid:b")
        # p3 left the commune (not present), then a rejected record saying present: not counted
        add(store, "f1_person", C1, {"person_key": "p3", "present": "no", "category": "user",
                                     "has_record": "yes"}, received=noon)
        add(store, "f1_person", C1, {"person_key": "p3", "present": "yes", "category": "user",
                                     "has_record": "yes"}, received=noon + timedelta(days=2),
            state=ReviewState.rejected)
        # p1 in commune C2 is another person; two blank keys are two persons
        add(store, "f1_person", H21, {"person_key": "p1", "present": "yes", "category": "user",
                                      "has_record": "yes", "rehab_type": "voluntary_home"}, received=noon)
        for _ in range(2):
            add(store, "f1_person", C2, {"person_key": "", "present": "yes", "category": "user",
                                         "has_record": "yes"}, received=noon)
        # sites: s1 active, then dismantled; s2 with no status is as identified; s3 not a use venue
        add(store, "f6_hotspot", H11, {"site_key": "s1", "is_use_venue": "yes", "status": "identified"})
        add(store, "f6_hotspot", H12, {"site_key": "s1", "is_use_venue": "yes", "status": "dismantled"},
            day="2026-04-01")
        add(store, "f6_hotspot", C2, {"site_key": "s2", "is_use_venue": "yes"})
        add(store, "f6_hotspot", C2, {"site_key": "s3", "is_use_venue": "no", "status": "identified"})
        grouping = Grouping(store)
        c1, c2, _ = assess_province(grouping, YEAR, PROVINCE, REG).communes
        assert not {"f1_person", "f6_hotspot"} & grouping.scanned
    figures = {(c.code, name): (fig.value, fig.records) for c in (c1, c2) for name, fig in c.inputs.items()}
    assert figures[C1, "managed"] == (1, 5)  # p2; 5 records read (the rejected one is not counted)
    assert figures[C1, "users_not_exempt"] == (1, 5)  # p1 (p2 is on methadone)
    assert figures[C1, "venues"] == (0, 2)
    assert figures[C2, "managed"] == (3, 3)
    assert figures[C2, "users_not_exempt"] == (2, 3)  # p1 of C2 is in community rehab
    assert figures[C2, "venues"] == (1, 2)
    assert "2 người nghiện, sử dụng" in c1.inputs.users_not_exempt.source[0]
