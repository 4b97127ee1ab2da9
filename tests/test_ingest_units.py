"""A submission is filed under the most precise unit the unit registry knows, so unit filters (exports,
indicators) find it even when the phone sent a hamlet code the registry lacks; the raw answer is kept."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from rasoat.core.collectors import create_collector
from rasoat.core.ingest import IngestError, Refusal, ShapeCache, accept
from rasoat.core.models import Round, RoundState, User
from rasoat.core.storage.base import Store, SubmissionQuery
from rasoat.core.storage.opening import open_store
from rasoat.core.units import get_units
from server_support import COMMUNE, instance_xml, publish_test_form

KNOWN_HAMLET = "05563-01"  # Xóm 1, from the Thái Nguyên plugin's hamlet list
UNKNOWN_HAMLET = "05563-99"


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Store, User]]:
    store = open_store(tmp_path / "data")
    publish_test_form(store)
    store.put_round(Round(id="r1", name="Đợt 2026", period="2026", form_ids=["tform"], unit_codes=[COMMUNE],
                          state=RoundState.open))
    user, _ = create_collector(store, "Vũ Thị Lan", [COMMUNE], ["r1"], username="lan")
    yield store, user
    store.close()


def send(store: Store, user: User, **answers: str) -> str:
    _, xml = instance_xml(**answers)
    return accept(store, user, xml, {}, ShapeCache()).instance_id


def test_known_hamlet_is_the_unit(setup: tuple[Store, User]) -> None:
    store, user = setup
    assert get_units().get(KNOWN_HAMLET) is not None
    sub = store.get_submission(send(store, user, hamlet=KNOWN_HAMLET))
    assert sub is not None and sub.unit_code == KNOWN_HAMLET


def test_unknown_hamlet_is_filed_under_its_commune_and_stays_visible(setup: tuple[Store, User]) -> None:
    store, user = setup
    units = get_units()
    assert units.get(UNKNOWN_HAMLET) is None
    iid = send(store, user, hamlet=UNKNOWN_HAMLET)
    sub = store.get_submission(iid)
    assert sub is not None
    assert sub.unit_code == COMMUNE
    assert sub.fields["hamlet"] == UNKNOWN_HAMLET  # what the collector answered is not lost
    for scope in (COMMUNE, "19"):  # a commune's and a province's export/indicator filter see it
        query = SubmissionQuery(unit_codes=sorted(units.expand(scope)))
        assert [s.instance_id for s in store.iter_submissions(query)] == [iid]


def test_scope_is_still_checked_on_what_the_phone_sent(setup: tuple[Store, User]) -> None:
    """An unknown hamlet of another commune is refused even though the commune answer is the collector's."""
    store, user = setup
    with pytest.raises(IngestError) as err:
        send(store, user, hamlet="05503-99")
    assert err.value.reason is Refusal.forbidden
    assert store.count_submissions() == 0
