"""Importing a phone's instances folder (copied off the device) with an upload's rules: good instances
stored, a resend recognised as a duplicate, a broken file reported by name, nothing else changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rasoat.core.cli import main as cli_main
from rasoat.core.collectors import create_collector
from rasoat.core.models import ReviewState, Round, RoundState
from rasoat.core.storage.base import SubmissionQuery
from rasoat.core.storage.opening import open_store
from rasoat.mobile_export.importer import find_instances, import_instances
from server_support import COMMUNE, OTHER_COMMUNE, instance_xml, publish_test_form

FORM_NAME = "Biểu thử"  # Collect names instance folders after the form's title


def save_like_collect(root: Path, started: str, xml: bytes, files: dict[str, bytes] | None = None) -> Path:
    """instances/<form title>_<start time>/<same>.xml plus its attachments, as Collect lays them out."""
    folder = root / "instances" / f"{FORM_NAME}_{started}"
    folder.mkdir(parents=True)
    (folder / f"{folder.name}.xml").write_bytes(xml)
    for name, data in (files or {}).items():
        (folder / name).write_bytes(data)
    return folder / f"{folder.name}.xml"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    store = open_store(data)
    try:
        publish_test_form(store)
        store.put_round(Round(id="r1", name="Đợt 2026", period="2026", form_ids=["tform"],
                              unit_codes=[COMMUNE, OTHER_COMMUNE], state=RoundState.open))
        create_collector(store, "Vũ Thị Lan", [COMMUNE], ["r1"], username="lan")
        create_collector(store, "Phạm Văn Xa", [OTHER_COMMUNE], ["r1"], username="xa")
    finally:
        store.close()
    return data


def snapshot(data: Path) -> dict[str, tuple]:
    """Every stored submission: XML, attachments, review state (what 'nothing else changes' means)."""
    store = open_store(data)
    try:
        out = {}
        for sub in store.iter_submissions(SubmissionQuery(current_only=False)):
            atts = tuple((n, store.attachment(sub.instance_id, n)) for n in sorted(sub.attachments))
            out[sub.instance_id] = (store.submission_xml(sub.instance_id), atts, sub.review_state,
                                    sub.collector_id)
        return out
    finally:
        store.close()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli_main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_phone_folder_with_a_duplicate_and_a_broken_file(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Earlier, over the network: one form Lan sent, and one of Xa's.
    sent = tmp_path / "sent"
    dup_id, dup_xml = instance_xml(name="Đã gửi qua mạng", hamlet="")
    save_like_collect(sent, "2026-05-05_08-00-00", dup_xml)
    assert run(capsys, "import-instances", str(sent), "--collector", "lan", "--data", str(data_dir))[0] == 0
    xa_sent = tmp_path / "xa-sent"
    save_like_collect(xa_sent, "2026-05-03_15-00-00", instance_xml(commune=OTHER_COMMUNE, name="Của Xa")[1])
    assert run(capsys, "import-instances", str(xa_sent), "--collector", "xa", "--data", str(data_dir))[0] == 0
    before = snapshot(data_dir)
    assert len(before) == 2

    # Lan's phone, copied over USB: three new forms (one with a photo), the one already sent, one broken.
    phone = tmp_path / "phone"
    id1, xml1 = instance_xml(name="Nguyễn Thị Hoa", photo="1714551234567.jpg")
    save_like_collect(phone, "2026-05-04_09-12-33", xml1, {"1714551234567.jpg": b"\xff\xd8JPEG photo"})
    id2, xml2 = instance_xml(name="Lò Văn Páo", ages=("61",))
    save_like_collect(phone, "2026-05-04_10-01-02", xml2)
    save_like_collect(phone, "2026-05-05_08-00-00", dup_xml)
    _, whole = instance_xml(name="Bị cắt giữa chừng")
    broken = save_like_collect(phone, "2026-05-05_09-30-00", whole[: len(whole) // 2])
    id3, xml3 = instance_xml(name="Hà Văn Tư", ages=())
    save_like_collect(phone, "2026-05-06_07-45-10", xml3)

    args = ["import-instances", str(phone), "--collector", "lan", "--data", str(data_dir)]
    code, out, err = run(capsys, *args, "--json")
    assert code == 1  # something failed: a script notices
    report = json.loads(out)
    assert (report["created"], report["duplicate"], report["failed"]) == (3, 1, 1)
    by_file = {r["file"]: r for r in report["results"]}
    bad = by_file[broken.relative_to(phone).as_posix()]
    assert bad["outcome"] == "broken" and bad["message"]
    assert bad["file"] == f"instances/{FORM_NAME}_2026-05-05_09-30-00/{FORM_NAME}_2026-05-05_09-30-00.xml"
    assert {r["instance_id"] for r in report["results"] if r["outcome"] == "created"} == {id1, id2, id3}
    assert [r["instance_id"] for r in report["results"] if r["outcome"] == "duplicate"] == [dup_id]

    after = snapshot(data_dir)
    assert set(after) == set(before) | {id1, id2, id3}
    assert {k: after[k] for k in before} == before  # the earlier submissions are untouched
    assert after[id1][0] == xml1 and after[id1][1] == (("1714551234567.jpg", b"\xff\xd8JPEG photo"),)
    store = open_store(data_dir)
    try:
        lan = store.get_user_by_name("lan")
        for iid in (id1, id2, id3):
            sub = store.get_submission(iid)
            assert (sub.collector_id, sub.round_id, sub.unit_code) == (lan.id, "r1", COMMUNE)
            assert sub.review_state is ReviewState.received
        assert store.get_submission(id2).fields["member"] == [{"age": "61"}]
        imports = [e for e in store.iter_audit() if e.action == "instances.import"]
        assert imports[-1].details == {"collector": lan.id, "created": 3, "duplicate": 1, "failed": 1}
    finally:
        store.close()

    # The same folder again (the officer runs it twice): everything is a duplicate, nothing changes.
    code, out, _ = run(capsys, *args)
    assert code == 1
    lines = out.strip().splitlines()
    assert lines[-1] == "Đã nhập 0, trùng (đã có) 4, lỗi 1 / Imported 0, duplicates 4, failed 1"
    assert lines[0].startswith(f"instances/{FORM_NAME}_2026-05-05_09-30-00/")
    assert snapshot(data_dir) == after


def test_upload_rules_apply_scope_conflict_and_attribution(data_dir: Path, tmp_path: Path) -> None:
    store = open_store(data_dir)
    try:
        lan, xa = store.get_user_by_name("lan"), store.get_user_by_name("xa")
        first = tmp_path / "first"
        iid, xml = instance_xml(name="Bản gốc")
        save_like_collect(first, "2026-05-01_08-00-00", xml)
        assert import_instances(store, first, lan).count("created") == 1

        phone = tmp_path / "phone"
        # same instanceID, different content → conflict, the stored one stays
        _, changed = instance_xml(instance_id=iid, name="Bản đã bị sửa tay")
        save_like_collect(phone, "2026-05-01_08-00-00", changed)
        # Lan may not send for another commune
        _, outside = instance_xml(commune=OTHER_COMMUNE, name="Ngoài địa bàn")
        save_like_collect(phone, "2026-05-02_08-00-00", outside)
        # a form the server does not have
        _, unknown = instance_xml(form_id="khong_co", name="Biểu lạ")
        save_like_collect(phone, "2026-05-03_08-00-00", unknown)
        report = import_instances(store, phone, lan)
        outcomes = [r.outcome for r in report.results]
        assert outcomes == ["conflict", "refused", "broken"]
        assert "05503" in report.results[1].message and "khong_co" in report.results[2].message
        assert store.submission_xml(iid) == xml
        assert store.count_submissions() == 1

        # Without --collector: each instance goes to the one collector who could have sent it.
        mixed = tmp_path / "mixed"
        a_id, a_xml = instance_xml(name="Của Lan")
        save_like_collect(mixed, "2026-05-04_08-00-00", a_xml)
        x_id, x_xml = instance_xml(commune=OTHER_COMMUNE, name="Của Xa")
        save_like_collect(mixed, "2026-05-04_09-00-00", x_xml)
        report = import_instances(store, mixed)
        assert [r.outcome for r in report.results] == ["created", "created"]
        assert store.get_submission(a_id).collector_id == lan.id
        assert store.get_submission(x_id).collector_id == xa.id

        # Two collectors in the commune: the importer asks which one instead of guessing.
        create_collector(store, "Người thứ hai", [COMMUNE], ["r1"])
        ambiguous = tmp_path / "ambiguous"
        save_like_collect(ambiguous, "2026-05-05_08-00-00", instance_xml(name="Của ai?")[1])
        report = import_instances(store, ambiguous)
        assert report.results[0].outcome == "refused" and "--collector" in report.results[0].message

        # A revoked collector's phone is not imported under their name.
        from rasoat.core.collectors import CollectorError, revoke_collector

        revoke_collector(store, lan.id)
        with pytest.raises(CollectorError, match="not an active collector"):
            import_instances(store, ambiguous, store.get_user(lan.id))
    finally:
        store.close()


def test_finds_instances_in_collects_layout_and_loose_files(tmp_path: Path) -> None:
    save_like_collect(tmp_path, "2026-05-04_09-12-33", b"<a/>", {"p.jpg": b"x", ".nomedia": b""})
    loose = tmp_path / "loose"
    loose.mkdir()
    (loose / "one.xml").write_bytes(b"<a/>")
    (loose / "two.xml").write_bytes(b"<a/>")
    found = [(x.relative_to(tmp_path).as_posix(), sorted(f.name for f in files))
             for x, files in find_instances(tmp_path)]
    assert found == [
        (f"instances/{FORM_NAME}_2026-05-04_09-12-33/{FORM_NAME}_2026-05-04_09-12-33.xml", ["p.jpg"]),
        ("loose/one.xml", []),
        ("loose/two.xml", []),
    ]
