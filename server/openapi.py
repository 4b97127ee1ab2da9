"""What the OpenAPI schema (/schema/openapi.json) says the JSON APIs answer when they refuse: rasoat's
problem shape (``server.errors.api_response``) on /api/v1 and Central's (``server.central.problems``) on
the Central API, for each status a handler may give."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
)
from pydantic import BaseModel


class ApiProblem(BaseModel):
    """A refusal: ``code`` is the catalogue's (docs/errors.md), ``error`` its message, Vietnamese first."""

    error: str
    code: str


class CentralProblem(BaseModel):
    """A refusal as ODK Central words it: ``code`` is Central's number (404.1: its integer part is the
    HTTP status), ``message`` the catalogue's message, ``details`` only when the problem has some."""

    message: str
    code: float
    details: dict[str, Any] | None = None


DESCRIPTIONS = {
    400: "Yêu cầu không hợp lệ / Bad request",
    401: "Cần đăng nhập / Authentication required",
    403: "Không được phép / Forbidden",
    404: "Không tìm thấy / Not found",
    406: "Không có định dạng được yêu cầu / Not acceptable",
    409: "Xung đột / Conflict",
    413: "Quá lớn / Too large",
    415: "Kiểu nội dung không được hỗ trợ / Unsupported media type",
    422: "Không xử lý được / Unprocessable",
    429: "Quá nhiều lần thử / Too many attempts",
    501: "Chưa hỗ trợ / Not implemented",
    503: "Máy chủ đang bận / Busy, retry later",
}


def _specs(model: type[BaseModel], statuses: tuple[int, ...]) -> dict[int, ResponseSpec]:
    return {s: ResponseSpec(data_container=model, description=DESCRIPTIONS[s], generate_examples=False)
            for s in statuses}


PROBLEM_RESPONSES = _specs(ApiProblem, (400, 401, 403, 404, 409, 413, 422, 429))
CENTRAL_PROBLEM_RESPONSES = _specs(CentralProblem,
                                   (400, 401, 403, 404, 406, 409, 413, 415, 422, 429, 501, 503))


@dataclass
class JsonOrXml(Operation):
    """An operation (``operation_class``) that answers JSON or, for some names in its path (a
    submission's ``….xml``, OData's ``$metadata`` and its refusals, a form's XForm and OpenRosa's
    refusals on the paths Collect shares), XML: the schema names both."""

    def __post_init__(self) -> None:
        xml = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))
        for answer in (self.responses or {}).values():
            if isinstance(answer, OpenAPIResponse) and answer.content is not None:
                answer.content.update({"application/xml": xml, "text/xml": xml})


BINARY = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
TEXT = Schema(type=OpenAPIType.STRING)
XLSFORM_TYPES = (  # what an XLSForm upload may be labelled (pyodk: by the file's name)
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.ms-excel",
    "application/octet-stream",
)
SUBMISSION_FORM = Schema(type=OpenAPIType.OBJECT, required=["xml_submission_file"], properties={
    "xml_submission_file": BINARY}, additional_properties=BINARY)  # its attachments, by file name


def body_of(content: dict[str, Schema]) -> type[Operation]:
    """An operation (``operation_class``) whose body is read by the handler itself, not by litestar (an
    XML submission, an XLSForm, a file, a multipart upload streamed by ``server.uploads``): the schema
    names its media types, so a client and schemathesis know what to send."""

    @dataclass
    class WithBody(Operation):
        def __post_init__(self) -> None:
            self.request_body = RequestBody(
                content={media: OpenAPIMediaType(schema=schema) for media, schema in content.items()},
                required=True)

    return WithBody


XML_BODY = body_of({"application/xml": TEXT, "text/xml": TEXT})
FILE_BODY = body_of({"application/octet-stream": BINARY})
XLSFORM_BODY = body_of(dict.fromkeys(XLSFORM_TYPES, BINARY))
SUBMISSION_BODY = body_of({"multipart/form-data": SUBMISSION_FORM})
PUBLISH_BODY = body_of({"multipart/form-data": Schema(  # POST /api/v1/forms: the XLSForm and its media
    type=OpenAPIType.OBJECT, required=["file"], additional_properties=BINARY,
    properties={"file": BINARY, "round": TEXT, "validate": TEXT})})
