"""Administrative units: the national list, lookups, search, scoping, and hamlet CSVs from plugins."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import pytest
from plugin_support import HamletPlugin, plugins_installed
from rasoat.core import hookimpl
from rasoat.core.cli import main as cli_main
from rasoat.core.payloads import PluginAnswerError
from rasoat.core.units import (
    AmbiguousUnit,
    HamletCSVError,
    UnitRegistry,
    UnknownUnit,
    get_units,
    load_units,
    reset_units,
)
from rasoat.plugins import BUILTIN_PROVINCES


@pytest.fixture(scope="module")
def national() -> UnitRegistry:
    return UnitRegistry.national()


@pytest.fixture
def units() -> UnitRegistry:
    """A fresh registry each test, so hamlets added by one test do not leak into another."""
    return UnitRegistry.national()


def write_csv(path: Path, rows: list[list[str]], bom: bool = False) -> Path:
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


HEADER = ["code", "name", "commune_code", "households", "term", "sample"]


# --- the national list ---------------------------------------------------------------------------
def test_counts_match_the_july_2025_reorganisation(national: UnitRegistry) -> None:
    assert len(national.provinces()) == 34
    communes = national.communes()
    assert len(communes) == 3321
    assert Counter(u.division_type for u in communes) == {"xã": 2621, "phường": 687, "đặc khu": 13}
    assert national.hamlets() == []
    assert national.era == "2025"
    assert "2025.10.1" in national.data_version


def test_codes_and_names_follow_the_conventions(national: UnitRegistry) -> None:
    for p in national.provinces():
        assert re.fullmatch(r"\d{2}", p.code) and p.parent_code is None
        assert p.name.startswith(("Tỉnh ", "Thành phố ")), p.name
    for c in national.communes():
        assert re.fullmatch(r"\d{5}", c.code)
        assert national.require(c.parent_code).level == "province"
        assert c.name.startswith(("Xã ", "Phường ", "Đặc khu ")), c.name
        assert "  " not in c.name
    # Six centrally-run cities, the rest are provinces.
    assert sum(p.division_type == "thành phố trung ương" for p in national.provinces()) == 6
    assert national.require("01").name == "Thành phố Hà Nội"


def test_thai_nguyen_to_phuong_tien_both_ways(national: UnitRegistry) -> None:
    thai_nguyen = national.require("19")
    assert (thai_nguyen.name, thai_nguyen.level, thai_nguyen.division_type) == (
        "Tỉnh Thái Nguyên", "province", "tỉnh"
    )
    phuong_tien = national.get("05563")
    assert phuong_tien is not None
    assert (phuong_tien.name, phuong_tien.parent_code, phuong_tien.name_ascii) == (
        "Xã Phượng Tiến", "19", "Xa Phuong Tien"
    )
    assert national.parent("05563") == thai_nguyen
    assert phuong_tien in national.children("19")
    assert phuong_tien in national.communes("19")
    assert len(national.communes("19")) == 92
    assert national.full_name("05563") == "Xã Phượng Tiến, Tỉnh Thái Nguyên"


@pytest.mark.parametrize(
    "query", ["Phuong Tien", "phuong tien", "PHƯỢNG TIẾN", "Xã Phượng Tiến", "xa phuong tien", "05563"]
)
def test_search_ranks_phuong_tien_first(national: UnitRegistry, query: str) -> None:
    assert national.search(query)[0].code == "05563"


def test_search_options(national: UnitRegistry) -> None:
    assert [u.code for u in national.search("thai nguyen", level="province")] == ["19"]
    assert national.search("tinh thai nguyen")[0].code == "19"
    assert national.search("tp ho chi minh")[0].code == "79"
    assert national.search("dak lak")[0].name == "Tỉnh Đắk Lắk"  # đ → d
    assert national.search("phu quoc")[0].name == "Đặc khu Phú Quốc"
    assert national.search("van mieu quoc tu giam")[0].code == "00196"  # dash in the name
    # Two communes share a name in different provinces; `within` picks one.
    both = {u.code for u in national.exact("Thuong Hong")}
    assert both == {"10993", "12127"}
    assert [u.code for u in national.search("Thuong Hong", within="33")] == ["12127"]
    assert national.search("") == []
    assert national.search("zzzz") == []
    assert len(national.search("xa", limit=5)) == 5


def test_resolve_takes_a_code_or_one_exact_name(national: UnitRegistry) -> None:
    assert national.resolve("05563").name == "Xã Phượng Tiến"
    assert national.resolve("Phuong Tien").code == "05563"
    with pytest.raises(AmbiguousUnit, match="00226.*17971"):
        national.resolve("kim lien")
    assert national.resolve("kim lien", within="40").code == "17971"
    with pytest.raises(UnknownUnit):
        national.resolve("zzzz")


def test_ancestors_descendants_and_expand(units: UnitRegistry, tmp_path: Path) -> None:
    units.add_hamlets_csv(write_csv(tmp_path / "h.csv", [
        HEADER,
        ["05563-01", "Xóm Nà Pài", "05563", "120", "", "1"],
        ["05563-02", "Xóm Đồng Kem", "05563", "", "", ""],
    ]), source="thai_nguyen")
    assert [u.code for u in units.ancestors("05563-01")] == ["05563", "19"]
    assert units.ancestors("19") == []
    assert units.parent("19") is None
    assert [u.code for u in units.children("05563")] == ["05563-01", "05563-02"]
    below = [u.code for u in units.descendants("19")]
    assert len(below) == 92 + 2
    assert below.index("05563-01") == below.index("05563") + 1  # depth first
    assert units.hamlets("19") == units.hamlets("05563") == units.hamlets()

    scope = units.expand(["05563", "23377"])
    assert scope == {"05563", "05563-01", "05563-02", "23377"}
    assert units.expand("19") == {"19", *below}
    with pytest.raises(UnknownUnit) as err:
        units.expand(["19", "99"])
    assert isinstance(err.value, KeyError)
    assert "'99'" in str(err.value) and "no administrative unit" in str(err.value)


def test_seed_places_after_the_2025_merges(national: UnitRegistry) -> None:
    # domain.md §4.3: where the seeds' legacy places sit now.
    assert national.full_name("12127") == "Phường Thượng Hồng, Tỉnh Hưng Yên"
    assert national.require("33").name == "Tỉnh Hưng Yên"
    assert national.full_name("23377") == "Xã Bờ Y, Tỉnh Quảng Ngãi"
    assert national.full_name("23293") == "Phường Kon Tum, Tỉnh Quảng Ngãi"
    assert national.search("Bo Y")[0].code == "23377"
    assert national.search("kon tum", level="commune")[0].code == "23293"
    assert national.require("44").name == "Tỉnh Quảng Trị"  # legacy 44 was Quảng Bình
    assert len(national.communes("44")) == 78
    assert national.search("ba ria", level="province") == []  # merged into HCMC (79)


def test_choice_rows_cut_to_a_scope(units: UnitRegistry, tmp_path: Path) -> None:
    units.add_hamlets_csv(write_csv(tmp_path / "h.csv", [
        HEADER, ["05563-01", "Xóm Nà Pài", "05563", "", "", ""],
    ]))
    assert units.choice_rows("province", scope=["05563"]) == [{"name": "19", "label": "Tỉnh Thái Nguyên"}]
    assert units.choice_rows("commune", scope=["05563"]) == [
        {"name": "05563", "label": "Xã Phượng Tiến", "province": "19"}
    ]
    assert units.choice_rows("hamlet", scope=["19"]) == [
        {"name": "05563-01", "label": "Xóm Nà Pài", "commune": "05563"}
    ]
    assert len(units.choice_rows("commune")) == 3321


# --- hamlet CSVs ---------------------------------------------------------------------------------
def test_hamlet_csv_fields(units: UnitRegistry, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "hamlets.csv", [
        [*HEADER, "legacy_commune_code"],
        ["05563-01", "Xóm Nà Pài", "05563", "120", "xóm", "1", "5566"],
        ["5563-02", "Đồng Kem", "5563", "", "", "không", ""],  # zeros lost in a spreadsheet
        ["12127-101", "Thôn Dương Quang", "12127", "0", "", "true", "12112"],
    ], bom=True)
    added = units.add_hamlets_csv(path, source="p1")
    assert [u.code for u in added] == ["05563-01", "05563-02", "12127-101"]
    a, b, c = added
    assert (a.level, a.parent_code, a.households, a.term, a.sample, a.legacy_commune_code, a.source) == (
        "hamlet", "05563", 120, "xóm", True, "05566", "p1"
    )
    assert (b.households, b.term, b.sample, b.division_type) == (None, None, False, "thôn, tổ dân phố")
    assert (c.term, c.division_type, c.households, c.name_ascii) == ("thôn", "thôn", 0, "Thon Duong Quang")
    assert units.search("duong quang")[0].code == "12127-101"
    assert units.search("thon duong quang", level="hamlet")[0].code == "12127-101"
    assert units.full_name("12127-101") == "Thôn Dương Quang, Phường Thượng Hồng, Tỉnh Hưng Yên"


def test_bad_hamlet_rows_are_reported_with_file_and_row(units: UnitRegistry, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "bad.csv", [
        HEADER,
        ["05563-01", "Xóm Nà Pài", "05563", "", "", ""],        # line 2: fine
        ["99999-01", "Thôn Ma", "99999", "", "", ""],           # line 3: unknown commune
        ["05563-01", "Xóm Khác", "05563", "", "", ""],          # line 4: duplicate of line 2
        ["05563-1", "Xóm Sai Mã", "05563", "", "", ""],         # line 5: bad code shape
        ["12127-01", "Thôn Lạc", "05563", "", "", ""],          # line 6: code of another commune
        ["05563-03", "", "05563", "", "", ""],                  # line 7: no name
        ["05563-04", "Xóm Bốn", "05563", "nhiều", "", ""],      # line 8: households not a number
        ["05563-05", "Xóm Năm", "19", "", "", ""],              # line 9: a province, not a commune
        ["05563-06", "Xóm Sáu", "05563", "", "", "maybe"],      # line 10: bad sample flag
    ])
    with pytest.raises(HamletCSVError) as err:
        units.add_hamlets_csv(path, source="p1")
    problems = [p.text("en") for p in err.value.problems]
    assert [re.search(r"row (\d+)", p).group(1) for p in problems] == [str(n) for n in range(3, 11)]
    assert all(str(path) in p for p in problems)
    assert "99999" in problems[0] and "unknown commune" in problems[0]
    assert "row 2" in problems[1]
    assert "2-3 digits" in problems[2]
    assert "does not start with its commune code" in problems[3]
    assert "name is empty" in problems[4]
    assert "whole number" in problems[5]
    assert "unknown commune code '19'" in problems[6] and "province code" in problems[6]
    assert "sample" in problems[7]
    assert units.hamlets() == []  # nothing from a bad file is added


def test_duplicate_hamlet_from_another_plugin_names_both(units: UnitRegistry, tmp_path: Path) -> None:
    first = write_csv(tmp_path / "a.csv", [HEADER, ["05563-01", "Xóm Nà Pài", "05563", "", "", ""]])
    second = write_csv(tmp_path / "b.csv", [HEADER, ["05563-01", "Xóm Khác", "05563", "", "", ""]])
    units.add_hamlets_csv(first, source="plugin_a")
    with pytest.raises(HamletCSVError) as err:
        units.add_hamlets_csv(second, source="plugin_b")
    message = str(err.value)
    assert "plugin_a" in message and "plugin_b" in message
    assert "a.csv" in message and "b.csv" in message and "row 2" in message
    assert units.require("05563-01").name == "Xóm Nà Pài"


def test_bad_header_and_unreadable_file(units: UnitRegistry, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "h.csv", [
        ["code", "ten", "commune_code", "notes"], ["05563-01", "x", "05563", ""],
    ])
    with pytest.raises(HamletCSVError, match=r"h\.csv.*missing: name.*unknown: ten, notes"):
        units.add_hamlets_csv(path)
    with pytest.raises(HamletCSVError, match="cannot read"):
        units.add_hamlets_csv(tmp_path / "missing.csv")
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("code,name,commune_code\n05563-01,Xóm,05563\n".encode("cp1258"))
    with pytest.raises(HamletCSVError, match="not UTF-8"):
        units.add_hamlets_csv(latin1)


# --- get_units(): national list plus every plugin's hamlets --------------------------------------
@pytest.fixture
def manager_with(tmp_path: Path):
    """Install a manager with extra plugins as the process-wide one, and restore afterwards."""

    with ExitStack() as installed:
        yield lambda **plugins: installed.enter_context(plugins_installed(**plugins))


def test_get_units_collects_hamlets_from_plugins(manager_with, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "tn.csv", [HEADER, ["05563-01", "Xóm Nà Pài", "05563", "88", "", ""]])
    manager_with(tinh_a=HamletPlugin(path))
    units = get_units()
    assert get_units() is units  # cached process-wide
    hamlet = units.require("05563-01")
    assert (hamlet.source, hamlet.households) == ("tinh_a", 88)
    reset_units()
    assert get_units() is not units


def test_two_plugins_claiming_one_hamlet_fail_loudly(manager_with, tmp_path: Path) -> None:
    a = write_csv(tmp_path / "a.csv", [HEADER, ["05563-01", "Xóm Nà Pài", "05563", "", "", ""]])
    b = write_csv(tmp_path / "b.csv", [HEADER, ["05563-01", "Xóm Nà Pài", "05563", "", "", ""]])
    pm = manager_with(plugin_a=HamletPlugin(a), plugin_b=HamletPlugin(b))
    with pytest.raises(HamletCSVError, match=r"(?s)plugin_(a|b).*plugin_(a|b)"):
        load_units(pm)


def test_a_plugin_must_return_paths(manager_with) -> None:
    class Wrong:
        @hookimpl
        def hamlets(self) -> list[dict]:
            return [{"code": "05563-01"}]

    pm = manager_with(wrong=Wrong())
    with pytest.raises(PluginAnswerError, match="plugin 'wrong': hook 'hamlets'.*got dict"):
        load_units(pm)


# --- the data file and the CLI -------------------------------------------------------------------
def test_shipped_csv_matches_its_generator() -> None:
    """Regenerating from the pinned vietnam-provinces gives the shipped file (skipped if not installed)."""
    vp = pytest.importorskip("vietnam_provinces")
    if vp.__version__ != "2025.10.1":
        pytest.skip(f"vietnam-provinces {vp.__version__} installed; the CSV is pinned to 2025.10.1")
    from rasoat.core.data import make_units

    rows, meta = make_units.build_rows()
    with make_units.CSV_PATH.open(encoding="utf-8", newline="") as fh:
        assert list(csv.DictReader(fh)) == rows
    assert json.loads(make_units.META_PATH.read_text(encoding="utf-8")) == meta


def test_cli_units_search_and_show(
    manager_with, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RASOAT_DISABLE_PLUGINS", ",".join(BUILTIN_PROVINCES))  # no hamlets under 05563
    assert cli_main(["units", "search", "Phuong Tien", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found[0]["code"] == "05563" and found[0]["full_name"] == "Xã Phượng Tiến, Tỉnh Thái Nguyên"

    assert cli_main(["units", "show", "05563", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["ancestors"] == [{"code": "19", "name": "Tỉnh Thái Nguyên", "level": "province"}]
    assert shown["era"] == "2025" and shown["children"] == 0

    assert cli_main(["units", "show", "19"]) == 0
    assert "Tỉnh Thái Nguyên" in capsys.readouterr().out

    assert cli_main(["units", "show", "99"]) == 1
    assert "'99'" in capsys.readouterr().err
