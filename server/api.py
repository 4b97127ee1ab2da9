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
from rasoat.core.storage.base import Store
from rasoat.server.api_read import officer
from rasoat.server.errors import ApiError, OpenRosaError
from rasoat.server.uploads import close_parts, read_parts

MAX_FORM_UPLOAD = 50_000_000


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
    from rasoat.core.formreg import find_media
    from rasoat.core.models import AuditEvent
    from rasoat.core.xlsform import FormVersionConflict, XLSFormError, compile_xlsform, publish_form

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
            return publish_xlsform(st.store, path, media, round_id or None, validate, "upload", user.username)

    result = await anyio.to_thread.run_sync(run)
    return Response(content=result, status_code=201)


api_handlers = [publish]
