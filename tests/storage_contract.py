"""The storage contract: every backend runs these very tests (see test_storage_embedded.py).

A backend's test module provides a ``store`` fixture (a fresh, empty store) and imports the classes:

    from tests.storage_contract import *  # noqa: F403

Each class groups one area of ``core.storage.base.Store``; every test asserts what a caller relies on.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from rasoat.core.models import AuditEvent, FormVersion, ReviewState, Role, Round, RoundState, Submission, User
from rasoat.core.storage.base import Conflict, PageKey, SaveOutcome, Store, SubmissionQuery

__all__ = [
    "TestAudit",
    "TestForms",
    "TestKeyValue",
    "TestRoundsAndSnapshots",
    "TestSubmissionConcurrency",
    "TestSubmissionPages",
    "TestSubmissionQueries",
    "TestSubmissions",
    "TestUnsafeNames",
    "TestUsers",
]

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def make_xml(instance_id: str, form_id: str = "f2_pledge", body: str = "") -> bytes:
    return (
        f'<data id="{form_id}" version="1"><commune>05563</commune>{body}'
        f"<meta><instanceID>{instance_id}</instanceID></meta></data>"
    ).encode()


def make_sub(
    instance_id: str,
    *,
    body: str = "",
    form_id: str = "f2_pledge",
    form_version: str = "1",
    unit_code: str | None = "05563-01",
    round_id: str | None = "r2025",
    collector_id: str | None = "c1",
    received_at: datetime = T0,
    deprecated_id: str | None = None,
    fields: dict[str, Any] | None = None,
) -> tuple[Submission, bytes]:
    xml = make_xml(instance_id, form_id, body)
    sub = Submission(
        instance_id=instance_id,
        form_id=form_id,
        form_version=form_version,
        round_id=round_id,
        unit_code=unit_code,
        collector_id=collector_id,
        received_at=received_at,
        xml_md5=hashlib.md5(xml).hexdigest(),
        fields=fields
        if fields is not None
        else {"commune": "05563", "meta/instanceID": instance_id, "b": body},
        deprecated_id=deprecated_id,
    )
    return sub, xml


def save(
    store: Store, instance_id: str, attachments: dict[str, bytes] | None = None, **kw: Any
) -> SaveOutcome:
    sub, xml = make_sub(instance_id, **kw)
    return store.save_submission(sub, xml, attachments or {})


def ids(subs: Iterator[Submission] | list[Submission]) -> list[str]:
    return [s.instance_id for s in subs]


def at_once(worker: Callable[[int], object], n: int) -> None:
    """``worker(0)`` … ``worker(n - 1)``, each in a thread of its own, all started before any is awaited."""
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def make_form(form_id: str = "f2_pledge", version: str = "1", at: datetime = T0, xml: bytes | None = None):
    instance = f'<data id="{form_id}" version="{version}"/>'
    xml = xml or f"<h:html><model><instance>{instance}</instance></model></h:html>".encode()
    form = FormVersion(
        form_id=form_id,
        version=version,
        title=f"Form {form_id}",
        md5=hashlib.md5(xml).hexdigest(),
        media=["hamlets.csv"],
        published_at=at,
    )
    return form, xml


class TestForms:
    def test_put_and_read_back_a_version(self, store: Store) -> None:
        form, xml = make_form()
        store.put_form(form, xml, {"type": "survey", "children": []}, {"hamlets.csv": b"name,label\n1,A\n"})
        got = store.get_form("f2_pledge", "1")
        assert got is not None and got.md5 == form.md5 and got.title == form.title
        assert store.form_xml("f2_pledge", "1") == xml
        assert store.form_schema("f2_pledge", "1") == {"type": "survey", "children": []}
        assert store.form_media("f2_pledge", "1", "hamlets.csv") == b"name,label\n1,A\n"
        assert store.form_media("f2_pledge", "1", "other.csv") is None
        assert store.get_form("f2_pledge", "9") is None
        assert store.get_form("nope") is None

    def test_latest_version_and_listing(self, store: Store) -> None:
        for v, at in (("1", T0), ("3", T0 + timedelta(days=2)), ("2", T0 + timedelta(days=1))):
            form, xml = make_form(version=v, at=at)
            store.put_form(form, xml, {}, {})
        other, oxml = make_form("f1_person", "7")
        store.put_form(other, oxml, {}, {})
        assert store.get_form("f2_pledge").version == "3"
        latest = {f.form_id: f.version for f in store.list_forms()}
        assert latest == {"f2_pledge": "3", "f1_person": "7"}
        every = {(f.form_id, f.version) for f in store.list_forms(all_versions=True)}
        assert every == {("f2_pledge", "1"), ("f2_pledge", "2"), ("f2_pledge", "3"), ("f1_person", "7")}
        assert store.form_xml("f2_pledge", "2") != store.form_xml(
            "f2_pledge", "3"
        )  # old versions stay served

    def test_republishing_a_version_with_other_xml_is_refused(self, store: Store) -> None:
        form, xml = make_form()
        store.put_form(form, xml, {}, {})
        store.put_form(form, xml, {}, {})  # identical: harmless
        changed, cxml = make_form(xml=xml + b"<!-- changed -->")
        with pytest.raises(Conflict):
            store.put_form(changed, cxml, {}, {})
        assert store.form_xml("f2_pledge", "1") == xml


class TestRoundsAndSnapshots:
    def test_rounds(self, store: Store) -> None:
        assert store.get_round("r1") is None and store.list_rounds() == []
        rnd = Round(
            id="r1", name="Điều tra 2025", period="2025", form_ids=["f2_pledge"], unit_codes=["05563"]
        )
        store.put_round(rnd)
        store.put_round(Round(id="r2", name="Other", period="2026", created_at=rnd.created_at + timedelta(1)))
        assert store.get_round("r1") == rnd
        store.put_round(rnd.model_copy(update={"state": RoundState.open, "collector_ids": ["c1"]}))
        got = store.get_round("r1")
        assert got.state is RoundState.open and got.collector_ids == ["c1"] and got.name == "Điều tra 2025"
        assert [r.id for r in store.list_rounds()] == ["r1", "r2"]

    def test_snapshots(self, store: Store) -> None:
        assert store.get_snapshot("r1") is None
        store.put_snapshot("r1", {"05563": {"pledges": 12}, "note": "Xã Phượng Tiến"})
        assert store.get_snapshot("r1") == {"05563": {"pledges": 12}, "note": "Xã Phượng Tiến"}
        store.put_snapshot("r1", {"05563": {"pledges": 13}})
        assert store.get_snapshot("r1") == {"05563": {"pledges": 13}}


class TestUsers:
    def test_lookup_by_id_name_and_token(self, store: Store) -> None:
        officer = User(
            id="u1",
            username="lan",
            display_name="Nguyễn Thị Lan",
            role=Role.commune_officer,
            unit_codes=["05563"],
            password_hash="argon2$x",
        )
        collector = User(
            id="c1", username="thu-thap-1", role=Role.collector, unit_codes=["05563-01"], token_hash="ab" * 32
        )
        store.put_user(officer)
        store.put_user(collector)
        assert store.get_user("u1") == officer
        assert store.get_user_by_name("thu-thap-1") == collector
        assert store.get_user_by_token_hash("ab" * 32) == collector
        assert store.get_user_by_token_hash("cd" * 32) is None
        assert store.get_user("zz") is None and store.get_user_by_name("zz") is None
        assert {u.id for u in store.list_users()} == {"u1", "c1"}

    def test_update_replaces_token_and_revokes(self, store: Store) -> None:
        c = User(id="c1", username="c", role=Role.collector, token_hash="ab" * 32)
        store.put_user(c)
        store.put_user(c.model_copy(update={"token_hash": "ef" * 32, "active": False}))
        assert store.get_user_by_token_hash("ab" * 32) is None
        got = store.get_user_by_token_hash("ef" * 32)
        assert got is not None and got.active is False
        assert len(store.list_users()) == 1

    def test_many_users_token_lookup(self, store: Store) -> None:
        for i in range(60):
            store.put_user(User(id=f"c{i}", username=f"c{i}", role=Role.collector, token_hash=f"{i:064x}"))
        assert all(store.get_user_by_token_hash(f"{i:064x}").id == f"c{i}" for i in range(60))


class TestSubmissions:
    def test_save_and_read_back(self, store: Store) -> None:
        sub, xml = make_sub(
            "uuid:1",
            fields={
                "commune": "05563",
                "household/head_name": "Lò Văn A",
                "members": [{"name": "A"}, {"name": "B"}],
            },
        )
        assert store.save_submission(sub, xml, {"photo.jpg": b"\xff\xd8jpeg"}) is SaveOutcome.created
        got = store.get_submission("uuid:1")
        assert got is not None
        assert got.fields == sub.fields and got.form_id == "f2_pledge" and got.unit_code == "05563-01"
        assert got.received_at == T0 and got.received_at.utcoffset() == timedelta(0)
        assert got.attachments == ["photo.jpg"] and got.current and got.review_state is ReviewState.received
        assert store.submission_xml("uuid:1") == xml
        assert store.attachment("uuid:1", "photo.jpg") == b"\xff\xd8jpeg"
        assert store.attachment("uuid:1", "other.jpg") is None
        assert store.get_submission("uuid:2") is None and store.submission_xml("uuid:2") is None
        assert store.attachment("uuid:2", "photo.jpg") is None

    def test_identical_resend_is_a_duplicate_that_adds_missing_attachments(self, store: Store) -> None:
        assert save(store, "uuid:1", {"a.jpg": b"A"}) is SaveOutcome.created
        assert save(store, "uuid:1", {"a.jpg": b"changed?", "b.jpg": b"B"}) is SaveOutcome.duplicate
        got = store.get_submission("uuid:1")
        assert sorted(got.attachments) == ["a.jpg", "b.jpg"]
        assert store.attachment("uuid:1", "a.jpg") == b"A"  # what was stored first stays
        assert store.attachment("uuid:1", "b.jpg") == b"B"
        assert save(store, "uuid:1") is SaveOutcome.duplicate
        assert store.count_submissions() == 1

    def test_same_instance_id_with_different_xml_is_a_conflict(self, store: Store) -> None:
        save(store, "uuid:1", {"a.jpg": b"A"})
        with pytest.raises(Conflict):
            save(store, "uuid:1", {"b.jpg": b"B"}, body="<x>other</x>")
        got = store.get_submission("uuid:1")
        assert got.attachments == ["a.jpg"] and store.attachment("uuid:1", "b.jpg") is None
        assert store.submission_xml("uuid:1") == make_xml("uuid:1")

    def test_edit_replaces_the_current_version(self, store: Store) -> None:
        save(store, "uuid:1")
        assert (
            save(store, "uuid:2", body="<fix/>", deprecated_id="uuid:1", received_at=T0 + timedelta(hours=1))
            is SaveOutcome.created
        )
        old, new = store.get_submission("uuid:1"), store.get_submission("uuid:2")
        assert old.current is False and new.current is True and new.deprecated_id == "uuid:1"
        assert new.review_state is ReviewState.edited
        assert ids(store.iter_submissions()) == ["uuid:2"]
        assert ids(store.iter_submissions(SubmissionQuery(current_only=False))) == ["uuid:1", "uuid:2"]
        assert store.count_submissions() == 1
        assert store.count_submissions(SubmissionQuery(current_only=False)) == 2

    def test_edit_of_an_old_or_unknown_version_is_a_conflict(self, store: Store) -> None:
        save(store, "uuid:1")
        save(store, "uuid:2", body="<v2/>", deprecated_id="uuid:1")
        with pytest.raises(Conflict):
            save(store, "uuid:3", body="<v3/>", deprecated_id="uuid:1")
        with pytest.raises(Conflict):
            save(store, "uuid:4", body="<v4/>", deprecated_id="uuid:nope")
        assert store.get_submission("uuid:3") is None and store.get_submission("uuid:4") is None
        assert store.get_submission("uuid:2").current
        assert save(store, "uuid:5", body="<v5/>", deprecated_id="uuid:2") is SaveOutcome.created
        assert ids(store.iter_submissions()) == ["uuid:5"]

    def test_resend_of_a_version_an_edit_replaced_is_a_conflict(self, store: Store) -> None:
        """openrosa.md §4.6: the stored instance is no longer the current version → 409, whether the
        resent XML is identical or not; nothing changes."""
        save(store, "uuid:1", {"a.jpg": b"A"})
        save(store, "uuid:2", body="<fix/>", deprecated_id="uuid:1")
        with pytest.raises(Conflict):
            save(store, "uuid:1", {"late.jpg": b"L"})  # byte-identical to the replaced version
        with pytest.raises(Conflict):
            save(store, "uuid:1", body="<other/>")
        old = store.get_submission("uuid:1")
        assert old.current is False and old.attachments == ["a.jpg"]
        assert store.attachment("uuid:1", "late.jpg") is None
        assert ids(store.iter_submissions()) == ["uuid:2"]

    def test_resend_of_the_edit_adds_attachments_until_it_is_edited_again(self, store: Store) -> None:
        """A split edit upload: resending the edit (the current version) is an attachment upsert; once
        another edit replaced it, resending it is a conflict."""
        save(store, "uuid:1")
        save(store, "uuid:2", {"a.jpg": b"A"}, body="<fix/>", deprecated_id="uuid:1")
        again = save(store, "uuid:2", {"a.jpg": b"A", "b.jpg": b"B"}, body="<fix/>", deprecated_id="uuid:1")
        assert again is SaveOutcome.duplicate
        assert sorted(store.get_submission("uuid:2").attachments) == ["a.jpg", "b.jpg"]
        save(store, "uuid:3", body="<fix2/>", deprecated_id="uuid:2")
        with pytest.raises(Conflict):
            save(store, "uuid:2", {"c.jpg": b"C"}, body="<fix/>", deprecated_id="uuid:1")
        assert store.attachment("uuid:2", "c.jpg") is None
        assert ids(store.iter_submissions()) == ["uuid:3"]

    def test_attachment_added_later(self, store: Store) -> None:
        sub, xml = make_sub("uuid:1")
        sub = sub.model_copy(update={"expected_attachments": ["a.jpg", "b.jpg"]})
        store.save_submission(sub, xml, {"a.jpg": b"A"})
        store.add_attachment("uuid:1", "b.jpg", b"B")
        got = store.get_submission("uuid:1")
        assert sorted(got.attachments) == ["a.jpg", "b.jpg"] and got.expected_attachments == [
            "a.jpg",
            "b.jpg",
        ]
        assert store.attachment("uuid:1", "b.jpg") == b"B"
        assert [s.attachments for s in store.iter_submissions()] == [["a.jpg", "b.jpg"]]
        with pytest.raises(KeyError):
            store.add_attachment("uuid:nope", "c.jpg", b"C")

    def test_review_state_and_history(self, store: Store) -> None:
        save(store, "uuid:1")
        save(store, "uuid:2", received_at=T0 + timedelta(seconds=1))
        got = store.set_review("uuid:1", ReviewState.has_issues, "Thiếu tên chủ hộ", "lan")
        assert got.review_state is ReviewState.has_issues
        store.set_review("uuid:1", ReviewState.approved, "OK", "minh")
        sub = store.get_submission("uuid:1")
        assert sub.review_state is ReviewState.approved
        hist = sub.review_history
        assert [(h["actor"], h["comment"]) for h in hist] == [("lan", "Thiếu tên chủ hộ"), ("minh", "OK")]
        assert all("at" in h for h in hist)
        q = SubmissionQuery(review_states=[ReviewState.approved])
        assert ids(store.iter_submissions(q)) == ["uuid:1"] and store.count_submissions(q) == 1
        q = SubmissionQuery(review_states=[ReviewState.received, ReviewState.has_issues])
        assert ids(store.iter_submissions(q)) == ["uuid:2"]
        with pytest.raises(KeyError):
            store.set_review("uuid:nope", ReviewState.approved, "", "lan")


class TestSubmissionQueries:
    @pytest.fixture
    def loaded(self, store: Store) -> Store:
        rows = [
            # id, form, version, unit, round, collector, hours after T0
            ("uuid:a", "f2_pledge", "1", "05563-01", "r2025", "c1", 0),
            ("uuid:b", "f2_pledge", "1", "05563-02", "r2025", "c2", 1),
            ("uuid:c", "f2_pledge", "2", "05564-01", "r2025", "c3", 2),
            ("uuid:d", "f1_person", "1", "05563", "r2025", "c1", 3),
            ("uuid:e", "f2_pledge", "2", "05563-01", "r2026", "c1", 24 * 40),  # next month
            ("uuid:f", "f2_pledge", "1", None, None, None, 5),
        ]
        for iid, form, ver, unit, rnd, col, hours in rows:
            save(
                store,
                iid,
                form_id=form,
                form_version=ver,
                unit_code=unit,
                round_id=rnd,
                collector_id=col,
                received_at=T0 + timedelta(hours=hours),
            )
        return store

    def check(self, store: Store, expected: list[str], **kw: Any) -> None:
        q = SubmissionQuery(**kw)
        assert ids(store.iter_submissions(q)) == expected
        assert store.count_submissions(q) == len(expected)

    def test_all_in_received_order(self, loaded: Store) -> None:
        self.check(loaded, ["uuid:a", "uuid:b", "uuid:c", "uuid:d", "uuid:f", "uuid:e"])
        assert ids(loaded.iter_submissions()) == ids(loaded.iter_submissions(None))

    def test_by_form_and_version(self, loaded: Store) -> None:
        self.check(loaded, ["uuid:d"], form_id="f1_person")
        self.check(loaded, ["uuid:c", "uuid:e"], form_id="f2_pledge", form_version="2")
        self.check(loaded, [], form_id="f9_case")

    def test_by_units(self, loaded: Store) -> None:
        self.check(loaded, ["uuid:a", "uuid:e"], unit_codes=["05563-01"])
        self.check(
            loaded, ["uuid:a", "uuid:b", "uuid:d", "uuid:e"], unit_codes=["05563", "05563-01", "05563-02"]
        )
        self.check(loaded, ["uuid:c"], unit_codes=["05564", "05564-01"])
        self.check(loaded, [], unit_codes=[])

    def test_by_round_and_collector(self, loaded: Store) -> None:
        self.check(loaded, ["uuid:e"], round_id="r2026")
        self.check(loaded, ["uuid:a", "uuid:d", "uuid:e"], collector_id="c1")
        self.check(loaded, ["uuid:a", "uuid:d"], collector_id="c1", round_id="r2025")

    def test_received_range_from_inclusive_to_exclusive(self, loaded: Store) -> None:
        self.check(
            loaded,
            ["uuid:b", "uuid:c"],
            received_from=T0 + timedelta(hours=1),
            received_to=T0 + timedelta(hours=3),
        )
        self.check(loaded, ["uuid:e"], received_from=T0 + timedelta(days=30))
        self.check(loaded, ["uuid:a"], received_to=T0 + timedelta(minutes=1))
        # other time zones mean the same instant
        ict = T0.astimezone(timezone(timedelta(hours=7))) + timedelta(hours=1)
        self.check(loaded, ["uuid:a"], received_to=ict)

    def test_combined_filters(self, loaded: Store) -> None:
        self.check(
            loaded,
            ["uuid:a"],
            form_id="f2_pledge",
            unit_codes=["05563-01"],
            round_id="r2025",
            collector_id="c1",
            review_states=[ReviewState.received],
            received_to=T0 + timedelta(days=1),
        )

    def test_facts(self, loaded: Store) -> None:
        loaded.set_review("uuid:b", ReviewState.approved, "", "lan")
        facts = {
            f.instance_id: f for f in loaded.iter_facts(SubmissionQuery(form_id="f2_pledge"), ["b", "nope"])
        }
        assert set(facts) == {"uuid:a", "uuid:b", "uuid:c", "uuid:e", "uuid:f"}
        b = facts["uuid:b"]
        assert (b.round_id, b.unit_code, b.review_state, b.fields) == (
            "r2025",
            "05563-02",
            "approved",
            {"b": ""},
        )
        assert b.received_at == T0 + timedelta(hours=1)
        assert facts["uuid:f"].unit_code is None and facts["uuid:f"].round_id is None
        q = SubmissionQuery(unit_codes=["05563-01"], review_states=[ReviewState.received])
        assert sorted(f.instance_id for f in loaded.iter_facts(q, [])) == ["uuid:a", "uuid:e"]
        assert isinstance(loaded.iter_facts(None, []), Iterator)

    def test_facts_carry_the_asked_keys_as_stored(self, store: Store) -> None:
        """Each asked key the record has, with its value's type kept (a string of digits stays a string,
        true is not 1, 1.0 is not 1, a repeat's rows stay rows); a key the record lacks is left out.
        Keys with characters a JSON path treats specially are read like any other."""
        odd = {
            "a.b": "dot", "grp/q": "slash", "k-1": "hyphen", "x y": "space", 'a"q': "quote",
            "a\\b": "backslash", "$x": "dollar", "": "empty key", "a[0]": "bracket", "tên ấp": "Xóm Đông",
            "tab\tk": "tab", "a": {"b": "nested, not a.b"},
        }
        values = {
            "s": "Trần Thị \"Lan\" \\ \n end", "digits": "012", "int": 12, "neg": -3, "zero": 0,
            "float": 1.0, "frac": 2.5, "big": 12345678901234567890, "yes": True, "no": False, "none": None,
            "empty": "", "rows": [{"head_name": "Hộ 1", "pledged": "yes"}, {"n": 2}], "obj": {"x": [1, "2"]},
            "emoji": "🌾", "u2028": "a\u2028b", "ctrl": "\x01",
        }
        fields = {**odd, **values}
        save(store, "uuid:odd", fields=fields)
        save(store, "uuid:bare", fields={"s": "only this"})
        stored = {"uuid:odd": fields, "uuid:bare": {"s": "only this"}}
        query = SubmissionQuery(form_id="f2_pledge")

        def typed(d: dict[str, Any]) -> str:
            return json.dumps(d, sort_keys=True)

        asked = [*fields, "missing", "s", "a.b"]  # a key the records lack; keys asked twice
        for keys in (asked, ["int"], ["digits", "missing"], ['a"q'], ["rows", "a.b", "s"], []):
            facts = {f.instance_id: f.fields for f in store.iter_facts(query, keys)}
            assert set(facts) == set(stored)
            for iid, fields_stored in stored.items():
                expected = {k: fields_stored[k] for k in keys if k in fields_stored}
                assert typed(facts[iid]) == typed(expected), (keys, iid)

    def test_iteration_streams(self, store: Store) -> None:
        for i in range(300):
            save(store, f"uuid:{i:04d}", unit_code=f"0556{i % 7}-01", received_at=T0 + timedelta(seconds=i))
        it = store.iter_submissions()
        assert isinstance(it, Iterator)
        first = next(it)
        assert first.instance_id == "uuid:0000"
        rest = ids(it)
        assert rest == [f"uuid:{i:04d}" for i in range(1, 300)]
        assert store.count_submissions() == 300
        assert store.count_submissions(SubmissionQuery(unit_codes=["05563-01"])) == len(range(3, 300, 7))

    def test_writes_during_iteration_do_not_break_it(self, store: Store) -> None:
        for i in range(50):
            save(store, f"uuid:{i:03d}", received_at=T0 + timedelta(seconds=i))
        seen = []
        for n, sub in enumerate(store.iter_submissions()):
            seen.append(sub.instance_id)
            if n == 10:
                save(store, "uuid:new", received_at=T0 + timedelta(days=1))
                store.set_review("uuid:020", ReviewState.approved, "", "lan")
        assert seen[:50] == [f"uuid:{i:03d}" for i in range(50)]


class TestSubmissionPages:
    """``page_submissions``: keyset pages in (received_at, instance_id) order, both ways, with filters."""

    @pytest.fixture
    def paged(self, store: Store) -> tuple[Store, list[str]]:
        # 3 months, two communes, ties on received_at broken by instanceID, ids saved out of id order
        rows = []
        for i in range(40):
            at = T0 + timedelta(days=(i // 4) * 7, hours=i % 2)  # pairs share a time
            unit = f"0556{3 + i % 2}-01"
            rows.append((f"uuid:{(i * 7) % 40:02d}", at, unit, "r2025" if i % 3 else "r2026"))
        for iid, at, unit, rnd in rows:
            save(store, iid, unit_code=unit, round_id=rnd, received_at=at)
        save(store, "uuid:other", form_id="f1_person", received_at=T0)
        order = [iid for iid, at, _u, _r in sorted(rows, key=lambda r: (r[1], r[0]))]
        return store, order

    def walk(self, store: Store, q: SubmissionQuery, size: int, descending: bool = False) -> list[str]:
        seen: list[str] = []
        after = None
        while True:
            page = store.page_submissions(q, limit=size, after=after, descending=descending)
            assert len(page) <= size
            seen += ids(page)
            if len(page) < size:
                return seen
            after = PageKey(page[-1].received_at, page[-1].instance_id)

    def test_pages_cover_every_row_once_in_order(self, paged: tuple[Store, list[str]]) -> None:
        store, order = paged
        q = SubmissionQuery(form_id="f2_pledge")
        for size in (1, 3, 7, 40, 100):
            assert self.walk(store, q, size) == order
            assert self.walk(store, q, size, descending=True) == order[::-1]

    def test_filters_apply_before_the_limit(self, paged: tuple[Store, list[str]]) -> None:
        store, order = paged
        q = SubmissionQuery(form_id="f2_pledge", unit_codes=["05564-01"], round_id="r2025")
        expected = [s.instance_id for s in store.iter_submissions(q)]
        assert 0 < len(expected) < len(order)
        assert self.walk(store, q, 4) == sorted(expected, key=order.index)
        store.set_review(order[5], ReviewState.approved, "", "lan")
        store.set_review(order[30], ReviewState.approved, "", "lan")
        q = SubmissionQuery(form_id="f2_pledge", review_states=[ReviewState.approved])
        assert self.walk(store, q, 1, descending=True) == [order[30], order[5]]
        q = SubmissionQuery(form_id="f2_pledge", received_from=T0 + timedelta(days=14),
                            received_to=T0 + timedelta(days=28))
        assert self.walk(store, q, 3) == order[8:16]

    def test_a_page_resumes_after_its_key_though_that_row_changed(self, paged: tuple[Store, list]) -> None:
        store, order = paged
        q = SubmissionQuery(form_id="f2_pledge")
        first = store.page_submissions(q, limit=10)
        store.set_review(first[-1].instance_id, ReviewState.rejected, "x", "lan")
        nxt = store.page_submissions(q, limit=10, after=PageKey(first[-1].received_at, first[-1].instance_id))
        assert ids(nxt) == order[10:20]
        assert store.page_submissions(q, limit=0) == []
        last = store.page_submissions(q, limit=5, descending=True)
        assert ids(last) == order[::-1][:5]

    def test_newest_first_pages_see_each_row_once_though_one_arrives(self, paged: tuple[Store, list]) -> None:
        """The web list's "older" links: a record received between two pages neither shifts the walk
        (no row twice, none skipped, as skipping rows by number would) nor appears in it."""
        store, order = paged
        q = SubmissionQuery(form_id="f2_pledge")
        seen: list[str] = []
        after = None
        while page := store.page_submissions(q, limit=7, after=after, descending=True):
            seen += ids(page)
            if len(seen) == 7:
                save(store, "uuid:arrived", received_at=T0 + timedelta(days=400))
            after = PageKey(page[-1].received_at, page[-1].instance_id)
        assert seen == order[::-1]
        assert ids(store.page_submissions(q, limit=1, descending=True)) == ["uuid:arrived"]


class TestSubmissionConcurrency:
    def test_same_instance_from_many_threads_is_created_once(self, store: Store) -> None:
        outcomes: list[SaveOutcome] = []
        lock = threading.Lock()

        def worker(n: int) -> None:
            out = save(store, "uuid:same", {f"p{n}.jpg": b"x"})
            with lock:
                outcomes.append(out)

        at_once(worker, 8)
        assert sorted(outcomes) == sorted([SaveOutcome.created] + [SaveOutcome.duplicate] * 7)
        assert sorted(store.get_submission("uuid:same").attachments) == sorted(f"p{n}.jpg" for n in range(8))
        assert store.count_submissions() == 1

    def test_many_threads_lose_nothing(self, store: Store) -> None:
        def worker(n: int) -> None:
            for i in range(15):
                save(store, f"uuid:{n}-{i}", unit_code=f"0556{n}-01", received_at=T0 + timedelta(seconds=i))

        at_once(worker, 6)
        assert store.count_submissions() == 90
        assert len(set(ids(store.iter_submissions()))) == 90

    def test_racing_edits_of_one_version_accept_exactly_one(self, store: Store) -> None:
        save(store, "uuid:base")
        results: list[str] = []
        lock = threading.Lock()

        def worker(n: int) -> None:
            try:
                save(store, f"uuid:edit{n}", body=f"<e{n}/>", deprecated_id="uuid:base")
                r = "ok"
            except Conflict:
                r = "conflict"
            with lock:
                results.append(r)

        at_once(worker, 6)
        assert sorted(results) == ["conflict"] * 5 + ["ok"]
        assert store.count_submissions() == 1


class TestUnsafeNames:
    @pytest.mark.parametrize(
        "name", ["../x.jpg", "/etc/passwd", "a/b.jpg", "a\\b.jpg", "x\x00.jpg", "..", ""]
    )
    def test_unsafe_attachment_names_are_refused(self, store: Store, name: str) -> None:
        with pytest.raises(ValueError):
            save(store, "uuid:1", {name: b"evil"})
        assert store.get_submission("uuid:1") is None
        save(store, "uuid:1")
        with pytest.raises(ValueError):
            store.add_attachment("uuid:1", name, b"evil")
        assert store.get_submission("uuid:1").attachments == []

    def test_unusual_but_safe_names_round_trip(self, store: Store) -> None:
        names = {"ảnh chụp 1.jpg": b"1", ".hidden.jpg": b"2", "a:b%20c.jpg": b"3", "..x.jpg": b"4"}
        save(store, "uuid:ok:1", names)
        got = store.get_submission("uuid:ok:1")
        assert sorted(got.attachments) == sorted(names)
        assert all(store.attachment("uuid:ok:1", n) == b for n, b in names.items())


class TestAudit:
    def test_append_and_filter(self, store: Store) -> None:
        events = [
            AuditEvent(at=T0, actor="lan", action="export.raw", target="f2_pledge", details={"rows": 10}),
            AuditEvent(at=T0 + timedelta(hours=1), actor="minh", action="view.submission", target="uuid:1"),
            AuditEvent(at=T0 + timedelta(days=2), actor="lan", action="submission.review", target="uuid:1"),
        ]
        for e in events:
            store.append_audit(e)
        assert list(store.iter_audit()) == events
        assert list(store.iter_audit(actor="lan")) == [events[0], events[2]]
        assert list(store.iter_audit(since=T0 + timedelta(hours=1))) == events[1:]
        assert list(store.iter_audit(since=T0 + timedelta(days=1), actor="minh")) == []
        assert isinstance(store.iter_audit(), Iterator)

    def test_pages_newest_first_from_a_key(self, store: Store) -> None:
        events = [AuditEvent(at=T0 + timedelta(hours=n), actor="lan" if n % 2 else "minh",
                             action="view.submission", target=f"uuid:{n}") for n in range(7)]
        for e in events:
            store.append_audit(e)
        first = store.page_audit(limit=3)
        assert [e for _, e in first] == events[6:3:-1]  # the newest three, newest first
        keys = [k for k, _ in first]
        assert keys == sorted(keys, reverse=True)
        older = store.page_audit(limit=3, before=keys[-1])
        assert [e for _, e in older] == events[3:0:-1]
        assert [e for _, e in store.page_audit(limit=3, before=older[-1][0])] == events[:1]
        newer = store.page_audit(limit=2, after=older[0][0])  # back towards the newest, oldest first
        assert [e for _, e in newer] == events[4:6]
        assert [e for _, e in store.page_audit(limit=9, actor="lan")] == [events[5], events[3], events[1]]
        window = store.page_audit(limit=9, since=T0 + timedelta(hours=2), until=T0 + timedelta(hours=4))
        assert [e for _, e in window] == [events[3], events[2]]


class TestKeyValue:
    def test_put_get_delete(self, store: Store) -> None:
        assert store.kv_get("sessions", "s1") is None
        store.kv_put("sessions", "s1", {"user": "u1", "roles": ["admin"]})
        store.kv_put("nonces", "s1", 5)
        assert store.kv_get("sessions", "s1") == {"user": "u1", "roles": ["admin"]}
        assert store.kv_get("nonces", "s1") == 5
        store.kv_put("sessions", "s1", "replaced")
        assert store.kv_get("sessions", "s1") == "replaced"
        store.kv_delete("sessions", "s1")
        assert store.kv_get("sessions", "s1") is None and store.kv_get("nonces", "s1") == 5
        store.kv_delete("sessions", "never-there")

    def test_get_many_in_one_read(self, store: Store) -> None:
        store.kv_put("assessment", "2026/05563", {"state": "proposed"})
        store.kv_put("assessment", "2026/05564", [1, 2])
        store.kv_put("assessment", "2026/gone", 1, ttl_seconds=0)
        store.kv_put("other", "2026/05565", "another namespace")
        keys = ["2026/05563", "2026/05564", "2026/05565", "2026/gone", "2026/05563"]
        assert store.kv_get_many("assessment", keys) == {"2026/05563": {"state": "proposed"},
                                                         "2026/05564": [1, 2]}
        assert store.kv_get_many("assessment", []) == {}

    def test_ttl_expiry(self, store: Store) -> None:
        store.kv_put("nonces", "gone", 1, ttl_seconds=0)
        store.kv_put("nonces", "short", 2, ttl_seconds=1)
        store.kv_put("nonces", "kept", 3, ttl_seconds=3600)
        assert store.kv_get("nonces", "gone") is None
        assert store.kv_get("nonces", "short") == 2
        time.sleep(1.1)
        assert store.kv_get("nonces", "short") is None
        assert store.kv_get("nonces", "kept") == 3

    def test_compare_and_set(self, store: Store) -> None:
        assert store.kv_cas("nonces", "n1", None, {"nc": 0}, ttl_seconds=600)  # absent → created
        assert not store.kv_cas("nonces", "n1", None, {"nc": 9})  # present: not absent any more
        assert store.kv_cas("nonces", "n1", {"nc": 0}, {"nc": 1}, ttl_seconds=600)
        assert not store.kv_cas("nonces", "n1", {"nc": 0}, {"nc": 2})  # a replay of the same step
        assert store.kv_get("nonces", "n1") == {"nc": 1}
        assert not store.kv_cas("nonces", "other", {"nc": 0}, {"nc": 1})  # absent is not {"nc": 0}
        assert store.kv_get("nonces", "other") is None
        store.kv_put("nonces", "old", {"nc": 5}, ttl_seconds=0)  # expired counts as absent
        assert not store.kv_cas("nonces", "old", {"nc": 5}, {"nc": 6})
        assert store.kv_cas("nonces", "old", None, {"nc": 1}, ttl_seconds=600)
        assert store.kv_get("nonces", "old") == {"nc": 1}

    def test_compare_and_set_from_many_threads_loses_no_step(self, store: Store) -> None:
        """Eight threads each advance a counter 10 times by compare-and-set: every step lands once."""
        store.kv_put("counters", "c", 0)
        won: list[int] = []

        def bump(_: int) -> None:
            for _ in range(10):
                while True:
                    seen = store.kv_get("counters", "c")
                    if store.kv_cas("counters", "c", seen, seen + 1):
                        won.append(seen + 1)
                        break

        at_once(bump, 8)
        assert store.kv_get("counters", "c") == 80
        assert sorted(won) == list(range(1, 81))  # no value was handed out twice

    def test_many_keys(self, store: Store) -> None:
        for i in range(200):
            store.kv_put("throttle", f"ip-{i}", i, ttl_seconds=60)
        assert all(store.kv_get("throttle", f"ip-{i}") == i for i in range(200))

    def test_durable_entries_are_listed_and_short_lived_ones_are_not(self, store: Store) -> None:
        """What ``migrate-store`` carries: every entry without an expiry, in every namespace, any key."""
        store.kv_put("crypto", "project", {"fingerprint": "ab12", "pem": "-----BEGIN…"})
        store.kv_put("digest_ha1", "thu thập/1", {"ha1": "x"})
        store.kv_put("expected_sites", "schools:05563", [{"id": "s1", "name": "Trường Tiểu học"}])
        store.kv_put("sessions", "s1", {"uid": "u1"}, ttl_seconds=3600)
        store.kv_put("crypto", "settings", {"encrypted_forms": ["f1_person"]})
        store.kv_delete("crypto", "settings")
        assert sorted(store.iter_durable_kv()) == [
            ("crypto", "project", {"fingerprint": "ab12", "pem": "-----BEGIN…"}),
            ("digest_ha1", "thu thập/1", {"ha1": "x"}),
            ("expected_sites", "schools:05563", [{"id": "s1", "name": "Trường Tiểu học"}]),
        ]

