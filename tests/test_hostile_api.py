"""schemathesis fuzzes every operation of the server's OpenAPI schema (/schema/openapi.json) against a real
running server — as an administrator, as a commune officer and with no credentials — and no request may
get a server error (5xx). Example counts are bounded so the run takes seconds."""

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


@pytest.mark.parametrize("who,examples", [("admin", 40), ("officer", 20), (None, 15)])
def test_no_server_errors_from_schema_driven_fuzzing(api_server, who: str | None, examples: int) -> None:
    url, tokens, reports = api_server
    cmd = [
        *schemathesis_cmd(),
        "run",
        f"{url}/schema/openapi.json",
        "--checks",
        "not_a_server_error",
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
    ]
    if who:
        cmd += ["--header", f"Authorization: Bearer {tokens[who]}"]
    proc = subprocess.run(  # in the reports folder: schemathesis leaves a .schemathesis cache where it runs
        cmd, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL, cwd=reports
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "generated" in out and "Server error" not in out
