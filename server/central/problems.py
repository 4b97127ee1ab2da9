"""The Central API's shape of a ``core.problems.Problem``, and shorthands for the problems it raises.

Central's shape (lib/util/problem.js): ``{"message": "...", "code": 404.1, "details": {...}}``; ``code`` is
a JSON number, Central's code of the problem's catalogue entry (pyodk tells errors apart by it), else its
HTTP status. ``$metadata`` (XML) gets ``<error code="…"><message>…</message></error>``. The codes, statuses
and messages are the catalogue's (core/problems.py, docs/errors.md); the functions below only name the
parameters and ``details`` Central gives.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

from litestar import Request, Response
from rasoat.core.problems import Problem


def central_code(exc: Problem) -> str:
    return exc.kind.central or str(exc.status)


def problem_response(request: Request, exc: Problem) -> Response:
    """Central's answer: its HTTP status is the integer part of its code (400.15 is a 400)."""
    code = central_code(exc)
    status = int(code.split(".")[0])
    if request.url.path.endswith("/$metadata"):
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?><error code="{code}"><message>'
            f"{escape(exc.message)}</message></error>"
        ).encode()
        return Response(
            content=body, status_code=status, media_type="application/xml", headers=exc.headers
        )
    content: dict[str, Any] = {"message": exc.message, "code": float(code)}
    if exc.details is not None:
        content["details"] = exc.details
    return Response(content=content, status_code=status, headers=exc.headers)


# --- shorthands: the catalogue's codes with Central's details -------------------------------------------


def missing_params(expected: list[str], got: dict[str, Any]) -> Problem:
    return Problem("request.missing_params", expected=", ".join(expected),
                   details={"expected": expected, "got": got})


def unparseable(what: str) -> Problem:
    return Problem("request.unparseable", what=what)


def invalid_value(field: str, detail: str) -> Problem:
    return Problem("request.invalid_value", field=field, detail=detail, details={"field": field})


def form_id_mismatch(expected: str, got: str) -> Problem:
    reason = f"did not match the form ID in the URL ({expected})"
    return Problem("form.id_mismatch", expected=expected, got=got,
                   details={"field": "form id", "value": got, "reason": reason})


def odata_filter(message: str) -> Problem:
    return Problem("odata.filter", detail=message)


def odata_filter_sealed(field: str) -> Problem:
    """A $filter on an identifying field: its values are sealed at rest (core.protection), so no
    comparison could ever match; said, rather than answered with an empty page."""
    return Problem("odata.filter_sealed", field=field, details={"field": field, "reason": "sealed"})


def deprecated_id_missing() -> Problem:
    return Problem("submission.deprecated_id_missing")


def odata_select(field: str) -> Problem:
    return Problem("odata.select_unknown", field=field)


def bad_skiptoken() -> Problem:
    return Problem("odata.skiptoken_invalid")


def skiptoken_gone() -> Problem:
    return Problem("odata.skiptoken_gone")


def auth_failed() -> Problem:
    return Problem("auth.failed")


def https_only() -> Problem:
    return Problem("auth.https_only")


def forbidden(why: str = "") -> Problem:
    return Problem("auth.forbidden", why=f" ({why})" if why else "")


def not_found(what: str = "") -> Problem:
    return Problem("resource.not_found", what=f" ({what})" if what else "")


def unknown_version(version: str) -> Problem:
    return Problem("form.version_unknown", version=version)


def not_acceptable() -> Problem:
    return Problem("request.not_acceptable")


def conflict_instance() -> Problem:
    return Problem("submission.exists")


def stale_edit() -> Problem:
    return Problem("submission.stale_edit")


def unsupported_media(detail: str) -> Problem:
    return Problem("request.unsupported_media", detail=detail)


def unprocessable(message: str) -> Problem:
    return Problem.with_text("request.unprocessable", message)


NOT_IMPLEMENTED = {"501.1": "feature.not_implemented", "501.5": "odata.unsupported",
                   "501.6": "odata.expand_unsupported", "501.11": "odata.select_expand_unsupported"}


def not_implemented(code: str, feature: str) -> Problem:
    """Central's 501.x (``code``) for a feature this subset does not have."""
    return Problem(NOT_IMPLEMENTED[code], feature=feature)
