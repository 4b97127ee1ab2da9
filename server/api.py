"""The officers' JSON API: publish any XLSForm (``POST /api/v1/forms``); reads are in ``server.api_read``.

Officers authenticate as themselves (``server.api_read.officer``: a personal Bearer token from
``rasoat users token NAME``, or Basic over HTTPS); publishing needs the ``publish_forms`` permission and,
with a round, that round inside the officer's units. Errors are JSON ``{"error": "<bilingual message>"}``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import anyio
from litestar import Request, Response, post
from rasoat.core import scope
from rasoat.core.instance import safe_attachment_name
from rasoat.core.publish import PublishError, publish_file
from rasoat.server.api_read import officer
from rasoat.server.errors import ApiError, OpenRosaError
from rasoat.server.uploads import close_parts, read_parts

MAX_FORM_UPLOAD = 50_000_000


# the JSON API's answer to each refusal of the publishing service (core.publish), by its code
PUBLISH_STATUS: dict[str, int] = {
    "form.invalid": 422,
    "form.unused_media": 422,
    "form.version_conflict": 409,
    "round.not_found": 404,
    "round.closed": 409,
}


def publish_refused(exc: PublishError) -> ApiError:
    """A refusal of ``core.publish`` as this API says it: status by code, the bilingual message."""
    return ApiError(PUBLISH_STATUS.get(exc.code, 400), exc.message)


@post("/api/v1/forms")
async def publish(request: Request) -> Response:
    """Multipart: ``file`` (the .xlsx), optional media files, optional field ``round``."""
    st = request.app.state["rasoat"]
    user = await anyio.to_thread.run_sync(officer, request)
    if not scope.can(user, scope.PUBLISH_FORMS):
        raise ApiError(403, f"Tài khoản {user.username} không được đăng biểu mẫu / "
                            f"Account {user.username} may not publish forms")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_FORM_UPLOAD:
        raise ApiError(413, "Tệp quá lớn / File too large")
    try:
        parts = await read_parts(request, MAX_FORM_UPLOAD)
    except OpenRosaError as exc:  # the same reader as submissions; this API answers JSON
        raise ApiError(exc.status, exc.message) from None
    try:
        if sum(p.size for p in parts) > MAX_FORM_UPLOAD:  # a chunked body has no length to check first
            raise ApiError(413, "Tệp quá lớn / File too large")

        def read() -> tuple[dict[str, str], list[tuple[str, str, bytes]]]:
            texts = {p.name: p.read().decode("utf-8", "replace").strip() for p in parts if p.filename is None}
            return texts, [(p.name, p.filename, p.read()) for p in parts if p.filename is not None]

        texts, files = await anyio.to_thread.run_sync(read)
    finally:
        close_parts(parts)
    xlsx = next(((fn, data) for name, fn, data in files if name == "file"), None)
    if xlsx is None or not xlsx[1]:
        raise ApiError(400, "Thiếu phần 'file' (.xlsx) / Missing the 'file' part (.xlsx)")
    round_id = texts.get("round") or None
    rnd = st.store.get_round(round_id) if round_id else None
    if rnd is not None and not scope.round_visible(user, rnd):
        raise ApiError(403, f"Đợt {round_id} nằm ngoài phạm vi của bạn / "
                            f"Round {round_id} is outside your units")
    validate = texts.get("validate", "").lower() not in ("0", "false", "no")
    media: dict[str, bytes] = {}
    for name, fn, data in files:
        if name != "file":
            if not safe_attachment_name(fn):
                raise ApiError(400, f"Tên tệp không hợp lệ / Invalid file name: {fn!r}")
            media[fn] = data
    filename = Path(xlsx[0] or "form.xlsx").name
    if not safe_attachment_name(filename) or not filename.lower().endswith((".xlsx", ".xls")):
        filename = "form.xlsx"

    def run() -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="rasoat-publish-") as tmp:
            path = Path(tmp) / filename
            path.write_bytes(xlsx[1])
            try:
                published = publish_file(st.store, path, media, actor=user.username, round_id=round_id,
                                         validate=validate, via="api")
            except PublishError as exc:
                raise publish_refused(exc) from None
            return published.as_json()

    result = await anyio.to_thread.run_sync(run)
    return Response(content=result, status_code=201)


api_handlers = [publish]
