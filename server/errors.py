"""How the machine endpoints answer a ``core.problems.Problem``: ODK Collect's OpenRosa XML and rasoat's own
JSON API (the Central API's shape is ``server.central.problems``, the web pages' ``server.web.base``)."""

from __future__ import annotations

import errno
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from rasoat.core.problems import Problem
from rasoat.server import openrosa
from rasoat.server.central.problems import invalid_value, missing_params, unparseable

DISK_FULL_RETRY_SECONDS = 300


def openrosa_response(request: Request, exc: Problem) -> Response:
    """An ``<OpenRosaResponse>`` with ``nature="error"``: Collect shows the message ("Việt / English")."""
    body = b"" if request.method == "HEAD" else openrosa.response_xml(exc.message, "error")
    return Response(
        content=body,
        status_code=exc.status,
        media_type=openrosa.XML_MEDIA_TYPE,
        headers={**openrosa.headers(), **exc.headers},
    )


def api_response(_request: Request, exc: Problem) -> Response:
    """rasoat's JSON API: ``{"error": "Việt / English", "code": "form.not_found"}``."""
    return Response(content={"error": exc.message, "code": exc.code}, status_code=exc.status,
                    headers=exc.headers)


# Litestar's own refusals (no route, wrong method, a body over the limit, a query it cannot parse) as the
# catalogue's problems, so every surface shows them as it shows any other.
HTTP_PROBLEMS = {404: "request.no_route", 405: "request.method_not_allowed", 413: "request.too_large",
                 415: "request.unsupported_media"}


def http_problem(request: Request, exc: HTTPException) -> Problem:
    if isinstance(exc, ValidationException):
        return invalid_input(exc)
    if isinstance(exc.__cause__, SerializationException):  # a body that is not JSON
        return unparseable("JSON")
    code = HTTP_PROBLEMS.get(exc.status_code)
    headers = dict(exc.headers or {})  # 405 keeps its Allow header
    if code is None:
        return Problem("request.invalid", detail=str(exc.detail), headers=headers)
    return Problem(code, headers=headers, detail=str(exc.detail),
                   mb=request.app.state["rasoat"].settings.max_body_bytes // 1_000_000)


def invalid_input(exc: ValidationException) -> Problem:
    """A body or parameter its handler's model refuses (litestar checks them before the handler runs), as
    Central says it, on every surface: a key missing 400.3, a key the model does not take 400.31, the body
    not a JSON object 400.1, a value of the wrong type 400.11."""
    errors: Any = getattr(exc.__cause__, "errors", None)  # pydantic's, when a model refused it
    if not isinstance(errors, list) or not errors:  # msgspec's own: no body, a parameter it cannot read
        first = exc.extra[0] if isinstance(exc.extra, list) and exc.extra else {}
        key = str(first.get("key", ""))
        if key == "data":  # the body itself (every handler names it ``data``) is missing
            return unparseable("JSON")
        return invalid_value(key, str(first.get("message", "")))
    missing = [_dotted(e["loc"]) for e in errors if e["type"] == "missing"]
    if missing:
        return missing_params(missing, {})
    extra = [_dotted(e["loc"]) for e in errors if e["type"] == "extra_forbidden"]
    if extra:
        return Problem("request.unexpected_keys", keys=", ".join(extra))
    first = errors[0]
    if not first["loc"]:
        return unparseable("JSON object")
    return invalid_value(_dotted(first["loc"]), str(first["msg"]))


def _dotted(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


def too_large(limit: int) -> Problem:
    return Problem("request.too_large", mb=limit // 1_000_000)


def disk_full_problem() -> Problem:
    return Problem("server.disk_full", headers={"Retry-After": str(DISK_FULL_RETRY_SECONDS)})


def disk_full(exc: BaseException) -> bool:
    """Is this (or what caused it) a full disk or quota: the file system's ENOSPC/EDQUOT, or PostgreSQL's
    disk_full (SQLSTATE 53100)? A refusal the operator must fix, not a server bug: 503, not 500."""
    seen: BaseException | None = exc
    for _ in range(8):  # the chain of causes, bounded
        if seen is None:
            return False
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if getattr(seen, "sqlstate", None) == "53100":
            return True
        seen = seen.__cause__ or seen.__context__
    return False
