"""The entity part of the store (issue 23) on both engines: lists made on publish, creates and updates in
the submission's transaction, conflicts, the offline backlog, approval, paging, scope, integrity, and the
state token the served CSV's hash follows. Central's rules: shared/reference/entities.md §3."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from entity_support import new_uuid, publish, register_xml, visit_xml
from pg_support import fresh_schema
from rasoat.core.entities import EntityWork, read_blocks
from rasoat.core.ingest import ShapeCache
from rasoat.core.models import ReviewState, Submission, utcnow
from rasoat.core.storage.base import EntityQuery, SaveOutcome, Store
from rasoat.core.storage.opening import open_store

A, B = "05563", "05503"


@pytest.fixture(params=["embedded", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "embedded":
        s = open_store(tmp_path / "data")
        try:
            yield s
        finally:
            s.close()
        return
    with fresh_schema() as (url, _schema):
        s = open_store(tmp_path / "data", url)
        s._test_url = url  # type: ignore[attr-defined]
        try:
            yield s
        finally:
            s.close()


@pytest.fixture
def forms(store: Store) -> Store:
    publish(store, "register")
    publish(store, "visit")
    return store


_shapes = ShapeCache()


def send(store: Store, xml: bytes, iid: str, *, unit: str = A, actor: str = "c1",
         scope: tuple[str, ...] | None = None, state: ReviewState = ReviewState.received) -> SaveOutcome:
    """Store a submission with its entity blocks, as ingest does (no sealing needed for these checks)."""
    form_id = "ent_register" if b'id="ent_register"' in xml else "ent_visit"
    blocks, problems = read_blocks(xml, _shapes.entities(store, form_id, "1"))
    sub = Submission(instance_id=iid, form_id=form_id, form_version="1", unit_code=unit, collector_id=actor,
                     xml_md5=hashlib.md5(xml).hexdigest(), fields={}, review_state=state)
    work = EntityWork(tuple(blocks), tuple(problems), actor, scope)
    return store.save_submission(sub, xml, {}, entities=work)


def create(store: Store, name: str = "Nguyễn Văn A", unit: str = A, **kw: object) -> str:
    eid = new_uuid()
    iid, xml = register_xml(eid, name)
    send(store, xml, iid, unit=unit, **kw)  # type: ignore[arg-type]
    return eid


def update(store: Store, eid: str, base: int, **kw: object) -> str:
    unit = str(kw.pop("unit", A))
    iid, xml = visit_xml(eid, base, **kw)  # type: ignore[arg-type]
    send(store, xml, iid, unit=unit)
    return iid


def errors(store: Store) -> list[str]:
    return [e.details["message"] for e in store.iter_audit() if e.action == "entity.error"]


def test_publish_creates_the_list_with_its_properties(forms: Store) -> None:
    lst = forms.get_entity_list("persons")
    assert lst is not None
    assert lst.forms == ("ent_register", "ent_visit")
    assert lst.properties == ("full_name", "birth_year", "status", "visit_note")
    assert lst.identifying == frozenset({"full_name", "label"})  # the label is built from full_name
    assert not lst.approval_required
    assert [x.name for x in forms.list_entity_lists()] == ["persons"]


def test_create_then_update_keeps_each_version_and_its_submission(forms: Store) -> None:
    eid = create(forms)
    e = forms.get_entity(eid)
    assert e is not None and e.version == 1 and e.label == "Nguyễn Văn A 1990" and e.unit_code == A
    assert e.properties["status"] == "quản lý" and e.conflict is None
    vid = update(forms, eid, 1, status="cai nghiện", note="gặp tại nhà")
    e = forms.get_entity(eid)
    assert e is not None and e.version == 2 and e.conflict is None
    assert e.properties["status"] == "cai nghiện" and e.properties["birth_year"] == "1990"
    assert e.label == "Nguyễn Văn A 1990"  # a blank label keeps the label
    versions = forms.entity_versions(eid)
    assert [(v.version, v.base_version, v.source_action) for v in versions] == [(1, None, "create"),
                                                                                  (2, 1, "update")]
    assert versions[1].instance_id == vid and versions[1].actor == "c1"
    assert dict(versions[1].data) == {"status": "cai nghiện", "visit_note": "gặp tại nhà"}


def test_a_resend_changes_no_entity_twice(forms: Store) -> None:
    eid = create(forms)
    iid, xml = visit_xml(eid, 1, status="x")
    assert send(forms, xml, iid) is SaveOutcome.created
    assert send(forms, xml, iid) is SaveOutcome.duplicate
    assert forms.get_entity(eid).version == 2  # type: ignore[union-attr]


def test_stale_base_gives_soft_or_hard_conflict_and_is_still_applied(forms: Store) -> None:
    eid = create(forms)
    update(forms, eid, 1, status="ngừng")  # v2 changes status
    update(forms, eid, 1, note="chỉ ghi chú")  # v3 from base 1: status untouched → soft
    e = forms.get_entity(eid)
    assert e is not None and e.version == 3 and e.conflict == "soft"
    assert e.properties["status"] == "ngừng" and e.properties["visit_note"] == "chỉ ghi chú"
    update(forms, eid, 1, status="chuyển đi")  # base 1 again: status changed on the server → hard
    e = forms.get_entity(eid)
    assert e is not None and e.conflict == "hard" and e.properties["status"] == "chuyển đi"
    last = forms.entity_versions(eid)[-1]
    assert last.conflict == "hard" and last.conflicting == ("status",)
    update(forms, eid, 4, note="ok")  # an up-to-date update never downgrades a hard conflict
    assert forms.get_entity(eid).conflict == "hard"  # type: ignore[union-attr]
    assert forms.resolve_entity_conflict(eid, "officer").conflict is None
    with pytest.raises(ValueError):
        forms.resolve_entity_conflict(eid, "officer")


def test_offline_branch_out_of_order_waits_in_the_backlog_then_applies_in_order(forms: Store) -> None:
    eid = create(forms)
    branch = new_uuid()
    # the phone made three offline updates from server version 1; the 3rd and 2nd arrive first
    update(forms, eid, 3, note="lần 3", trunk_version=1, branch_id=branch)
    update(forms, eid, 2, status="lần 2", trunk_version=1, branch_id=branch)
    held = forms.entity_backlog("persons")
    assert [(h.branch_base_version, h.reason) for h in held] == [(3, "branch"), (2, "branch")]
    assert forms.get_entity(eid).version == 1  # type: ignore[union-attr]
    update(forms, eid, 1, status="lần 1", trunk_version=1, branch_id=branch)
    assert forms.entity_backlog() == []
    e = forms.get_entity(eid)
    assert e is not None and e.version == 4 and e.conflict is None
    assert e.properties["status"] == "lần 2" and e.properties["visit_note"] == "lần 3"
    assert [v.branch_base_version for v in forms.entity_versions(eid)] == [None, 1, 2, 3]


def test_a_branch_interrupted_by_another_update_is_a_soft_conflict(forms: Store) -> None:
    eid = create(forms)
    branch = new_uuid()
    update(forms, eid, 1, note="online")  # v2, not from the branch
    update(forms, eid, 1, status="off 1", trunk_version=1, branch_id=branch)  # v3: base 1 < 2 → soft
    update(forms, eid, 2, status="off 2", trunk_version=1, branch_id=branch)  # v4: lines up, interrupted
    versions = forms.entity_versions(eid)
    assert [v.conflict for v in versions] == [None, None, "soft", "soft"]


def test_force_processing_applies_an_update_whose_predecessor_never_came(forms: Store) -> None:
    eid = create(forms)
    branch = new_uuid()
    update(forms, eid, 2, status="lần 2", trunk_version=1, branch_id=branch)
    assert forms.force_entity_backlog(utcnow() - timedelta(days=5)) == 0  # too young
    assert forms.force_entity_backlog(utcnow() + timedelta(seconds=1)) == 1
    e = forms.get_entity(eid)
    assert e is not None and e.version == 2 and e.properties["status"] == "lần 2" and e.conflict == "soft"
    # an update of an entity whose create never came creates it
    ghost = new_uuid()
    update(forms, ghost, 2, status="mồ côi", trunk_version=1, branch_id=new_uuid())
    assert forms.get_entity(ghost) is None
    assert forms.force_entity_backlog(utcnow() + timedelta(seconds=1)) == 1
    g = forms.get_entity(ghost)
    assert g is not None and g.forced and g.label == "auto generated"
    # the real create arriving later is applied as an update
    iid, xml = register_xml(ghost, "Trần Thị G")
    send(forms, xml, iid)
    g = forms.get_entity(ghost)
    assert g is not None and g.label == "Trần Thị G 1990" and g.version == 2
    assert forms.entity_versions(ghost)[-1].source_action == "create-as-update"


def test_failures_keep_the_submission_and_change_no_entity(forms: Store) -> None:
    eid = create(forms)
    unknown = new_uuid()
    iid, xml = visit_xml(unknown, 1, status="x")
    assert send(forms, xml, iid) is SaveOutcome.created
    assert forms.get_submission(iid) is not None and forms.get_entity(unknown) is None
    iid2, xml2 = register_xml(eid, "Trùng mã")  # an id already taken
    send(forms, xml2, iid2)
    assert forms.get_entity(eid).label == "Nguyễn Văn A 1990"  # type: ignore[union-attr]
    iid3, xml3 = visit_xml(eid, 9, status="x")  # a base version that does not exist
    send(forms, xml3, iid3)
    bad = xml3.replace(eid.encode(), b"not-a-uuid")
    send(forms, bad, "uuid:bad-id")
    assert forms.get_entity(eid).version == 1  # type: ignore[union-attr]
    found = errors(forms)
    assert len(found) == 4 and all(" / " in m for m in found)


def test_an_update_outside_the_senders_units_is_refused(forms: Store) -> None:
    eid = create(forms, unit=A)
    iid, xml = visit_xml(eid, 1, status="từ xã khác")
    send(forms, xml, iid, unit=B, scope=(B,))
    assert forms.get_entity(eid).version == 1  # type: ignore[union-attr]
    assert "outside your units" in errors(forms)[-1]


def test_setting_commune_moves_the_entity_and_its_scope_unless_the_registry_lacks_it(forms: Store) -> None:
    """The rule every writer passes (here an officer's write, as a conflict resolution makes): a new
    ``commune`` files the entity under it, one version, audited; the same commune (a hamlet of it) stays;
    a code that is not a commune of the registry changes nothing."""
    eid = create(forms, unit=f"{A}-07")
    with pytest.raises(ValueError, match="'99999'"):
        forms.write_entity("persons", eid, label=None, data={"commune": "99999"}, actor="cb", base_version=1)
    kept = forms.write_entity("persons", eid, label=None, data={"commune": A}, actor="cb", base_version=1)
    assert (kept.unit_code, kept.version) == (f"{A}-07", 2)
    in_b = EntityQuery(list_name="persons", unit_codes=[B])
    state_b = forms.entity_list_state(in_b)
    moved = forms.write_entity("persons", eid, label=None, data={"commune": B}, actor="cb", base_version=2)
    assert (moved.unit_code, moved.version, moved.properties["commune"]) == (B, 3, B)
    assert [e.uuid for e in forms.iter_entities(in_b)] == [eid]
    assert forms.count_entities(EntityQuery(list_name="persons", unit_codes=[A, f"{A}-07"])) == 0
    assert forms.entity_list_state(in_b) != state_b
    [line] = [e for e in forms.iter_audit() if e.action == "entity.move"]
    assert (line.target, line.details["from"], line.details["to"], line.details["version"]) == (
        eid, f"{A}-07", B, 3)


def test_approval_required_creates_only_when_approved(forms: Store) -> None:
    forms.set_entity_list("persons", approval_required=True)
    eid = new_uuid()
    iid, xml = register_xml(eid, "Chờ duyệt")
    send(forms, xml, iid)
    assert forms.get_entity(eid) is None
    assert [h.reason for h in forms.entity_backlog()] == ["approval"]
    forms.set_review(iid, ReviewState.has_issues, "xem lại", "officer")
    assert forms.get_entity(eid) is None
    forms.set_review(iid, ReviewState.approved, "", "officer")
    e = forms.get_entity(eid)
    assert e is not None and e.version == 1 and e.unit_code == A and forms.entity_backlog() == []
    update(forms, eid, 1, status="cập nhật ngay")  # updates apply on receipt
    assert forms.get_entity(eid).version == 2  # type: ignore[union-attr]


def test_scope_paging_integrity_and_state(forms: Store) -> None:
    ids_a = sorted(create(forms, f"A{i}", unit=A) for i in range(5))
    hamlet = create(forms, "Thôn", unit=f"{A}-07")
    ids_b = [create(forms, "B", unit=B)]
    q_a = EntityQuery(list_name="persons", unit_codes=[A])
    assert sorted(e.uuid for e in forms.iter_entities(q_a)) == sorted([*ids_a, hamlet])
    assert forms.count_entities(EntityQuery(list_name="persons")) == 7
    pages, after = [], None
    while page := forms.page_entities(EntityQuery(list_name="persons"), limit=3, after=after):
        pages.append([e.uuid for e in page])
        after = page[-1].uuid
    assert [len(p) for p in pages] == [3, 3, 1]
    assert sum(pages, []) == sorted([*ids_a, hamlet, *ids_b])
    state_a = forms.entity_list_state(q_a)
    state_b = forms.entity_list_state(EntityQuery(list_name="persons", unit_codes=[B]))
    update(forms, ids_b[0], 1, status="đổi ở B", unit=B)
    assert forms.entity_list_state(q_a) == state_a
    assert forms.entity_list_state(EntityQuery(list_name="persons", unit_codes=[B])) != state_b
    update(forms, ids_a[0], 1, status="đổi ở A")
    assert forms.entity_list_state(q_a) != state_a
    state_a = forms.entity_list_state(q_a)
    forms.delete_entity(ids_a[1], "officer")
    assert forms.entity_list_state(q_a) != state_a
    assert ids_a[1] not in {e.uuid for e in forms.iter_entities(q_a)}
    asked = [ids_a[0], ids_a[1], ids_b[0], new_uuid()]
    assert forms.entity_deleted("persons", asked, [A]) == {ids_a[0]: False, ids_a[1]: True, ids_b[0]: True}
    assert forms.delete_entity(ids_a[1], "officer", deleted=False).deleted is False


@pytest.mark.slow  # three CLI processes
def test_cli_lists_and_forces_the_backlog(forms: Store, tmp_path: Path) -> None:
    """``rasoat entities``: what a cron job runs daily (Central's 5-day scheduled task)."""
    import json

    from server_support import run_cli

    eid = create(forms)
    update(forms, eid, 2, status="lần 2", trunk_version=1, branch_id=new_uuid())
    url = getattr(forms, "_test_url", None)
    args = ("--data", str(forms.files_dir))
    out = run_cli("entities", "lists", "--json", *args, database_url=url)
    assert out.returncode == 0, out.stderr
    listed = json.loads(out.stdout)[0]
    assert (listed["name"], listed["entities"], listed["conflicts"], listed["held"]) == ("persons", 1, 0, 1)
    out = run_cli("entities", "force-backlog", "--days", "0", *args, database_url=url)
    assert out.returncode == 0 and "Applied 1 updates" in out.stdout, out.stdout + out.stderr
    assert forms.get_entity(eid).version == 2  # type: ignore[union-attr]
    out = run_cli("entities", "approval", "nobody", "on", *args, database_url=url)
    assert out.returncode != 0 and "No entity list nobody" in out.stderr


def test_an_edit_of_a_submission_changes_its_entity_no_second_time(forms: Store) -> None:
    """Central applies one entity change per submission: an edit (``deprecatedID``) of a visit whose
    first version already updated the person adds no version."""
    eid = create(forms)
    first = update(forms, eid, 1, status="lần đầu")
    iid, xml = visit_xml(eid, 1, status="sửa lại")
    form_blocks = read_blocks(xml, _shapes.entities(forms, "ent_visit", "1"))[0]
    sub = Submission(instance_id=iid, form_id="ent_visit", form_version="1", unit_code=A, collector_id="c1",
                     xml_md5=hashlib.md5(xml).hexdigest(), fields={}, deprecated_id=first)
    work = EntityWork(tuple(form_blocks), (), "c1")
    assert forms.save_submission(sub, xml, {}, entities=work) is SaveOutcome.created
    e = forms.get_entity(eid)
    assert e is not None and e.version == 2 and e.properties["status"] == "lần đầu"


def test_a_form_rasoat_cannot_process_is_refused_whole(store: Store) -> None:
    """An entities-version newer than rasoat knows: refused with a bilingual reason, nothing stored."""
    from entity_support import compiled
    from rasoat.core.entities import EntityError, declared_lists
    from rasoat.core.models import FormVersion

    xml, schema = compiled("register")
    newer = xml.replace(b'entities-version="2024.1.0"', b'entities-version="2099.1.0"')
    with pytest.raises(EntityError, match="hỗ trợ .* / entities-version '2099.1.0' is not supported"):
        declared_lists(newer)
    form = FormVersion(form_id="ent_register", version="1", title="x", md5=hashlib.md5(newer).hexdigest(),
                       media=[], source="test")
    with pytest.raises(ValueError, match="2099.1.0"):
        store.put_form(form, newer, schema, {})
    assert store.get_form("ent_register") is None and store.list_entity_lists() == []


def test_two_creates_of_one_id_at_once_give_one_entity_and_one_error(forms: Store) -> None:
    """Two phones' creates of one id racing: the second waits for the first (an advisory lock per id on
    PostgreSQL, the single writer on SQLite), then is refused as a taken id; both submissions stored."""
    import threading

    eid = new_uuid()
    xmls = [register_xml(eid, f"Người {n}") for n in range(2)]
    gate = threading.Barrier(2)
    failures: list[BaseException] = []

    def go(n: int) -> None:
        gate.wait()
        try:
            send(forms, xmls[n][1], xmls[n][0])
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            failures.append(exc)

    threads = [threading.Thread(target=go, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failures == []
    assert all(forms.get_submission(iid) is not None for iid, _ in xmls)
    assert forms.get_entity(eid).version == 1  # type: ignore[union-attr]
    assert ["already exists" in m for m in errors(forms)] == [True]


def test_writes_from_the_api_are_all_or_none_with_their_audit(forms: Store) -> None:
    """``write_entities`` (the Central API's writes): one transaction with its audit event; a stale base
    refused with ``exact_base``, taken as the current version without a base (Central's force); a
    scope keeps updates inside the writer's units; ``iter_entities`` in the asked order."""
    from rasoat.core.entities import EntityBlock
    from rasoat.core.models import AuditEvent
    from rasoat.core.storage.entity_rules import EntityFailure, StaleVersion

    def new(uuid: str, label: str) -> EntityBlock:
        return EntityBlock(dataset="persons", uuid=uuid, create=True, update=False, label=label,
                           data={"status": "quản lý"})

    def change(uuid: str, base: int | None, status: str) -> EntityBlock:
        return EntityBlock(dataset="persons", uuid=uuid, create=False, update=True, label=None,
                           data={"status": status}, base_version=base)

    def audited() -> list[str]:
        return [e.target for e in forms.iter_audit(actor="api") if e.action == "entity.update"]

    one, two, three = new_uuid(), new_uuid(), new_uuid()
    forms.write_entities([new(one, "Một"), new(two, "Hai")], actor="api", unit_code=A,
                         audit=AuditEvent(actor="api", action="entity.bulk_create", target="persons"))
    with pytest.raises(EntityFailure) as taken:  # the second id is taken: the first is not created either
        forms.write_entities([new(three, "Ba"), new(two, "Hai lại")], actor="api", unit_code=A,
                             audit=AuditEvent(actor="api", action="entity.bulk_create", target="persons"))
    assert (taken.value.code, taken.value.status) == ("entity.id_taken", 409)
    assert taken.value.text("vi") == f"Mã thực thể {two} đã tồn tại"
    assert forms.get_entity(three) is None
    assert [e.action for e in forms.iter_audit(actor="api")] == ["entity.bulk_create"]

    forms.write_entities([change(one, 1, "a")], actor="api", exact_base=True,
                         audit=AuditEvent(actor="api", action="entity.update", target=one))
    with pytest.raises(StaleVersion) as stale:
        forms.write_entities([change(one, 1, "b")], actor="api", exact_base=True,
                             audit=AuditEvent(actor="api", action="entity.update", target=one))
    assert (stale.value.base, stale.value.current) == (1, 2) and audited() == [one]
    assert stale.value.code == "entity.version_conflict"
    forms.write_entities([change(one, None, "c")], actor="api", exact_base=True)  # force: on version 2
    after = forms.get_entity(one)
    assert (after.version, after.properties["status"], after.conflict) == (3, "c", None)
    assert forms.entity_versions(one)[-1].base_version == 2
    with pytest.raises(EntityFailure) as outside:  # a writer of commune B may not change A's entity
        forms.write_entities([change(two, 1, "x")], actor="api", scope=(B,))
    assert outside.value.code == "entity.outside_units"
    assert outside.value.text("en") == f"Entity {two} is outside your units"
    assert forms.get_entity(two).version == 1

    query = EntityQuery(list_name="persons", order_by=[("version", True), ("created_at", False)])
    assert [e.uuid for e in forms.iter_entities(query)] == [one, two]
    query = EntityQuery(list_name="persons", order_by=[("updated_at", False)])
    assert [e.uuid for e in forms.iter_entities(query)] == [two, one]


@pytest.mark.slow
def test_a_bulk_create_of_thousands_is_one_transaction(forms: Store) -> None:
    """20,000 creates in one ``write_entities`` (a register imported with pyodk's create_many): PostgreSQL
    holds only about max_locks_per_transaction (64) x max_connections advisory locks at once, so a lock per
    entity id made it fail ("out of shared memory"); ids are not locked there, and an id taken is still
    refused."""
    from rasoat.core.entities import EntityBlock
    from rasoat.core.storage.entity_rules import IdTaken

    ids = [new_uuid() for _ in range(20000)]
    forms.write_entities([EntityBlock(dataset="persons", uuid=u, create=True, update=False, label=f"N {i}",
                                      data={"status": "quản lý"}) for i, u in enumerate(ids)],
                         actor="api", unit_code=A)
    assert forms.count_entities(EntityQuery(list_name="persons")) == 20000
    with pytest.raises(IdTaken):
        forms.write_entities([EntityBlock(dataset="persons", uuid=ids[0], create=True, update=False,
                                          label="again", data={})], actor="api", unit_code=A)
