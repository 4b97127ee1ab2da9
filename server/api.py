"""The officers' JSON API. For now: publish any XLSForm (``POST /api/v1/forms``).

Authentication until the security work lands: ``Authorization: Bearer <token>`` where the token's
SHA-256 equals ``ServerSettings.admin_token_hash`` (``rasoat serve`` prints a fresh token, or takes
``RASOAT_ADMIN_TOKEN``). Errors are JSON ``{"error": "<bilingual message>"}``.
"""

from __future__ import annotations

import hashlib
import hmac
import tempfile
from pathlib import Path
from typing import Any

import anyio
from litestar import Request, Response, post

from core.instance import safe_attachment_name
from core.storage.base import Store
from server.multipart import MultipartError, boundary_of, parse

MAX_FORM_UPLOAD = 50_000_000


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def api_error_response(_request: Request, exc: ApiError) -> Response:
    return Response(content={"error": exc.message}, status_code=exc.status)


def check_bearer(request: Request, token_hash: str | None) -> None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not token_hash or scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "Cần mã truy cập của cán bộ (Bearer) / An officer API token (Bearer) is required")
    given = hashlib.sha256(token.strip().encode("utf-8")).hexdigest()
    if not hmac.compare_digest(given, token_hash):
        raise ApiError(403, "Mã truy cập không đúng / Wrong API token")


def publish_xlsform(
    store: Store,
    path: Path,
    media: dict[str, bytes] | None = None,
    round_id: str | None = None,
    validate: bool = True,
    source: str = "upload",
    actor: str = "api",
) -> dict[str, Any]:
    """Compile (pyxform + ODK Validate), store the version with its media, optionally add it to a round.

    Shared by the API and ``rasoat forms publish``. Media the form references are taken from ``media``,
    else from next to the file (``<dir>/<form_id>-media/<name>``, then ``<dir>/<name>``). A new version
    of a form id replaces the old one on phones; submissions keep the version they were made with.
    """
    from core.formreg import find_media
    from core.models import AuditEvent
    from core.xlsform import FormVersionConflict, XLSFormError, compile_xlsform, publish_form

    rnd = None
    if round_id:
        rnd = store.get_round(round_id)
        if rnd is None:
            raise ApiError(404, f"Không có đợt '{round_id}' / No round '{round_id}'")
    try:
        compiled = compile_xlsform(path, validate=validate)
    except XLSFormError as exc:
        raise ApiError(422, str(exc)) from None
    given = dict(media or {})
    found, _missing = find_media(path, compiled.form_id, [n for n in compiled.media if n not in given])
    for name, media_path in found.items():
        given[name] = media_path.read_bytes()
    unused = sorted(set(given) - set(compiled.media))
    if unused:
        raise ApiError(
            422,
            f"Biểu mẫu không dùng các tệp / The form does not reference these files: {', '.join(unused)}",
        )
    try:
        form = publish_form(store, compiled, given, source)
    except FormVersionConflict as exc:
        raise ApiError(409, str(exc)) from None
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None
    if rnd is not None:
        rnd = store.get_round(rnd.id) or rnd
        if form.form_id not in rnd.form_ids:
            rnd.form_ids.append(form.form_id)
            rnd.history.append({"at": form.published_at.isoformat(), "actor": actor, "action": "add_form",
                                "form": form.form_id})
            store.put_round(rnd)
    store.append_audit(
        AuditEvent(actor=actor, action="form.publish", target=form.form_id,
                   details={"version": form.version, "round": round_id})
    )
    missing = [n for n in compiled.media if n not in given]
    return {"form_id": form.form_id, "version": form.version, "md5": form.md5, "title": form.title,
            "media": form.media, "missing_media": missing, "round": round_id, "warnings": compiled.warnings}


@post("/api/v1/forms")
async def publish(request: Request) -> Response:
    """Multipart: ``file`` (the .xlsx), optional media files, optional field ``round``."""
    st = request.app.state["rasoat"]
    check_bearer(request, st.settings.admin_token_hash)
    boundary = boundary_of(request.headers.get("content-type", ""))
    if boundary is None:
        raise ApiError(
            400, "Gửi dạng multipart/form-data với phần 'file' / Send multipart/form-data with a 'file' part"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM_UPLOAD:
            raise ApiError(413, "Tệp quá lớn / File too large")
        chunks.append(chunk)
    body = b"".join(chunks)
    try:
        parts = parse(body, boundary)
    except MultipartError as exc:
        raise ApiError(400, f"Không đọc được dữ liệu / Unreadable multipart body ({exc})") from None
    xlsx = next((p for p in parts if p.name == "file"), None)
    if xlsx is None or not xlsx.data:
        raise ApiError(400, "Thiếu phần 'file' (.xlsx) / Missing the 'file' part (.xlsx)")
    round_part = next((p for p in parts if p.name == "round" and p.filename is None), None)
    round_id = round_part.data.decode("utf-8").strip() if round_part else None
    validate_part = next((p for p in parts if p.name == "validate" and p.filename is None), None)
    validate = not (validate_part and validate_part.data.strip().lower() in (b"0", b"false", b"no"))
    media: dict[str, bytes] = {}
    for p in parts:
        if p.filename and p.name != "file":
            if not safe_attachment_name(p.filename):
                raise ApiError(400, f"Tên tệp không hợp lệ / Invalid file name: {p.filename!r}")
            media[p.filename] = p.data
    filename = Path(xlsx.filename or "form.xlsx").name
    if not safe_attachment_name(filename) or not filename.lower().endswith((".xlsx", ".xls")):
        filename = "form.xlsx"

    def run() -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="rasoat-publish-") as tmp:
            path = Path(tmp) / filename
            path.write_bytes(xlsx.data)
            return publish_xlsform(st.store, path, media, round_id or None, validate, "upload", "api")

    result = await anyio.to_thread.run_sync(run)
    return Response(content=result, status_code=201)


api_handlers = [publish]
