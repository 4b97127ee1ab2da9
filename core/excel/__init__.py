"""Excel workbooks: the raw data export of a form and the indicator report.

Writers are pure functions over data (``write_raw_workbook``, ``write_report_workbook``); the
``from_store`` helpers read a store and call them, for the CLI and the server's download endpoints.
"""

from rasoat.core.excel.raw import ExtraSheet, RawExportOptions, RawExportStats, UnitLookup, write_raw_workbook
from rasoat.core.excel.schema import Column, Kind, Table, build_tables, merge_schemas

__all__ = [
    "Column",
    "ExtraSheet",
    "Kind",
    "RawExportOptions",
    "RawExportStats",
    "Table",
    "UnitLookup",
    "build_tables",
    "merge_schemas",
    "write_raw_workbook",
]
