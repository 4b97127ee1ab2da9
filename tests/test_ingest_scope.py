"""The ingest scope rule (``core.ingest.place``): a record is filed only under a unit inside the caller's
units, the unit checked is the unit filed, location answers that contradict each other are refused, and an
edit (``deprecatedID``) replaces only a record of the same form inside the caller's units.

The attacks an outside probe found are replayed through the real server on both backends; a property test
throws generated answers and deprecatedIDs at the same rule; the USB/offline import goes through it too."""

from __future__ import annotations

import hashlib
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rasoat.core.collectors import create_collector
from rasoat.core.ingest import IngestError, ShapeCache, accept
from rasoat.core.models import Round, RoundState, Submission, User
from rasoat.core.rounds import ancestors_of
from rasoat.core.scope import allowed_units
from rasoat.core.storage.base import Store
from rasoat.core.storage.opening import open_store
from rasoat.core.units import get_units
from server_support import COMMUNE, OTHER_COMMUNE, CollectClient, instance_xml, publish_test_form

OR = "{http://openrosa.org/http/response}"
BA_DINH = "00004"  # Phường Ba Đình, Hà Nội: a commune of another province


@pytest.fixture
def live_server(live_server_any):
    return live_server_any


@pytest.fixture
def collect(live_server) -> Iterator[CollectClient]:
    client = CollectClient(f"{live_server.url}/v1/key/{live_server.seeded.token}/projects/1")
    yield client
    client.close()


@pytest.fixture
def other_collect(live_server) -> Iterator[CollectClient]:
    """The collector of the other commune (OTHER_COMMUNE), assigned to the same open round."""
    client = CollectClient(f"{live_server.url}/v1/key/{live_server.seeded.other_commune_token}/projects/1")
    yield client
    client.close()


def message(resp) -> str:
    root = ET.fromstring(resp.content)
    assert root.tag == f"{OR}OpenRosaResponse"
    return root.find(f"{OR}message").text or ""


# --- item 1: an edit of another commune's record -----------------------------------------------------


def test_edit_of_another_communes_record_is_refused(collect, other_collect, live_server) -> None:
    store = live_server.store
    victim_id, victim_xml = instance_xml(commune=OTHER_COMMUNE, photo="a.jpg", name="Bản ghi xã khác")
    assert other_collect.submit(victim_xml, {"a.jpg": b"PRIVATE PHOTO"}).status_code == 201
    before = store.get_submission(victim_id)
    assert before is not None and before.current and before.unit_code == OTHER_COMMUNE

    edit_id, edit_xml = instance_xml(deprecated_id=victim_id, photo="a.jpg", name="Sửa trộm")
    resp = collect.submit(edit_xml)
    assert resp.status_code == 403
    assert victim_id in message(resp) and "outside your units" in message(resp)
    assert "ngoài phạm vi" in message(resp)
    assert store.get_submission(edit_id) is None  # nothing stored, no attachment copied
    after = store.get_submission(victim_id)
    assert after is not None and after.current  # the victim's record stays in its commune's lists
    assert store.attachment(victim_id, "a.jpg") == b"PRIVATE PHOTO"


def test_edit_of_a_record_of_another_form_is_refused(collect, live_server) -> None:
    store = live_server.store
    xml = b"<data id=\"tother\" version=\"1\"><commune>05563</commune><meta/></data>"
    other_id = f"uuid:{uuid.uuid4()}"
    store.save_submission(
        Submission(instance_id=other_id, form_id="tother", form_version="1", unit_code=COMMUNE,
                   collector_id=live_server.seeded.user_id, xml_md5=hashlib.md5(xml).hexdigest()),
        xml, {},
    )
    edit_id, edit_xml = instance_xml(deprecated_id=other_id)
    resp = collect.submit(edit_xml)
    assert resp.status_code == 403 and "another form" in message(resp) and "biểu mẫu khác" in message(resp)
    assert store.get_submission(edit_id) is None
    assert store.get_submission(other_id).current


def test_edit_of_own_record_still_carries_attachments(collect, live_server) -> None:
    store = live_server.store
    old_id, old_xml = instance_xml(photo="p.jpg")
    assert collect.submit(old_xml, {"p.jpg": b"MINE"}).status_code == 201
    new_id, new_xml = instance_xml(deprecated_id=old_id, photo="p.jpg", name="Đã sửa")
    assert collect.submit(new_xml).status_code == 201
    assert store.attachment(new_id, "p.jpg") == b"MINE"
    assert not store.get_submission(old_id).current


# --- item 2: the unit filed is the unit checked --------------------------------------------------------


def test_unknown_hamlet_with_another_provinces_commune_is_refused(collect, live_server) -> None:
    """The probe's case: hamlet 05563-99 (not in the registry) with commune 00004 (Hà Nội)."""
    store = live_server.store
    iid, xml = instance_xml(hamlet=f"{COMMUNE}-99", commune=BA_DINH)
    resp = collect.submit(xml)
    assert resp.status_code == 403
    text = message(resp)
    assert "contradict" in text and "mâu thuẫn" in text and BA_DINH in text
    assert store.get_submission(iid) is None


@pytest.mark.parametrize(
    ("hamlet", "commune"),
    [
        (f"{COMMUNE}-01", BA_DINH),  # a registered hamlet of the caller's commune, a commune elsewhere
        (f"{OTHER_COMMUNE}-99", COMMUNE),  # an unknown hamlet of another commune
        ("", BA_DINH),  # a commune of another province (the province answer says 19)
        ("99999-01", COMMUNE),  # a hamlet of no known commune
    ],
)
def test_every_contradiction_or_outside_unit_is_403(collect, live_server, hamlet: str, commune: str) -> None:
    iid, xml = instance_xml(hamlet=hamlet, commune=commune)
    resp = collect.submit(xml)
    assert resp.status_code == 403, resp.text
    assert live_server.store.get_submission(iid) is None


def test_unknown_hamlet_of_own_commune_is_filed_under_the_commune(collect, live_server) -> None:
    iid, xml = instance_xml(hamlet=f"{COMMUNE}-98")
    assert collect.submit(xml).status_code == 201
    sub = live_server.store.get_submission(iid)
    assert sub.unit_code == COMMUNE and sub.fields["hamlet"] == f"{COMMUNE}-98"


# --- the same rule for generated answers (property test) -----------------------------------------------


def _codes() -> dict[str, list[str]]:
    units = get_units()
    own_hamlets = [u.code for u in units.hamlets(COMMUNE)][:3]
    other_hamlets = [u.code for u in units.hamlets() if not u.code.startswith(COMMUNE)][:3]
    return {
        "hamlet": ["", *own_hamlets, *other_hamlets, f"{COMMUNE}-99", f"{OTHER_COMMUNE}-99", f"{BA_DINH}-01",
                   "99999-01", COMMUNE, BA_DINH, "19", "01", "x"],
        "commune": ["", COMMUNE, OTHER_COMMUNE, BA_DINH, "99999", "19", f"{COMMUNE}-01"],
        "province": ["", "19", "01", "99", COMMUNE],
    }


CODES = _codes()


def generated_xml(form_id: str, iid: str, hamlet: str, commune: str, province: str, dep: str | None) -> bytes:
    dep_el = f"<deprecatedID>{dep}</deprecatedID>" if dep else ""
    return (
        f'<data id="{form_id}" version="1"><province>{province}</province><commune>{commune}</commune>'
        f"<hamlet>{hamlet}</hamlet><name>Thử</name><photo>p.jpg</photo>"
        f"<meta><instanceID>{iid}</instanceID>{dep_el}</meta></data>"
    ).encode()


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[tuple[Store, User, dict[str, str]]]:
    """A collector of COMMUNE; records of their commune, of another commune, of another form."""
    store = open_store(tmp_path_factory.mktemp("scope") / "data")
    publish_test_form(store, "tform")
    publish_test_form(store, "tother")
    store.put_round(Round(id="r", name="Đợt", period="2026", form_ids=["tform", "tother"],
                          unit_codes=["19", "01"], state=RoundState.open))
    user, _ = create_collector(store, "Thu Thập", [COMMUNE], ["r"], username="thu")
    other, _ = create_collector(store, "Xã Khác", [OTHER_COMMUNE], ["r"], username="khac")
    hanoi, _ = create_collector(store, "Hà Nội", [BA_DINH], ["r"], username="hanoi")
    shapes = ShapeCache()
    seeds: dict[str, str] = {}
    for key, who, form, commune in [("own", user, "tform", COMMUNE), ("other_commune", other, "tform",
                                    OTHER_COMMUNE), ("other_province", hanoi, "tform", BA_DINH),
                                    ("other_form", user, "tother", COMMUNE)]:
        iid = f"uuid:{uuid.uuid4()}"
        province = "01" if commune == BA_DINH else "19"
        accept(store, who, generated_xml(form, iid, "", commune, province, None), {"p.jpg": key.encode()},
               shapes)
        seeds[key] = iid
    yield store, user, seeds
    store.close()


def _consistent(unit: str, answers: dict[str, str]) -> bool:
    chain = {unit, *ancestors_of(unit)}
    for name, code in answers.items():
        if code in chain:
            continue
        if name == "hamlet" and get_units().get(code) is None and code.split("-", 1)[0] == unit:
            continue
        return False
    return True


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    hamlet=st.sampled_from(CODES["hamlet"]),
    commune=st.sampled_from(CODES["commune"]),
    province=st.sampled_from(CODES["province"]),
    dep=st.sampled_from([None, "own", "other_commune", "other_province", "other_form", "unknown"]),
    form_id=st.sampled_from(["tform", "tother"]),
)
def test_nothing_is_ever_filed_outside_the_callers_units(
    world, hamlet: str, commune: str, province: str, dep: str | None, form_id: str
) -> None:
    store, user, seeds = world
    scope = allowed_units(user)
    assert scope is not None
    dep_id = seeds.get(dep, "uuid:unknown-record") if dep else None
    old = store.get_submission(dep_id) if dep_id else None
    iid = f"uuid:{uuid.uuid4()}"
    xml = generated_xml(form_id, iid, hamlet, commune, province, dep_id)
    try:
        accept(store, user, xml, {}, ShapeCache())
    except IngestError:
        assert store.get_submission(iid) is None
        if old is not None:
            assert store.get_submission(dep_id).current == old.current  # the edited record is untouched
        return
    sub = store.get_submission(iid)
    assert sub is not None and sub.unit_code in scope
    answers = {k: v for k, v in (("hamlet", hamlet), ("commune", commune), ("province", province)) if v}
    assert _consistent(sub.unit_code, answers), (sub.unit_code, answers)
    if dep_id:
        assert old is not None and old.form_id == form_id and old.unit_code in scope
        carried = store.attachment(iid, "p.jpg")
        assert carried in (None, b"own", b"other_form")  # only ever the caller's own record's file
        assert dep in ("own", "other_form")


# --- the USB / offline-bundle import follows the same rule ---------------------------------------------


def test_import_of_an_edit_of_another_communes_record_is_refused(world, tmp_path: Path) -> None:
    from rasoat.mobile_export.importer import import_instances

    store, user, seeds = world
    victim = seeds["other_commune"]
    iid = f"uuid:{uuid.uuid4()}"
    folder = tmp_path / "instances" / "tform_2026-05-04_09-12-33"
    folder.mkdir(parents=True)
    (folder / f"{folder.name}.xml").write_bytes(generated_xml("tform", iid, "", COMMUNE, "19", victim))
    report = import_instances(store, tmp_path, collector=user)
    [result] = report.results
    assert result.outcome == "refused" and "outside your units" in result.message
    assert store.get_submission(iid) is None and store.get_submission(victim).current


def test_import_with_contradictory_answers_is_refused(world, tmp_path: Path) -> None:
    from rasoat.mobile_export.importer import import_instances

    store, user, _ = world
    iid = f"uuid:{uuid.uuid4()}"
    folder = tmp_path / "instances" / "tform_a"
    folder.mkdir(parents=True)
    (folder / "tform_a.xml").write_bytes(generated_xml("tform", iid, f"{COMMUNE}-99", BA_DINH, "01", None))
    report = import_instances(store, tmp_path, collector=user)
    assert [r.outcome for r in report.results] == ["refused"]
    assert "contradict" in report.results[0].message
    assert store.get_submission(iid) is None
