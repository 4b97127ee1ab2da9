"""schemathesis fuzzes every operation of the server's OpenAPI schema (/schema/openapi.json) against a real
running server — as an administrator, as a commune officer and with no credentials — and no request may
get a server error (5xx). Example counts are bounded so the run takes seconds; what answers must look
like is checked by test_api_conformance (/api/v1) and test_central_conformance (/v1)."""

from __future__ import annotations

import pytest
from fuzz_support import run_schemathesis

pytestmark = pytest.mark.slow  # schema-driven fuzzing of every endpoint


@pytest.mark.parametrize("who,examples", [("admin", 25), ("officer", 15), (None, 10)])
def test_no_server_errors_from_schema_driven_fuzzing(api_server, who: str | None, examples: int) -> None:
    url, tokens, reports = api_server
    out = run_schemathesis(url, reports, "not_a_server_error", examples, tokens[who] if who else None)
    assert "Server error" not in out
