"""The sign-off of the yearly classification through the CLI, on both backends: propose, send back,
propose again, accept, approve (locked), a late register change shown as "changed since approval", an
audited reopen; a commune officer cannot approve; another province's officer sees nothing.

Province 12 (Lai Châu, 38 communes, the smallest): every commune gets a population (one CSV import) and a
yearly F10; the 37 others are proposed and accepted through the library, commune 03390 through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from assessment_support import YEAR, f10, persons
from rasoat.core.assessment import signoff
from rasoat.core.cli import main as cli_main
from rasoat.core.models import Round, RoundState
from rasoat.core.storage.opening import open_store
from rasoat.core.units import get_units
from rasoat.core.users import create_user
from server_support import store_args

PROVINCE, COMMUNE = "12", "03390"


def cli(capsys: pytest.CaptureFixture[str], base: list[str], *argv: str) -> tuple[int, str, str]:
    code = cli_main([*argv, *base])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def province(tmp_path: Path, backend_url: str | None, capsys: pytest.CaptureFixture[str]):
    data = tmp_path / "data"
    base = [*store_args(data, backend_url), "--year", str(YEAR)]
    if not backend_url:  # a new embedded data directory is made on purpose (issue 16)
        assert cli_main(["init", str(data)]) == 0
    communes = [u.code for u in get_units().communes(PROVINCE)]
    csv = tmp_path / "nhan-khau.csv"
    csv.write_text("unit,population,source,as_of,on_route\n" + "".join(
        f"{c},10000,CSDL quốc gia về dân cư,2026-11-30,no\n" for c in communes
    ), encoding="utf-8")
    assert cli(capsys, base, "assessment", "population", "import", str(csv), "--by", "tinh")[0] == 0
    last_year = [b if b != str(YEAR) else str(YEAR - 1) for b in base]
    assert cli(capsys, last_year, "assessment", "population", "import", str(csv), "--by", "tinh")[0] == 0
    store = open_store(data, backend_url)
    try:
        create_user(store, "xa", "mật-khẩu-xã-1", "commune_officer", [COMMUNE])
        tinh = create_user(store, "tinh", "mật-khẩu-tỉnh-1", "province_manager", [PROVINCE])
        create_user(store, "khac", "mật-khẩu-khác-1", "province_manager", ["19"])
        store.put_round(Round(id="r-2026-qd28-lai-chau", name="Đánh giá 2026", period=f"{YEAR}-QD28",
                              form_ids=["f10_summary"], unit_codes=[PROVINCE], state=RoundState.open))
        for c in communes:
            f10(store, c, fugitives_hiding=0)
            f10(store, c, year=YEAR - 1, fugitives_hiding=0)
        persons(store, COMMUNE, 30, "user")  # R = 0,30 %: type III, flagged (open band)
        for c in communes:
            if c != COMMUNE:
                signoff.propose(store, tinh, YEAR, c, "")
                signoff.review(store, tinh, YEAR, c, accept=True)
    finally:
        store.close()
    return data, base


@pytest.mark.slow
def test_sign_off_walk_through_the_cli(province, backend_url, capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # a wide terminal: table cells are not wrapped (issue 16)
    data, base = province
    a = "assessment"
    code, out, _ = cli(capsys, base, a, "show", COMMUNE)
    assert code == 0
    assert "Nhân khẩu hiện đang cư trú / Current residents: 10000 — CSDL quốc gia về dân cư" in out
    assert "Loại III / Type III" in out and "f1_person: 30 người có hồ sơ quản lý" in out

    code, _, err = cli(capsys, base, a, "propose", COMMUNE, "--as", "xa")
    assert code == 1 and "phải ghi ý kiến" in err and "comment is required" in err
    comment = "R 0,3 %, chưa đủ 3 tiêu chí"
    assert cli(capsys, base, a, "propose", COMMUNE, "--as", "xa", "--comment", comment)[0] == 0
    code, _, err = cli(capsys, base, a, "accept", COMMUNE, "--as", "xa")
    assert code == 1 and "only a province officer" in err
    code, _, _ = cli(capsys, base, a, "send-back", COMMUNE, "--as", "tinh", "--reason", "Bổ sung số liệu F9")
    assert code == 0
    code, out, _ = cli(capsys, base, a, "status", PROVINCE, "--as", "xa", "--json")
    [mine] = json.loads(out)["communes"]  # a commune officer sees their own commune only
    assert (mine["code"], mine["state"], mine["reason"]) == (COMMUNE, "sent_back", "Bổ sung số liệu F9")
    assert cli(capsys, base, a, "propose", COMMUNE, "--as", "xa", "--comment", "Đã bổ sung")[0] == 0
    code, _, err = cli(capsys, base, a, "approve", PROVINCE, "--as", "tinh")
    assert code == 1 and "1 xã chưa được chấp nhận (03390)" in err
    assert cli(capsys, base, a, "accept", COMMUNE, "--as", "tinh")[0] == 0
    code, _, err = cli(capsys, base, a, "approve", PROVINCE, "--as", "xa")
    assert code == 1 and "only a province officer" in err
    code, out, _ = cli(capsys, base, a, "approve", PROVINCE, "--as", "tinh")
    assert code == 0 and "Đã phê duyệt (khoá) / Approved (locked)" in out

    code, _, err = cli(capsys, base, a, "send-back", COMMUNE, "--as", "tinh", "--reason", "sửa")
    assert code == 1 and "locked" in err  # the approved list is locked

    store = open_store(data, backend_url)
    try:
        persons(store, COMMUNE, 2, "user")  # a late change in the registers
    finally:
        store.close()
    code, out, _ = cli(capsys, base, a, "status", PROVINCE, "--as", "tinh")
    assert code == 0 and "03390: đã thay đổi sau phê duyệt: " in out
    assert "03390: changed since approval: " in out
    assert "with a record [managed] 30 → 32" in out
    assert "hạn trước 20/12/2026" in out and "due before 20/12/2026" in out
    assert "Đã chấp nhận / Accepted: 38" in out
    code, out, _ = cli(capsys, base, a, "status", PROVINCE, "--as", "tinh", "--json")
    row = next(c for c in json.loads(out)["communes"] if c["code"] == COMMUNE)
    assert row["changed"] == {"managed": [30, 32]} and row["inputs"]["managed"]["value"] == 32

    code, _, err = cli(capsys, base, a, "status", PROVINCE, "--as", "khac")
    assert code == 1 and "is outside khac's units" in err
    code, _, err = cli(capsys, base, a, "show", PROVINCE, "--as", "khac")
    assert code == 1 and "12" in err
    with pytest.raises(SystemExit) as exited:  # argparse: a reopen needs --reason
        cli(capsys, base, a, "reopen", PROVINCE, "--as", "tinh")
    assert exited.value.code == 2 and "--reason" in capsys.readouterr().err
    reason = "Xã 03390 có thêm 2 người"
    assert cli(capsys, base, a, "reopen", PROVINCE, "--as", "tinh", "--reason", reason)[0] == 0

    store = open_store(data, backend_url)
    try:
        actions = [(e.action, e.target, e.details.get("reason")) for e in store.iter_audit()
                   if e.action.startswith("assessment.") and e.target in (COMMUNE, PROVINCE)]
        history = [h["action"] for h in store.get_round("r-2026-qd28-lai-chau").history if h["unit"] in
                   (COMMUNE, PROVINCE)]
    finally:
        store.close()
    assert actions == [
        *[("assessment.fact", COMMUNE, None)] * 4,
        ("assessment.propose", COMMUNE, None), ("assessment.send_back", COMMUNE, "Bổ sung số liệu F9"),
        ("assessment.propose", COMMUNE, None), ("assessment.accept", COMMUNE, None),
        ("assessment.approve", PROVINCE, None), ("assessment.reopen", PROVINCE, "Xã 03390 có thêm 2 người"),
    ]
    assert history == ["assessment.propose", "assessment.send_back", "assessment.propose",
                       "assessment.accept", "assessment.approve", "assessment.reopen"]


@pytest.mark.slow
def test_the_province_workbook_read_back(province, backend_url, capsys, tmp_path) -> None:
    from openpyxl import load_workbook

    data, base = province
    a = "assessment"
    assert cli(capsys, base, a, "propose", COMMUNE, "--as", "xa", "--comment", "R 0,3 %")[0] == 0
    assert cli(capsys, base, a, "accept", COMMUNE, "--as", "tinh")[0] == 0
    code, _, err = cli(capsys, base, a, "workbook", PROVINCE, "-o", str(tmp_path / "x.xlsx"), "--as", "xa")
    assert code == 1 and "only a province officer" in err
    assert cli(capsys, base, a, "approve", PROVINCE, "--as", "tinh")[0] == 0
    out = tmp_path / "phan-loai-2026.xlsx"
    code, _, _ = cli(capsys, base, a, "workbook", PROVINCE, "-o", str(out), "--as", "tinh",
                     "--prepared-by", "Nguyễn Văn Lập")
    assert code == 0
    wb = load_workbook(out)
    assert wb.sheetnames == ["Danh sách xã", "Tỉnh", "So sánh", "Cần xem xét"]
    ws = wb["Danh sách xã"]
    assert ws.page_setup.orientation == "landscape" and ws.page_setup.paperSize == 9
    assert ws["A5"].value == "STT / No." and ws["D5"].value == "Phân loại / Class"
    rows = [r for r in ws.iter_rows(min_row=6, values_only=True) if isinstance(r[0], int)]
    assert len(rows) == 38 and len({r[1] for r in rows}) == 38  # one row per commune
    mine = next(r for r in rows if r[1] == COMMUNE)
    # class, residents, with a record, R %, P, arrested, A %, plants, area, route, state
    assert mine[3:14] == ("Loại III / Type III", 10000, 30, pytest.approx(0.3), 0, 0, 0, 0, 0,
                          "Không / No", "Đã chấp nhận / Accepted")
    assert all(r[3] == "Không ma túy / Drug-free" for r in rows if r[1] != COMMUNE)
    assert "Đã phê duyệt bởi / approved by tinh" in ws["A3"].value
    texts = [c for row in ws.iter_rows(values_only=True) for c in row if isinstance(c, str)]
    assert "NGƯỜI LẬP BIỂU / Prepared by" in texts and "Nguyễn Văn Lập" in texts and "tinh" in texts

    prov = {r[0]: r for r in wb["Tỉnh"].iter_rows(values_only=True) if r[0]}
    assert prov["Kết luận / Result (≥ 4/6)"][1].startswith("Không thuộc diện trọng điểm")
    assert prov["Số tiêu chí đạt / Criteria met"][1] == 0
    assert prov["1. R ≥ 0,2 %"][1] == pytest.approx(30 / 380_000 * 100)

    counts = {r[0]: r[1:] for r in wb["So sánh"].iter_rows(min_row=4, max_row=9, values_only=True)}
    assert counts["Loại III / Type III"] == (1, 0, 1)
    assert counts["Không ma túy / Drug-free"] == (37, 38, -1)
    review = list(wb["Cần xem xét"].iter_rows(min_row=2, values_only=True))
    assert [r[0] for r in review] == [COMMUNE] and "Điều 9.1.a" in review[0][2]


def test_two_officers_at_once_one_step_wins_and_is_logged_once(tmp_path, backend_url) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from assessment_support import opened, population, route
    from indicators_support import C1, small_registry

    reg = small_registry()
    with opened(tmp_path, backend_url) as store:
        admin = create_user(store, "quantri", "mật-khẩu-quản-trị-9", "admin")
        population(store, C1, 10_000)
        route(store, C1, False)
        f10(store, C1)
        signoff.propose(store, admin, YEAR, C1, "", registry=reg)

        def accept(_: int) -> str:
            try:
                signoff.review(store, admin, YEAR, C1, accept=True, registry=reg)
                return "ok"
            except signoff.SignoffError:
                return "refused"

        with ThreadPoolExecutor(4) as pool:
            outcomes = sorted(pool.map(accept, range(4)))
        assert outcomes == ["ok", "refused", "refused", "refused"]
        accepts = [e for e in store.iter_audit() if e.action == "assessment.accept"]
        assert len(accepts) == 1 and signoff.commune_doc(store, YEAR, C1)["state"] == "accepted"


def test_a_late_change_of_the_province_class_is_shown_not_written(tmp_path, backend_url) -> None:
    from assessment_support import crop, hotspot, opened, population, route
    from indicators_support import C1, C2, C3, H11, H21, small_registry

    reg = small_registry()
    with opened(tmp_path, backend_url) as store:
        admin = create_user(store, "quantri", "mật-khẩu-quản-trị-9", "admin")
        for code in (C1, C2, C3):
            population(store, code, 10_000)
            route(store, code, False)
            f10(store, code)
        persons(store, H11, 60, "user")
        hotspot(store, H11)
        hotspot(store, H11)
        for _ in range(3):
            hotspot(store, H21)
        crop(store, H21, plants=9_000)
        route(store, "19", True)  # P = 5, type I+II 1/3, 9,000 plants, route: 4 of 6 → complex
        for code in (C1, C2, C3):
            signoff.propose(store, admin, YEAR, code, "xem xét", registry=reg)
            signoff.review(store, admin, YEAR, code, accept=True, registry=reg)
        approved = signoff.approve(store, admin, YEAR, "19", registry=reg)
        assert approved["province"]["class"] == "complex"
        route(store, "19", False)  # the route decision withdrawn after approval: 3 of 6
        st = signoff.province_status(store, admin, YEAR, "19", registry=reg)
        assert st["province_changed"] == ("complex", "not_complex")
        assert signoff.list_doc(store, YEAR, "19")["province"]["class"] == "complex"  # never overwritten
