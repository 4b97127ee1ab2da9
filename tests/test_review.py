"""Review states with comments and reviewers, the round's counting rule, and the submissions CLI."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from rasoat.core.cli import main as cli_main
from rasoat.core.models import FormVersion, ReviewState, Submission
from rasoat.core.review import ReviewError, counted_query, review_submission
from rasoat.core.round_lifecycle import open_round
from rasoat.core.rounds import create_round, set_counted_states
from rasoat.core.storage.base import Store, SubmissionQuery


def publish(store: Store, form_id: str) -> None:
    xform = f"<h:html><!-- {form_id} --></h:html>".encode()
    md5 = hashlib.md5(xform).hexdigest()
    store.put_form(FormVersion(form_id=form_id, version="1", title=form_id, md5=md5), xform, {}, {})


def save(store: Store, instance_id: str, round_id: str, unit: str, form_id: str = "f5_hamlet") -> None:
    xml = f'<data id="{form_id}"><meta><instanceID>{instance_id}</instanceID></meta></data>'.encode()
    sub = Submission(
        instance_id=instance_id,
        form_id=form_id,
        form_version="1",
        round_id=round_id,
        unit_code=unit,
        xml_md5=hashlib.md5(xml).hexdigest(),
        fields={"commune": unit.split("-")[0], "meta/instanceID": instance_id},
    )
    store.save_submission(sub, xml, {})


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def store(data: Path) -> Iterator[Store]:
    from rasoat.core.storage.embedded import EmbeddedStore

    s = EmbeddedStore(data)
    publish(s, "f5_hamlet")
    publish(s, "f2_pledge")
    yield s
    s.close()


@pytest.fixture
def round_id(store: Store) -> str:
    rnd = create_round(
        store, "Rà soát xóm 2026", "2026", ["f5_hamlet", "f2_pledge"], ["05563"], round_id="r-xom"
    )
    open_round(store, rnd.id)
    for i, unit in enumerate(["05563", "05563", "05563", "05563"], start=1):
        save(store, f"uuid:{i}", rnd.id, unit)
    save(store, "uuid:p1", rnd.id, "05563", form_id="f2_pledge")
    return rnd.id


def test_review_keeps_who_when_why_and_audits(store: Store, round_id: str) -> None:
    sub = review_submission(
        store, "uuid:1", "has_issues", "Thiếu số hộ / households missing", actor="canbo.xa"
    )
    assert sub.review_state is ReviewState.has_issues
    sub = review_submission(store, "uuid:1", ReviewState.edited, "Đã sửa số hộ", actor="canbo.xa")
    sub = review_submission(store, "uuid:1", "approved", actor="truong.cax")
    assert sub.review_state is ReviewState.approved
    history = store.get_submission("uuid:1").review_history  # type: ignore[union-attr]
    assert [(h.get("to"), h.get("comment"), h.get("actor")) for h in history][-3:] == [
        ("has_issues", "Thiếu số hộ / households missing", "canbo.xa"),
        ("edited", "Đã sửa số hộ", "canbo.xa"),
        ("approved", "", "truong.cax"),
    ]
    audit = [e for e in store.iter_audit() if e.action == "submission.review"]
    assert [(e.actor, e.target, e.details["from"], e.details["to"]) for e in audit] == [
        ("canbo.xa", "uuid:1", "received", "has_issues"),
        ("canbo.xa", "uuid:1", "has_issues", "edited"),
        ("truong.cax", "uuid:1", "edited", "approved"),
    ]
    assert audit[0].details["round_id"] == round_id


def test_review_refusals(store: Store, round_id: str) -> None:
    with pytest.raises(ReviewError, match="needs a comment"):
        review_submission(store, "uuid:1", "rejected", "  ")
    with pytest.raises(ReviewError, match="needs a comment"):
        review_submission(store, "uuid:1", "has_issues")
    with pytest.raises(ReviewError, match="Invalid state 'ok'"):
        review_submission(store, "uuid:1", "ok", "x")
    with pytest.raises(ReviewError, match="No submission 'uuid:nope'"):
        review_submission(store, "uuid:nope", "approved")
    assert store.get_submission("uuid:1").review_state is ReviewState.received  # type: ignore[union-attr]


def test_counted_query_follows_the_rounds_rule(store: Store, round_id: str) -> None:
    review_submission(store, "uuid:1", "approved", actor="o")
    review_submission(store, "uuid:2", "rejected", "trùng / duplicate", actor="o")
    review_submission(store, "uuid:3", "has_issues", "thiếu ảnh", actor="o")
    rnd = store.get_round(round_id)
    assert rnd is not None
    query = counted_query(rnd, form_id="f5_hamlet")
    assert isinstance(query, SubmissionQuery) and query.round_id == round_id
    assert sorted(s.instance_id for s in store.iter_submissions(query)) == ["uuid:1", "uuid:3", "uuid:4"]
    assert store.count_submissions(counted_query(rnd)) == 4  # both forms
    # Filtering further by state keeps within the rule: rejected never comes back.
    narrowed = counted_query(
        rnd, form_id="f5_hamlet", review_states=[ReviewState.rejected, ReviewState.approved]
    )
    assert [s.instance_id for s in store.iter_submissions(narrowed)] == ["uuid:1"]

    rnd = set_counted_states(store, round_id, ["approved"])
    assert [s.instance_id for s in store.iter_submissions(counted_query(rnd))] == ["uuid:1"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli_main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_submissions_list_count_review(
    store: Store, round_id: str, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store.close()  # the CLI opens the same data directory
    d = str(data)
    code, out, _ = run(capsys, "submissions", "review", "uuid:2", "--state", "rejected", "--comment",
                       "trùng / duplicate", "--by", "canbo.xa", "--data", d)  # fmt: skip
    assert code == 0 and "uuid:2" in out and "Bị từ chối / Rejected" in out
    code, out, _ = run(
        capsys, "submissions", "review", "uuid:1", "--state", "approved", "--json", "--data", d
    )
    assert code == 0 and json.loads(out)["review_state"] == "approved"
    code, _, err = run(capsys, "submissions", "review", "uuid:3", "--state", "has_issues", "--data", d)
    assert code == 1 and err.strip().endswith("State 'has_issues' needs a comment (--comment)")

    code, out, _ = run(capsys, "submissions", "list", "--form", "f5_hamlet", "--json", "--data", d)
    listed = json.loads(out)
    assert [s["instance_id"] for s in listed] == ["uuid:1", "uuid:2", "uuid:3", "uuid:4"]
    assert listed[1]["review_comment"] == "trùng / duplicate" and "fields" not in listed[1]
    code, out, _ = run(capsys, "submissions", "list", "--form", "f5_hamlet", "--state", "received,approved",
                       "--round", round_id, "--unit", "19", "--json", "--data", d)  # fmt: skip
    assert [s["instance_id"] for s in json.loads(out)] == ["uuid:1", "uuid:3", "uuid:4"]
    code, out, _ = run(capsys, "submissions", "list", "--form", "f5_hamlet", "--data", d)
    assert code == 0 and "uuid:4" in out and "Đã nhận / Received" in out

    code, out, _ = run(capsys, "submissions", "count", "--form", "f5_hamlet", "--data", d)
    assert (code, out.strip()) == (0, "4")
    code, out, _ = run(capsys, "submissions", "count", "--form", "f5_hamlet", "--json", "--data", d)
    counted = json.loads(out)
    assert (
        counted["count"] == 4
        and counted["by_state"]["rejected"] == 1
        and counted["by_state"]["received"] == 2
    )
    code, _, err = run(
        capsys, "submissions", "count", "--form", "f5_hamlet", "--round", "r-nope", "--data", d
    )
    assert code == 1 and "No round 'r-nope'" in err
    code, _, err = run(capsys, "submissions", "list", "--form", "f5_hamlet", "--unit", "99999", "--data", d)
    assert code == 1 and "99999" in err and "Traceback" not in err

    from rasoat.core.storage.embedded import EmbeddedStore

    s = EmbeddedStore(data)
    try:
        audit = [(e.actor, e.target) for e in s.iter_audit() if e.action == "submission.review"]
    finally:
        s.close()
    assert audit[0] == ("canbo.xa", "uuid:2") and len(audit) == 2
