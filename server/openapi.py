"""What the OpenAPI schema (/schema/openapi.json) says the JSON API answers when it refuses: rasoat's
problem shape (``server.errors.api_response``) for each status a handler may give."""

from __future__ import annotations

from litestar.openapi.datastructures import ResponseSpec
from pydantic import BaseModel


class ApiProblem(BaseModel):
    """A refusal: ``code`` is the catalogue's (docs/errors.md), ``error`` its message, Vietnamese first."""

    error: str
    code: str


def _spec(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=ApiProblem, description=description, generate_examples=False)


PROBLEM_RESPONSES: dict[int, ResponseSpec] = {
    400: _spec("Yêu cầu không hợp lệ / Bad request"),
    401: _spec("Cần đăng nhập / Authentication required"),
    403: _spec("Không được phép / Forbidden"),
    404: _spec("Không tìm thấy / Not found"),
    409: _spec("Xung đột / Conflict"),
    413: _spec("Quá lớn / Too large"),
    422: _spec("Không xử lý được / Unprocessable"),
    429: _spec("Quá nhiều lần thử / Too many attempts"),
}
