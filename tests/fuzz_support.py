"""What the schema-driven tests share (test_hostile_api, test_api_conformance, test_central_conformance):
a real server over a seeded store with an administrator, a commune officer, one Central record with a
photo and one entity of the list ``persons`` (``api_server``), and ``run_schemathesis`` against its
OpenAPI schema. A pytest plugin (conftest's ``pytest_plugins``): each test file that asks for
``api_server`` gets its own server, so the files run on different workers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from entity_support import publish
from server_support import COMMUNE, instance_xml, seeded_store, serving

SUBMISSION = "uuid:5c0f6a8e-2b1d-4c3e-8f7a-9d0e1f2a3b4c"
ENTITY = "0b6f1f2e-7c1a-4e55-9a43-2d7e8c9f1a30"
CONFORMANCE = ("not_a_server_error,response_schema_conformance,content_type_conformance,"
               "status_code_conformance")
# 501.x is Central's documented answer for a feature it lacks, so there a 5xx is checked against the schema
# (an undocumented 500 still fails) rather than refused outright.
CENTRAL_CONFORMANCE = CONFORMANCE.removeprefix("not_a_server_error,")
# The Central paths name the seeded project, form, record and entity most of the time (else any string), so
# the answers checked are results (the models) as well as refusals. ``name`` is a form on the form paths
# and the entity list on the entity-list paths (/datasets), each path's own dictionary.
CENTRAL_VALUES = {
    "pid": ["1"],
    "form_id": ["tform"],
    "name": ["tform", "tform.xml", "tform.svc", "1", "1.xml"],  # a form, its XForm, its OData; a version
    "svc": ["tform.svc"],
    "table": ["Submissions", "Submissions.member", f"Submissions('{SUBMISSION}')", "$metadata", "Entities"],
    "rest": ["member"],
    "iid": [SUBMISSION, f"{SUBMISSION}.xml"],
    "filename": ["anh.jpg"],
    "uuid": [ENTITY],
    "list": ["persons", "persons.svc"],  # the entity list, its OData
}


def _parameter(name: str, dictionary: str) -> str:
    return f'"path.{name}" = {{ dictionary = "{dictionary}", probability = 0.8 }}'


CENTRAL_PATHS = "\n".join([
    "[dictionaries]",
    *(f"{name} = {{ values = {json.dumps(values)} }}" for name, values in CENTRAL_VALUES.items()),
    "[parameters]",
    *(_parameter(name, name) for name in CENTRAL_VALUES if name != "list"),
    "[[operations]]",
    'include-path-regex = "/datasets"',
    "[operations.parameters]",
    _parameter("name", "list"),
])


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

    with seeded_store(tmp_path_factory.mktemp("fuzz") / "data") as (store, _):
        create_user(store, "quan-tri", "mật-khẩu-quản-trị", "admin")
        create_user(store, "can-bo-xa", "mật-khẩu-cán-bộ", "commune_officer", [COMMUNE])
        tokens = {"admin": new_api_token(store, "quan-tri"), "officer": new_api_token(store, "can-bo-xa")}
        with serving(store, max_body_bytes=2_000_000) as server:
            # a record with a photo for the Central paths to name
            _iid, xml = instance_xml(instance_id=SUBMISSION, photo="anh.jpg")
            submissions = f"{server.url}/v1/projects/1/forms/tform/submissions"
            admin = {"Authorization": f"Bearer {tokens['admin']}"}
            posted = httpx.post(submissions, content=xml,
                                headers={**admin, "Content-Type": "application/xml"})
            assert posted.status_code == 200, posted.text
            photo = httpx.post(f"{submissions}/{SUBMISSION}/attachments/anh.jpg", content=b"\xff\xd8",
                               headers=admin)
            assert photo.status_code == 200, photo.text
            publish(store, "register")  # the list persons, and an entity on it in the officer's commune
            person = {"uuid": ENTITY, "label": "Nguyễn Văn Bình 1990", "unit": COMMUNE,
                      "data": {"full_name": "Nguyễn Văn Bình", "birth_year": "1990", "status": "quản lý"}}
            created = httpx.post(f"{server.url}/v1/projects/1/datasets/persons/entities", json=person,
                                 headers=admin)
            assert created.status_code == 200, created.text
            yield server.url, tokens, tmp_path_factory.mktemp("fuzz-reports")


def run_schemathesis(url: str, reports: Path, checks: str, examples: int, token: str | None, *extra: str,
         config: Path | None = None) -> str:
    cmd = [
        *schemathesis_cmd(),
        *(["--config-file", str(config)] if config else []),
        "run",
        f"{url}/schema/openapi.json",
        "--checks",
        checks,
        "--max-examples",
        str(examples),
        "--seed",
        "20260601",
        "--no-shrink",
        # hypothesis gives up on an operation whose generated cases it filters too often (an XLSForm upload to
        # a path whose form id must be a valid path segment): a limit of the generator, not of the server
        "--suppress-health-check",
        "filter_too_much",
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
