"""The officers' JSON API: publish any XLSForm (``POST /api/v1/forms``); reads are in ``server.api_read``.

Officers authenticate as themselves (``server.deps``: a personal Bearer token from ``rasoat users token
NAME``, or Basic over HTTPS); publishing needs the ``publish_forms`` permission (a guard) and, with a
round, that round inside the officer's units. Errors are JSON ``{"error": "<bilingual message>",
"code": "<catalogue code>"}`` (docs/errors.md).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import anyio
from litestar import Request, post
from litestar.di import NamedDependency
from pydantic import BaseModel
from rasoat.core import scope
from rasoat.core.instance import safe_attachment_name
from rasoat.core.models import User
from rasoat.core.problems import Problem
from rasoat.core.publish import publish_file
from rasoat.core.storage.base import Store
from rasoat.server.deps import requires
from rasoat.server.errors import too_large
from rasoat.server.openapi import PROBLEM_RESPONSES, PUBLISH_BODY
from rasoat.server.uploads import close_parts, read_parts

MAX_FORM_UPLOAD = 50_000_000


class PublishResult(BaseModel):
    """A published form version: its id, version, md5 hash and media, and what pyxform warned about."""

    form_id: str
    version: str
    md5: str
    title: str
    media: list[str]
    missing_media: list[str]
    round: str | None
    warnings: list[str]


@post("/api/v1/forms", guards=[requires(scope.PUBLISH_FORMS)], responses=PROBLEM_RESPONSES, status_code=201,
      operation_class=PUBLISH_BODY)
async def publish(
    request: Request, store: NamedDependency[Store], user: NamedDependency[User]
) -> PublishResult:
    """Multipart: ``file`` (the .xlsx), optional media files, optional field ``round``."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_FORM_UPLOAD:
        raise too_large(MAX_FORM_UPLOAD)
    parts = await read_parts(request, MAX_FORM_UPLOAD)  # the same reader as submissions
    try:
        if sum(p.size for p in parts) > MAX_FORM_UPLOAD:  # a chunked body has no length to check first
            raise too_large(MAX_FORM_UPLOAD)

        def read() -> tuple[dict[str, str], list[tuple[str, str, bytes]]]:
            texts = {p.name: p.read().decode("utf-8", "replace").strip() for p in parts if p.filename is None}
            return texts, [(p.name, p.filename, p.read()) for p in parts if p.filename is not None]

        texts, files = await anyio.to_thread.run_sync(read)
    finally:
        close_parts(parts)
    xlsx = next(((fn, data) for name, fn, data in files if name == "file"), None)
    if xlsx is None or not xlsx[1]:
        raise Problem("form.file_missing")
    round_id = texts.get("round") or None
    rnd = store.get_round(round_id) if round_id else None
    if rnd is not None and not scope.round_visible(user, rnd):
        raise scope.ScopeError("scope.round_not_yours", round=round_id)
    validate = texts.get("validate", "").lower() not in ("0", "false", "no")
    media: dict[str, bytes] = {}
    for name, fn, data in files:
        if name != "file":
            if not safe_attachment_name(fn):
                raise Problem("request.bad_file_name", name=repr(fn))
            media[fn] = data
    filename = Path(xlsx[0] or "form.xlsx").name
    if not safe_attachment_name(filename) or not filename.lower().endswith((".xlsx", ".xls")):
        filename = "form.xlsx"

    def run() -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="rasoat-publish-") as tmp:
            path = Path(tmp) / filename
            path.write_bytes(xlsx[1])
            published = publish_file(store, path, media, actor=user.username, round_id=round_id,
                                     validate=validate, via="api")  # PublishError: its code's status
            return published.as_json()

    return PublishResult(**await anyio.to_thread.run_sync(run))


api_handlers = [publish]
