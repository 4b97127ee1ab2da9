"""Hamlet lists before a round opens (issue 19, item 5): a round with a required hamlet question over a
commune with no hamlet list is refused unless the officer overrides it, the lists a round opened with are
recorded in its history, and a phone never gets an empty hamlet choice list."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from rasoat.core.cli import main
from rasoat.core.formreg import FormCatalogue, publish_form
from rasoat.core.media import NO_HAMLET_LIST, location_csv
from rasoat.core.round_lifecycle import open_round
from rasoat.core.rounds import RoundError, create_round, get_round
from rasoat.core.storage.opening import open_store

LISTED, UNLISTED = "05563", "05503"  # Xã Phượng Tiến has the plugin's xóm list; Xã Tân Cương has none


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    store = open_store(tmp_path / "data")
    catalogue = FormCatalogue()
    for form_id in ("f2_pledge", "f9_case"):
        entry = catalogue[form_id]
        publish_form(store, entry.form, entry.media_bytes(), entry.plugin)
    create_round(store, "Cam kết 2026", "2026", ["f2_pledge"], [LISTED, UNLISTED], kind="pledge",
                 round_id="r1")
    create_round(store, "Vụ việc 2026", "2026", ["f9_case"], [UNLISTED], kind="cases", round_id="r2")
    store.close()
    return tmp_path / "data"


def test_a_round_over_a_commune_without_a_hamlet_list_is_refused_unless_overridden(data_dir: Path) -> None:
    store = open_store(data_dir)
    try:
        with pytest.raises(RoundError, match=rf"1 xã chưa có danh sách thôn, xóm: {UNLISTED}.*allow-missing"):
            open_round(store, "r1")
        assert get_round(store, "r1").state.value == "draft"
        # F9 asks no hamlet: nothing to refuse
        assert open_round(store, "r2").state.value == "open"
    finally:
        store.close()
    # the CLI says the same, then opens with the explicit override and records the lists used
    assert main(["rounds", "open", "r1", "--data", str(data_dir)]) == 1
    assert main(["rounds", "open", "r1", "--allow-missing-hamlets", "--data", str(data_dir)]) == 0
    store = open_store(data_dir)
    try:
        opened = [h for h in get_round(store, "r1").history if h.get("action") == "open"][-1]
    finally:
        store.close()
    lists = opened["unit_lists"]["hamlets"]
    assert lists[UNLISTED] == {"version": None, "count": 0, "source": ["chưa có", "none"]}
    assert lists[LISTED] == {"version": None, "count": 8,
                             "source": ["plugin thai_nguyen (mẫu)", "plugin thai_nguyen (sample)"]}


def test_a_phone_never_gets_an_empty_hamlet_list() -> None:
    rows = list(csv.DictReader(io.StringIO(location_csv("hamlet", [UNLISTED]).decode())))
    assert rows == [{"name": f"{UNLISTED}-00", "label": NO_HAMLET_LIST, "commune": UNLISTED}]
    listed = list(csv.DictReader(io.StringIO(location_csv("hamlet", [LISTED]).decode())))
    assert len(listed) == 8 and all(r["name"] != f"{LISTED}-00" for r in listed)


def test_the_refusal_is_json_for_scripts(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rounds", "open", "r1", "--data", str(data_dir), "--json"]) == 1
    err = capsys.readouterr().err
    assert "communes have no hamlet list" in err and "Traceback" not in err


def test_the_web_overview_and_round_page_say_which_communes_lack_a_list(tmp_path: Path) -> None:
    from web_support import csrf_of, http_login, start_site, stop_site

    site = start_site(tmp_path / "site")  # its open round covers Phượng Tiến (listed) and Tân Cương (not)
    try:
        officer = http_login(site.url, "tinh.thainguyen")
        page = officer.get("/")
        notice = page.text.split('class="notice no-hamlet-list"')[1].split("</p>")[0]
        assert "(1)" in notice and "Tân Cương" in notice and "Phượng Tiến" not in notice
        # opening a pledge round over Tân Cương from the round page: refused, then opened on purpose
        entry = FormCatalogue()["f2_pledge"]
        publish_form(site.store, entry.form, entry.media_bytes(), entry.plugin)
        create_round(site.store, "Cam kết", "2026", ["f2_pledge"], [UNLISTED], kind="pledge", round_id="web")
        csrf = csrf_of(officer.get("/rounds/web").text)
        refused = officer.post("/rounds/web/state", data={"csrf": csrf, "target": "open"})
        assert refused.status_code == 400 and "chưa có danh sách thôn, xóm" in refused.text
        assert get_round(site.store, "web").state.value == "draft"
        opened = officer.post("/rounds/web/state", data={"csrf": csrf, "target": "open",
                                                         "allow_missing_hamlets": "1"})
        assert opened.status_code == 303 and get_round(site.store, "web").state.value == "open"
    finally:
        stop_site(site)
