"""Errors an OpenRosa endpoint answers with: a status, one bilingual message, and maybe extra headers."""

from __future__ import annotations


class OpenRosaError(Exception):
    """Rendered as an OpenRosaResponse with ``nature="error"``; Collect shows ``message`` to the collector."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


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
