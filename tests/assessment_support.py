"""Builders for the QĐ 28 assessment tests: one commune's year written into real registers (F1, F6, F7,
F9, F10 submissions parsed from XML by core.instance, as the server stores them) and officer facts."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from indicators_support import add
from rasoat.core.assessment.facts import set_fact
from rasoat.core.models import Submission
from rasoat.core.storage.base import Store
from rasoat.core.storage.opening import open_store

YEAR = 2026
IN_YEAR = "2026-06-01"  # inside 2026-QD28 (15/12/2025 → 14/12/2026)


@contextmanager
def opened(tmp_path: Path, backend_url: str | None) -> Iterator[Store]:
    store = open_store(tmp_path / "data", backend_url)
    try:
        yield store
    finally:
        store.close()


def population(store: Store, unit: str, value: int, year: int = YEAR) -> None:
    set_fact(store, year, unit, "population", value, "CSDL quốc gia về dân cư", "2026-11-30", "officer")


def route(store: Store, unit: str, on: bool, year: int = YEAR) -> None:
    set_fact(store, year, unit, "on_route", "yes" if on else "no", "QĐ 12/QĐ-UBND", "2026-01-10", "officer")


def person(store: Store, hamlet: str, category: str, record: bool = True, **fields: Any) -> str:
    key = fields.pop("person_key", None) or f"p-{uuid.uuid4().hex[:8]}"
    add(store, "f1_person", hamlet, {
        "person_key": key, "entry_type": "new", "present": "yes", "category": category,
        "has_record": "yes" if record else "no", "services": "counselling", **fields,
    }, day=fields.pop("day", IN_YEAR))
    return key


def persons(store: Store, hamlet: str, n: int, category: str = "user", **fields: Any) -> None:
    for _ in range(n):
        person(store, hamlet, category, **fields)


def hotspot(store: Store, hamlet: str, use_venue: bool = True, status: str = "identified") -> None:
    add(store, "f6_hotspot", hamlet, {
        "site_key": f"s-{uuid.uuid4().hex[:8]}", "entry_type": "new", "status": status,
        "activity": "harbour_use" if use_venue else "trade", "is_use_venue": "yes" if use_venue else "no",
    }, day=IN_YEAR)


def crop(store: Store, hamlet: str, plants: int = 0, area: float = 0, day: str = IN_YEAR) -> None:
    add(store, "f7_cultivation", hamlet, {
        "found_date": day, "plant": "opium_poppy", "plant_count": plants, "area_m2": area,
        "destroyed": "yes", "destroyed_date": day,
    }, day=day)


def cases(store: Store, commune: str, arrested: int, residents: int = 0,
          period: tuple[str, str] = ("2025-12-15", "2026-12-14")) -> None:
    add(store, "f9_case", commune, {
        "period_from": period[0], "period_to": period[1], "offenders_arrested": arrested,
        "offence": [{"offence_type": "possession", "case_kind": "criminal", "cases": 1,
                     "persons": max(arrested, residents), "persons_resident": residents}],
    }, day=IN_YEAR)


def f10(store: Store, commune: str, year: int = YEAR, **typed: Any) -> None:
    add(store, "f10_summary", commune, {
        "period_type": "year", "period_from": f"{year - 1}-12-15", "period_to": f"{year}-12-14",
        "fugitives_hiding": 0, **typed,
    }, day=f"{year}-12-10")


def encrypted_f1(store: Store, hamlet: str, form_id: str = "f1_person") -> None:
    """An ODK-encrypted record as ingest stores it: an envelope the server cannot read."""
    iid = f"uuid:{uuid.uuid4()}"
    xml = f'<data id="{form_id}" encrypted="yes"><meta><instanceID>{iid}</instanceID></meta></data>'.encode()
    sub = Submission(
        instance_id=iid, form_id=form_id, form_version="1", unit_code=hamlet,
        xml_md5=hashlib.md5(xml).hexdigest(), encrypted=True,
        fields={"base64EncryptedKey": "x", "encryptedXmlFile": "submission.xml.enc"},
    )
    store.save_submission(sub, xml, {})


LAI_CHAU, ITS_COMMUNE = "12", "03390"  # the smallest province (38 communes) and one of its communes


def lai_chau_year(store: Store, officer: Any, year: int = YEAR) -> list[str]:
    """Every commune of province 12 with a population, no route and a yearly F10; commune 03390 has 30
    users with a record (type III, flagged); the 37 others are proposed and accepted by ``officer``."""
    from rasoat.core.assessment import signoff
    from rasoat.core.units import get_units

    communes = [u.code for u in get_units().communes(LAI_CHAU)]
    for c in communes:
        population(store, c, 10_000, year)
        route(store, c, False, year)
        f10(store, c, year=year)
    persons(store, ITS_COMMUNE, 30, "user")
    for c in communes:
        if c != ITS_COMMUNE:
            signoff.propose(store, officer, year, c, "")
            signoff.review(store, officer, year, c, accept=True)
    return communes
