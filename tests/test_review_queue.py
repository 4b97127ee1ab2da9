"""The review queue ("Cần duyệt") in the store, on SQLite and PostgreSQL: what waits for an officer across
forms and rounds, only in their units, oldest first, paged by keyset, and the record that comes after one."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rasoat.core.models import ReviewState, Role, Submission, User
from rasoat.core.review import next_in_queue, queue_count, queue_page, review_submission
from rasoat.core.storage.base import PageKey, Store
from rasoat.core.storage.opening import open_store

C1, C2 = "05563", "05503"  # Xã Phượng Tiến, Xã Tân Cương (Thái Nguyên)
T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
OFFICER = User(id="u-c1", username="xa.c1", role=Role.commune_officer, unit_codes=[C1])
OTHER = User(id="u-c2", username="xa.c2", role=Role.commune_officer, unit_codes=[C2])
PROVINCE = User(id="u-p", username="tinh", role=Role.province_manager, unit_codes=["19"])


def save(store: Store, iid: str, form_id: str, unit: str, minutes: int, state: ReviewState) -> None:
    xml = f'<data id="{form_id}"><meta><instanceID>{iid}</instanceID></meta></data>'.encode()
    store.save_submission(
        Submission(instance_id=iid, form_id=form_id, form_version="1", unit_code=unit,
                   received_at=T0 + timedelta(minutes=minutes), xml_md5=hashlib.md5(xml).hexdigest(),
                   review_state=state, fields={"meta/instanceID": iid}),
        xml, {},
    )


@pytest.fixture
def store(tmp_path: Path, backend_url: str | None):
    store = open_store(tmp_path / "data", backend_url)
    # two forms in C1 (one in a hamlet), received out of id order; one of each state; C2's own records
    save(store, "uuid:c1-e", "f2_pledge", C1, 50, ReviewState.received)
    save(store, "uuid:c1-a", "f5_hamlet", "05563-01", 10, ReviewState.received)
    save(store, "uuid:c1-d", "f2_pledge", C1, 40, ReviewState.edited)
    save(store, "uuid:c1-b", "f2_pledge", C1, 20, ReviewState.approved)
    save(store, "uuid:c1-c", "f5_hamlet", C1, 30, ReviewState.has_issues)
    save(store, "uuid:c1-f", "f5_hamlet", C1, 50, ReviewState.received)  # same second as c1-e
    save(store, "uuid:c2-a", "f2_pledge", C2, 5, ReviewState.received)
    save(store, "uuid:c2-b", "f5_hamlet", C2, 60, ReviewState.received)
    yield store
    store.close()


def ids(subs: list[Submission]) -> list[str]:
    return [s.instance_id for s in subs]


def test_queue_holds_new_and_edited_records_of_the_officers_units_oldest_first(store: Store) -> None:
    expected = ["uuid:c1-a", "uuid:c1-d", "uuid:c1-e", "uuid:c1-f"]  # ties on time: by instanceID
    assert ids(queue_page(store, OFFICER, 50)) == expected
    assert queue_count(store, OFFICER) == 4
    assert ids(queue_page(store, OTHER, 50)) == ["uuid:c2-a", "uuid:c2-b"]  # never another commune's
    assert ids(queue_page(store, PROVINCE, 50)) == [
        "uuid:c2-a", "uuid:c1-a", "uuid:c1-d", "uuid:c1-e", "uuid:c1-f", "uuid:c2-b"]
    assert queue_count(store, PROVINCE) == 6


def test_queue_pages_resume_after_the_last_row(store: Store) -> None:
    first = queue_page(store, OFFICER, 2)
    assert ids(first) == ["uuid:c1-a", "uuid:c1-d"]
    last = first[-1]
    rest = queue_page(store, OFFICER, 2, PageKey(last.received_at, last.instance_id))
    assert ids(rest) == ["uuid:c1-e", "uuid:c1-f"]  # the tie on time split across pages loses nothing
    after = PageKey(rest[-1].received_at, rest[-1].instance_id)
    assert queue_page(store, OFFICER, 2, after) == []


def test_next_record_follows_then_wraps_to_one_skipped(store: Store) -> None:
    d = store.get_submission("uuid:c1-d")
    assert d is not None
    review_submission(store, d.instance_id, ReviewState.approved, actor="xa.c1")
    nxt = next_in_queue(store, OFFICER, PageKey(d.received_at, d.instance_id))
    assert nxt is not None and nxt.instance_id == "uuid:c1-e"
    f = store.get_submission("uuid:c1-f")
    assert f is not None
    review_submission(store, f.instance_id, ReviewState.rejected, "trùng bản khác", actor="xa.c1")
    wrapped = next_in_queue(store, OFFICER, PageKey(f.received_at, f.instance_id))
    assert wrapped is not None and wrapped.instance_id == "uuid:c1-a"  # the oldest still waiting
    for iid in ("uuid:c1-a", "uuid:c1-e"):
        review_submission(store, iid, ReviewState.approved, actor="xa.c1")
    assert next_in_queue(store, OFFICER, PageKey(f.received_at, f.instance_id)) is None
    assert queue_count(store, OFFICER) == 0 and queue_count(store, OTHER) == 2
