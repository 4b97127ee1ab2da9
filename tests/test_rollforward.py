"""Two census years: last year's persons roll forward per commune, follow-ups keep the person, IDs dedupe."""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from plugin_support import HamletPlugin, plugins_installed
from rasoat.core.instance import parse_instance
from rasoat.core.models import FormVersion, ReviewState, Submission
from rasoat.core.progress import round_progress
from rasoat.core.rollforward import person_register, persons_media, roster_media
from rasoat.core.round_lifecycle import close_round, open_round
from rasoat.core.rounds import create_round
from rasoat.core.storage.base import Store

PT, DH = "05563", "05569"  # Xã Phượng Tiến, Xã Định Hóa (Thái Nguyên)
HAMLETS = [
    ["05563-01", "Xóm Nà Pài", PT, "120"],
    ["05563-02", "Xóm Đồng Kem", PT, "95"],
    ["05569-01", "Tổ dân phố Hợp Thành", DH, "210"],
]


@pytest.fixture
def hamlets(tmp_path: Path) -> Iterator[None]:
    path = tmp_path / "hamlets.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([["code", "name", "commune_code", "households"], *HAMLETS])
    with plugins_installed(test_hamlets=HamletPlugin(path)):  # this test's own hamlets for 05563
        yield


@pytest.fixture
def store(tmp_path: Path, hamlets: None) -> Iterator[Store]:
    from rasoat.core.storage.embedded import EmbeddedStore

    s = EmbeddedStore(tmp_path / "data")
    xform = b"<h:html/>"
    s.put_form(
        FormVersion(form_id="f1_person", version="2025", title="F1", md5=hashlib.md5(xform).hexdigest()),
        xform,
        {},
        {},
    )
    yield s
    s.close()


def collect_xml(instance_id: str, version: str, **fields: str) -> bytes:
    """An F1 instance as ODK Collect writes it: the form's root element, fields, then meta/instanceID."""
    body = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items())
    return (
        "<?xml version='1.0' ?>"
        f'<data id="f1_person" version="{version}" xmlns:jr="http://openrosa.org/javarosa" '
        'xmlns:orx="http://openrosa.org/xforms">'
        f"{body}<meta><instanceID>{instance_id}</instanceID></meta></data>"
    ).encode()


def submit(store: Store, round_id: str, **fields: str) -> Submission:
    """Parse the Collect XML like the server does and store the Submission it would build."""
    instance_id = f"uuid:{uuid.uuid4()}"
    xml = collect_xml(instance_id, "2025", province="19", **fields)
    parsed = parse_instance(xml)
    unit = parsed.fields.get("hamlet") or parsed.fields.get("commune")
    sub = Submission(
        instance_id=parsed.instance_id,
        form_id=parsed.form_id,
        form_version=parsed.version,
        round_id=round_id,
        unit_code=unit,
        xml_md5=hashlib.md5(xml).hexdigest(),
        fields=parsed.fields,
    )
    store.save_submission(sub, xml, {})
    return sub


def new_person(key: str, name: str, born: str, hamlet: str, category: str, nid: str = "") -> dict[str, str]:
    """F1 fields for a new registration (entry_type=new), as the form computes them."""
    fields = {
        "commune": hamlet.split("-")[0],
        "hamlet": hamlet,
        "entry_type": "new",
        "new_person_key": key,
        "person_key": key,
        "person_name": name,
        "present": "yes",
        "full_name": name,
        "sex": "male",
        "birth_date": f"{born}-03-15",
        "category": category,
        "has_record": "yes",
    }
    if nid:
        fields["id_number"] = nid
    return fields


def follow_up(key: str, name: str, hamlet: str, status: str, category: str = "") -> dict[str, str]:
    """F1 fields for a follow-up of a person picked from persons.csv (entry_type=followup)."""
    fields = {
        "commune": hamlet.split("-")[0],
        "hamlet": hamlet,
        "entry_type": "followup",
        "known_person": key,
        "prev_full_name": name,
        "followup_status": status,
        "person_key": key,
        "person_name": name,
        "present": "yes" if status == "found" else "no",
    }
    if status == "found":
        fields["category"] = category
    if status == "deceased":
        fields["death_date"] = "2026-02-01"
    return fields


def read_csv(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def test_two_census_years(store: Store) -> None:
    # --- 2025: persons in two communes; one rejected record must not roll forward -------------------
    r25 = create_round(store, "Rà soát 2025", "2025", ["f1_person"], [PT, DH], kind="census")
    open_round(store, r25.id)
    submit(store, r25.id, **new_person("p-an", "Nguyễn Văn An", "1990", "05563-01", "addict", "019090001234"))
    submit(store, r25.id, **new_person("p-binh", "Trần Văn Bình", "1985", "05563-02", "user"))
    submit(
        store,
        r25.id,
        **new_person("p-cuong", "Lý Văn Cường", "1979", "05563-01", "post_rehab", "019079005678"),
    )
    submit(store, r25.id, **new_person("p-dung", "Hoàng Thị Dung", "1995", "05569-01", "addict"))
    submit(store, r25.id, **new_person("p-giang", "Vũ Thị Giang", "1998", "05563-02", "user"))
    wrong = submit(store, r25.id, **new_person("p-sai", "Bản ghi sai", "2000", "05563-02", "addict"))
    store.set_review(wrong.instance_id, ReviewState.rejected, "nhập nhầm / entered by mistake", "officer")
    close_round(store, r25.id)
    snap25 = store.get_snapshot(r25.id)
    assert snap25 is not None
    present25 = snap25["lifecycle"]["persons"]["present"]
    assert (present25["total"], present25["by_commune"]) == (5, {PT: 4, DH: 1})
    assert present25["by_category"] == {"addict": 2, "user": 2, "post_rehab": 1}
    assert "indicators" in snap25  # the indicators engine's frozen values beside the lifecycle counts

    # --- 2026 opens: its media holds the 2025 list of that commune only ----------------------------
    r26 = create_round(store, "Rà soát 2026", "2026", ["f1_person"], [PT], kind="census")
    assert roster_media(store, "f1_person", [PT]) is None  # still a draft: nothing on phones
    open_round(store, r26.id)
    rows = read_csv(persons_media(store, store.get_round(r26.id), PT))  # type: ignore[arg-type]
    assert [r["name"] for r in rows] == ["p-cuong", "p-an", "p-binh", "p-giang"]  # by hamlet, then name
    assert rows[1] == {
        "name": "p-an",
        "label": "Nguyễn Văn An (1990) – Xóm Nà Pài",
        "display": "Nguyễn Văn An (1990) – Xóm Nà Pài",  # what F1's picker shows (label=display)
        "commune": PT,
        "hamlet": "05563-01",
        "category": "addict",
        "status": "",
        "full_name": "Nguyễn Văn An",
        "other_name": "",
        "birth_year": "1990",
        "pseudonym": "",  # these records hold no pseudonym
    }  # no ID number, not even masked: it never travels to a phone
    assert roster_media(store, "f1_person", ["05563-02"]) == roster_media(store, "f1_person", [PT])
    assert roster_media(store, "f1_person", [DH]) is None  # Định Hóa has no open census round
    assert roster_media(store, "f5_hamlet", [PT]) is None

    # --- 2026 follow-ups keep the person key; a new person is added; one re-registered by ID ---------
    submit(
        store,
        r26.id,
        **follow_up("p-an", "Nguyễn Văn An", "05563-01", "found", "post_rehab"),
    )
    submit(store, r26.id, **follow_up("p-binh", "Trần Văn Bình", "05563-02", "deceased"))
    submit(store, r26.id, **follow_up("p-giang", "Vũ Thị Giang", "05563-02", "detained"))
    # Cường was not picked from the list but registered again: same national ID, so the same person.
    submit(
        store,
        r26.id,
        **new_person(str(uuid.uuid4()), "Lý Văn Cường", "1979", "05563-02", "addict", "019079005678"),
    )
    submit(store, r26.id, **new_person("p-em", "Đặng Văn Em", "2001", "05563-01", "user", "019201009999"))
    progress = round_progress(store, store.get_round(r26.id))  # type: ignore[arg-type]
    assert progress["totals"]["persons"] == {"roster": 4, "followed_up": 4, "new": 1, "pct": 100.0}
    close_round(store, r26.id)

    register = person_register(store, communes=[PT])
    assert set(register) == {"p-an", "p-binh", "p-cuong", "p-em", "p-giang"}
    cuong = register["p-cuong"]  # the first key wins; the new key is kept as an alias
    assert (cuong.category, cuong.hamlet, cuong.birth_year, len(cuong.aliases)) == (
        "addict",
        "05563-02",
        "1979",
        1,
    )
    assert [s["round_id"] for s in cuong.seen] == [r25.id, r26.id]
    an = register["p-an"]  # a follow-up keeps identity from the registration and updates the status
    assert [s["category"] for s in an.seen] == ["addict", "post_rehab"]
    assert (an.full_name, an.birth_year, an.national_id, an.status) == (
        "Nguyễn Văn An",
        "1990",
        "019090001234",
        "found",
    )
    assert register["p-binh"].status == "deceased" and not register["p-binh"].on_roster
    giang = register["p-giang"]
    assert (giang.status, giang.present, giang.on_roster, giang.category) == ("detained", False, True, "user")

    persons = store.get_snapshot(r26.id)["lifecycle"]["persons"]  # type: ignore[index]
    assert (persons["present"]["total"], persons["present"]["by_commune"]) == (3, {PT: 3})
    assert persons["present"]["by_category"] == {"post_rehab": 1, "addict": 1, "user": 1}
    assert (persons["seen"], persons["new"], persons["followed_up"], persons["left"]) == (5, 1, 4, 1)
    assert persons["by_status"] == {"found": 1, "deceased": 1, "detained": 1, "": 2}
    assert persons["not_followed_up"] == 0
    # Year on year against 2025's frozen counts, cut to this round's commune (Định Hóa is not in 2026).
    previous = persons["previous"]
    assert (previous["round_id"], previous["total"], previous["by_commune"]) == (r25.id, 4, {PT: 4})
    assert previous["by_category"] == {"addict": 1, "user": 2, "post_rehab": 1}
    assert persons["change"] == {
        "total": -1,
        "total_pct": -25.0,
        "by_category": {"addict": 0, "post_rehab": 0, "user": -1},
        "by_commune": {PT: -1},
    }

    # --- 2027: Bình (deceased) is off the list; Giang (detained) stays; Em (new in 2026) is on it -------
    r27 = create_round(store, "Rà soát 2027", "2027", ["f1_person"], [PT], kind="census")
    open_round(store, r27.id)
    rows = read_csv(roster_media(store, "f1_person", [PT]) or b"")
    assert [r["name"] for r in rows] == ["p-em", "p-an", "p-cuong", "p-giang"]
    assert rows[3]["status"] == "detained"


def test_roster_cache_follows_reopen(store: Store) -> None:
    r25 = create_round(store, "Rà soát 2025", "2025", ["f1_person"], [PT], kind="census")
    open_round(store, r25.id)
    first = submit(store, r25.id, **new_person("p-an", "Nguyễn Văn An", "1990", "05563-01", "addict"))
    close_round(store, r25.id)
    r26 = create_round(store, "Rà soát 2026", "2026", ["f1_person"], [PT], kind="census")
    open_round(store, r26.id)
    assert [r["name"] for r in read_csv(roster_media(store, "f1_person", [PT]) or b"")] == ["p-an"]

    # 2025 is reopened, the record is rejected, 2025 closes again: the 2026 roster follows.
    from rasoat.core.round_lifecycle import reopen_round

    close_round(store, r26.id)
    reopen_round(store, r25.id, reason="sai đối tượng / wrong person")
    store.set_review(first.instance_id, ReviewState.rejected, "không phải đối tượng", "officer")
    close_round(store, r25.id)
    assert read_csv(persons_media(store, store.get_round(r26.id), PT)) == []  # type: ignore[arg-type]



def test_records_with_one_pseudonym_are_one_person_on_the_roster(store: Store) -> None:
    """A protected record keeps the ID number sealed and its keyed pseudonym in clear (core.protection):
    two registrations under two keys with the same pseudonym are one person, and the roster carries it."""
    r25 = create_round(store, "Rà soát 2025", "2025", ["f1_person"], [PT], kind="census")
    open_round(store, r25.id)
    first = new_person("p-hoa", "Mai Thị Hoa", "1992", "05563-01", "user")
    again = new_person("p-hoa-2", "Mai Thị Hoa", "1992", "05563-02", "addict")
    submit(store, r25.id, **first, person_pseudonym="ps-7f3a")
    submit(store, r25.id, **again, person_pseudonym="ps-7f3a")
    close_round(store, r25.id)
    r26 = create_round(store, "Rà soát 2026", "2026", ["f1_person"], [PT], kind="census")
    open_round(store, r26.id)
    rows = read_csv(persons_media(store, store.get_round(r26.id), PT))  # type: ignore[arg-type]
    assert [(r["name"], r["pseudonym"], r["hamlet"], r["category"], r["full_name"]) for r in rows] == [
        ("p-hoa", "ps-7f3a", "05563-02", "addict", "Mai Thị Hoa")
    ]
