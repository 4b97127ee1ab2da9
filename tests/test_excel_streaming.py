"""The raw workbook streamed as it is written (core.excel.streaming_workbook), compared with the workbook
xlsxwriter's own ``close()`` builds from the very same calls (the writer before streaming), part by part
and cell by cell with openpyxl; its bytes leave while submissions are still being read, in flat memory."""

from __future__ import annotations

import io
import os
import re
import tracemalloc
import zipfile
from collections.abc import Iterator
from datetime import time
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import rasoat.core.excel.raw as raw
from rasoat.core.excel import ExtraSheet, RawExportOptions, write_raw_workbook
from rasoat.core.models import Submission
from test_excel_raw import SURVEY, build_schema, make_sub
from xlsxwriter.workbook import Workbook

# the test form with a time of day beside its dates, inside the repeat too
TIMED = [*SURVEY[:-1], ["time", "checked_time", "Giờ kiểm tra", "Time checked"], SURVEY[-1]]


class Unseekable(io.RawIOBase):
    """A binary file that cannot seek or tell, like an HTTP response: it keeps what is written."""

    def __init__(self) -> None:
        super().__init__()
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.data += b
        return len(b)


class Counter(io.RawIOBase):
    """An unseekable sink that only counts what is written (the bytes a client would have received)."""

    def __init__(self) -> None:
        super().__init__()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.size += len(b)
        return len(b)


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return build_schema(TIMED)


def submissions(n: int) -> list[Submission]:
    subs = []
    for i in range(n):
        sub = make_sub(i, checked_time="10:15:00.000+07:00")
        if i % 3 == 1:
            sub.fields["note_text"] = "=1+1 và tiếng Việt: Nguyễn Thị Ánh, Đặng Quý Hưng"
            sub.fields["hh/reasons"] = "refused"
            sub.fields["hh/members"] = "không rõ"  # unreadable: stays text
        subs.append(sub)
    return subs


def write_both(
    schema: dict[str, Any], subs: list[Submission], target: Any, reference: Path, **opts: Any
) -> None:
    """The streamed workbook into ``target``; the same export through xlsxwriter's own close() into
    ``reference`` (raw.py with xlsxwriter's Workbook, as it was before streaming)."""
    kwargs: dict[str, Any] = {
        "form_id": "hh_test",
        "options": RawExportOptions(
            include_personal=True, attachment_url="https://rasoat.example/att", **opts
        ),
        "collectors": {"u1": "Lò Văn Thu"},
        "extra_sheets": [],
        "about": [("Người xuất / Exported by", "tinh.thainguyen"), ("Bộ lọc / Filters", "xã 05563")],
    }

    def extra() -> list[ExtraSheet]:
        return [
            ExtraSheet(
                "Tổng hợp", ["Xã", "Số hộ", "Giờ"], [["Phượng Tiến", 12, time(10, 15)], ["=cmd", 3.5, None]]
            )
        ]

    write_raw_workbook(schema, iter(subs), target, **{**kwargs, "extra_sheets": extra()})
    mp = pytest.MonkeyPatch()
    mp.setattr(raw, "StreamingWorkbook", Workbook)
    try:
        write_raw_workbook(schema, iter(subs), reference, **{**kwargs, "extra_sheets": extra()})
    finally:
        mp.undo()


def parts(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as z:
        assert z.testzip() is None  # every part's CRC checks
        return {name: z.read(name) for name in z.namelist()}


_CREATED = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
_DIMENSION = re.compile(rb'<dimension ref="[^"]*"/>')


@pytest.mark.parametrize("max_rows", [1_048_576, 4], ids=["one-main-sheet", "main-sheet-split"])
def test_streamed_workbook_is_xlsxwriters_part_by_part(schema: dict, tmp_path: Path, max_rows: int) -> None:
    out, ref = Unseekable(), tmp_path / "reference.xlsx"
    write_both(schema, submissions(7), out, ref, max_rows=max_rows)
    got, want = parts(bytes(out.data)), parts(ref.read_bytes())
    assert next(iter(got)) == "xl/worksheets/sheet1.xml"  # the main sheet leaves first…
    assert sorted(got) == sorted(want)  # …and the package holds the same parts
    for name in want:
        mine, theirs = got[name], want[name]
        if name == "docProps/core.xml":  # creation time: the two were written a moment apart
            mine, theirs = _CREATED.sub(b"T", mine), _CREATED.sub(b"T", theirs)
        if name == "xl/worksheets/sheet1.xml":  # the streamed sheet cannot know its last row up front
            assert _DIMENSION.search(theirs) and not _DIMENSION.search(mine)
            theirs = _DIMENSION.sub(b"", theirs)
        assert mine == theirs, name
    assert b"<hyperlink " in got["xl/worksheets/sheet1.xml"]  # the part's tail made it too
    assert b"<autoFilter " in got["xl/worksheets/sheet1.xml"]


def cells(wb: Any) -> list[tuple[str, list[list[tuple[Any, ...]]]]]:
    return [
        (
            ws.title,
            [
                [
                    (
                        c.value,
                        type(c.value),
                        c.data_type,
                        c.number_format,
                        c.quotePrefix,
                        c.hyperlink.target if c.hyperlink else None,
                        c.font.b,
                    )
                    for c in row
                ]
                for row in ws.iter_rows()
            ],
        )
        for ws in wb.worksheets
    ]


def test_streamed_workbook_reads_back_cell_by_cell(schema: dict, tmp_path: Path) -> None:
    out, ref = tmp_path / "streamed.xlsx", tmp_path / "reference.xlsx"  # a path: a seekable target
    write_both(schema, submissions(7), out, ref)
    got, want = cells(openpyxl.load_workbook(out)), cells(openpyxl.load_workbook(ref))
    assert got == want
    titles = [t for t, _ in got]
    assert titles == ["hh_test", "Thành viên", "Lần gặp", "Tổng hợp", "Thông tin"]
    main = dict(got)["hh_test"]
    header = [c[0] for c in main[0]]
    row = dict(zip(header, main[2], strict=True))  # submission 1: formula-like note, unreadable number
    assert row["Ghi chú"][:5] == (
        "=1+1 và tiếng Việt: Nguyễn Thị Ánh, Đặng Quý Hưng",
        str,
        "s",
        "General",
        True,
    )
    assert row["Hộ gia đình / Số nhân khẩu"][:3] == ("không rõ", str, "s")
    assert row["Hộ gia đình / Lý do: Từ chối"][:3] == (1, int, "n")
    first = dict(zip(header, main[1], strict=True))
    assert first["Hộ gia đình / Số nhân khẩu"][:3] == (4, int, "n")
    assert first["Hộ gia đình / Ngày ký"][3] == "dd/mm/yyyy"
    assert first["Thời điểm kiểm tra"][3] == "dd/mm/yyyy hh:mm:ss"
    assert first["Giờ kiểm tra"][:4] == (time(10, 15), time, "d", "hh:mm:ss")
    assert first["Hộ gia đình / Ảnh biên bản"][5] == "https://rasoat.example/att/uuid%3A0000/bien-ban.jpg"
    # openpyxl's read-only mode, which trusts <dimension> when there is one, reads every row without it
    fast = openpyxl.load_workbook(out, read_only=True)
    assert [list(r) for r in fast["hh_test"].iter_rows(values_only=True)] == [[c[0] for c in r] for r in main]


def test_empty_export_streams_a_whole_workbook(schema: dict, tmp_path: Path) -> None:
    out, ref = Unseekable(), tmp_path / "reference.xlsx"
    write_both(schema, [], out, ref)
    wb = openpyxl.load_workbook(io.BytesIO(bytes(out.data)))
    assert wb["hh_test"]["A1"].value == "KEY" and wb["hh_test"].max_row == 1
    assert cells(wb) == cells(openpyxl.load_workbook(ref))


@pytest.mark.slow
def test_rows_leave_while_submissions_are_read_in_flat_memory(schema: dict) -> None:
    """What has reached the client when each submission is read: the zip's first bytes before the second
    one, then more every few rows (with xlsxwriter's own close() nothing leaves before the last). Each
    note is 8 kB that does not compress, so a few rows fill zlib's buffer. Four times the submissions,
    the same peak memory: nothing grows with the export."""

    def run(n: int) -> tuple[list[int], int, int]:
        sink, seen = Counter(), []

        def subs() -> Iterator[Submission]:
            for i in range(n):
                seen.append(sink.size)
                yield make_sub(i, note_text=os.urandom(4096).hex())

        tracemalloc.start()
        try:
            write_raw_workbook(schema, subs(), sink, form_id="hh_test", options=RawExportOptions())
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        return seen, sink.size, peak

    seen, size, peak = run(30)
    assert 0 < seen[1] < seen[15] < seen[-1] < size
    seen, size4, peak4 = run(120)
    assert 0 < seen[1] < seen[60] < seen[-1] < size4
    assert peak4 - peak < (size4 - size) / 4, (peak, peak4, size, size4)
