"""Exports read from a store: what the CLI and the server's download endpoints call.

    stats = export_form(store, "f2_pledge", "f2.xlsx", filters=ExportFilters(unit_codes=["05563"]))
    export_form(store, "f2_pledge", response_file, options=RawExportOptions(labels="en"))
    export_form(store, "f2_pledge", "f2.zip", format="csv")      # Central's CSV zip layout

Both write to a path or a binary file object (which need not be seekable, so it can be a response).
Each export is recorded in the audit log (format, filters, personal data included or not), because
the data protection law expects accountability for person-level exports.
"""

from __future__ import annotations

import csv
import inspect
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from rasoat.core.excel.cells import to_vn_naive
from rasoat.core.excel.csv_zip import write_csv_zip
from rasoat.core.excel.personal import fallback_personal_fields
from rasoat.core.excel.raw import (
    ExtraSheet,
    RawExportOptions,
    RawExportStats,
    Target,
    UnitLookup,
    write_raw_workbook,
)
from rasoat.core.excel.report import ReportMeta, ReportOptions, ReportStats, write_report_workbook
from rasoat.core.excel.schema import itemset_files, merge_schemas
from rasoat.core.identities import with_identities
from rasoat.core.indicators.engine import evaluate
from rasoat.core.indicators.periods import Period
from rasoat.core.indicators.privacy import protect_for_viewer
from rasoat.core.models import AuditEvent, ReviewState, Submission, utcnow
from rasoat.core.plans import NATIONAL_PLAN, plans_for_unit
from rasoat.core.plugins import get_manager, results_by_plugin
from rasoat.core.problems import Problem
from rasoat.core.rounds import scopes_overlap
from rasoat.core.storage.base import Store, SubmissionQuery
from rasoat.core.unit_lists import units_for
from rasoat.core.units import get_units

if TYPE_CHECKING:
    from rasoat.core.crypto import Decryptor

# Location media CSVs are cut per collector on the server; the registry has every row.
_UNIT_ITEMSETS = {"provinces.csv": "province", "communes.csv": "commune", "hamlets.csv": "hamlet"}


class ExportError(Problem, LookupError):
    """Nothing to export as asked (unknown form, version, unit or period); the message is bilingual."""

    default_code = "export.refused"


@dataclass(frozen=True)
class ExportFilters:
    """Which submissions go into the raw workbook."""

    round_id: str | None = None
    unit_codes: Sequence[str] = ()  # each with every unit below it
    period: str | None = None  # received in "2026", "2026-H1", "2026-Q2" or "2026-03" (Vietnam time)
    review_states: Sequence[ReviewState] | None = None  # None: every state (the sheet shows which)
    form_version: str | None = None  # None: every version, columns merged
    current_only: bool = True  # False keeps versions replaced by an edit


@dataclass
class FormExport:
    """Everything ``write_raw_workbook`` needs, resolved from the store."""

    schema: dict[str, Any]
    query: SubmissionQuery
    options: RawExportOptions
    versions: list[str] = field(default_factory=list)
    title: str = ""


def submission_query(form_id: str, filters: ExportFilters, units: Any | None = None) -> SubmissionQuery:
    """The store query for an export; unit codes are expanded to their descendants here."""
    unit_codes: list[str] | None = None
    if filters.unit_codes:
        registry = units if units is not None else _registry()
        if registry is not None and hasattr(registry, "expand"):
            unit_codes = sorted(registry.expand(list(filters.unit_codes)))  # UnknownUnit: 404
        else:
            unit_codes = sorted(set(filters.unit_codes))
    received_from = received_to = None
    if filters.period:
        try:
            received_from, received_to = Period.parse(filters.period).utc_bounds()
        except ValueError as exc:
            raise ExportError.with_text("export.refused", str(exc)) from exc
    return SubmissionQuery(
        form_id=form_id,
        form_version=filters.form_version,
        round_id=filters.round_id,
        unit_codes=unit_codes,
        review_states=list(filters.review_states) if filters.review_states is not None else None,
        received_from=received_from,
        received_to=received_to,
        current_only=filters.current_only,
    )


def prepare_form_export(
    store: Store,
    form_id: str,
    filters: ExportFilters | None = None,
    options: RawExportOptions | None = None,
    units: Any | None = None,
) -> FormExport:
    """Schema (all versions merged unless one is asked for), query and options for one form."""
    filters = filters or ExportFilters()
    opts = options or RawExportOptions()
    versions = [f for f in store.list_forms(all_versions=True) if f.form_id == form_id]
    if filters.form_version:
        versions = [f for f in versions if f.version == filters.form_version]
    if not versions:
        what = f"{form_id} {filters.form_version}" if filters.form_version else form_id
        raise ExportError("export.no_form", form=what)
    versions.sort(key=lambda f: f.published_at)
    schema = merge_schemas([store.form_schema(f.form_id, f.version) for f in versions])
    latest = versions[-1]
    drop = set(opts.drop_fields)
    if not opts.include_personal:  # the known personal questions of an unmarked national form
        drop |= fallback_personal_fields(form_id, schema)
    external = dict(opts.external_choices or {})
    for name in itemset_files(schema):
        if name not in external:
            rows = _itemset_rows(store, form_id, latest.version, name, units)
            if rows:
                external[name] = rows
    opts = replace(opts, drop_fields=frozenset(drop), external_choices=external or None)
    return FormExport(
        schema=schema,
        query=submission_query(form_id, filters, units),
        options=opts,
        versions=[f.version for f in versions],
        title=latest.title,
    )


ExportFormat = Literal["xlsx", "csv"]
FORMATS: tuple[str, ...] = ("xlsx", "csv")


@dataclass
class OpenedExport:
    """An export whose form, filters and units have been checked (``open_export``); ``write`` streams it
    to a target and records it in the audit log. The split lets a server answer a bad request with an
    error before it starts sending the file."""

    store: Store
    form_id: str
    format: ExportFormat
    prep: FormExport
    filters: ExportFilters
    units: Any | None
    actor: str
    extra: list[ExtraSheet]
    decryptor: Decryptor | None = None  # opens ODK-encrypted records (else they are written as stored)

    def write(self, target: Target, progress: Callable[[int], object] | None = None) -> RawExportStats:
        prep, store = self.prep, self.store
        common: dict[str, Any] = {
            "form_id": self.form_id,
            "options": prep.options,
            "units": self.units,
            "collectors": _collector_names(store),
            "progress": progress,
        }
        if self.format == "csv":
            stats = write_csv_zip(prep.schema, self._records(), target, **common)
        else:
            about: list[tuple[str, Any]] = [
                ("Tên biểu mẫu / Title", prep.title),
                ("Phiên bản / Versions", ", ".join(prep.versions)),
                ("Thời điểm xuất / Exported at", to_vn_naive(utcnow()).strftime("%d/%m/%Y %H:%M")),
                ("Người xuất / Exported by", self.actor),
                ("Bộ lọc / Filters", _describe(self.filters)),
            ]
            stats = write_raw_workbook(
                prep.schema,
                self._records(),
                target,
                extra_sheets=self.extra,
                about=about,
                **common,
            )
        store.append_audit(
            AuditEvent(
                actor=self.actor,
                action="export.raw",
                target=self.form_id,
                details={
                    "format": self.format,
                    "filters": _describe(self.filters),
                    "include_personal": prep.options.include_personal,
                    "submissions": stats.submissions,
                    "dropped_columns": stats.dropped_columns,
                },
            )
        )
        return stats

    def _records(self) -> Iterator[Submission]:
        """The submissions to write: encrypted ones opened when a decryptor is given (those it cannot
        open left out and counted there); with personal columns, each with its identifying fields."""
        subs: Iterable[Submission] = self.store.iter_submissions(self.prep.query)
        if self.decryptor is not None:
            subs = self.decryptor.readable(subs)
        if not self.prep.options.include_personal:
            yield from subs
            return

        for sub in subs:
            yield with_identities(self.store, sub)


def open_export(
    store: Store,
    form_id: str,
    *,
    format: ExportFormat = "xlsx",
    filters: ExportFilters | None = None,
    options: RawExportOptions | None = None,
    units: UnitLookup | None = None,
    actor: str = "system",
    plugin_sheets: bool = True,
    decryptor: Decryptor | None = None,
) -> OpenedExport:
    """Check and resolve an export (ExportError when the form, version, unit or period is unknown);
    with ``decryptor``, ODK-encrypted records are written decrypted."""
    if format not in FORMATS:
        raise ExportError("export.bad_format", format=format)
    filters = filters or ExportFilters()
    units = units if units is not None else _registry(store)
    prep = prepare_form_export(store, form_id, filters, options, units)
    extra = list(_plugin_sheets(form_id, store, prep.query)) if plugin_sheets and format == "xlsx" else []
    return OpenedExport(store, form_id, format, prep, filters, units, actor, extra, decryptor)


def export_form(
    store: Store,
    form_id: str,
    target: Target,
    *,
    format: ExportFormat = "xlsx",
    filters: ExportFilters | None = None,
    options: RawExportOptions | None = None,
    units: UnitLookup | None = None,
    actor: str = "system",
    progress: Callable[[int], object] | None = None,
    plugin_sheets: bool = True,
    decryptor: Decryptor | None = None,
) -> RawExportStats:
    """Write one form's raw data (an xlsx workbook, or a zip of CSV files with ``format="csv"``) from the
    store; records the export in the audit log. With ``decryptor`` (``core.crypto.open_decryptor``),
    ODK-encrypted records are opened in memory and written decrypted."""
    opened = open_export(
        store,
        form_id,
        format=format,
        filters=filters,
        options=options,
        units=units,
        actor=actor,
        plugin_sheets=plugin_sheets,
        decryptor=decryptor,
    )
    return opened.write(target, progress)


def count_for_export(store: Store, form_id: str, filters: ExportFilters | None = None) -> int:
    """How many submissions an export would write (for a progress bar's total)."""
    return store.count_submissions(submission_query(form_id, filters or ExportFilters()))


def _registry(store: Store | None = None) -> Any:
    """The store's registry (with the hamlet lists officers loaded, ``core.unit_lists.units_for``), else
    ``core.units.get_units()``: a registry that cannot be built is an error to show, not blank names."""

    return units_for(store) if store is not None else get_units()


def _collector_names(store: Store) -> dict[str, str]:
    return {u.id: (u.display_name or u.username) for u in store.list_users()}


def _itemset_rows(store: Store, form_id: str, version: str, name: str, units: Any | None) -> list[dict]:
    """Choices of a select_one_from_file question: the unit registry for location lists, else the CSV."""
    level = _UNIT_ITEMSETS.get(name)
    if level and units is not None and hasattr(units, "choice_rows"):
        return [{"name": r["name"], "label": r["label"]} for r in units.choice_rows(level)]
    data = store.form_media(form_id, version, name)
    if not data:
        return []
    reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig")))
    rows = []
    for row in reader:
        if not row.get("name"):
            continue
        labels = {k.split("::", 1)[1]: v for k, v in row.items() if k and k.startswith("label::") and v}
        rows.append({"name": row["name"], "label": labels or row.get("label") or row["name"]})
    return rows


def _plugin_sheets(form_id: str, store: Store, query: SubmissionQuery) -> Iterable[ExtraSheet]:
    """Sheets from the ``export_sheets`` hook: (name, headers, rows factory). The factory gets ``store``
    and/or ``query`` when it names them as parameters."""

    for _plugin, sheets in results_by_plugin(get_manager(), "export_sheets", form_id=form_id):
        for sheet in sheets:  # validated: list[core.payloads.ExportSheet]
            name, headers, factory = sheet.name, sheet.headers, sheet.rows
            rows = factory
            if callable(factory):
                params = inspect.signature(factory).parameters
                kwargs = {k: v for k, v in (("store", store), ("query", query)) if k in params}
                rows = factory(**kwargs)
            yield ExtraSheet(name=str(name), headers=list(headers), rows=rows)


def _describe(filters: ExportFilters) -> str:
    parts = []
    if filters.round_id:
        parts.append(f"đợt/round {filters.round_id}")
    if filters.unit_codes:
        parts.append(f"đơn vị/units {', '.join(filters.unit_codes)}")
    if filters.period:
        parts.append(f"kỳ/period {filters.period}")
    if filters.review_states is not None:
        parts.append(f"trạng thái/states {', '.join(s.value for s in filters.review_states)}")
    if filters.form_version:
        parts.append(f"phiên bản/version {filters.form_version}")
    return "; ".join(parts) or "không / none"


# --- indicator report ----------------------------------------------------------------------------

_LEVEL_BELOW = {"province": "commune", "commune": "hamlet"}


def indicator_report(
    store: Store,
    target: Target,
    *,
    unit_code: str | None = None,
    period: str | None = None,
    generated_by: str = "system",
    units: Any | None = None,
    options: ReportOptions | None = None,
    progress: Callable[[int], object] | None = None,
    small_cells: bool = False,
) -> ReportStats:
    """Compute the indicators for a unit and the level below it (a province and its communes, a commune
    and its hamlets; with no unit, every province with data) and write the report workbook. With
    ``small_cells``, person counts of 1–2 below commune level are written "< 3" (core.indicators.privacy)."""
    period = period or str(to_vn_naive(utcnow()).year)
    registry = units if units is not None else _registry(store)
    unit_name = ""
    kwargs: dict[str, Any] = {"progress": progress}
    if registry is not None and type(registry).__name__ == "UnitRegistry":
        kwargs["registry"] = registry
    try:
        if unit_code:
            unit = registry.get(unit_code) if registry is not None else None
            if registry is not None and unit is None:
                raise ExportError("export.no_unit", unit_code=unit_code)
            level = getattr(unit, "level", None) or _level_by_shape(unit_code)
            unit_name = str(getattr(unit, "name", "") or "")
            results = evaluate(store, period, units=[unit_code], level=_LEVEL_BELOW.get(level), **kwargs)
        else:
            results = evaluate(store, period, **kwargs)
    except ValueError as exc:  # a bad period, or an indicator the engine refuses
        raise ExportError.with_text("export.refused", str(exc)) from exc
    if small_cells:  # a reader without the identity permission: small person counts become "< 3"

        results = protect_for_viewer(results, False)
    plan, reporting = _plan_cover(unit_code, registry)
    meta = ReportMeta(
        plan=plan,
        reporting=reporting,
        period=str(period),
        unit_code=unit_code,
        unit_name=unit_name,
        generated_by=generated_by,
        notes=_encryption_notes(store, results, str(period), unit_code),
    )
    stats = write_report_workbook(results, target, meta, options)
    store.append_audit(
        AuditEvent(
            actor=generated_by,
            action="export.report",
            target=unit_code or "",
            details={"period": str(period), "rows": sum(stats.rows.values())},
        )
    )
    return stats


def _encryption_notes(store: Store, results: Sequence[Any], period: str, unit_code: str | None) -> list[str]:
    """What the cover says about encrypted records: how many the figures could not count, and each round
    of the period closed without them (the officer's acknowledgement in the round's history)."""

    notes = []
    missed = max((r.uncounted_encrypted for r in results), default=0)
    if missed:
        notes.append(
            f"{missed} bản ghi mã hoá chưa tính: chỉ tiêu cần đến chúng ghi \"Không xác định\"; mở khoá "
            "dự án (rasoat keys unlock) để tính / "
            f"{missed} encrypted records not counted: the indicators that need them say \"Unknown\"; "
            "unlock the project key (rasoat keys unlock) to count them"
        )
    wanted = Period.parse(period)
    for rnd in store.list_rounds():
        try:
            same = Period.parse(rnd.period) == wanted
        except ValueError:
            continue
        if not same or (unit_code and not scopes_overlap(rnd.unit_codes, [unit_code])):
            continue
        for h in rnd.history:
            n = h.get("encrypted_uncounted_acknowledged")
            if h.get("action") == "close" and n:
                at = str(h.get("at", ""))[:16].replace("T", " ")
                notes.append(
                    f"Đợt '{rnd.id}' đã đóng khi còn {n} bản ghi mã hoá chưa tính (xác nhận: "
                    f"{h.get('actor', '')}, {at} UTC); số liệu chốt của chúng là \"Không xác định\" / "
                    f"Round '{rnd.id}' was closed with {n} encrypted records not counted (acknowledged by "
                    f"{h.get('actor', '')}, {at} UTC); their frozen figures are \"Unknown\""
                )
    return notes


def _level_by_shape(code: str) -> str:
    if "-" in code:
        return "hamlet"
    return "province" if len(code) <= 2 else "commune"


def _plan_cover(unit_code: str | None = None, registry: Any | None = None) -> tuple[str, str]:
    """What the cover says of the plans a report is made under: their names (the national pack, then the
    plan of each province plugin that applies in the unit, core.plans: its province contains the unit;
    every plan for a report over every province), and how each is reported ("208/KH-UBND: theo quy định →
    Công an tỉnh …", one line per plan that says it)."""
    chosen = plans_for_unit(unit_code, registry if unit_code else None)
    names = "; ".join([NATIONAL_PLAN, *(p.label for p in chosen)])
    reporting = "\n".join(f"{p.number or p.plugin}: {p.reporting or '—'} → {p.recipients or '—'}"
                          for p in chosen if p.reporting or p.recipients)
    return names, reporting
