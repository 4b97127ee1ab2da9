"""schemathesis fuzzes every operation of the server's OpenAPI schema (/schema/openapi.json) against a real
running server — as an administrator, as a commune officer and with no credentials — and no request may
get a server error (5xx); rasoat's own JSON API (/api/v1) must also answer what its schema says (the
response models, the problem shape of every refusal, the content type). Example counts are bounded so the
run takes seconds."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rasoat.core.storage import open_store
from server_support import COMMUNE, ThreadServer, seed

pytestmark = pytest.mark.slow  # schema-driven fuzzing of every endpoint


def schemathesis_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("schemathesis")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("schemathesis")
    if found:
        return [found]
    pytest.fail("schemathesis is not installed: pip install -e '.[dev]'", pytrace=False)


@pytest.fixture(scope="module")
def api_server(tmp_path_factory):
    from rasoat.core.users import create_user, new_api_token
    from rasoat.server.app import ServerSettings, create_app

    data_dir = tmp_path_factory.mktemp("fuzz") / "data"
    store = open_store(data_dir)
    seed(store)
    create_user(store, "quan-tri", "mật-khẩu-quản-trị", "admin")
    create_user(store, "can-bo-xa", "mật-khẩu-cán-bộ", "commune_officer", [COMMUNE])
    tokens = {"admin": new_api_token(store, "quan-tri"), "officer": new_api_token(store, "can-bo-xa")}
    server = ThreadServer(create_app(store, ServerSettings(max_body_bytes=2_000_000))).start()
    yield server.url, tokens, tmp_path_factory.mktemp("fuzz-reports")
    server.stop()
    store.close()


def _run(url: str, reports: Path, checks: str, examples: int, token: str | None, *extra: str) -> str:
    cmd = [
        *schemathesis_cmd(),
        "run",
        f"{url}/schema/openapi.json",
        "--checks",
        checks,
        "--max-examples",
        str(examples),
        "--seed",
        "20260601",
        "--no-shrink",
        "--generation-database",
        "none",
        "--request-timeout",
        "60",
        "--report-dir",
        str(reports),
        *extra,
    ]
    if token:
        cmd += ["--header", f"Authorization: Bearer {token}"]
    proc = subprocess.run(  # in the reports folder: schemathesis leaves a .schemathesis cache where it runs
        cmd, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL, cwd=reports
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "generated" in out
    return out


@pytest.mark.parametrize("who,examples", [("admin", 40), ("officer", 20), (None, 15)])
def test_no_server_errors_from_schema_driven_fuzzing(api_server, who: str | None, examples: int) -> None:
    url, tokens, reports = api_server
    out = _run(url, reports, "not_a_server_error", examples, tokens[who] if who else None)
    assert "Server error" not in out


@pytest.mark.parametrize("who", ["admin", "officer", None])
def test_the_json_api_answers_as_its_schema_says(api_server, who: str | None) -> None:
    """Every answer of /api/v1, a result or a refusal, matches the response model the schema declares for
    its status, with the declared content type."""
    url, tokens, reports = api_server
    _run(url, reports, "response_schema_conformance,content_type_conformance,status_code_conformance", 15,
         tokens[who] if who else None, "--include-path-regex", "^/api/v1/")
