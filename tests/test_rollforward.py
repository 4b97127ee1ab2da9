"""Two census years: last year's persons roll forward per commune, follow-ups keep the person, IDs dedupe."""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import hookimpl
from core.instance import parse_instance
from core.models import FormVersion, ReviewState, Submission
from core.plugins import build_manager, set_manager
from core.progress import round_progress
from core.rollforward import mask_national_id, person_register, persons_media, roster_media
from core.rounds import close_round, create_round, open_round
from core.storage.base import Store
from core.units import reset_units

PT, DH = "05563", "05569"  # Xã Phượng Tiến, Xã Định Hóa (Thái Nguyên)
HAMLETS = [
    ["05563-01", "Xóm Nà Pài", PT, "120"],
    ["05563-02", "Xóm Đồng Kem", PT, "95"],
    ["05569-01", "Tổ dân phố Hợp Thành", DH, "210"],
]


class HamletPlugin:
    def __init__(self, path: Path) -> None:
        self.path = path

    @hookimpl
    def hamlets(self) -> list[Path]:
        return [self.path]


@pytest.fixture
def hamlets(tmp_path: Path) -> Iterator[None]:
    path = tmp_path / "hamlets.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([["code", "name", "commune_code", "households"], *HAMLETS])
    pm = build_manager()
    pm.register(HamletPlugin(path), name="test_hamlets")
    set_manager(pm)
    reset_units()
    yield
    set_manager(None)
    reset_units()


@pytest.fixture
def store(tmp_path: Path, hamlets: None) -> Iterator[Store]:
    from core.storage.embedded import EmbeddedStore

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


def person(
    key: str, name: str, born: str, hamlet: str, category: str, nid: str = "", status: str = ""
) -> dict:
    fields = {
        "commune": hamlet.split("-")[0],
        "hamlet": hamlet,
        "person_key": key,
        "full_name": name,
        "birth_year": born,
        "national_id": nid,
        "category": category,
    }
    if status:
        fields["follow_up_status"] = status
    return fields


def read_csv(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def test_two_census_years(store: Store) -> None:
    # --- 2025: persons in two communes; one rejected record must not roll forward -------------------
    r25 = create_round(store, "Rà soát 2025", "2025", ["f1_person"], [PT, DH], kind="census")
    open_round(store, r25.id)
    submit(store, r25.id, **person("p-an", "Nguyễn Văn An", "1990", "05563-01", "nghien", "019090001234"))
    submit(store, r25.id, **person("p-binh", "Trần Văn Bình", "1985", "05563-02", "su_dung"))
    submit(store, r25.id, **person("p-cuong", "Lý Văn Cường", "1979", "05563-01", "sau_cai", "019079005678"))
    submit(store, r25.id, **person("p-dung", "Hoàng Thị Dung", "1995", "05569-01", "nghien"))
    wrong = submit(store, r25.id, **person("p-sai", "Bản ghi sai", "2000", "05563-02", "nghien"))
    store.set_review(wrong.instance_id, ReviewState.rejected, "nhập nhầm / entered by mistake", "officer")
    close_round(store, r25.id)
    snap25 = store.get_snapshot(r25.id)
    assert snap25 is not None
    active25 = snap25["lifecycle"]["persons"]["active"]
    assert (active25["total"], active25["by_commune"]) == (4, {PT: 3, DH: 1})
    assert active25["by_category"] == {"nghien": 2, "su_dung": 1, "sau_cai": 1}

    # --- 2026 opens: its media holds the 2025 list of that commune only ----------------------------
    r26 = create_round(store, "Rà soát 2026", "2026", ["f1_person"], [PT], kind="census")
    assert roster_media(store, "f1_person", [PT]) is None  # still a draft: nothing on phones
    open_round(store, r26.id)
    rows = read_csv(persons_media(store, store.get_round(r26.id), PT))  # type: ignore[arg-type]
    assert [r["name"] for r in rows] == ["p-cuong", "p-an", "p-binh"]  # by hamlet, then name
    assert rows[1] == {
        "name": "p-an",
        "label": "Nguyễn Văn An (1990) – Xóm Nà Pài",
        "commune": PT,
        "hamlet": "05563-01",
        "category": "nghien",
        "national_id": "********1234",
        "full_name": "Nguyễn Văn An",
        "birth_year": "1990",
        "status": "",
    }
    assert roster_media(store, "f1_person", ["05563-02"]) == roster_media(store, "f1_person", [PT])
    assert roster_media(store, "f1_person", [DH]) is None  # Định Hóa has no open census round
    assert roster_media(store, "f5_hamlet", [PT]) is None

    # --- 2026 follow-ups keep the person key; a new person is added; one re-registered by ID ---------
    submit(
        store,
        r26.id,
        **person("p-an", "Nguyễn Văn An", "1990", "05563-01", "sau_cai", "019090001234", status="found"),
    )
    submit(
        store, r26.id, **person("p-binh", "Trần Văn Bình", "1985", "05563-02", "su_dung", status="deceased")
    )
    # Cường was not picked from the list but registered again: same national ID, so the same person.
    submit(
        store,
        r26.id,
        **person(str(uuid.uuid4()), "Lý Văn Cường", "1979", "05563-02", "nghien", "019079005678"),
    )
    submit(store, r26.id, **person("p-em", "Đặng Văn Em", "2001", "05563-01", "su_dung", "019201009999"))
    progress = round_progress(store, store.get_round(r26.id))  # type: ignore[arg-type]
    assert progress["totals"]["persons"] == {"roster": 3, "followed_up": 3, "new": 1, "pct": 100.0}
    close_round(store, r26.id)

    register = person_register(store, communes=[PT])
    assert set(register) == {"p-an", "p-binh", "p-cuong", "p-em"}
    cuong = register["p-cuong"]
    assert (cuong.category, cuong.hamlet, len(cuong.aliases)) == ("nghien", "05563-02", 1)
    assert [s["round_id"] for s in cuong.seen] == [r25.id, r26.id]
    assert [s["category"] for s in register["p-an"].seen] == ["nghien", "sau_cai"]
    assert register["p-binh"].status == "deceased" and not register["p-binh"].active

    persons = store.get_snapshot(r26.id)["lifecycle"]["persons"]  # type: ignore[index]
    assert (persons["active"]["total"], persons["active"]["by_commune"]) == (3, {PT: 3})
    assert persons["active"]["by_category"] == {"sau_cai": 1, "nghien": 1, "su_dung": 1}
    assert (persons["seen"], persons["new"], persons["followed_up"], persons["left"]) == (4, 1, 3, 1)
    assert persons["not_followed_up"] == 0
    # Year on year against 2025's frozen counts, cut to this round's commune (Định Hóa is not in 2026).
    previous = persons["previous"]
    assert (previous["round_id"], previous["total"], previous["by_commune"]) == (r25.id, 3, {PT: 3})
    assert previous["by_category"] == {"nghien": 1, "su_dung": 1, "sau_cai": 1}
    assert persons["change"]["total"] == 0 and persons["change"]["by_commune"] == {PT: 0}

    # --- 2027: Bình (deceased) is off the list; Em (new in 2026) is on it ------------------------------
    r27 = create_round(store, "Rà soát 2027", "2027", ["f1_person"], [PT], kind="census")
    open_round(store, r27.id)
    rows = read_csv(roster_media(store, "f1_person", [PT]) or b"")
    assert [r["name"] for r in rows] == ["p-em", "p-an", "p-cuong"]


def test_roster_cache_follows_reopen(store: Store) -> None:
    r25 = create_round(store, "Rà soát 2025", "2025", ["f1_person"], [PT], kind="census")
    open_round(store, r25.id)
    first = submit(store, r25.id, **person("p-an", "Nguyễn Văn An", "1990", "05563-01", "nghien"))
    close_round(store, r25.id)
    r26 = create_round(store, "Rà soát 2026", "2026", ["f1_person"], [PT], kind="census")
    open_round(store, r26.id)
    assert [r["name"] for r in read_csv(roster_media(store, "f1_person", [PT]) or b"")] == ["p-an"]

    # 2025 is reopened, the record is rejected, 2025 closes again: the 2026 roster follows.
    from core.rounds import reopen_round

    close_round(store, r26.id)
    reopen_round(store, r25.id, reason="sai đối tượng / wrong person")
    store.set_review(first.instance_id, ReviewState.rejected, "không phải đối tượng", "officer")
    close_round(store, r25.id)
    assert read_csv(persons_media(store, store.get_round(r26.id), PT)) == []  # type: ignore[arg-type]


def test_mask_national_id() -> None:
    assert mask_national_id("019090001234") == "********1234"
    assert mask_national_id("0190 9000 1234") == "********1234"
    assert mask_national_id("123") == "***"
