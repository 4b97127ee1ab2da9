"""Every error the Central API answers with, in one catalogue, rendered in one place.

Central's shape (lib/util/problem.js): ``{"message": "...", "code": 404.1, "details": {...}}`` with the HTTP
status the integer part of ``code``; ``code`` is a JSON number. pyodk tells errors apart by ``code``, so
codes follow Central's; messages are Vietnamese first with Central's English after. ``$metadata`` (XML)
gets ``<error code="…"><message>…</message></error>``.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

from litestar import Request, Response


class Problem(Exception):
    def __init__(
        self,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}

    @property
    def status(self) -> int:
        return int(self.code.split(".")[0])


def problem_response(request: Request, exc: Problem) -> Response:
    if request.url.path.endswith("/$metadata"):
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?><error code="{exc.code}"><message>'
            f"{escape(exc.message)}</message></error>"
        ).encode()
        return Response(
            content=body, status_code=exc.status, media_type="application/xml", headers=exc.headers
        )
    content: dict[str, Any] = {"message": exc.message, "code": float(exc.code)}
    if exc.details is not None:
        content["details"] = exc.details
    return Response(content=content, status_code=exc.status, headers=exc.headers)


# --- the catalogue (Central's codes) ---------------------------------------------------------------


def missing_params(expected: list[str], got: dict[str, Any]) -> Problem:
    return Problem(
        "400.3",
        f"Thiếu tham số bắt buộc ({', '.join(expected)}) / Required parameters missing. "
        f"Expected ({', '.join(expected)}).",
        {"expected": expected, "got": got},
    )


def unparseable(what: str) -> Problem:
    return Problem(
        "400.1", f"Không đọc được dữ liệu gửi lên ({what}) / Could not parse the given data ({what})."
    )


def invalid_value(field: str, detail: str) -> Problem:
    return Problem(
        "400.11",
        f"Giá trị không hợp lệ cho {field}: {detail} / Invalid input data type for {field}: {detail}",
        {"field": field},
    )


def form_id_mismatch(expected: str, got: str) -> Problem:
    return Problem(
        "400.8",
        f"Mã biểu mẫu trong bản ghi ({got}) khác mã trong địa chỉ ({expected}) / "
        f"Unexpected xmlFormId value: expected {expected}, got {got}.",
        {"field": "form id", "value": got, "reason": f"did not match the form ID in the URL ({expected})"},
    )


def invalid_xlsform(message: str) -> Problem:
    return Problem(
        "400.15",
        f"Biểu mẫu XLSForm không hợp lệ / The given XLSForm file was not valid: {message}",
        {"error": message},
    )


def odata_filter(message: str) -> Problem:
    return Problem(
        "400.18",
        f"Biểu thức $filter sai cú pháp / The given OData filter expression could not be parsed: {message}",
    )


def odata_filter_sealed(field: str) -> Problem:
    """A $filter on an identifying field: its values are sealed at rest (core.protection), so no
    comparison could ever match; said, rather than answered with an empty page."""
    return Problem(
        "400.18",
        f"Không lọc được theo '{field}': đây là trường định danh được niêm phong khi lưu, máy chủ không so "
        f"sánh giá trị của nó / The OData filter cannot use '{field}': it is an identifying field sealed at "
        "rest, so the server cannot compare its values.",
        {"field": field, "reason": "sealed"},
    )


def deprecated_id_missing() -> Problem:
    return Problem(
        "400.19",
        "Bản sửa thiếu meta/deprecatedID / The submission you are trying to edit has no deprecatedID.",
    )


def odata_select(field: str) -> Problem:
    return Problem(
        "400.23", f"Không có trường '{field}' để chọn / Could not find a property named '{field}'."
    )


def bad_skiptoken() -> Problem:
    return Problem("400.35", "$skiptoken không hợp lệ / The $skiptoken you provided is invalid.")


def skiptoken_gone() -> Problem:
    return Problem(
        "400.34", "Bản ghi của $skiptoken không còn / The record the $skiptoken names no longer exists."
    )


def auth_failed() -> Problem:
    return Problem(
        "401.2",
        "Không xác thực được với thông tin đã gửi / Could not authenticate with the provided credentials.",
    )


def https_only() -> Problem:
    return Problem(
        "401.3", "Chỉ đăng nhập Basic qua HTTPS / This authentication method is only available over HTTPS."
    )


def forbidden(why: str = "") -> Problem:
    extra = f" ({why})" if why else ""
    return Problem(
        "403.1",
        f"Bạn không có quyền làm việc này{extra} / The authenticated actor does not have "
        f"rights to perform that action.",
    )


def throttled(message: str, retry_after: int) -> Problem:
    return Problem("429.1", message, headers={"Retry-After": str(retry_after)})


def not_found(what: str = "") -> Problem:
    extra = f" ({what})" if what else ""
    return Problem("404.1", f"Không tìm thấy{extra} / Could not find the resource you were looking for.")


def unknown_version(version: str) -> Problem:
    return Problem(
        "404.6",
        f"Không có phiên bản biểu mẫu '{version}' / The form version you specified "
        f"({version}) could not be found.",
    )


def not_acceptable() -> Problem:
    return Problem(
        "406.1",
        "Định dạng yêu cầu không được hỗ trợ / Requested format not acceptable; this "
        "resource serves JSON (XML for $metadata).",
    )


def conflict_instance() -> Problem:
    return Problem("409.3", "Mã bản ghi đã có / A resource already exists with the given instanceID.")


def form_closed() -> Problem:
    return Problem(
        "409.2",
        "Biểu mẫu không nhận bản ghi (không có đợt đang mở) / This form is not accepting "
        "submissions (no open round carries it).",
    )


def stale_edit() -> Problem:
    return Problem(
        "409.9",
        "Bản sửa không dựa trên phiên bản hiện tại / The deprecatedID does not match "
        "the current version of this submission.",
    )


def version_exists(message: str) -> Problem:
    return Problem("409.6", message)


def too_large(limit: int) -> Problem:
    return Problem(
        "413.1",
        f"Dữ liệu quá lớn (tối đa {limit // 1_000_000} MB) / Upload too large (max {limit // 1_000_000} MB)",
    )


def unsupported_media(detail: str) -> Problem:
    return Problem("415.1", f"Kiểu nội dung không được hỗ trợ / Unsupported content type: {detail}")


def unprocessable(message: str) -> Problem:
    return Problem("422.1", message)


def not_implemented(code: str, feature: str) -> Problem:
    return Problem(code, f"Chưa hỗ trợ {feature} / The requested feature {feature} is not supported.")
