"""The raw data as a zip of CSV files, laid out as ODK Central's ``submissions.csv.zip``.

``FORM.csv`` holds one row per submission, ``FORM-REPEAT.csv`` one row per repeat occurrence; a repeat
row's ``PARENT_KEY`` is its parent's ``KEY`` (``uuid:…`` for the submission, ``uuid:…/member[2]`` for
a repeat inside a repeat), so R, Stata, SPSS or Power Query join them as they join Central's files. The
cells are the xlsx export's (``core.excel.rows``): same columns, labels or values, personal columns
left out unless asked. Files are UTF-8 with a byte-order mark, which Excel needs to read Vietnamese.
Numbers are plain (``12.5``); dates ``2026-03-05``, times of day ``10:15:00`` and date-times
``2026-03-05 10:15:00`` in Vietnam time; a text cell that a spreadsheet would run as a formula (starts
with ``= + - @``, tab or carriage return) gets a leading apostrophe (OWASP's CSV-injection advice).

The main file streams straight into the zip, so a download starts with the first rows; repeat rows go
to temporary files on disk and follow it, so memory stays flat whatever the export's size.
"""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Mapping
from typing import IO, Any

from rasoat.core.excel.raw import RawExportOptions, RawExportStats, Target, row_builder
from rasoat.core.excel.rows import Row, RowBuilder, TableRows, UnitLookup, feed
from rasoat.core.models import Submission

BOM = "\ufeff"
_FORMULA_FIRST = frozenset("=+-@\t\r")
_BAD_NAME = str.maketrans({c: "_" for c in '/\\:*?"<>|\0'})


def write_csv_zip(
    schema: Mapping[str, Any],
    submissions: Iterable[Submission],
    target: Target,
    *,
    form_id: str | None = None,
    options: RawExportOptions | None = None,
    units: UnitLookup | None = None,
    collectors: Mapping[str, str] | None = None,
    progress: Callable[[int], object] | None = None,
    progress_every: int = 1000,
    compresslevel: int = 1,
) -> RawExportStats:
    """Write the CSV zip to ``target`` (a path or a binary file object, which need not be seekable)."""
    opts = options or RawExportOptions()
    builder, dropped = row_builder(schema, form_id, opts, units, collectors)
    stats = RawExportStats(dropped_columns=dropped)
    names = file_names(builder)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=compresslevel) as zf:
        writer = _CsvWriter(builder, names, zf, opts.tmpdir)
        try:
            feed(submissions, writer.write_submission, progress, progress_every)
            writer.finish()
        finally:
            writer.close()
    for out, count in zip(builder.tables, writer.counts, strict=True):
        stats.rows[out.table.name] = count
    stats.submissions = writer.counts[0]
    stats.sheets = names
    return stats


def file_names(builder: RowBuilder) -> list[str]:
    """Central's names: ``FORM.csv``, ``FORM-REPEAT.csv`` (``~1``, ``~2`` when two repeats share a name)."""
    form = builder.form_id.translate(_BAD_NAME)
    repeat_names = [out.table.name.translate(_BAD_NAME) for out in builder.tables[1:]]
    seen: dict[str, int] = {}
    names = [f"{form}.csv"]
    for name in repeat_names:
        if repeat_names.count(name) > 1:
            seen[name] = seen.get(name, 0) + 1
            names.append(f"{form}-{name}~{seen[name]}.csv")
        else:
            names.append(f"{form}-{name}.csv")
    return names


def csv_cells(row: Row) -> Row:
    """A row as the csv module writes it: formula-like text made inert; numbers, dates and None as they are
    (``str()`` of a datetime is ``2026-03-05 10:15:00``, of None the empty field)."""
    bad = _FORMULA_FIRST
    return [("'" + v) if v.__class__ is str and v and v[0] in bad else v for v in row]


class _CsvWriter:
    def __init__(
        self, builder: RowBuilder, names: list[str], zf: zipfile.ZipFile, tmpdir: str | None
    ) -> None:
        self.builder, self.names, self.zf = builder, names, zf
        self.counts = [0] * len(builder.tables)
        # The main table goes straight into the archive; zip64 because its size is not known in advance.
        self._raw: list[IO[bytes]] = [zf.open(names[0], "w", force_zip64=True)]
        self._raw += [_spill(tmpdir) for _ in builder.tables[1:]]
        self._files = [io.TextIOWrapper(raw, encoding="utf-8", newline="") for raw in self._raw]
        self._files[0].write(BOM)
        self._writers = [csv.writer(f) for f in self._files]
        for w, out in zip(self._writers, builder.tables, strict=True):
            w.writerow(csv_cells(list(out.headers)))
        self._emit = self._write_row

    def write_submission(self, sub: Submission) -> None:
        self.builder.rows(sub, self._emit)

    def _write_row(self, out: TableRows, row: Row) -> None:
        i = out.index
        self.counts[i] += 1
        self._writers[i].writerow(csv_cells(row))

    def finish(self) -> None:
        self._files[0].close()  # closes the archive member too
        for name, f, raw in zip(self.names[1:], self._files[1:], self._raw[1:], strict=True):
            f.flush()
            raw.seek(0)
            with self.zf.open(name, "w", force_zip64=True) as member:
                member.write(BOM.encode())
                shutil.copyfileobj(raw, member, 1 << 20)

    def close(self) -> None:
        for f in self._files[1:]:
            f.close()


def _spill(tmpdir: str | None) -> IO[bytes]:
    """A temporary file for a repeat table's rows until the main file is done (closed by ``close``)."""
    return tempfile.TemporaryFile(dir=tmpdir, prefix="rasoat-csv-")  # noqa: SIM115
