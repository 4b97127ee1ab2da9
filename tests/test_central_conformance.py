"""The Central API (/v1, the operations tagged "ODK Central") answers what its schema says, checked by
schemathesis against a real server as an administrator, a commune officer and with no credentials."""

from __future__ import annotations

import pytest
from fuzz_support import CENTRAL_CONFORMANCE, CENTRAL_PATHS, run_schemathesis

pytestmark = pytest.mark.slow  # schema-driven requests to every Central operation


@pytest.mark.parametrize("who", ["admin", "officer", None])
def test_the_central_api_answers_as_its_schema_says(api_server, who: str | None) -> None:
    """pyodk's calls and OData (every operation tagged "ODK Central"): each answer, a result or a refusal,
    matches the model the schema declares for its status, with the declared content type."""
    url, tokens, reports = api_server
    config = reports / "central-paths.toml"
    config.write_text(CENTRAL_PATHS, encoding="utf-8")
    run_schemathesis(url, reports, CENTRAL_CONFORMANCE, 15, tokens[who] if who else None,
                     "--include-tag", "ODK Central", config=config)
