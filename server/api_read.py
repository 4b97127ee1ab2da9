"""The officers' JSON API for what ODK Central's API lacks: rounds, exports (xlsx, CSV zip), indicators.

Who am I, forms, submissions and their attachments are read through ODK Central's API and OData only
(``server.central``, docs/api.md): the ``/api/v1`` routes that duplicated them were retired, so each
listing, lookup, scope check and audit rule is written once, there.

Authentication (``server.deps``: the ``user`` dependency and the role guards) is the Central API's
(``server.central.auth``): ``Authorization: Bearer`` with a personal API token (``rasoat users token
NAME``) or a session token from ``POST /v1/sessions``, or ``Authorization: Basic`` with the officer's
username and password (``core.users.authenticate``: argon2id, throttled, audited), accepted only over
HTTPS (the reverse proxy's ``X-Forwarded-Proto``, trusted by uvicorn for the proxy's address) or from
this machine. Officers do not use Digest: it would need an MD5 of the password kept on the server (see
docs/deployment.md).

Every read goes through ``core.scope``: rounds are those the officer's units cover, exports take
``export_units`` and indicators ``report_unit``. Personal columns are exported only to roles with
``view_personal`` (audited by the exporter). An encrypted form is exported only on the command line with
the project passphrase (``rasoat export --passphrase-file``); here it is 409.
"""

from __future__ import annotations

from typing import Any

import anyio
from litestar import Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Stream
from pydantic import BaseModel
from rasoat.core import scope
from rasoat.core.crypto import encrypted_counts, form_is_encrypted
from rasoat.core.excel.cells import to_vn_naive
from rasoat.core.excel.from_store import ExportFilters, open_export
from rasoat.core.excel.raw import RawExportOptions
from rasoat.core.excel.schema import LabelMode
from rasoat.core.identities import require_identities
from rasoat.core.indicators.engine import evaluate
from rasoat.core.indicators.models import IndicatorResult
from rasoat.core.indicators.privacy import protect_for_viewer
from rasoat.core.models import User, utcnow
from rasoat.core.problems import Problem
from rasoat.core.storage.base import Store
from rasoat.core.unit_lists import units_for
from rasoat.core.units import UnknownUnit
from rasoat.server.deps import requires
from rasoat.server.openapi import PROBLEM_RESPONSES
from rasoat.server.streaming import stream_file

EXPORT_MEDIA = {"csv": "application/zip",
                "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


class RoundSummary(BaseModel):
    """A round the officer's units touch."""

    id: str
    name: str
    kind: str
    period: str
    state: str
    form_ids: list[str]
    unit_codes: list[str]


class IndicatorFigure(IndicatorResult):
    """One indicator for one unit as this API gives it: every figure a JSON number (the schema's ``int |
    float`` would be a ``oneOf`` that an integer matches twice)."""

    value: float | None
    numerator: float | None
    denominator: float | None
    target_value: float | None = None
    compared_value: float | None = None
    previous_value: float | None = None
    change: float | None = None


class IndicatorAnswer(BaseModel):
    """Indicator results for a unit and the units one level below it, for one period."""

    unit: str | None
    period: str
    results: list[IndicatorFigure]
    encrypted_unread: dict[str, int]  # records per form whose fields the server cannot read

# --- rounds ------------------------------------------------------------------------------------------


@get("/api/v1/rounds", guards=[requires(scope.VIEW)], responses=PROBLEM_RESPONSES, sync_to_thread=True)
def rounds(store: NamedDependency[Store], user: NamedDependency[User]) -> list[RoundSummary]:
    """Rounds that cover some of the officer's units."""
    return [RoundSummary(id=r.id, name=r.name, kind=r.kind, period=r.period, state=r.state.value,
                         form_ids=r.form_ids, unit_codes=r.unit_codes)
            for r in scope.visible_rounds(store.list_rounds(), user)]


# --- exports and indicators --------------------------------------------------------------------------


def _open_export(
    store: NamedDependency[Store],
    user: NamedDependency[User],
    form_id: str,
    fmt: str,
    unit: str | None,
    round_id: str | None,
    period: str | None,
    personal: bool,
    labels: str | None,
) -> Any:
    """Check who asks and what (a Problem), then the export ready to be written into the response."""

    if personal:
        require_identities(store, user, "export.raw", form_id, "api")
    if labels not in (None, "vi", "en", "none"):
        raise Problem("export.bad_labels", value=repr(labels))
    mode: LabelMode = "en" if labels == "en" else "none" if labels == "none" else "vi"
    if form_is_encrypted(store, form_id):
        raise Problem("export.encrypted_form", form=form_id)
    requested = tuple(c.strip() for c in (unit or "").split(",") if c.strip())
    units = scope.export_units(user, requested)
    try:  # ExportError and UnknownUnit are 404s
        return open_export(store, form_id, format="csv" if fmt == "csv" else "xlsx",
                           filters=ExportFilters(round_id=round_id, unit_codes=units, period=period),
                           options=RawExportOptions(include_personal=personal, labels=mode),
                           actor=user.username)
    except Problem:
        raise
    except KeyError as exc:  # an unknown unit code
        raise UnknownUnit(str(exc.args[0] if exc.args else exc)) from None


async def _export_response(store: Store, user: User, form_id: str, fmt: str, **query: Any) -> Response:
    """The export streamed as it is written: the download starts at once, memory stays flat."""
    opened = await anyio.to_thread.run_sync(lambda: _open_export(store, user, form_id, fmt, **query))
    media = EXPORT_MEDIA[fmt]
    name = f"{form_id}.csv.zip" if fmt == "csv" else f"{form_id}.xlsx"
    return Stream(stream_file(opened.write, f"export-{form_id}"), media_type=media,
                  headers={"Content-Disposition": f'attachment; filename="{name}"',
                           "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


@get("/api/v1/forms/{form_id:str}/export.xlsx", guards=[requires(scope.EXPORT)],
     responses=PROBLEM_RESPONSES, media_type=EXPORT_MEDIA["xlsx"])
async def export(
    store: NamedDependency[Store],
    user: NamedDependency[User],
    form_id: FromPath[str],
    unit: FromQuery[str | None] = None,
    round_id: FromQuery[str | None] = None,
    period: FromQuery[str | None] = None,
    personal: FromQuery[bool] = False,
    labels: FromQuery[str | None] = None,
) -> Response:
    """The raw data workbook of one form, cut to the officer's units (audited by the exporter)."""
    return await _export_response(store, user, form_id, "xlsx", unit=unit, round_id=round_id, period=period,
                                  personal=personal, labels=labels)


@get("/api/v1/forms/{form_id:str}/export.csv.zip", guards=[requires(scope.EXPORT)],
     responses=PROBLEM_RESPONSES, media_type=EXPORT_MEDIA["csv"])
async def export_csv(
    store: NamedDependency[Store],
    user: NamedDependency[User],
    form_id: FromPath[str],
    unit: FromQuery[str | None] = None,
    round_id: FromQuery[str | None] = None,
    period: FromQuery[str | None] = None,
    personal: FromQuery[bool] = False,
    labels: FromQuery[str | None] = None,
) -> Response:
    """The raw data of one form as a zip of CSV files laid out as ODK Central's (KEY / PARENT_KEY), cut to
    the officer's units (audited by the exporter)."""
    return await _export_response(store, user, form_id, "csv", unit=unit, round_id=round_id, period=period,
                                  personal=personal, labels=labels)


@get("/api/v1/indicators", guards=[requires(scope.VIEW)], responses=PROBLEM_RESPONSES, sync_to_thread=True)
def indicators(
    store: NamedDependency[Store],
    user: NamedDependency[User],
    unit: FromQuery[str | None] = None,
    period: FromQuery[str | None] = None,
) -> IndicatorAnswer:
    """Indicator results for a unit in the officer's scope and the units one level below it."""

    code = scope.report_unit(user, unit)
    period = period or str(to_vn_naive(utcnow()).year)
    registry = units_for(store)
    try:
        if code is None:
            results = evaluate(store, period, registry=registry)
        else:
            found = registry.get(code)
            if found is None:
                raise UnknownUnit(code)
            below = {"province": "commune", "commune": "hamlet"}.get(found.level)
            results = evaluate(store, period, units=[code], level=below, registry=registry)
    except Problem:
        raise
    except ValueError as exc:
        raise Problem.with_text("indicator.refused", str(exc)) from None

    allowed = scope.allowed_units(user)
    results = protect_for_viewer(results, scope.can(user, scope.VIEW_PERSONAL))
    rows = [IndicatorFigure(**r.model_dump()) for r in results if allowed is None or r.unit_code in allowed]
    # Fields of encrypted records are unreadable here: indicators filtering on them miss these records.
    unread = encrypted_counts(store, scope.narrow(None, user))
    return IndicatorAnswer(unit=code, period=period, results=rows, encrypted_unread=unread)


read_handlers = [rounds, export, export_csv, indicators]
