"""The raw data workbook, written from a real pyxform schema and read back with openpyxl."""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from pyxform.xls2xform import convert
from rasoat.core.excel import RawExportOptions, write_raw_workbook
from rasoat.core.excel.personal import fallback_personal_fields
from rasoat.core.excel.schema import merge_schemas
from rasoat.core.models import FormVersion, ReviewState, Submission

VI = "label::Tiếng Việt (vi)"
EN = "label::English (en)"

SURVEY = [
    ["type", "name", VI, EN, "bind::rasoat:sensitive"],
    ["start", "start"],
    ["select_one_from_file provinces.csv", "province", "Tỉnh", "Province"],
    ["text", "note_text", "Ghi chú", "Notes"],
    ["begin group", "hh", "Hộ gia đình", "Household"],
    ["text", "head_name", "Họ tên chủ hộ", "Head of household", "P"],
    ["integer", "members", "Số nhân khẩu", "Household members"],
    ["decimal", "area", "Diện tích (m²)", "Area (m²)"],
    ["date", "sign_date", "Ngày ký", "Date signed"],
    ["select_multiple reason", "reasons", "Lý do", "Reasons"],
    ["select_one yes_no", "pledged", "Đã ký cam kết", "Signed the pledge"],
    ["geopoint", "loc", "Vị trí", "Location"],
    ["image", "photo", "Ảnh biên bản", "Photo"],
    ["end group"],
    ["begin repeat", "member", "Thành viên", "Member"],
    ["text", "name", "Họ tên", "Name", "P"],
    ["integer", "age", "Tuổi", "Age"],
    ["begin repeat", "visit", "Lần gặp", "Visit"],
    ["date", "visit_date", "Ngày gặp", "Visit date"],
    ["end repeat"],
    ["end repeat"],
    ["dateTime", "checked_at", "Thời điểm kiểm tra", "Checked at"],
]
CHOICES = [
    ["list_name", "name", VI, EN],
    ["reason", "away", "Vắng nhà", "Away"],
    ["reason", "refused", "Từ chối", "Refused"],
    ["reason", "other", "Khác", "Other"],
    ["yes_no", "yes", "Có", "Yes"],
    ["yes_no", "no", "Không", "No"],
]


def build_schema(survey: list[list[Any]] = SURVEY, version: str = "2026010101") -> dict[str, Any]:
    """Compile a small XLSForm with pyxform (no ODK Validate) and return its JSON schema."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "survey"
    for row in survey:
        ws.append(row)
    choices = wb.create_sheet("choices")
    for row in CHOICES:
        choices.append(row)
    settings = wb.create_sheet("settings")
    settings.append(["form_id", "version", "form_title", "default_language", "namespaces"])
    settings.append(["hh_test", version, "Phiếu thử", "Tiếng Việt (vi)", 'rasoat="https://rasoat.vn/xforms"'])
    buf = io.BytesIO()
    wb.save(buf)
    return convert(xlsform=buf.getvalue(), file_type=".xlsx")._survey.to_json_dict()


def publish_test_form(store: Any) -> dict[str, Any]:
    """Publish the test form ``hh_test`` (the schema of ``build_schema()``) into ``store``; its schema."""
    schema = build_schema()
    xml = b"<h:html/>"
    store.put_form(
        FormVersion(
            form_id="hh_test", version="2026010101", title="Phiếu thử", md5=hashlib.md5(xml).hexdigest()
        ),
        xml,
        schema,
        {},
    )
    return schema


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return build_schema()


def make_sub(n: int, **fields: Any) -> Submission:
    base: dict[str, Any] = {
        "province": "19",
        "note_text": "bình thường",
        "hh/head_name": "Nguyễn Văn An",
        "hh/members": "4",
        "hh/area": "12.5",
        "hh/sign_date": "2026-03-05",
        "hh/reasons": "away other",
        "hh/pledged": "yes",
        "hh/loc": "21.59 105.84 30.5 4.2",
        "hh/photo": "bien-ban.jpg",
        "checked_at": "2026-03-05T10:15:00.000+07:00",
        "member": [
            {"name": "Nguyễn Văn An", "age": "45", "visit": [{"visit_date": "2026-02-01"}]},
            {
                "name": "Trần Thị Bình",
                "age": "41",
                "visit": [{"visit_date": "2026-02-02"}, {"visit_date": ""}],
            },
        ],
        "meta/instanceID": f"uuid:{n:04d}",
    }
    base.update(fields)
    return Submission(
        instance_id=f"uuid:{n:04d}",
        form_id="hh_test",
        form_version="2026010101",
        round_id="r2026",
        unit_code="05563",
        collector_id="u1",
        received_at=datetime(2026, 3, 5, 20, 30, tzinfo=UTC),  # 03:30 on 6 March in Vietnam
        xml_md5="0" * 32,
        fields=base,
        review_state=ReviewState.approved,
    )


def export(schema: dict, subs: list[Submission], tmp_path: Path, **opts: Any) -> tuple[Any, Path]:
    out = tmp_path / "out.xlsx"
    units = opts.pop("units", None)
    stats = write_raw_workbook(
        schema,
        iter(subs),
        out,
        form_id="hh_test",
        options=RawExportOptions(**opts),
        units=units,
        collectors={"u1": "Lò Văn Thu"},
    )
    return stats, out


def rows(ws: Any) -> list[tuple]:
    return list(ws.iter_rows(values_only=True))


def by_header(ws: Any) -> list[dict[str, Any]]:
    data = rows(ws)
    return [dict(zip(data[0], r, strict=False)) for r in data[1:]]


def test_sheets_and_vietnamese_headers(schema: dict, tmp_path: Path) -> None:
    stats, out = export(schema, [make_sub(1)], tmp_path)
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == ["hh_test", "Thành viên", "Lần gặp", "Thông tin"]
    headers = rows(wb["hh_test"])[0]
    assert headers[:3] == ("KEY", "Thời điểm gửi", "Đợt rà soát")
    assert "Trạng thái duyệt" in headers
    assert "Hộ gia đình / Số nhân khẩu" in headers
    assert "Hộ gia đình / Diện tích (m²)" in headers
    assert "Hộ gia đình / Vị trí - vĩ độ" in headers
    assert wb["hh_test"].freeze_panes == "A2"
    assert stats.submissions == 1 and stats.rows == {"hh_test": 1, "member": 2, "visit": 3}


def test_cells_are_typed(schema: dict, tmp_path: Path) -> None:
    _, out = export(schema, [make_sub(1)], tmp_path)
    row = by_header(openpyxl.load_workbook(out)["hh_test"])[0]
    assert row["Hộ gia đình / Số nhân khẩu"] == 4 and isinstance(row["Hộ gia đình / Số nhân khẩu"], int)
    assert row["Hộ gia đình / Diện tích (m²)"] == 12.5
    assert row["Hộ gia đình / Ngày ký"] == datetime(2026, 3, 5)
    assert row["Thời điểm kiểm tra"] == datetime(2026, 3, 5, 10, 15)
    assert row["Thời điểm gửi"] == datetime(2026, 3, 6, 3, 30)  # UTC stored, Vietnam time shown
    assert (
        row["Hộ gia đình / Vị trí - vĩ độ"],
        row["Hộ gia đình / Vị trí - kinh độ"],
        row["Hộ gia đình / Vị trí - độ cao"],
        row["Hộ gia đình / Vị trí - độ chính xác"],
    ) == (21.59, 105.84, 30.5, 4.2)
    assert row["Hộ gia đình / Đã ký cam kết"] == "Có"
    assert row["Trạng thái duyệt"] == "Đã duyệt"
    assert row["Người thu thập"] == "Lò Văn Thu"
    assert row["Đợt rà soát"] == "r2026"
    assert row["Mã xã"] == "05563"


def test_unreadable_numbers_and_dates_stay_as_text(schema: dict, tmp_path: Path) -> None:
    sub = make_sub(1, **{"hh/members": "bốn", "hh/sign_date": "05/03/2026", "hh/loc": "somewhere"})
    _, out = export(schema, [sub], tmp_path)
    row = by_header(openpyxl.load_workbook(out)["hh_test"])[0]
    assert row["Hộ gia đình / Số nhân khẩu"] == "bốn"
    assert row["Hộ gia đình / Ngày ký"] == "05/03/2026"
    assert row["Hộ gia đình / Vị trí - vĩ độ"] == "somewhere"


def test_select_multiple_answer_and_one_column_per_choice(schema: dict, tmp_path: Path) -> None:
    unanswered = make_sub(2)
    del unanswered.fields["hh/reasons"]
    _, out = export(schema, [make_sub(1), unanswered], tmp_path)
    first, second = by_header(openpyxl.load_workbook(out)["hh_test"])
    assert first["Hộ gia đình / Lý do"] == "Vắng nhà; Khác"
    assert first["Hộ gia đình / Lý do: Vắng nhà"] == 1
    assert first["Hộ gia đình / Lý do: Từ chối"] == 0
    assert first["Hộ gia đình / Lý do: Khác"] == 1
    assert second["Hộ gia đình / Lý do"] is None and second["Hộ gia đình / Lý do: Vắng nhà"] is None


def test_repeat_sheets_join_by_keys(schema: dict, tmp_path: Path) -> None:
    _, out = export(schema, [make_sub(1), make_sub(2)], tmp_path, include_personal=True)
    wb = openpyxl.load_workbook(out)
    main = by_header(wb["hh_test"])
    members = by_header(wb["Thành viên"])
    visits = by_header(wb["Lần gặp"])
    assert [m["KEY"] for m in main] == ["uuid:0001", "uuid:0002"]
    assert [m["KEY"] for m in members[:2]] == ["uuid:0001/member[1]", "uuid:0001/member[2]"]
    assert {m["PARENT_KEY"] for m in members} == {"uuid:0001", "uuid:0002"}
    assert [m["Thứ tự"] for m in members] == [1, 2, 1, 2]
    assert members[1]["Họ tên"] == "Trần Thị Bình" and members[1]["Tuổi"] == 41
    member_keys = {m["KEY"] for m in members}
    assert all(v["PARENT_KEY"] in member_keys for v in visits)
    assert visits[1]["KEY"] == "uuid:0001/member[2]/visit[1]"
    assert visits[1]["instanceID"] == "uuid:0001"
    assert visits[1]["Ngày gặp"] == datetime(2026, 2, 2)
    assert visits[2]["Ngày gặp"] is None  # an empty answer is an empty cell


def test_sheet_continues_when_full(schema: dict, tmp_path: Path) -> None:
    subs = [make_sub(i) for i in range(7)]
    stats, out = export(schema, subs, tmp_path, max_rows=4)  # a header and three rows per sheet
    wb = openpyxl.load_workbook(out)
    mains = [n for n in wb.sheetnames if n.startswith("hh_test")]
    assert mains == ["hh_test", "hh_test (2)", "hh_test (3)"]
    keys = [r["KEY"] for n in mains for r in by_header(wb[n])]
    assert keys == [f"uuid:{i:04d}" for i in range(7)]
    assert all(rows(wb[n])[0] == rows(wb["hh_test"])[0] for n in mains)
    member_sheets = [n for n in wb.sheetnames if n.startswith("Thành viên")]
    assert len(member_sheets) == 5  # 14 member rows, 3 per sheet
    assert sum(len(by_header(wb[n])) for n in member_sheets) == 14 == stats.rows["member"]


def test_formula_like_answers_are_text(schema: dict, tmp_path: Path) -> None:
    evil = '=HYPERLINK("http://evil.example","bấm vào đây")'
    sub = make_sub(1, note_text=evil, **{"hh/head_name": "+84912345678"})
    sub.fields["member"][0]["name"] = "@SUM(1+1)"
    _, out = export(schema, [sub], tmp_path, include_personal=True)
    wb = openpyxl.load_workbook(out)
    row = by_header(wb["hh_test"])[0]
    assert row["Ghi chú"] == evil
    header = rows(wb["hh_test"])[0]
    cell = wb["hh_test"].cell(row=2, column=header.index("Ghi chú") + 1)
    assert cell.data_type == "s" and cell.quotePrefix
    assert by_header(wb["Thành viên"])[0]["Họ tên"] == "@SUM(1+1)"
    with zipfile.ZipFile(out) as z:
        sheets = [n for n in z.namelist() if n.startswith("xl/worksheets/sheet")]
        assert not any(b"<f>" in z.read(n) for n in sheets)  # no formula anywhere


def test_personal_columns_left_out_unless_asked(schema: dict, tmp_path: Path) -> None:
    stats, out = export(schema, [make_sub(1)], tmp_path)
    wb = openpyxl.load_workbook(out)
    assert "Hộ gia đình / Họ tên chủ hộ" not in rows(wb["hh_test"])[0]
    assert "Họ tên" not in rows(wb["Thành viên"])[0]
    assert set(stats.dropped_columns) == {"hh/head_name", "member/name"}
    assert not any("Nguyễn Văn An" in str(c) for r in rows(wb["hh_test"]) for c in r)

    stats, out = export(schema, [make_sub(1)], tmp_path, include_personal=True)
    row = by_header(openpyxl.load_workbook(out)["hh_test"])[0]
    assert row["Hộ gia đình / Họ tên chủ hộ"] == "Nguyễn Văn An"
    assert stats.dropped_columns == []


def test_drop_fields_by_name_or_path(schema: dict, tmp_path: Path) -> None:
    _, out = export(schema, [make_sub(1)], tmp_path, drop_fields=frozenset({"note_text", "hh/area", "visit"}))
    wb = openpyxl.load_workbook(out)
    header = rows(wb["hh_test"])[0]
    assert "Ghi chú" not in header and "Hộ gia đình / Diện tích (m²)" not in header
    assert "Lần gặp" not in wb.sheetnames


def test_english_labels_and_field_names(schema: dict, tmp_path: Path) -> None:
    _, out = export(schema, [make_sub(1)], tmp_path, labels="en")
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == ["hh_test", "Member", "Visit", "About"]
    row = by_header(wb["hh_test"])[0]
    assert row["Household / Household members"] == 4
    assert row["Household / Reasons: Away"] == 1
    assert row["Household / Signed the pledge"] == "Yes"
    assert row["Review state"] == "Approved"

    _, out = export(schema, [make_sub(1)], tmp_path, labels="none")
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames[:3] == ["hh_test", "member", "visit"]
    row = by_header(wb["hh_test"])[0]
    assert row["hh/members"] == 4
    assert row["hh/reasons"] == "away other" and row["hh/reasons/refused"] == 0
    assert row["hh/pledged"] == "yes"
    assert row["hh/loc-Latitude"] == 21.59
    assert row["review_state"] == "approved"


def test_without_group_prefix_and_with_values(schema: dict, tmp_path: Path) -> None:
    _, out = export(schema, [make_sub(1)], tmp_path, group_prefix=False, choice_labels=False)
    row = by_header(openpyxl.load_workbook(out)["hh_test"])[0]
    assert row["Số nhân khẩu"] == 4
    assert row["Đã ký cam kết"] == "yes"


def test_attachments_link_to_the_server(schema: dict, tmp_path: Path) -> None:
    _, out = export(schema, [make_sub(1)], tmp_path, attachment_url="https://rasoat.example/att")
    ws = openpyxl.load_workbook(out)["hh_test"]
    header = rows(ws)[0]
    cell = ws.cell(row=2, column=header.index("Hộ gia đình / Ảnh biên bản") + 1)
    assert cell.value == "bien-ban.jpg"
    assert cell.hyperlink.target == "https://rasoat.example/att/uuid%3A0001/bien-ban.jpg"


@dataclass
class FakeUnit:
    name: str
    parent_code: str | None
    level: str


class FakeUnits:
    """The part of core.units' registry the export uses (get)."""

    units = {
        "19": FakeUnit("Tỉnh Thái Nguyên", None, "province"),
        "05563": FakeUnit("Xã Phượng Tiến", "19", "commune"),
        "05563-01": FakeUnit("Xóm Nà Kéo", "05563", "hamlet"),
    }

    def get(self, code: str) -> FakeUnit | None:
        return self.units.get(code)


def test_unit_codes_and_names(schema: dict, tmp_path: Path) -> None:
    hamlet = make_sub(2)
    hamlet.unit_code = "05563-01"
    _, out = export(schema, [make_sub(1), hamlet], tmp_path, units=FakeUnits())
    first, second = by_header(openpyxl.load_workbook(out)["hh_test"])
    assert (first["Mã tỉnh"], first["Tên tỉnh"], first["Mã xã"], first["Tên xã"]) == (
        "19",
        "Tỉnh Thái Nguyên",
        "05563",
        "Xã Phượng Tiến",
    )
    assert first["Mã thôn"] is None
    assert (second["Mã thôn"], second["Tên thôn, tổ dân phố"], second["Tên xã"]) == (
        "05563-01",
        "Xóm Nà Kéo",
        "Xã Phượng Tiến",
    )


def test_real_unit_registry_names_a_commune(schema: dict, tmp_path: Path) -> None:
    from rasoat.core.units import get_units

    _, out = export(schema, [make_sub(1)], tmp_path, units=get_units())
    row = by_header(openpyxl.load_workbook(out)["hh_test"])[0]
    assert row["Tên xã"] == "Xã Phượng Tiến" and row["Mã tỉnh"] == "19" and "Thái Nguyên" in row["Tên tỉnh"]


def test_writes_to_a_file_object(schema: dict) -> None:
    buf = io.BytesIO()
    write_raw_workbook(schema, [make_sub(1)], buf, form_id="hh_test")
    wb = openpyxl.load_workbook(io.BytesIO(buf.getvalue()))
    assert wb.sheetnames[0] == "hh_test"


def test_empty_export_still_has_headers(schema: dict, tmp_path: Path) -> None:
    stats, out = export(schema, [], tmp_path)
    wb = openpyxl.load_workbook(out)
    assert stats.submissions == 0
    assert rows(wb["hh_test"])[0][0] == "KEY" and len(rows(wb["hh_test"])) == 1


def test_versions_merge_without_losing_old_questions() -> None:
    old = build_schema(SURVEY[:4] + [["integer", "old_count", "Số cũ", "Old count"]], "2025010101")
    new = build_schema(SURVEY, "2026010101")
    merged = merge_schemas([old, new])
    names = [c["name"] for c in merged["children"]]
    assert "old_count" in names and names.index("old_count") > names.index("checked_at")
    assert "member" in names


def test_national_pledge_form_keeps_household_names_out(tmp_path: Path) -> None:
    """F2 has no sensitivity marks yet: the fallback list keeps head names and codes out."""
    form = Path(__file__).resolve().parents[1] / "forms" / "f2_pledge.xlsx"
    if not form.exists():
        pytest.skip("forms/f2_pledge.xlsx not there yet")
    schema = convert(xlsform=str(form))._survey.to_json_dict()
    drop = fallback_personal_fields("f2_pledge", schema)
    assert {"head_name", "household_code"} <= drop
    sub = Submission(
        instance_id="uuid:f2",
        form_id="f2_pledge",
        form_version="1",
        xml_md5="0" * 32,
        unit_code="05563-01",
        fields={
            "province": "19",
            "commune": "05563",
            "hamlet": "05563-01",
            "mode": "list",
            "admin_data_version": "2025-07-01",
            "households_total": "1",
            "household": [
                {
                    "head_name": "Hoàng Văn Dũng",
                    "household_code": "NK-01",
                    "members": "5",
                    "pledged": "yes",
                    "pledge_date": "2026-03-01",
                },
            ],
        },
    )
    out = tmp_path / "f2.xlsx"
    stats = write_raw_workbook(
        schema, [sub], out, form_id="f2_pledge", options=RawExportOptions(drop_fields=drop)
    )
    wb = openpyxl.load_workbook(out)
    household = by_header(wb["Hộ gia đình"])[0]
    assert household["Số nhân khẩu"] == 5 and household["Ngày ký"] == datetime(2026, 3, 1)
    assert "Họ tên chủ hộ" not in household
    assert "household/head_name" in stats.dropped_columns
    main = by_header(wb["f2_pledge"])[0]
    assert main["households_total"] == 1  # a calculate reads as a number when it is one…
    assert main["admin_data_version"] == "2025-07-01"  # …and stays text when it is not
    assert not any("Hoàng Văn Dũng" in str(c) for ws in wb for r in rows(ws) for c in r)


def test_links_past_excels_limit_become_hyperlink_formulas(
    schema: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rasoat.core.excel.raw as raw

    monkeypatch.setattr(raw, "EXCEL_MAX_URLS", 1)  # Excel stops at 65,530 native links per sheet
    _, out = export(schema, [make_sub(1), make_sub(2)], tmp_path, attachment_url="https://rasoat.example/att")
    ws = openpyxl.load_workbook(out)["hh_test"]
    col = rows(ws)[0].index("Hộ gia đình / Ảnh biên bản") + 1
    assert ws.cell(row=2, column=col).hyperlink is not None
    assert ws.cell(row=3, column=col).value == (
        '=HYPERLINK("https://rasoat.example/att/uuid%3A0002/bien-ban.jpg","bien-ban.jpg")'
    )
