"""Publishing as one service (core.publish): compiled once, stored, added to a round, audited
(``form.publish``, ``round.add_form``), every refusal a ``PublishError`` with a code and both languages, and
nothing stored when it is refused. On both backends; the surfaces that call it are tested in
tests/test_server_publish.py (API, CLI) and tests/test_form_drafts.py (web, Central API, test phones)."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest
from rasoat.core.publish import PublishError, publish_file
from rasoat.core.storage.opening import open_store
from server_support import seed


def write_xlsform(path: Path, form_id: str, version: str, label: str = "Ghi chú") -> Path:
    wb = openpyxl.Workbook()
    survey = wb.active
    survey.title = "survey"
    survey.append(["type", "name", "label"])
    survey.append(["text", "ghi_chu", label])
    survey.append(["integer", "so_ho", "Số hộ"])
    settings = wb.create_sheet("settings")
    settings.append(["form_id", "version", "form_title"])
    settings.append([form_id, version, f"Biểu {form_id}"])
    wb.save(path)
    return path


@pytest.fixture
def store(tmp_path, backend_url):
    store = open_store(tmp_path / "data", backend_url)
    seed(store)  # round r-open is open, r-closed is closed
    yield store
    store.close()


def _events(store, action: str) -> list:
    return [e for e in store.iter_audit() if e.action == action]


def test_publish_into_a_round_is_stored_and_audited(store, tmp_path) -> None:
    path = write_xlsform(tmp_path / "bieu_moi.xlsx", "bieu_moi", "2026120701")
    done = publish_file(store, path, actor="can.bo.tinh", round_id="r-open", validate=False, via="cli")
    assert (done.form.form_id, done.form.version, done.already) == ("bieu_moi", "2026120701", False)
    assert store.get_form("bieu_moi").md5 == done.compiled.md5
    rnd = store.get_round("r-open")
    assert "bieu_moi" in rnd.form_ids
    assert rnd.history[-1]["action"] == "add_form" and rnd.history[-1]["form"] == "bieu_moi"
    [published] = _events(store, "form.publish")
    assert published.actor == "can.bo.tinh" and published.target == "bieu_moi"
    assert published.details["round"] == "r-open" and published.details["version"] == "2026120701"
    [added] = _events(store, "round.add_form")
    assert added.target == "r-open" and added.details == {"form": "bieu_moi"}
    # the same file again: nothing changes, the round is not touched twice, the attempt is still audited
    again = publish_file(store, path, actor="can.bo.tinh", round_id="r-open", validate=False)
    assert again.already and len(_events(store, "round.add_form")) == 1
    assert _events(store, "form.publish")[-1].details["unchanged"] is True


def test_refusals_say_why_in_both_languages_and_store_nothing(store, tmp_path) -> None:
    path = write_xlsform(tmp_path / "bieu_x.xlsx", "bieu_x", "1")
    for round_id, code in [("r-closed", "round.closed"), ("khong-co", "round.not_found")]:
        with pytest.raises(PublishError) as refused:
            publish_file(store, path, actor="a", round_id=round_id, validate=False)
        assert refused.value.code == code and round_id in refused.value.vi and round_id in refused.value.en
        assert store.get_form("bieu_x") is None
    assert "bieu_x" not in store.get_round("r-closed").form_ids

    first = publish_file(store, path, actor="a", validate=False)
    changed = write_xlsform(tmp_path / "bieu_x2.xlsx", "bieu_x", "1", label="Nội dung khác")
    with pytest.raises(PublishError) as conflict:
        publish_file(store, changed, actor="a", validate=False)
    assert conflict.value.code == "form.version_conflict" and "version" in conflict.value.en
    assert "phiên bản" in conflict.value.vi
    assert store.get_form("bieu_x").md5 == first.form.md5  # phones keep the first content

    broken = write_xlsform(tmp_path / "bieu_loi.xlsx", "bieu_loi", "1")
    wb = openpyxl.load_workbook(broken)
    wb["survey"].append(["texxt", "dia_chi", "Địa chỉ"])  # row 4: no such question type
    wb.save(broken)
    with pytest.raises(PublishError) as invalid:
        publish_file(store, broken, actor="a", validate=False)
    exc = invalid.value
    assert exc.code == "form.invalid"
    [row] = exc.rows
    assert (Path(row.file).name, row.sheet, row.row) == ("bieu_loi.xlsx", "survey", 4)
    assert row.vi == "Loại câu hỏi không hợp lệ: 'texxt'" and "texxt" in row.en
    assert exc.vi.startswith("bieu_loi.xlsx") or "bieu_loi.xlsx" in exc.vi
    assert "trang survey, dòng 4" in exc.vi and "sheet survey, row 4" in exc.en
    assert store.get_form("bieu_loi") is None
    assert not _events(store, "round.add_form")


@pytest.mark.slow  # the rewritten workbook is compiled again with ODK Validate (Java)
def test_a_draft_needs_a_new_version_when_its_own_is_taken(store, tmp_path) -> None:
    from rasoat.core.drafts import get_draft, publish_draft, save_draft

    publish_file(store, write_xlsform(tmp_path / "v1.xlsx", "bieu_nhap", "1"), actor="a", validate=False)
    changed = write_xlsform(tmp_path / "v1b.xlsx", "bieu_nhap", "1", label="Nhãn mới")
    save_draft(store, changed, actor="a", validate=False)
    with pytest.raises(PublishError) as taken:
        publish_draft(store, "bieu_nhap", actor="a")
    assert taken.value.code == "form.version_conflict"
    assert get_draft(store, "bieu_nhap") is not None and store.get_form("bieu_nhap").version == "1"
    done = publish_draft(store, "bieu_nhap", actor="a", version="2")  # the page's "new version" field
    assert store.get_form("bieu_nhap").version == "2" and done.compiled.version == "2"
    assert "Nhãn mới".encode() in store.form_xml("bieu_nhap", "2")
    assert get_draft(store, "bieu_nhap") is None


def test_a_test_phone_gets_location_lists_of_its_officer_or_of_the_forms_rounds(store, tmp_path) -> None:
    from rasoat.core.drafts import draft_media, save_draft
    from server_support import COMMUNE, OTHER_COMMUNE

    wb = openpyxl.Workbook()
    wb.active.title = "survey"
    wb.active.append(["type", "name", "label", "choice_filter"])
    wb.active.append(["select_one_from_file communes.csv", "commune", "Xã", ""])
    wb.active.append(["select_one_from_file hamlets.csv", "hamlet", "Thôn", "commune=${commune}"])
    wb.create_sheet("settings").append(["form_id", "version", "form_title"])
    wb["settings"].append(["tform", "2", "Biểu thử"])  # the next version of the seeded form of r-open
    wb.save(tmp_path / "tform.xlsx")
    commune_officer = save_draft(store, tmp_path / "tform.xlsx", actor="xa", validate=False,
                                 unit_codes=[COMMUNE])
    communes = draft_media(store, commune_officer, "communes.csv").decode()
    assert COMMUNE in communes and OTHER_COMMUNE not in communes
    admin = save_draft(store, tmp_path / "tform.xlsx", actor="quantri", validate=False)  # no units
    communes = draft_media(store, admin, "communes.csv").decode()
    assert COMMUNE in communes and OTHER_COMMUNE in communes  # r-open's units
    assert draft_media(store, admin, "persons.csv") is None  # never a roster, never an unknown file
