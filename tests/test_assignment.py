"""One assignment rule: a collector gets a round's forms only when the open round names them and its units
overlap theirs. core.rounds, the server's form list and the offline bundle all answer the same."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from rasoat.core.collectors import CollectorError
from rasoat.core.models import FormVersion, Role, User
from rasoat.core.phone_setup import rotate_token
from rasoat.core.round_lifecycle import open_round
from rasoat.core.rounds import (
    assign_collectors,
    assigned_forms,
    create_round,
    is_assigned,
    open_rounds,
    visible_form_ids,
)
from rasoat.core.storage.base import Store
from rasoat.mobile_export.bundle import build_bundle, collector_forms
from rasoat.server.access import visible_forms


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    from rasoat.core.storage.embedded import EmbeddedStore

    s = EmbeddedStore(tmp_path / "data")
    xml = b'<h:html xmlns:h="http://www.w3.org/1999/xhtml"/>'
    s.put_form(FormVersion(form_id="f5_hamlet", version="1", title="f5", md5=hashlib.md5(xml).hexdigest()),
               xml, {}, {})
    for uid, name, unit in (("u-1", "thu", "05563"), ("u-2", "lan", "05563"), ("u-3", "hoa", "05569")):
        s.put_user(User(id=uid, username=name, role=Role.collector, unit_codes=[unit]))
    yield s
    s.close()


def answers(store: Store, user: User) -> dict[str, object]:
    """What each place says this collector's phone holds."""
    return {
        "core.visible_form_ids": sorted(visible_form_ids(store, user.unit_codes, collector_id=user.id)),
        "core.open_rounds": sorted(f for r in open_rounds(store, user.unit_codes, user.id)
                                   for f in r.form_ids),
        "core.assigned_forms": [f.form_id for f in assigned_forms(store, user)],
        "server.visible_forms": [f.form_id for f in visible_forms(store, user)],
        "bundle.collector_forms": [f.form_id for f in collector_forms(store, user)],
    }


def agree(store: Store, user: User, expected: list[str]) -> None:
    got = answers(store, user)
    assert got == dict.fromkeys(got, expected), got


def test_a_round_naming_nobody_is_on_nobodys_phone(store: Store, tmp_path: Path) -> None:
    rnd = create_round(store, "Xóm 2026", "2026", ["f5_hamlet"], ["05563"])
    open_round(store, rnd.id)
    thu = store.get_user("u-1")
    assert thu is not None
    agree(store, thu, [])  # in the round's commune, but not named
    assert not is_assigned(store.get_round(rnd.id), "u-1", ["05563"])  # type: ignore[arg-type]
    with pytest.raises(CollectorError, match="not assigned to any open round"):
        build_bundle(store, thu, tmp_path / "thu.zip", "http://192.0.2.10:8000")
    assert visible_form_ids(store, ["05563"]) == {"f5_hamlet"}  # still an open round over the commune


def test_named_collectors_get_the_forms_others_do_not(store: Store, tmp_path: Path) -> None:
    rnd = create_round(store, "Xóm 2026", "2026", ["f5_hamlet"], ["05563"], collectors=["thu", "hoa"])
    users = {u: store.get_user(u) for u in ("u-1", "u-2", "u-3")}
    agree(store, users["u-1"], [])  # a draft round is on no phone
    open_round(store, rnd.id)
    agree(store, users["u-1"], ["f5_hamlet"])
    agree(store, users["u-2"], [])  # same commune, not named
    agree(store, users["u-3"], [])  # named, but another commune
    assign_collectors(store, rnd.id, ["lan"])
    agree(store, users["u-2"], ["f5_hamlet"])
    rotate_token(store, users["u-2"])  # type: ignore[arg-type]  # a token for the bundle's settings
    report = build_bundle(store, users["u-2"], tmp_path / "lan.zip", "http://192.0.2.10:8000")  # type: ignore[arg-type]
    assert [f["form_id"] for f in report.forms] == ["f5_hamlet"]
