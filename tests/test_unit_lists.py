"""Unit lists loaded by officers (issue 19, item 5; core.unit_lists): a file with errors is refused row by
row and nothing is applied; a good one is previewed, applied and versioned; a round records the version it
opened with; a phone then gets the loaded hamlets; a coverage indicator divides by the loaded school
register. Both backends, through the CLI where an officer would use it."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from assessment_support import opened
from openpyxl import load_workbook
from rasoat.core.cli import main
from rasoat.core.formreg import FormCatalogue, publish_form
from rasoat.core.round_lifecycle import open_round
from rasoat.core.rounds import create_round, get_round
from rasoat.core.unit_lists import KINDS, sites, template, units_for, versions
from rasoat.core.users import create_user
from server_support import CollectClient, opened_store, serving, store_args

PT, TC = "05563", "05503"  # Xã Phượng Tiến (the plugin's sample xóm list), Xã Tân Cương (no list)


def cli(tmp_path: Path, backend_url: str | None, *args: str) -> int:
    return main([*args, *store_args(tmp_path / "data", backend_url)])


def officers(tmp_path: Path, backend_url: str | None) -> None:
    with opened(tmp_path, backend_url) as store:
        create_user(store, "xa.pt", "mật-khẩu-xã-9999", "commune_officer", [PT])
        create_user(store, "nguoi.xem", "mật-khẩu-xem-999", "viewer", [PT])


def filled(rows: list[list[str]]) -> bytes:
    """The downloaded .xlsx template with ``rows`` typed under its header, as an officer saves it."""
    wb = load_workbook(io.BytesIO(template("hamlets")))
    ws = wb.worksheets[0]
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def test_templates_have_bilingual_headers_and_open_in_excel(tmp_path: Path) -> None:
    for kind in KINDS:
        out = tmp_path / f"{kind}.xlsx"
        assert main(["units", "template", kind, "-o", str(out)]) == 0
        header = [c.value for c in load_workbook(out).worksheets[0][1]]
        assert header[:3] == [c.header for c in KINDS[kind].columns][:3]
    assert header[0] == "Mã xã / Commune code"
    assert main(["units", "template", "hamlets", "-o", str(tmp_path / "h.csv")]) == 0
    raw = (tmp_path / "h.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel opens UTF-8 with a BOM correctly
    assert raw.decode("utf-8-sig").splitlines()[0].startswith("Mã xã / Commune code,Mã thôn / Hamlet code")


def test_a_file_with_errors_is_refused_row_by_row(tmp_path: Path, backend_url: str | None,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    officers(tmp_path, backend_url)
    # Excel's "CSV UTF-8": BOM, and ";" in a Vietnamese locale; one good row among the bad ones
    text = ("\ufeffMã xã / Commune code;Mã thôn / Hamlet code;Tên thôn, xóm, tổ dân phố / Hamlet name\n"
            f"{PT};01;Xóm Na Hoa\n"
            f"{PT};{PT}-01;Xóm Trùng\n"
            "99999;99999-01;Xóm Lạ\n"
            f"{TC};{TC}-01;Thôn Ngoài Xã\n"
            f"{PT};{PT}-03;\n"
            f"19;19-01;Xóm Tỉnh\n"
            f"{PT};{TC}-02;Xóm Sai Mã\n")
    bad = tmp_path / "thon.csv"
    bad.write_bytes(text.encode("utf-8"))
    assert cli(tmp_path, backend_url, "units", "import", "hamlets", str(bad), "--as", "xa.pt") == 1
    err = capsys.readouterr().err.splitlines()
    assert err[:6] == [
        f"dòng 3: mã '{PT}-01' trùng với dòng 2 / row 3: duplicate code '{PT}-01', also on row 2",
        "dòng 4: mã xã '99999' không có trong danh mục 2025 / row 4: unknown commune code '99999' "
        "(units of 2025)",
        f"dòng 5: xã {TC} (Xã Tân Cương) ngoài phạm vi của bạn / row 5: commune {TC} (Xã Tân Cương) is "
        "outside your units",
        "dòng 6: thiếu tên / row 6: the name is empty",
        "dòng 7: mã xã '19' không có trong danh mục 2025, đây là mã tỉnh / row 7: unknown commune code "
        "'19' (units of 2025), that is a province code",
        f"dòng 8: mã thôn '{TC}-02' không thuộc xã {PT} / "
        f"row 8: hamlet code '{TC}-02' is not in commune {PT}",
    ]
    assert err[6] == "Không nạp gì: 6 lỗi / Nothing loaded: 6 problem(s)"
    # a viewer may not load lists at all; a file that is not UTF-8 says what to do in Excel
    assert cli(tmp_path, backend_url, "units", "import", "hamlets", str(bad), "--as", "nguoi.xem") == 1
    assert "không được tải danh sách thôn, trường, doanh nghiệp" in capsys.readouterr().err  # in words
    latin = tmp_path / "latin.csv"
    latin.write_bytes(f"commune,code,name\n{PT},01,Xóm Na Hoa\n".encode("cp1252"))  # Excel's "CSV" (ANSI)
    assert cli(tmp_path, backend_url, "units", "import", "hamlets", str(latin)) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        'dòng 2: latin.csv không phải UTF-8; trong Excel hãy lưu thành "CSV UTF-8" / '
        'row 2: latin.csv is not UTF-8; in Excel save it as "CSV UTF-8"')
    with opened(tmp_path, backend_url) as store:  # nothing applied: still the plugin's sample xóm
        assert versions(store, "hamlets") == []
        assert [h.name for h in units_for(store).hamlets(PT)][:1] == ["Xóm 1"]


def test_a_good_file_is_previewed_applied_and_versioned_and_a_round_records_it(
    tmp_path: Path, backend_url: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    officers(tmp_path, backend_url)
    first = filled([[PT, "01", "Xóm Na Hoa", "120"], [PT, f"{PT}-02", "Xóm Đồng Chùa", ""],
                    [PT, "9", "Xóm Tân Thịnh", "85"]])
    path = tmp_path / "thon-v1.xlsx"
    path.write_bytes(first)
    args = ("units", "import", "hamlets", str(path), "--as", "xa.pt")
    assert cli(tmp_path, backend_url, *args, "--preview") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == (f"{PT} Xã Phượng Tiến: +1 thêm/added, 2 đổi tên/renamed, -6 bỏ/removed, "
                                   "0 giữ nguyên/unchanged (trước / before: plugin thai_nguyen (mẫu) / "
                                   "plugin thai_nguyen (sample))")
    assert f"  ~ {PT}-01 Xóm 1 → Xóm Na Hoa" in out
    assert f"  + {PT}-09 Xóm Tân Thịnh" in out and "Not applied (--preview)" in out
    with opened(tmp_path, backend_url) as store:
        assert versions(store, "hamlets") == []
    assert cli(tmp_path, backend_url, *args) == 0
    out = capsys.readouterr().out  # one line, each language whole (core/locale/*/LC_MESSAGES/cli.po)
    assert "Đã nạp phiên bản 1: 3 dòng, 1 xã, sha256 " in out
    assert " / Loaded as version 1: 3 rows, 1 communes" in out

    # version 2: Xóm Đồng Chùa renamed, Xóm Tân Thịnh removed, Tân Dương added (NFD typed: stored NFC)
    second = tmp_path / "thon-v2.csv"
    second.write_text("commune,code,name,households\n"
                      f"{PT},{PT}-01,Xóm Na Hoa,120\n{PT},{PT}-02,Xóm Đồng Chùa Mới,\n"
                      f"{PT},{PT}-10,Xo\u0301m Tân Dương,40\n", encoding="utf-8")
    assert cli(tmp_path, backend_url, "units", "import", "hamlets", str(second), "--json") == 0
    report = json.loads(capsys.readouterr().out)
    change = report["changes"][0]
    assert (change["added"], change["renamed"], change["removed"], change["unchanged"]) == (
        [[f"{PT}-10", "Xóm Tân Dương"]], [[f"{PT}-02", "Xóm Đồng Chùa", "Xóm Đồng Chùa Mới"]],
        [[f"{PT}-09", "Xóm Tân Thịnh"]], 1)
    assert cli(tmp_path, backend_url, "units", "versions", "hamlets", "--json") == 0
    found = json.loads(capsys.readouterr().out)
    fields = ("version", "actor", "source", "rows", "sha256", "communes")
    assert [tuple(v[f] for f in fields) for v in found] == [
        (1, "xa.pt", "thon-v1.xlsx", 3, hashlib.sha256(first).hexdigest(), {PT: 3}),
        (2, found[1]["actor"], "thon-v2.csv", 3, hashlib.sha256(second.read_bytes()).hexdigest(), {PT: 3}),
    ]
    assert cli(tmp_path, backend_url, "units", "show", f"{PT}-10", "--json") == 0  # lookups know it too
    assert json.loads(capsys.readouterr().out)["name"] == "Xóm Tân Dương"
    with opened(tmp_path, backend_url) as store:
        hamlets = units_for(store).hamlets(PT)
        assert [(h.code, h.name, h.households) for h in hamlets] == [
            (f"{PT}-01", "Xóm Na Hoa", 120), (f"{PT}-02", "Xóm Đồng Chùa Mới", None),
            (f"{PT}-10", "Xóm Tân Dương", 40)]
        audited = [(e.actor, e.details["version"]) for e in store.iter_audit() if e.action == "units.import"]
        assert audited == [("xa.pt", 1), (found[1]["actor"], 2)]
        # a round opened now records the version of each list it used
        entry = FormCatalogue()["f2_pledge"]
        publish_form(store, entry.form, entry.media_bytes(), entry.plugin)
        create_round(store, "Cam kết 2026", "2026", ["f2_pledge"], [PT], kind="pledge", round_id="r1")
        open_round(store, "r1", allow_missing_hamlets=False)
        opened_entry = [h for h in get_round(store, "r1").history if h["action"] == "open"][-1]
    used = opened_entry["unit_lists"]
    assert used["hamlets"][PT] == {"version": 2, "count": 3,
                                   "source": ["phiên bản 2 (thon-v2.csv)", "version 2 (thon-v2.csv)"]}
    assert used["schools"][PT]["version"] is None  # nothing loaded: the plugin's list, or none, said so


@pytest.mark.slow  # a real server
def test_a_phone_gets_the_loaded_hamlets_of_its_commune(tmp_path: Path) -> None:
    from rasoat.core.collectors import create_collector

    with opened_store(tmp_path / "data") as store:
        entry = FormCatalogue()["f2_pledge"]
        publish_form(store, entry.form, entry.media_bytes(), entry.plugin)
        create_round(store, "Cam kết 2026", "2026", ["f2_pledge"], [TC], kind="pledge", round_id="r1")
        _, token = create_collector(store, "Lê Thị Thu", [TC], ["r1"])
        with serving(store, access_log=False) as server:
            phone = CollectClient(f"{server.url}/v1/key/{token}/projects/1")
            try:
                lists = tmp_path / "tan-cuong.csv"
                lists.write_text(f"commune,code,name\n{TC},1,Thôn Hồng Thái 1\n{TC},2,Tổ dân phố Tân Thành\n",
                                 encoding="utf-8")
                assert main(["units", "import", "hamlets", str(lists), "--data", str(tmp_path / "data")]) == 0
                open_round(store, "r1")  # no override needed now
                ns = "{http://openrosa.org/xforms/xformsList}"
                form = ET.fromstring(phone.get("/formList").content).find(f"{ns}xform")
                assert form is not None
                manifest = ET.fromstring(phone.get(form.findtext(f"{ns}manifestUrl") or "").content)
                mf = "{http://openrosa.org/xforms/xformsManifest}"
                urls = {m.findtext(f"{mf}filename"): m.findtext(f"{mf}downloadUrl") for m in manifest}
                url = urls["hamlets.csv"]
                rows = list(csv.DictReader(io.StringIO(phone.get(url or "").text)))
                assert rows == [{"name": f"{TC}-01", "label": "Thôn Hồng Thái 1", "commune": TC},
                                {"name": f"{TC}-02", "label": "Tổ dân phố Tân Thành", "commune": TC}]
            finally:
                phone.close()


def school_coverage(store) -> tuple[object, object, object]:
    from rasoat.core.indicators.engine import evaluate
    from rasoat.core.indicators.periods import Period

    found = evaluate(store, Period.parse("2026"), units=[TC])
    result = next(r for r in found if r.indicator_id == "nat_prevention_schools")
    return result.numerator, result.denominator, result.value


def test_coverage_divides_by_the_loaded_school_register(tmp_path: Path, backend_url: str | None) -> None:
    """nat_prevention_schools: schools reached over every school on the register, not those audited. Tân
    Cương lists 4 schools, 1 audited and reached: 1 / 4 = 25 %; before the list, no data."""
    from indicators_support import add

    with opened(tmp_path, backend_url) as store:
        add(store, "f3_school", TC, {"ref_date": "2026-03-01", "school": "TH-TC1", "pupils_total": "300",
                                     "pupils_reached": "120", "meets_standard": "yes"})
        assert school_coverage(store)[2] is None
    schools = tmp_path / "truong.csv"
    schools.write_text("Mã xã / Commune code,Mã trường / School code,Tên trường / School name\n"
                       f"{TC},TH-TC1,Trường Tiểu học Tân Cương\n{TC},TH-TC2,Trường THCS Tân Cương\n"
                       f"{TC},MN-TC1,Trường Mầm non Tân Cương\n{TC},TH-TC3,Trường Tiểu học Phúc Trìu\n",
                       encoding="utf-8")
    assert cli(tmp_path, backend_url, "units", "import", "schools", str(schools)) == 0
    with opened(tmp_path, backend_url) as store:
        assert school_coverage(store) == (1, 4, 25.0)


def test_zone_coverage_divides_by_the_enterprises_in_zones_on_the_register(
    tmp_path: Path, backend_url: str | None
) -> None:
    """A register measure keeps the rows its ``where`` names: Tân Cương lists 3 enterprises, 2 of them in
    the industrial cluster KCN-TC (itself on the zones register); one of those 2 held prevention sessions,
    the other was never audited: 1 / 2 = 50 %, not 1 / 1 "of those audited"."""
    from indicators_support import add
    from rasoat.core.indicators.engine import evaluate
    from rasoat.core.indicators.models import Indicator
    from rasoat.core.indicators.periods import Period

    officers(tmp_path, backend_url)  # makes the data directory
    zones = tmp_path / "kcn.csv"
    zones.write_text(f"commune,code,name,zone_type\n{TC},KCN-TC,Cụm công nghiệp Tân Cương,cụm công nghiệp\n",
                     encoding="utf-8")
    enterprises = tmp_path / "dn.csv"
    enterprises.write_text("commune,code,name,zone\n"
                           f"{TC},DN-1,Công ty Chè Tân Cương,KCN-TC\n{TC},DN-2,Xưởng May Tân Cương,KCN-TC\n"
                           f"{TC},DN-3,Cửa hàng Ánh Dương,\n", encoding="utf-8")
    assert cli(tmp_path, backend_url, "units", "import", "zones", str(zones)) == 0
    assert cli(tmp_path, backend_url, "units", "import", "enterprises", str(enterprises)) == 0
    in_zone = [{"field": "zone", "op": "in", "value": ["industrial_park", "industrial_cluster"]},
               {"field": "sessions", "op": "gt", "value": 0}]
    indicator = Indicator.model_validate({
        "id": "zone_sessions", "name_vi": "DN trong khu, cụm công nghiệp có tuyên truyền",
        "name_en": "Enterprises in zones with sessions", "level": "commune", "factor": 100,
        "numerator": {"form": "f4_enterprise", "latest_by": "enterprise", "where": in_zone},
        "denominator": {"kind": "register", "sites": "enterprises",
                        "where": [{"field": "zone", "op": "exists"}]},
    })
    with opened(tmp_path, backend_url) as store:
        add(store, "f4_enterprise", TC, {"enterprise": "DN-1", "zone": "industrial_cluster", "sessions": "2"})
        add(store, "f4_enterprise", TC, {"enterprise": "DN-3", "zone": "none", "sessions": "1"})
        (result,) = evaluate(store, Period.parse("2026"), units=[TC], indicators=[indicator])
        assert (result.numerator, result.denominator, result.value) == (1, 2, 50.0)
        assert sites(store, "zones")[TC] == [{"code": "KCN-TC", "name": "Cụm công nghiệp Tân Cương",
                                             "zone_type": "industrial_cluster"}]
