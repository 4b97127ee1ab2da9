"""The CSV zip export (ODK Central's layout) and the xlsx workbook, read back and compared with the store.

Submissions go into a real embedded store; the CSV files are read with the csv module, the workbook with
openpyxl, and every cell is checked against the submission's own answers (not against the writer's code).
"""

from __future__ import annotations

import csv
import hashlib
import io
import random
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from rasoat.core.cli import main
from rasoat.core.excel.cells import VN_TZ
from rasoat.core.excel.from_store import ExportFilters, export_form
from rasoat.core.excel.raw import RawExportOptions
from rasoat.core.models import ReviewState, Submission
from rasoat.core.storage.opening import open_store
from test_excel_raw import build_schema, by_header, publish_test_form

NAMES = [
    "Nguyễn Văn Ánh",
    "Trần Thị Bích Ngọc",
    "Hoàng Đức Thắng",
    "Lưu Thị Yến",
    "Đặng Quý Hưng",
    "Lò Văn Sình",
]
NOTES = ["bình thường", "vắng nhà, hẹn lại", 'có dấu "ngoặc kép"', "xuống dòng\nhai dòng", "Điện Biên Phủ"]
REASONS = ["away", "refused", "other"]
COMMUNES = ["05563", "05566"]


def _xml(instance_id: str) -> bytes:
    return f"<data id='hh_test'><meta><instanceID>{instance_id}</instanceID></meta></data>".encode()


def _subs(n: int, version: str) -> list[Submission]:
    """Varied answers: Vietnamese text, select_multiple subsets, dates, repeats of 0–3 with nested visits."""
    rng = random.Random(24)
    out = []
    for i in range(n):
        when = datetime(2026, 3, 1, 16, 30, tzinfo=UTC) + timedelta(hours=7 * i)
        reasons = [r for r in REASONS if rng.random() < 0.5]
        members = []
        for _m in range(rng.randint(0, 3)):
            visits = [
                {"visit_date": (date(2026, 2, 1) + timedelta(days=rng.randint(0, 40))).isoformat()}
                for _ in range(rng.randint(0, 2))
            ]
            members.append({"name": rng.choice(NAMES), "age": str(rng.randint(1, 90)), "visit": visits})
        fields: dict[str, Any] = {
            "province": "19",
            "commune": COMMUNES[i % 2],
            "note_text": rng.choice(NOTES),
            "hh/head_name": rng.choice(NAMES),
            "hh/members": str(rng.randint(1, 9)),
            "hh/area": f"{rng.randint(10, 999)}.{rng.randint(0, 9)}",
            "hh/sign_date": (date(2026, 1, 1) + timedelta(days=i)).isoformat(),
            "hh/reasons": " ".join(reasons),
            "hh/pledged": rng.choice(["yes", "no"]),
            "hh/loc": f"21.{rng.randint(10, 99)} 105.{rng.randint(10, 99)} 30.5 4.2",
            "checked_at": f"2026-03-{1 + i:02d}T{rng.randint(0, 23):02d}:15:00.000+07:00",
            "member": members,
            "meta/instanceID": f"uuid:csv-{i:03d}",
        }
        out.append(
            Submission(
                instance_id=f"uuid:csv-{i:03d}",
                form_id="hh_test",
                form_version=version,
                round_id="r2026",
                unit_code=COMMUNES[i % 2],
                collector_id="u1",
                received_at=when,
                xml_md5=hashlib.md5(_xml(f"uuid:csv-{i:03d}")).hexdigest(),
                fields=fields,
                review_state=[ReviewState.received, ReviewState.approved][i % 2],
            )
        )
    return out


@pytest.fixture
def stored(tmp_path: Path) -> tuple[Path, list[Submission]]:
    root = tmp_path / "data"
    store = open_store(root)
    publish_test_form(store)
    subs = _subs(12, "2026010101")
    store.put_many_submissions([(s, _xml(s.instance_id), {}) for s in subs])
    store.close()
    return root, subs


def _vn(when: datetime) -> datetime:
    return when.astimezone(VN_TZ).replace(tzinfo=None)


def expected_tables(subs: list[Submission]) -> dict[str, dict[str, dict[str, Any]]]:
    """What each table must hold, from the submissions' answers: table -> KEY -> column -> value."""
    main: dict[str, dict[str, Any]] = {}
    members: dict[str, dict[str, Any]] = {}
    visits: dict[str, dict[str, Any]] = {}
    for s in subs:
        f = s.fields
        picked = set(f["hh/reasons"].split())
        lat, lon, alt, acc = (float(x) for x in f["hh/loc"].split())
        main[s.instance_id] = {
            "submitted_at": _vn(s.received_at),
            "round": "r2026",
            "review_state": s.review_state.value,
            "commune_code": s.unit_code,
            "note_text": f["note_text"],
            "hh/head_name": f["hh/head_name"],
            "hh/members": int(f["hh/members"]),
            "hh/area": float(f["hh/area"]),
            "hh/sign_date": date.fromisoformat(f["hh/sign_date"]),
            "hh/reasons": f["hh/reasons"] or None,
            **{f"hh/reasons/{r}": (int(r in picked) if picked else None) for r in REASONS},
            "hh/pledged": f["hh/pledged"],
            "hh/loc-Latitude": lat,
            "hh/loc-Longitude": lon,
            "hh/loc-Altitude": alt,
            "hh/loc-Accuracy": acc,
            "checked_at": _vn(datetime.fromisoformat(f["checked_at"])),
        }
        for i, m in enumerate(f["member"], start=1):
            key = f"{s.instance_id}/member[{i}]"
            members[key] = {
                "PARENT_KEY": s.instance_id,
                "position": i,
                "name": m["name"],
                "age": int(m["age"]),
            }
            for j, v in enumerate(m["visit"], start=1):
                visits[f"{key}/visit[{j}]"] = {
                    "PARENT_KEY": key,
                    "instanceID": s.instance_id,
                    "visit_date": date.fromisoformat(v["visit_date"]),
                }
    return {"hh_test": main, "member": members, "visit": visits}


def as_csv(value: Any) -> str:
    """How the CSV writes a typed value: numbers plain, dates ISO, date-times 'YYYY-MM-DD HH:MM:SS'."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def as_xlsx(value: Any) -> Any:
    """How openpyxl reads a typed value back (a date cell is a datetime at midnight)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day)
    return value


def read_zip(data: bytes) -> dict[str, list[dict[str, str]]]:
    """Every CSV of the zip, each checked for Excel's UTF-8 byte-order mark, as rows of header -> text."""
    out = {}
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for name in z.namelist():
            raw = z.read(name)
            assert raw.startswith(b"\xef\xbb\xbf"), name
            out[name] = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    return out


def test_csv_zip_and_workbook_hold_every_value_of_the_store(stored, tmp_path: Path) -> None:
    root, subs = stored
    options = RawExportOptions(labels="none", include_personal=True)
    store = open_store(root)
    try:
        csv_stats = export_form(store, "hh_test", tmp_path / "x.zip", format="csv", options=options)
        export_form(store, "hh_test", tmp_path / "x.xlsx", options=options)
    finally:
        store.close()
    want = expected_tables(subs)
    files = read_zip((tmp_path / "x.zip").read_bytes())
    assert sorted(files) == ["hh_test-member.csv", "hh_test-visit.csv", "hh_test.csv"]
    wb = openpyxl.load_workbook(tmp_path / "x.xlsx")
    sheets = {"hh_test": "hh_test", "member": "member", "visit": "visit"}
    for table, rows in want.items():
        got_csv = {
            r["KEY"]: r for r in files["hh_test.csv" if table == "hh_test" else f"hh_test-{table}.csv"]
        }
        got_xlsx = {r["KEY"]: r for r in by_header(wb[sheets[table]])}
        assert set(got_csv) == set(rows) == set(got_xlsx), table
        assert csv_stats.rows[table] == len(rows)
        for key, cols in rows.items():
            for col, value in cols.items():
                assert got_csv[key][col] == as_csv(value), (table, key, col)
                assert got_xlsx[key][col] == as_xlsx(value), (table, key, col)


def test_labels_in_vietnamese_and_english(stored, tmp_path: Path) -> None:
    root, subs = stored
    store = open_store(root)
    try:
        export_form(
            store,
            "hh_test",
            tmp_path / "vi.zip",
            format="csv",
            options=RawExportOptions(labels="vi", include_personal=True),
        )
        export_form(
            store, "hh_test", tmp_path / "en.zip", format="csv", options=RawExportOptions(labels="en")
        )
    finally:
        store.close()
    vi = read_zip((tmp_path / "vi.zip").read_bytes())
    en = read_zip((tmp_path / "en.zip").read_bytes())
    shown_vi = {"away": "Vắng nhà", "refused": "Từ chối", "other": "Khác"}
    shown_en = {"away": "Away", "refused": "Refused", "other": "Other"}
    for s, row_vi, row_en in zip(subs, vi["hh_test.csv"], en["hh_test.csv"], strict=True):
        assert row_vi["KEY"] == row_en["KEY"] == s.instance_id
        picked = s.fields["hh/reasons"].split()
        assert row_vi["Hộ gia đình / Lý do"] == "; ".join(shown_vi[p] for p in picked)
        assert row_en["Household / Reasons"] == "; ".join(shown_en[p] for p in picked)
        assert row_vi["Hộ gia đình / Đã ký cam kết"] == {"yes": "Có", "no": "Không"}[s.fields["hh/pledged"]]
        assert row_vi["Hộ gia đình / Họ tên chủ hộ"] == s.fields["hh/head_name"]
        assert row_vi["Ghi chú"] == s.fields["note_text"]  # commas, quotes and line breaks survive
        assert row_vi["Tên tỉnh"] == "Tỉnh Thái Nguyên"
        assert row_en["Review state"] in {"Received", "Approved"}
    assert "Household / Head of household" not in en["hh_test.csv"][0]  # personal: left out by default
    assert set(vi) == {"hh_test.csv", "hh_test-member.csv", "hh_test-visit.csv"}
    assert list(vi["hh_test-member.csv"][0])[:4] == ["KEY", "PARENT_KEY", "instanceID", "Thứ tự"]


def test_formula_like_text_is_inert_and_numbers_stay_numbers(stored, tmp_path: Path) -> None:
    root, subs = stored
    evil = '=HYPERLINK("http://evil.example","bấm vào đây")'
    sub = subs[0].model_copy(
        update={
            "instance_id": "uuid:evil",
            "fields": {
                **subs[0].fields,
                "note_text": evil,
                "hh/members": "-3",
                "hh/head_name": "@SUM(1+1)",
                "member": [{"name": "+84912345678", "age": "-1", "visit": []}],
            },
        }
    )
    from rasoat.core.excel.csv_zip import write_csv_zip

    buf = io.BytesIO()
    write_csv_zip(
        build_schema(),
        [sub],
        buf,
        form_id="hh_test",
        options=RawExportOptions(labels="none", include_personal=True),
    )
    files = read_zip(buf.getvalue())
    row = files["hh_test.csv"][0]
    assert row["note_text"] == "'" + evil and row["hh/head_name"] == "'@SUM(1+1)"
    assert row["hh/members"] == "-3"  # a number is a number, not text to neutralise
    member = files["hh_test-member.csv"][0]
    assert member["name"] == "'+84912345678" and member["age"] == "-1"


def test_filters_personal_data_and_audit(stored, tmp_path: Path) -> None:
    root, subs = stored
    store = open_store(root)
    try:
        stats = export_form(
            store,
            "hh_test",
            tmp_path / "a.zip",
            format="csv",
            actor="officer1",
            filters=ExportFilters(unit_codes=["05563"]),
        )
        export_form(
            store,
            "hh_test",
            tmp_path / "b.zip",
            format="csv",
            actor="officer2",
            options=RawExportOptions(include_personal=True),
        )
        events = [e for e in store.iter_audit() if e.action == "export.raw"]
    finally:
        store.close()
    files = read_zip((tmp_path / "a.zip").read_bytes())
    assert {r["KEY"] for r in files["hh_test.csv"]} == {s.instance_id for s in subs if s.unit_code == "05563"}
    assert {r["PARENT_KEY"] for r in files["hh_test-member.csv"]} <= {r["KEY"] for r in files["hh_test.csv"]}
    text = "".join(c for rows in files.values() for r in rows for c in r.values())
    assert not any(s.fields["hh/head_name"] in text for s in subs)
    assert "Hộ gia đình / Họ tên chủ hộ" not in files["hh_test.csv"][0]
    with zipfile.ZipFile(tmp_path / "a.zip") as z:
        member_header = z.read("hh_test-member.csv").decode("utf-8-sig").splitlines()[0].split(",")
    assert member_header == ["KEY", "PARENT_KEY", "instanceID", "Thứ tự", "Tuổi"]
    assert set(stats.dropped_columns) == {"hh/head_name", "member/name"}
    assert [(e.actor, e.details["format"], e.details["include_personal"]) for e in events] == [
        ("officer1", "csv", False),
        ("officer2", "csv", True),
    ]
    assert events[0].details["submissions"] == 6 and "05563" in events[0].details["filters"]


def test_cli_writes_the_csv_zip(stored, tmp_path: Path, capsys: Any) -> None:
    root, subs = stored
    out = tmp_path / "cli.zip"
    assert main(["export", "hh_test", "-o", str(out), "--data", str(root), "--labels", "none", "-q"]) == 0
    files = read_zip(out.read_bytes())
    assert [r["KEY"] for r in files["hh_test.csv"]] == [s.instance_id for s in subs]
    assert "12" in capsys.readouterr().out
    assert (
        main(["export", "hh_test", "--format", "csv", "-o", str(tmp_path / "x.xlsx"), "--data", str(root)])
        == 1
    )
    assert ".zip" in capsys.readouterr().err
    xlsx = tmp_path / "cli.xlsx"
    assert main(["export", "hh_test", "-o", str(xlsx), "--data", str(root), "-q"]) == 0
    assert openpyxl.load_workbook(xlsx).sheetnames[0] == "hh_test"
