"""An xlsxwriter workbook whose first worksheet leaves as it is written, so a download starts at once.

xlsxwriter in ``constant_memory`` mode keeps every worksheet's rows in a temporary file and builds the
zip only in ``close()``, so the first byte of a large export left after all its rows were written
(196 s for 100,000 pledges under load). ``StreamingWorkbook`` keeps xlsxwriter's cells, formats and
package but owns the zip:

- the first worksheet's part opens in the archive when its second row starts (its columns, widths and
  frozen panes are set by then) and each row goes into it as xlsxwriter writes it;
- the other worksheets' rows wait in xlsxwriter's temporary files, as before;
- ``close()`` lets xlsxwriter build the package with every sheet's rows left out (a few kilobytes,
  in memory), then copies each part into the archive, putting the rows back from the temporary files.

So every part is xlsxwriter's own, byte for byte, except that the streamed sheet has no ``<dimension>``
(its last row is not known when its first bytes leave; the schema makes it optional, and openpyxl, even
in read-only mode, reads every row without it). Memory holds one row and the package without rows,
whatever the size. The streamed part is written without zip64 (its size is not known up front, and
Excel refuses zip64 where it is not needed), so it holds at most 2 GiB of XML, the limit xlsxwriter's
own zip had for every part; the other parts' sizes are known, so they get zip64 when they need it.
The part names follow xlsxwriter's packager (``xl/worksheets/sheetN.xml`` in worksheet order); the
tests compare the result with xlsxwriter's own ``close()`` part by part, which would catch a change.
"""

from __future__ import annotations

import io
import os
import shutil
import zipfile
from contextlib import suppress
from typing import Any

from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

# Where a sheet's rows go in the XML xlsxwriter writes around them. Text xlsxwriter writes has its "<"
# escaped, so this element cannot occur in it.
_ROWS = "<rasoat-rows/>"
_ROWS_B = _ROWS.encode()
_BLOCK = 1 << 16  # as xlsxwriter copies its temporary files: memory holds one block


class _Sheet(Worksheet):
    """A worksheet whose rows ``StreamingWorkbook`` puts into the archive (xlsxwriter writes the rest)."""

    archive: zipfile.ZipFile | None = None  # set on the first worksheet: its rows stream there
    part: io.TextIOWrapper | None = None  # its open part in the archive, once its first row has left

    def _write_optimized_sheet_data(self) -> None:
        if self.dim_rowmin is None:  # no cells at all: xlsxwriter's empty element, no rows to add
            self._xml_empty_tag("sheetData")
        else:
            self._xml_start_tag("sheetData")
            self.fh.write(_ROWS)
            self._xml_end_tag("sheetData")

    def _write_dimension(self) -> None:
        if self.archive is None:  # a streamed sheet's last row is not known when its head leaves
            super()._write_dimension()

    def _write_single_row(self, current_row_num: int = 0) -> None:
        # xlsxwriter writes a row out when the next one starts: the first time, open the part.
        if self.archive is not None and self.part is None:
            self._open_part()
        super()._write_single_row(current_row_num)

    def _open_part(self) -> None:
        """Write this sheet's XML up to its rows into the archive; from now on its rows go there."""
        assert self.archive is not None
        if self.worksheet_meta.activesheet == self.index:  # what Workbook.close() sets, set now
            self.selected = self.active = 1
        # The sheet holds only its first row here, so nothing below the rows (links) exists yet and
        # assembling its XML changes nothing that close() assembles again.
        xml = io.StringIO()
        self._set_xml_writer(xml)
        self._assemble_xml_file()
        head = xml.getvalue().partition(_ROWS)[0]
        part = self.archive.open(_part_info(part_name(self)), "w")
        self.part = io.TextIOWrapper(part, encoding="utf-8", newline="")
        self.part.write(head)
        self._opt_close()  # xlsxwriter's temporary file for the rows, unused from now on
        os.unlink(self.row_data_filename)
        self.row_data_fh = self.fh = self.part
        self.row_data_fh_closed = False


class StreamingWorkbook(Workbook):
    """``xlsxwriter.Workbook`` (always ``constant_memory``) whose first worksheet streams into ``target``,
    a path or a binary file object that need not be seekable. Set that sheet's columns and panes before
    writing its second row. After an error call ``discard()`` instead of ``close()``."""

    def __init__(self, target: Any, options: dict[str, Any] | None = None) -> None:
        # xlsxwriter's own zip (the package without rows) goes to memory; the archive is ours.
        super().__init__(io.BytesIO(), {**(options or {}), "constant_memory": True, "in_memory": False})
        self.worksheet_class = _Sheet
        self.archive = zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED)

    def add_worksheet(self, name: str | None = None, worksheet_class: Any = None) -> Worksheet:
        sheet = super().add_worksheet(name, worksheet_class)
        if sheet.index == 0:
            sheet.archive = self.archive
        return sheet

    def close(self) -> None:
        """Finish the streamed sheet and write every other part, then the zip's directory."""
        if not self.worksheets():
            self.add_worksheet()  # as xlsxwriter would, but before the package is built
        sheets: list[_Sheet] = self.worksheets()
        streamed = sheets[0]
        try:
            if streamed.part is None:  # fewer than two rows: nothing has left yet
                streamed._open_part()
            streamed._write_single_row()  # its last row
            part = streamed.part
            assert part is not None
            # xlsxwriter writes the sheet's pending row (none now) to row_data_fh and closes it: not the part
            streamed.row_data_fh = streamed.fh = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
            self.in_memory = True  # the packager keeps the parts (without rows) in memory
            super().close()
            by_name = {part_name(s): s for s in sheets}
            with zipfile.ZipFile(self.filename) as package:
                part.write(package.read(part_name(streamed)).partition(_ROWS_B)[2].decode("utf-8"))
                part.close()
                for name in package.namelist():
                    sheet = by_name.get(name)
                    if sheet is not streamed:
                        self._copy(name, package.read(name), sheet)
            self.archive.close()
        finally:
            self._remove_temporary_files()

    def discard(self) -> None:
        """Stop after an error: close what is open (the target gets a cut-off zip), remove temporary files."""
        self.fileclosed = True
        for sheet in self.worksheets():
            for f in {sheet.part, sheet.row_data_fh} - {None}:
                with suppress(Exception):
                    f.close()
        with suppress(Exception):
            self.archive.close()
        self._remove_temporary_files()

    def _copy(self, name: str, data: bytes, sheet: _Sheet | None) -> None:
        """One part into the archive; a worksheet's with its rows from xlsxwriter's temporary file."""
        head, mark, tail = data.partition(_ROWS_B)
        rows = sheet.row_data_filename if sheet is not None and mark else None
        info = _part_info(name)
        info.file_size = len(head) + len(tail) + (os.path.getsize(rows) if rows else 0)  # zip64 if needed
        with self.archive.open(info, "w") as out:
            out.write(head)
            if rows:
                with open(rows, "rb") as f:
                    shutil.copyfileobj(f, out, _BLOCK)
            out.write(tail)

    def _remove_temporary_files(self) -> None:
        for sheet in self.worksheets():
            if sheet.part is None:  # a streamed sheet's file went when its part opened
                with suppress(FileNotFoundError):
                    os.unlink(sheet.row_data_filename)


def part_name(sheet: Worksheet) -> str:
    """The sheet's part in the package, named as xlsxwriter's packager names it (no chart sheets here)."""
    return f"xl/worksheets/sheet{sheet.index + 1}.xml"


def _part_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))  # xlsxwriter's fixed time: same bytes every run
    info.compress_type = zipfile.ZIP_DEFLATED
    return info
