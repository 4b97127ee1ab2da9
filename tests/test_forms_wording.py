"""Vietnamese that officers write (issue 19, item 7; ../shared/reference/plan_coverage.md §3): the labels,
hints and choices the review found wrong or awkward now read as the law and the plans say, in the XForms
the phones receive."""

from __future__ import annotations

import re

import pytest
from rasoat.core.formreg import FormCatalogue

# (form, text the phone must show, text it must no longer show, or None)
FIXED = [
    ("f10_summary", "Số người đang cư trú nghiện ma túy, sử dụng trái phép chất ma túy (không tính "
     "người đang điều trị nghiện bằng thuốc thay thế",
     "Người cư trú đang nghiện, sử dụng trái phép (trừ"),  # V2
    ("f10_summary", "Số người sử dụng trái phép chất ma túy có trong danh sách",
     "Người sử dụng trái phép chất ma túy đang quản lý"),  # V4
    ("f10_summary", "Số điểm, tụ điểm phức tạp về ma túy đang hoạt động",
     ">Điểm, tụ điểm đang hoạt động<"),  # V3
    ("f10_summary", "Số vụ việc, vụ án về ma túy được phát hiện", ">Số vụ phát hiện<"),  # V6
    ("f10_summary", "Số vụ án về ma túy đã giải quyết, xét xử", ">Số vụ đã giải quyết<"),  # V6
    ("f10_summary", "Số thôn, xóm có hòm thư tố giác và bảng niêm yết số điện thoại đường dây nóng",
     "Thôn, xóm có hòm thư và bảng đường dây nóng"),  # V7
    ("f10_summary", "Số hồ sơ đề nghị áp dụng biện pháp đưa vào cơ sở cai nghiện bắt buộc đã lập",
     "Hồ sơ đề nghị cai nghiện bắt buộc đã lập"),  # V9
    ("f5_hamlet", "Số điểm trồng cây có chứa chất ma túy được phát hiện", "Số điểm phát hiện trồng"),  # V5
    ("f3_school", "Số học sinh bị phát hiện liên quan đến ma túy", "Số học sinh phát hiện liên quan"),  # V10
    ("f4_enterprise", "không để xảy ra tệ nạn ma túy tại cơ sở", "không để xảy ra ma túy<"),  # V11
    ("f1_person", "Lập mới (người chưa có trong danh sách)", ">Đăng ký mới<"),  # V13
    ("f1_person", "Là người chấp hành xong án phạt tù về tội phạm ma túy trở về địa phương?",
     ">Người chấp hành xong án phạt tù về ma túy trở về<"),  # V14
    ("f1_person", "Đang chấp hành án phạt tù, bị tạm giữ, tạm giam", "Đang chấp hành án, ở cơ sở"),  # V15
    ("f1_person", "nghi do sử dụng ma túy", "hành vi nghi do ma túy"),  # V16
    ("f1_person", "Luật Phòng, chống ma túy 120/2025/QH15", None),  # V18
    ("f6_hotspot", "Tái phức tạp (hình thành lại)", ">Tái hoạt động<"),  # V19
    ("f8_activity", "Trên không gian mạng (trực tuyến)", ">Trên mạng<"),  # V20
]


@pytest.fixture(scope="module")
def xforms() -> dict[str, str]:
    catalogue = FormCatalogue()
    return {form: catalogue[form].form.xml.decode() for form in {f for f, _, _ in FIXED}}


@pytest.mark.parametrize(("form", "new", "old"), FIXED)
def test_the_reviewed_wording_reaches_the_phone(
    xforms: dict[str, str], form: str, new: str, old: str | None
) -> None:
    assert new in xforms[form]
    if old is not None:
        assert old not in xforms[form]


def test_the_person_form_title_uses_the_statutory_terms() -> None:
    title = FormCatalogue()["f1_person"].form.title
    assert title.endswith("người nghiện ma túy, người bị quản lý sau cai nghiện ma túy")  # V17


@pytest.mark.parametrize("form", ["f3_school", "f4_enterprise", "f5_hamlet", "tn_xom_checklist"])
def test_the_drug_free_result_is_said_in_words_not_yes_or_no(form: str) -> None:
    """V1: the result note showed the raw choice ("yes"/"no") on a Vietnamese screen; now one of two notes,
    by the result, says "ĐẠT" or "CHƯA ĐẠT tiêu chí không ma túy" (V12: "tiêu chí", as QĐ 28 says)."""
    xml = FormCatalogue()[form].form.xml.decode()
    assert "ĐẠT tiêu chí không ma túy" in xml and "CHƯA ĐẠT tiêu chí không ma túy" in xml
    assert not re.search(r'<output value="[^"]*/meets_standard ?"/>', xml)  # no raw value in a label
    assert "Đạt chuẩn không ma túy:" not in xml


def test_the_three_good_area_result_is_said_in_words_not_yes_or_no() -> None:
    """V1 for qt_03tot: each group's result reads "Đạt" / "Chưa đạt", the overall one "ĐẠT" / "CHƯA ĐẠT"."""
    xml = FormCatalogue()["qt_03tot"].form.xml.decode()
    assert "Phong trào tốt: <output" in xml and "'Đạt', 'Chưa đạt'" in xml
    assert 'ĐẠT "địa bàn 03 tốt"' in xml.replace("&quot;", '"') and "CHƯA ĐẠT" in xml
    vi = xml.split('lang="Tiếng Việt (vi)"')[1].split("</translation>")[0]
    assert not re.search(r'<output value="[^"]*/(pt_ok|ql_ok|dt_ok|is_03tot) ?"/>', vi)  # no raw yes/no


def test_the_location_question_names_every_kind_of_hamlet() -> None:
    """V21: TP Hồ Chí Minh's "khu phố, ấp" are named beside "thôn, xóm, bản, tổ dân phố" in every form."""
    for entry in FormCatalogue():
        hamlet = [c for c in entry.form.schema["children"] if c["name"] == "hamlet"]
        if hamlet:
            label = hamlet[0]["label"]["Tiếng Việt (vi)"]
            assert label == "Thôn, xóm, bản, ấp, khu phố, tổ dân phố", entry.form.form_id


def test_every_calculation_of_the_commune_summary_has_a_vietnamese_label() -> None:
    """V25: the raw export's headers for F10's calculations (r_pct, crit_a, qd28_class …) are Vietnamese
    labels, and the final class has a column in words."""
    children = FormCatalogue()["f10_summary"].form.schema["children"]
    calculates = {c["name"]: c.get("label") for c in children if c.get("type") == "calculate"}
    unlabelled = [n for n, label in calculates.items()
                  if n != "admin_data_version" and not (label or {}).get("Tiếng Việt (vi)")]
    assert unlabelled == []
    assert calculates["r_pct"]["Tiếng Việt (vi)"].endswith("(R, %)")
    assert calculates["qd28_final_label"]["Tiếng Việt (vi)"] == "Phân loại cuối cùng"
    # the raw export's Vietnamese headers (core.excel.schema): no bare field name is left for them
    from rasoat.core.excel.schema import build_tables

    table = build_tables(FormCatalogue()["f10_summary"].form.schema)
    headers = [h for c in table.columns for h in c.headers()]
    assert "Phân loại cuối cùng" in headers and "Phân loại tính theo QĐ 28/2025/QĐ-TTg (mã)" in headers
    assert not {"r_pct", "crit_a", "qd28_class", "qd28_final"} & set(headers)
