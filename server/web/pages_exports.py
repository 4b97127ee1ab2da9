"""Downloads: a form's raw data (xlsx or CSV zip) and the indicator report, cut to the officer's units.

The raw data is checked first (form, units, round: a bad request gets an error page), then written in a
worker thread straight into the response (``server.streaming``): the CSV zip's first rows leave at once,
and no export-sized buffer is held in memory. The report, small, is written to a temporary file, sent in
chunks and deleted.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from datetime import datetime
from typing import Annotated

import anyio
from litestar import Response, get
from litestar.background_tasks import BackgroundTask
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter
from litestar.response import File, Stream
from rasoat.core import scope
from rasoat.core.crypto import form_is_encrypted
from rasoat.core.excel.from_store import (
    ExportFilters,
    OpenedExport,
    indicator_report,
    open_export,
)
from rasoat.core.excel.raw import RawExportOptions
from rasoat.core.identities import require_identities
from rasoat.core.problems import Problem
from rasoat.server.streaming import stream_file
from rasoat.server.web import scoped
from rasoat.server.web.base import LOCAL_TZ, Ctx, allowed, page
from rasoat.server.web.pages_overview import current_year, default_unit

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ZIP = "application/zip"
EXPORT = [allowed(scope.EXPORT)]


@get("/exports", guards=EXPORT, sync_to_thread=True)
def exports(ctx: NamedDependency[Ctx]) -> Response:
    forms = sorted(ctx.store.list_forms(), key=lambda f: f.form_id)
    return page(
        ctx,
        "exports.html",
        forms=forms,
        rounds=scoped.rounds(ctx),
        unit_choices=scoped.unit_choices(ctx),
        period=current_year(),
        default_unit=default_unit(ctx) or "",
        may_personal=scope.may_include_personal(ctx.user),
    )


def _stamp() -> str:
    return datetime.now(LOCAL_TZ).strftime("%Y%m%d-%H%M")


def _file_response(path: str, filename: str) -> Response:
    return File(
        path=path,
        filename=filename,
        media_type=XLSX,
        content_disposition_type="attachment",
        background=BackgroundTask(_unlink, path),
        chunk_size=256 * 1024,
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _temp_path() -> str:
    fd, path = tempfile.mkstemp(prefix="rasoat-web-export-", suffix=".xlsx")
    os.close(fd)
    return path


def _open_raw(
    ctx: Ctx, form_id: str, round_id: str, unit: str, labels: str, personal: bool, fmt: str
) -> OpenedExport:
    if ctx.store.get_form(form_id) is None:
        raise Problem("form.not_found", form=form_id)
    if form_is_encrypted(ctx.store, form_id):
        # The passphrase never travels through a web form; an encrypted form is exported on the server.
        raise Problem("export.encrypted_on_server", form=form_id)
    if round_id:
        scoped.get_round(ctx, round_id)
    units = scope.export_units(ctx.user, [unit] if unit else [])
    if scope.allowed_units(ctx.user) is not None and not units:
        raise scope.ScopeError("scope.no_units")
    if personal:  # a role without the identity permission is told so, never sent a quietly thinner file
        require_identities(ctx.store, ctx.user, "export.raw", target=form_id, via="web")
    options = RawExportOptions(
        labels=labels if labels in ("vi", "en", "none") else "vi",  # type: ignore[arg-type]
        include_personal=personal,
    )
    return open_export(  # ExportError: a 404 page
        ctx.store,
        form_id,
        format="csv" if fmt == "csv" else "xlsx",
        filters=ExportFilters(round_id=round_id or None, unit_codes=units),
        options=options,
        actor=ctx.actor,
    )


def stream_response(opened: OpenedExport, filename: str) -> Stream:
    """The export written into the response as it is produced (attachment, not cached)."""
    return Stream(
        stream_file(opened.write, f"export-{opened.form_id}"),
        media_type=ZIP if opened.format == "csv" else XLSX,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@get("/exports/raw", guards=EXPORT)
async def export_raw(
    ctx: NamedDependency[Ctx],
    form: FromQuery[str] = "",
    round: FromQuery[str] = "",
    unit: FromQuery[str] = "",
    labels: FromQuery[str] = "",
    personal: FromQuery[str] = "",
    fmt: Annotated[str, QueryParameter(name="format")] = "",
) -> Response:
    form_id = form.strip()
    if not form_id:
        raise Problem("web.choose_form")
    fmt = "csv" if fmt.strip() == "csv" else "xlsx"
    opened = await anyio.to_thread.run_sync(
        _open_raw, ctx, form_id, round.strip(), unit.strip(), (labels or ctx.lang).strip(), personal == "1",
        fmt,
    )
    return stream_response(opened, f"{form_id}-{_stamp()}.{'zip' if fmt == 'csv' else 'xlsx'}")


def _run_report(ctx: Ctx, unit: str, period: str) -> tuple[str, str | None]:
    unit_code = scope.report_unit(ctx.user, unit or None)
    path = _temp_path()
    try:
        indicator_report(ctx.store, path, unit_code=unit_code, period=period, generated_by=ctx.actor,
                         small_cells=not scope.can(ctx.user, scope.VIEW_PERSONAL))
    except BaseException:  # ExportError included: a 404 page
        _unlink(path)
        raise
    return path, unit_code


@get("/exports/report", guards=EXPORT)
async def export_report(
    ctx: NamedDependency[Ctx], unit: FromQuery[str] = "", period: FromQuery[str] = ""
) -> Response:
    period = (period or current_year()).strip()[:10]
    path, unit_code = await anyio.to_thread.run_sync(_run_report, ctx, unit.strip(), period)
    return _file_response(path, f"chi-tieu-{unit_code or 'all'}-{period}-{_stamp()}.xlsx")


handlers = [exports, export_raw, export_report]
