"""rasoat's own JSON API (/api/v1) answers what its schema says, checked by schemathesis against a real
server as an administrator, a commune officer and with no credentials: the response models, the problem
shape of every refusal, the content type."""

from __future__ import annotations

import pytest
from fuzz_support import CONFORMANCE, run_schemathesis

pytestmark = pytest.mark.slow  # schema-driven requests to every /api/v1 operation


@pytest.mark.parametrize("who", ["admin", "officer", None])
def test_the_json_api_answers_as_its_schema_says(api_server, who: str | None) -> None:
    """Every answer of /api/v1, a result or a refusal, matches the response model the schema declares for
    its status, with the declared content type."""
    url, tokens, reports = api_server
    run_schemathesis(url, reports, CONFORMANCE, 15, tokens[who] if who else None,
                     "--include-path-regex", "^/api/v1/")
