"""Figures over records the server cannot read (issue 18, item 3), on both backends: an ODK-encrypted
record whose statistical fields are not derived makes every figure that reads fields "unknown", with how
many records it missed, in its own units only (a commune whose records are all readable keeps its
numbers), never met and never a bare 0; a plain record count still counts it; a frozen snapshot keeps the
figure unknown; once its fields are derived it counts like any record."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from indicators_support import C1, C2, H11, H12, H21, PROVINCE, add, local_noon, run
from rasoat.core.crypto import encrypted_counts
from rasoat.core.indicators.engine import freeze_snapshot
from rasoat.core.indicators.loading import collect
from rasoat.core.indicators.models import Indicator, Measure, Status, Target, TargetOp
from rasoat.core.indicators.status import judge
from rasoat.core.models import ENVELOPE_FIELD, FormVersion, Round, RoundState, Submission, unread
from rasoat.core.storage.base import Store
from rasoat.core.storage.opening import open_store

PERSON = {"present": "yes", "ref_date": "2026-03-01", "category": "user"}
ENVELOPE = {"base64EncryptedKey": "d3JhcHBlZA==", "encryptedXmlFile": "submission.xml.enc", "media": []}
RECORDS = Indicator(id="f1_records", name_vi="Số phiếu F1", name_en="F1 records",
                    numerator=Measure(form="f1_person"), level="commune")
NO_USERS = Indicator(id="no_users", name_vi="Không có người sử dụng", name_en="No users", level="hamlet",
                     numerator=Measure(form="f1_person", where={"present": "yes", "category": "user"}),
                     target=Target(op=TargetOp.eq, value=0))


@pytest.fixture
def store(tmp_path: Path, backend_url: str | None) -> Iterator[Store]:
    opened = open_store(tmp_path / "data", backend_url)
    xml = b"<h:html/>"  # F1 published encrypted: what makes its envelopes count as unread
    form = FormVersion(form_id="f1_person", version="1", title="F1", md5=hashlib.md5(xml).hexdigest(),
                       encrypted=True, source="test")
    opened.put_form(form, xml, {"children": []}, {})
    yield opened
    opened.close()


def envelope(store: Store, unit: str) -> str:
    """An encrypted F1 record as the server stores it: the envelope only, filed under the collector's unit."""
    iid = f"uuid:{uuid.uuid4()}"
    xml = b"<data id='f1_person' encrypted='yes'/>"
    sub = Submission(instance_id=iid, form_id="f1_person", form_version="1", unit_code=unit,
                     received_at=local_noon("2026-03-02"), xml_md5=hashlib.md5(xml).hexdigest(),
                     fields=dict(ENVELOPE), encrypted=True)
    store.save_submission(sub, xml, {})
    return iid


def test_unread_records_make_only_their_units_unknown(store: Store) -> None:
    add(store, "f1_person", H11, {**PERSON, "person_key": "a"})
    add(store, "f1_person", H21, {**PERSON, "person_key": "b"})
    envelope(store, C1)
    got = run(store, indicators=[*collect(), RECORDS, NO_USERS])
    for code in (C1, PROVINCE):
        users = got[(code, "nat_persons_users")]
        assert (users.value, users.numerator, users.status, users.uncounted_encrypted) == (
            None, None, Status.unknown, 1), code
        assert users.status_label == "Không xác định / Unknown"
        assert got[(code, "no_users")].status is Status.unknown  # never "met", never "not met"
    other = got[(C2, "nat_persons_users")]
    assert (other.value, other.uncounted_encrypted) == (1, 0)
    assert got[(H11, "nat_persons_users")].value == 1  # the envelope is filed under the commune, not H11
    assert got[(C2, "no_users")].status is Status.not_met
    # a plain count of records needs no field: the envelope is one of C1's two records
    assert (got[(C1, "f1_records")].value, got[(C1, "f1_records")].status) == (2, Status.no_target)


def test_a_frozen_snapshot_keeps_the_figure_unknown(store: Store) -> None:
    add(store, "f1_person", H11, {**PERSON, "person_key": "a"})
    envelope(store, C1)
    rnd = Round(id="r", name="r", period="2026", form_ids=["f1_person"], unit_codes=[C1],
                state=RoundState.open)
    frozen = freeze_snapshot(store, rnd)["indicators"]["nat_persons_users"]
    assert frozen["units"][C1] == [None, None, None] and frozen["uncounted_encrypted"] == {C1: 1, PROVINCE: 1}
    assert frozen["units"][H11] == [1, None, 1]


def test_derived_fields_count_like_any_record(store: Store) -> None:
    add(store, "f1_person", H11, {**PERSON, "person_key": "a"})
    iid = envelope(store, C1)
    assert encrypted_counts(store) == {"f1_person": 1} and unread(store.get_submission(iid))
    store.set_derived_fields(iid, {**PERSON, "person_key": "c", ENVELOPE_FIELD: ENVELOPE}, H12)
    sub = store.get_submission(iid)
    assert sub is not None and not unread(sub) and sub.unit_code == H12 and sub.encrypted
    assert encrypted_counts(store) == {}
    got = run(store)
    users = got[(C1, "nat_persons_users")]
    assert (users.value, users.status) == (2, Status.no_target)
    assert got[(H12, "nat_persons_users")].value == 1
    with pytest.raises(KeyError):  # only an encrypted record takes derived fields
        store.set_derived_fields(add(store, "f1_person", H11, PERSON).instance_id, {}, H11)


def test_the_status_rule_puts_unread_records_first() -> None:
    eq0 = Target(op=TargetOp.eq, value=0)
    assert judge(eq0, date(2027, 1, 1), 0) is Status.met
    assert judge(eq0, date(2027, 1, 1), 0, uncounted=3) is Status.unknown
    assert judge(None, date(2027, 1, 1), 5, uncounted=1) is Status.unknown
