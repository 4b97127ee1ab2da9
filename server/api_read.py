"""The officers' JSON API for reading: who am I, forms, rounds, submissions, attachments, exports, indicators.

Superseded for forms, submissions and "who am I" by ODK Central's API and OData (``server.central``,
docs/api.md); kept for scripts written against it, and for exports and indicators, which Central lacks.

Authentication (``officer``) is the Central API's (``server.central.auth``): ``Authorization: Bearer`` with
a personal API token (``rasoat users token NAME``) or a session token from ``POST /v1/sessions``, or
``Authorization: Basic`` with the officer's username and password (``core.users.authenticate``: argon2id,
throttled, audited), accepted only over HTTPS (the reverse proxy's ``X-Forwarded-Proto``, trusted by
uvicorn for the proxy's address) or from this machine. Officers do not use Digest: it would need an MD5
of the password kept on the server (see docs/deployment.md).

Every read goes through ``core.scope``: lists are ``narrow``-ed to the officer's units, one record is
checked with ``require_submission``, exports take ``export_units`` and indicators ``report_unit``. Field
values are returned only to roles with ``view_personal`` and each such view is written to the audit log
(who, filter, how many records). Encrypted submissions have no readable fields on the server; exports
decrypt them only with the project passphrase on the command line (``rasoat export --passphrase-file``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Request, Response, get
from litestar.params import FromPath, FromQuery
from rasoat.core import scope
from rasoat.core.audit import record_view
from rasoat.core.models import ReviewState, Submission, User
from rasoat.core.storage.base import PageKey, Store, SubmissionQuery
from rasoat.server.central.auth import officer as central_officer
from rasoat.server.central.problems import Problem
from rasoat.server.errors import ApiError

BASIC_CHALLENGE = 'Basic realm="rasoat", charset="UTF-8"'
MAX_OFFSET = 10**9  # beyond any store; keeps the number inside the databases' 64-bit integers
MAX_LIMIT = 1000


def _store(request: Request) -> Store:
    return request.app.state["rasoat"].store


def officer(request: Request) -> User:
    """The officer making this request, or an ApiError (401 with a Basic challenge, 403, 429).

    The credentials are checked by ``server.central.auth.officer``, the one rule for both APIs (so a
    Central session token works here too); only the answer keeps this API's shape: a bad or revoked
    token, or Basic over plain HTTP, is 403, and a 401 carries a Basic challenge."""
    try:
        return central_officer(request)
    except Problem as exc:
        status = exc.status
        if status == 401 and (exc.code == "401.3" or request.headers.get("authorization", "").strip()
                              .lower().startswith("bearer ")):
            status = 403
        headers = dict(exc.headers)
        if status == 401:
            headers["WWW-Authenticate"] = BASIC_CHALLENGE
        raise ApiError(status, exc.message, headers) from None


def _allowed(user: User, permission: str) -> None:
    try:
        scope.require(user, permission)
    except scope.ScopeError as exc:
        raise ApiError(403, exc.message) from None


def _scoped(func: Any, *args: Any) -> Any:
    try:
        return func(*args)
    except scope.ScopeError as exc:
        raise ApiError(403, exc.message) from None


def _summary(sub: Submission) -> dict[str, Any]:
    return {
        "instance_id": sub.instance_id, "form_id": sub.form_id, "form_version": sub.form_version,
        "round_id": sub.round_id, "unit_code": sub.unit_code, "collector_id": sub.collector_id,
        "received_at": sub.received_at.isoformat(), "review_state": sub.review_state.value,
        "attachments": list(sub.attachments), "encrypted": sub.encrypted, "current": sub.current,
        "deprecated_id": sub.deprecated_id,
    }


def _detail(sub: Submission) -> dict[str, Any]:
    out = _summary(sub)
    out["fields"] = None if sub.encrypted else sub.fields
    out["review_history"] = sub.review_history
    return out


def _states(text: str | None) -> list[ReviewState] | None:
    if not text:
        return None
    try:
        return [ReviewState(s.strip()) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ApiError(400, f"Trạng thái không hợp lệ / Unknown review state: {text}") from None


def _units(unit: str | None) -> list[str] | None:
    if not unit:
        return None
    from rasoat.core.units import get_units

    codes = [c.strip() for c in unit.split(",") if c.strip()]
    registry = get_units()
    unknown = [c for c in codes if registry.get(c) is None]
    if unknown:
        raise ApiError(404, f"Không có đơn vị / Unknown unit: {', '.join(unknown)}")
    return sorted(registry.expand(codes))


# --- who, forms, rounds -----------------------------------------------------------------------------


@get("/api/v1/me", sync_to_thread=True)
def me(request: Request) -> dict[str, Any]:
    """The logged-in officer: role, units and what the role may do."""
    user = officer(request)
    return {"username": user.username, "name": user.display_name, "role": user.role.value,
            "units": user.unit_codes,
            "permissions": sorted(p for p in scope.ALL_PERMISSIONS if scope.can(user, p))}


@get("/api/v1/forms", sync_to_thread=True)
def forms(request: Request) -> list[dict[str, Any]]:
    """Published forms (latest version of each); definitions hold no personal data."""
    user = officer(request)
    _allowed(user, scope.VIEW)
    return [{"form_id": f.form_id, "version": f.version, "title": f.title, "encrypted": f.encrypted,
             "published_at": f.published_at.isoformat()} for f in _store(request).list_forms()]


@get("/api/v1/rounds", sync_to_thread=True)
def rounds(request: Request) -> list[dict[str, Any]]:
    """Rounds that cover some of the officer's units."""
    user = officer(request)
    _allowed(user, scope.VIEW)
    return [{"id": r.id, "name": r.name, "kind": r.kind, "period": r.period, "state": r.state.value,
             "form_ids": r.form_ids, "unit_codes": r.unit_codes}
            for r in scope.visible_rounds(_store(request).list_rounds(), user)]


# --- submissions ----------------------------------------------------------------------------------


@get("/api/v1/submissions", sync_to_thread=True)
def submissions(
    request: Request,
    form_id: FromQuery[str | None] = None,
    round_id: FromQuery[str | None] = None,
    unit: FromQuery[str | None] = None,
    review_state: FromQuery[str | None] = None,
    limit: FromQuery[int] = 100,
    offset: FromQuery[int] = 0,
    after: FromQuery[str | None] = None,
    fields: FromQuery[bool] = False,
) -> dict[str, Any]:
    """Submissions in the officer's units, oldest first (metadata; ``fields=true`` adds values and is
    audited). Page with ``after``: each answer's ``after`` is where the next page starts (null on the
    last); the store seeks there by index, so deep pages cost what the first does."""
    user = officer(request)
    _allowed(user, scope.VIEW)
    if fields:
        _allowed(user, scope.VIEW_PERSONAL)
    if not 1 <= limit <= MAX_LIMIT or not 0 <= offset <= MAX_OFFSET:
        raise ApiError(400, f"limit 1–{MAX_LIMIT}, offset 0–{MAX_OFFSET}")
    store = _store(request)
    query = scope.narrow(
        SubmissionQuery(form_id=form_id, round_id=round_id, unit_codes=_units(unit),
                        review_states=_states(review_state)),
        user,
    )
    total = store.count_submissions(query)
    key = _page_key(after) if after else None
    page = store.page_submissions(query, limit=limit + 1, after=key, offset=offset)
    items: list[dict[str, Any]] = [_detail(sub) if fields else _summary(sub) for sub in page[:limit]]
    last = page[limit - 1] if len(page) > limit else None
    if fields:
        record_view(store, user.username, "view.submissions", via="api", count=len(items),
                    filters={"form_id": form_id, "round_id": round_id, "unit": unit,
                             "review_state": review_state, "offset": offset, "limit": limit,
                             "after": after})
    nxt = f"{last.received_at.isoformat()}|{last.instance_id}" if last else None
    return {"total": total, "offset": offset, "items": items, "after": nxt}


def _page_key(after: str) -> PageKey:
    """The ``after`` of a previous answer: the last row's receipt time and instanceID."""
    at, sep, instance_id = after.partition("|")
    try:
        if not sep or not instance_id:
            raise ValueError(after)
        return PageKey(datetime.fromisoformat(at), instance_id)
    except ValueError:
        raise ApiError(400, f"vị trí trang không hợp lệ / invalid page position {after!r}") from None


def _one(request: Request, user: User, instance_id: str) -> Submission:
    try:
        sub = _store(request).get_submission(instance_id)
    except ValueError:  # a name the store cannot even hold (too long, path syntax): no such record
        sub = None
    if sub is None:
        raise ApiError(404, f"Không có bản ghi / No submission {instance_id}")
    try:
        scope.require_submission(user, sub)
    except scope.ScopeError:  # the same answer as for an unknown id: existence is not disclosed
        raise ApiError(404, f"Không có bản ghi / No submission {instance_id}") from None
    return sub


@get("/api/v1/submissions/{instance_id:str}", sync_to_thread=True)
def submission(request: Request, instance_id: FromPath[str]) -> dict[str, Any]:
    """One submission with its field values (audited)."""
    user = officer(request)
    _allowed(user, scope.VIEW_PERSONAL)
    sub = _one(request, user, instance_id)
    record_view(_store(request), user.username, "view.submission", via="api", count=1,
                filters={"form_id": sub.form_id, "instance_id": sub.instance_id})
    return _detail(sub)


@get("/api/v1/submissions/{instance_id:str}/attachments/{name:str}", sync_to_thread=True)
def submission_attachment(
    request: Request, instance_id: FromPath[str], name: FromPath[str]
) -> Response:
    """One attachment's bytes (audited)."""
    user = officer(request)
    _allowed(user, scope.VIEW_PERSONAL)
    sub = _one(request, user, instance_id)
    data = _store(request).attachment(sub.instance_id, name) if name in sub.attachments else None
    if data is None:
        raise ApiError(404, f"Không có tệp / No attachment {name}")
    record_view(_store(request), user.username, "view.attachment", via="api", count=1,
                filters={"form_id": sub.form_id, "instance_id": sub.instance_id, "name": name})
    return Response(content=data, media_type="application/octet-stream",
                    headers={"Content-Disposition": "attachment", "X-Content-Type-Options": "nosniff"})


# --- exports and indicators --------------------------------------------------------------------------


def _open_export(
    request: Request,
    form_id: str,
    fmt: str,
    unit: str | None,
    round_id: str | None,
    period: str | None,
    personal: bool,
    labels: str | None,
) -> Any:
    """Check who asks and what (ApiError), then the export ready to be written into the response."""
    from rasoat.core.crypto import form_is_encrypted
    from rasoat.core.excel.from_store import ExportError, ExportFilters, open_export
    from rasoat.core.excel.raw import RawExportOptions
    from rasoat.core.excel.schema import LabelMode

    user = officer(request)
    _allowed(user, scope.EXPORT)
    if personal:
        _allowed(user, scope.VIEW_PERSONAL)
    if labels not in (None, "vi", "en", "none"):
        raise ApiError(400, f"labels: vi, en hoặc none / labels: vi, en or none (not {labels!r})")
    mode: LabelMode = "en" if labels == "en" else "none" if labels == "none" else "vi"
    if form_is_encrypted(_store(request), form_id):
        raise ApiError(409, f"{form_id} được mã hoá: xuất bằng cụm mật khẩu / "
                            f"{form_id} is encrypted: export it with the passphrase (rasoat export "
                            "--passphrase-file)")
    requested = tuple(c.strip() for c in (unit or "").split(",") if c.strip())
    units = _scoped(scope.export_units, user, requested)
    try:
        return open_export(_store(request), form_id, format="csv" if fmt == "csv" else "xlsx",
                           filters=ExportFilters(round_id=round_id, unit_codes=units, period=period),
                           options=RawExportOptions(include_personal=personal, labels=mode),
                           actor=user.username)
    except ExportError as exc:
        raise ApiError(404, str(exc)) from None
    except KeyError as exc:  # an unknown unit code
        raise ApiError(404, str(exc)) from None


async def _export_response(request: Request, form_id: str, fmt: str, **query: Any) -> Response:
    """The export streamed as it is written: the download starts at once, memory stays flat."""
    import anyio
    from litestar.response import Stream
    from rasoat.server.streaming import stream_file

    opened = await anyio.to_thread.run_sync(lambda: _open_export(request, form_id, fmt, **query))
    media = "application/zip" if fmt == "csv" else \
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    name = f"{form_id}.csv.zip" if fmt == "csv" else f"{form_id}.xlsx"
    return Stream(stream_file(opened.write, f"export-{form_id}"), media_type=media,
                  headers={"Content-Disposition": f'attachment; filename="{name}"',
                           "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


@get("/api/v1/forms/{form_id:str}/export.xlsx")
async def export(
    request: Request,
    form_id: FromPath[str],
    unit: FromQuery[str | None] = None,
    round_id: FromQuery[str | None] = None,
    period: FromQuery[str | None] = None,
    personal: FromQuery[bool] = False,
    labels: FromQuery[str | None] = None,
) -> Response:
    """The raw data workbook of one form, cut to the officer's units (audited by the exporter)."""
    return await _export_response(request, form_id, "xlsx", unit=unit, round_id=round_id, period=period,
                                  personal=personal, labels=labels)


@get("/api/v1/forms/{form_id:str}/export.csv.zip")
async def export_csv(
    request: Request,
    form_id: FromPath[str],
    unit: FromQuery[str | None] = None,
    round_id: FromQuery[str | None] = None,
    period: FromQuery[str | None] = None,
    personal: FromQuery[bool] = False,
    labels: FromQuery[str | None] = None,
) -> Response:
    """The raw data of one form as a zip of CSV files laid out as ODK Central's (KEY / PARENT_KEY), cut to
    the officer's units (audited by the exporter)."""
    return await _export_response(request, form_id, "csv", unit=unit, round_id=round_id, period=period,
                                  personal=personal, labels=labels)


@get("/api/v1/indicators", sync_to_thread=True)
def indicators(
    request: Request, unit: FromQuery[str | None] = None, period: FromQuery[str | None] = None
) -> dict[str, Any]:
    """Indicator results for a unit in the officer's scope and the units one level below it."""
    from rasoat.core.excel.cells import to_vn_naive
    from rasoat.core.indicators import evaluate
    from rasoat.core.models import utcnow
    from rasoat.core.units import get_units

    user = officer(request)
    _allowed(user, scope.VIEW)
    code = _scoped(scope.report_unit, user, unit)
    period = period or str(to_vn_naive(utcnow()).year)
    registry = get_units()
    try:
        if code is None:
            results = evaluate(_store(request), period, registry=registry)
        else:
            found = registry.get(code)
            if found is None:
                raise ApiError(404, f"Không có đơn vị / Unknown unit: {code}")
            below = {"province": "commune", "commune": "hamlet"}.get(found.level)
            results = evaluate(_store(request), period, units=[code], level=below, registry=registry)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    from rasoat.core.crypto import encrypted_counts
    from rasoat.core.indicators.privacy import protect_for_viewer

    allowed = scope.allowed_units(user)
    results = protect_for_viewer(results, scope.can(user, scope.VIEW_PERSONAL))
    rows = [r.model_dump(mode="json") for r in results if allowed is None or r.unit_code in allowed]
    # Fields of encrypted records are unreadable here: indicators filtering on them miss these records.
    unread = encrypted_counts(_store(request), scope.narrow(None, user))
    return {"unit": code, "period": period, "results": rows, "encrypted_unread": unread}


read_handlers = [
    me, forms, rounds, submissions, submission, submission_attachment, export, export_csv, indicators
]
