"""Errors the OpenRosa endpoints and the JSON API answer with: a status, one bilingual message, and maybe
extra headers."""

from __future__ import annotations

import errno

from litestar import Request, Response

DISK_FULL_RETRY_SECONDS = 300
DISK_FULL_MESSAGE = (
    "Máy chủ hết chỗ lưu trữ; dữ liệu chưa được lưu, hãy gửi lại sau / "
    "The server's disk is full; nothing was stored, send again later"
)


class OpenRosaError(Exception):
    """Rendered as an OpenRosaResponse with ``nature="error"``; Collect shows ``message`` to the collector."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class ApiError(Exception):
    """Rendered by ``api_error_response`` as JSON ``{"error": message}`` for the JSON API."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def api_error_response(_request: Request, exc: ApiError) -> Response:
    return Response(content={"error": exc.message}, status_code=exc.status, headers=exc.headers)


def bad_request(message: str) -> OpenRosaError:
    return OpenRosaError(400, message)


def forbidden(message: str) -> OpenRosaError:
    return OpenRosaError(403, message)


def not_found(message: str) -> OpenRosaError:
    return OpenRosaError(404, message)


def conflict(message: str) -> OpenRosaError:
    return OpenRosaError(409, message)


def too_large(limit: int) -> OpenRosaError:
    return OpenRosaError(
        413,
        f"Dữ liệu gửi lên quá lớn (tối đa {limit // 1_000_000} MB) / "
        f"Upload too large (max {limit // 1_000_000} MB)",
    )


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
