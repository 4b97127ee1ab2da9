"""The forms pipeline: pyxform compile, errors with file/sheet/row, encryption, the catalogue, the CLI."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
from pathlib import Path

import openpyxl
import pluggy
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from rasoat.core import hookimpl
from rasoat.core.cli import main
from rasoat.core.formreg import FormCatalogue, FormVersionConflict, compile_cached, find_media, publish_form
from rasoat.core.plugins import PluginConflict, build_manager, set_manager
from rasoat.core.storage.opening import open_store
from rasoat.core.xlsform import XLSFormError, compile_xlsform

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "xlsform"
FORMS = ROOT / "forms"
VI, EN = "Tiếng Việt (vi)", "English (en)"


def write_form(path: Path, form_id: str, label: str = "Họ và tên", version: str = "2026010101") -> Path:
    """A small valid XLSForm, written the way an officer would in Excel."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "survey"
    ws.append(["type", "name", f"label::{VI}", f"label::{EN}"])
    ws.append(["select_one_from_file hamlets.csv", "hamlet", "Thôn, xóm", "Hamlet"])
    ws.append(["text", "full_name", label, "Full name"])
    ws.append(["select_multiple svc", "services", "Dịch vụ", "Services"])
    ch = wb.create_sheet("choices")
    ch.append(["list_name", "name", f"label::{VI}", f"label::{EN}"])
    ch.append(["svc", "counselling", "Tư vấn", "Counselling"])
    ch.append(["svc", "methadone", "Điều trị thay thế", "Methadone"])
    st = wb.create_sheet("settings")
    st.append(["form_title", "form_id", "version", "default_language"])
    st.append([f"Biểu mẫu {form_id}", form_id, version, VI])
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


# --- errors name the file, the sheet and the row ---------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "validate", "english"),
    [
        ("bad_type.xlsx", False, "Unknown question type 'texxt'"),
        ("missing_list.xlsx", False, "List name not in choices sheet: colours"),
        # pyxform accepts this one: only ODK Validate sees the broken relevance expression
        ("bad_relevant.xlsx", True, "display condition"),
    ],
)
def test_broken_forms_report_file_sheet_and_row(fixture: str, validate: bool, english: str) -> None:
    with pytest.raises(XLSFormError) as info:
        compile_xlsform(FIXTURES / fixture, validate=validate)
    err = info.value
    assert (err.sheet, err.row) == ("survey", 5)
    text = str(err)
    assert text.startswith(f"tests/fixtures/xlsform/{fixture}, sheet survey, row 5: ") or text.startswith(
        f"{FIXTURES / fixture}, sheet survey, row 5: "
    )
    assert english in text
    vietnamese = text.split(": ", 1)[1].split(" / ", 1)[0]
    assert vietnamese and vietnamese.isascii() is False  # a Vietnamese explanation comes first


def test_broken_relevance_passes_pyxform_alone() -> None:
    """Why validate=True matters: without ODK Validate the broken expression goes through."""
    form = compile_xlsform(FIXTURES / "bad_relevant.xlsx")
    assert form.form_id == "bad_relevant"


def test_missing_file_and_missing_version(tmp_path: Path) -> None:
    with pytest.raises(XLSFormError, match="file not found"):
        compile_xlsform(tmp_path / "nope.xlsx")
    path = write_form(tmp_path / "nover.xlsx", "nover")
    wb = openpyxl.load_workbook(path)
    wb["settings"].delete_cols(3)
    wb.save(path)
    with pytest.raises(XLSFormError, match="sheet settings") as info:
        compile_xlsform(path)
    assert info.value.sheet == "settings"


# --- what a compiled form records ------------------------------------------------------------------


def test_compiled_form_records_id_version_md5_media_schema(tmp_path: Path) -> None:
    form = compile_xlsform(write_form(tmp_path / "x.xlsx", "thu_nghiem"))
    assert (form.form_id, form.version, form.title) == ("thu_nghiem", "2026010101", "Biểu mẫu thu_nghiem")
    assert form.md5 == hashlib.md5(form.xml).hexdigest()
    assert form.xml.startswith(b"<?xml")
    assert form.media == ["hamlets.csv"]
    assert form.languages == [VI, EN]
    assert form.encrypted is False
    json.dumps(form.schema)  # the store keeps it as JSON
    children = {c["name"]: c for c in form.schema["children"]}
    assert children["full_name"]["label"] == {VI: "Họ và tên", EN: "Full name"}
    assert children["services"]["type"] == "select all that apply"
    assert [c["name"] for c in form.schema["choices"]["svc"]] == ["counselling", "methadone"]


def test_national_form_media_are_listed() -> None:
    f1 = compile_cached(FORMS / "f1_person.xlsx")
    assert {"provinces.csv", "communes.csv", "hamlets.csv", "persons.csv"} == set(f1.media)
    f10 = compile_cached(FORMS / "f10_summary.xlsx")
    assert "qd28_thresholds.csv" in f10.media  # pulldata file


def _public_key() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pub = key.public_key()
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    pem = pub.public_bytes(serialization.Encoding.PEM, spki).decode()
    der = pub.public_bytes(serialization.Encoding.DER, spki)
    return pem, base64.b64encode(der).decode()


def test_public_key_makes_an_encrypted_xform_that_validates() -> None:
    pem, b64 = _public_key()
    plain = compile_cached(FORMS / "f1_person.xlsx")
    enc = compile_xlsform(FORMS / "f1_person.xlsx", validate=True, public_key=pem)
    assert enc.encrypted and not plain.encrypted
    assert f'base64RsaPublicKey="{b64}"'.encode() in enc.xml
    assert len(b64) == 392  # what Collect expects of a 2048-bit key
    assert enc.md5 != plain.md5 and enc.md5 == hashlib.md5(enc.xml).hexdigest()
    assert b"<instanceID/>" in enc.xml  # Collect refuses to encrypt without it


# --- cache and media lookup ------------------------------------------------------------------------


def test_compile_cached_recompiles_an_edited_file(tmp_path: Path) -> None:
    path = write_form(tmp_path / "c.xlsx", "cached")
    first = compile_cached(path)
    assert compile_cached(path) is first
    write_form(path, "cached", label="Tên đầy đủ")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    second = compile_cached(path)
    assert second is not first and second.md5 != first.md5


def test_media_found_in_form_folder_before_shared_folder(tmp_path: Path) -> None:
    path = write_form(tmp_path / "m.xlsx", "media_test")
    (tmp_path / "hamlets.csv").write_text("name,label,commune\n", encoding="utf-8")
    found, missing = find_media(path, "media_test", ["hamlets.csv", "persons.csv", "../x.csv"])
    assert found == {"hamlets.csv": tmp_path / "hamlets.csv"}
    assert missing == ["persons.csv", "../x.csv"]
    (tmp_path / "media_test-media").mkdir()
    (tmp_path / "media_test-media" / "hamlets.csv").write_text("name,label,commune\n", encoding="utf-8")
    found, _ = find_media(path, "media_test", ["hamlets.csv"])
    assert found["hamlets.csv"] == tmp_path / "media_test-media" / "hamlets.csv"


# --- the catalogue and plugins ---------------------------------------------------------------------


class _FormsPlugin:
    def __init__(self, *paths: Path) -> None:
        self.paths = list(paths)

    @hookimpl
    def forms(self) -> list[Path]:
        return self.paths


def test_catalogue_has_the_national_forms_and_plugin_forms(tmp_path: Path) -> None:
    pm = build_manager()
    pm.register(_FormsPlugin(write_form(tmp_path / "tn.xlsx", "tn_extra")), name="thai_nguyen_test")
    catalogue = FormCatalogue(pm)
    assert catalogue["f1_person"].plugin == "rasoat.core.builtin.national"
    assert catalogue["tn_extra"].plugin == "thai_nguyen_test"
    assert catalogue["tn_extra"].missing_media == ["hamlets.csv"]
    assert catalogue["f1_person"].missing_media == []
    assert set(catalogue["f1_person"].media_bytes()) == {"provinces.csv", "communes.csv", "hamlets.csv",
                                                          "persons.csv"}
    assert catalogue.ids()[:2] == ["f1_person", "f2_pledge"] and catalogue.ids()[9] == "f10_summary"


def test_two_plugins_with_one_form_id_conflict(tmp_path: Path) -> None:
    pm = pluggy.PluginManager("rasoat")
    from rasoat.core import hookspecs

    pm.add_hookspecs(hookspecs)
    pm.register(_FormsPlugin(write_form(tmp_path / "a" / "x.xlsx", "same_id")), name="plugin_a")
    pm.register(_FormsPlugin(write_form(tmp_path / "b" / "x.xlsx", "same_id", label="Khác")), name="plugin_b")
    with pytest.raises(PluginConflict) as info:
        FormCatalogue(pm)
    assert "plugin_a" in str(info.value) and "plugin_b" in str(info.value)
    assert "same_id" in str(info.value)


def test_broken_plugin_form_names_the_plugin() -> None:
    pm = build_manager()
    pm.register(_FormsPlugin(FIXTURES / "bad_type.xlsx"), name="broken_plugin")
    with pytest.raises(XLSFormError, match="broken_plugin") as info:
        FormCatalogue(pm)
    assert info.value.row == 5


# --- publishing into a store -----------------------------------------------------------------------


def test_publish_form_refuses_same_version_with_other_bytes(tmp_path: Path) -> None:
    store = open_store(tmp_path / "data")
    try:
        first = compile_xlsform(write_form(tmp_path / "p1.xlsx", "pub"))
        stored = publish_form(store, first, {"hamlets.csv": b"name,label,commune\n"}, "upload")
        assert (stored.form_id, stored.version, stored.md5) == ("pub", "2026010101", first.md5)
        assert stored.media == ["hamlets.csv"]
        assert store.form_xml("pub", "2026010101") == first.xml
        assert store.form_schema("pub", "2026010101")["id_string"] == "pub"
        assert store.form_media("pub", "2026010101", "hamlets.csv") == b"name,label,commune\n"
        # the same bytes again: accepted, nothing changes
        assert publish_form(store, first, {}, "upload").md5 == first.md5
        changed = compile_xlsform(write_form(tmp_path / "p2.xlsx", "pub", label="Tên khác"))
        with pytest.raises(FormVersionConflict, match="2026010101"):
            publish_form(store, changed, {}, "upload")
        newer = compile_xlsform(write_form(tmp_path / "p3.xlsx", "pub", label="Khác", version="2026010102"))
        assert publish_form(store, newer, {}, "upload").version == "2026010102"
        assert store.get_form("pub").version == "2026010102"
    finally:
        store.close()


# --- the command line ------------------------------------------------------------------------------


@pytest.fixture()
def fresh_manager():
    yield
    set_manager(None)


def test_cli_forms_list_json(capsys: pytest.CaptureFixture[str], fresh_manager: None) -> None:
    assert main(["forms", "list", "--json"]) == 0
    forms = {f["form_id"]: f for f in json.loads(capsys.readouterr().out)}
    assert {f"f{i}" for i in range(1, 11)} <= {k.split("_")[0] for k in forms}
    f2 = forms["f2_pledge"]
    assert f2["plugin"] == "rasoat.core.builtin.national" and f2["version"] == "2026120720"
    assert f2["md5"] == hashlib.md5(compile_cached(FORMS / "f2_pledge.xlsx").xml).hexdigest()
    assert "persons.csv" in forms["f1_person"]["media"]


def test_cli_forms_build_writes_xforms_and_media(tmp_path: Path, fresh_manager: None) -> None:
    out = tmp_path / "build"
    assert main(["forms", "build", str(out)]) == 0
    assert (out / "f1_person.xml").read_bytes() == compile_cached(FORMS / "f1_person.xlsx").xml
    assert (out / "f1_person-media" / "persons.csv").is_file()
    assert (out / "f10_summary-media" / "qd28_thresholds.csv").is_file()


def test_cli_forms_validate_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       fresh_manager: None) -> None:
    good = write_form(tmp_path / "good.xlsx", "good")
    bad = tmp_path / "bad_type.xlsx"
    shutil.copy(FIXTURES / "bad_type.xlsx", bad)
    assert main(["forms", "validate", str(bad), str(good)]) == 1
    captured = capsys.readouterr()
    assert "OK" in captured.out and "good" in captured.out
    assert "sheet survey, row 5" in captured.err
    assert main(["forms", "validate", str(good)]) == 0
