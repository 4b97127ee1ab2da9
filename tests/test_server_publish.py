"""Publishing any XLSForm: the JSON API and ``rasoat forms publish`` compile, validate and store a version
that phones then get; submissions keep the version they were made with."""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import openpyxl
import pytest
from server_support import COMMUNE, CollectClient, multipart, opened_store, run_cli, seeded_store

XF = "{http://openrosa.org/xforms/xformsList}"


@pytest.fixture
def live_server(live_server_any):
    """The API tests here run on the embedded store and on PostgreSQL (tests/conftest.py)."""
    return live_server_any


def write_xlsform(path: Path, form_id: str, version: str, extra_label: str = "Ghi chú") -> Path:
    wb = openpyxl.Workbook()
    survey = wb.active
    survey.title = "survey"
    survey.append(["type", "name", "label", "choice_filter"])
    survey.append(["select_one_from_file communes.csv", "commune", "Xã", ""])
    survey.append(["select_one_from_file hamlets.csv", "hamlet", "Thôn", "commune=${commune}"])
    survey.append(["text", "note", extra_label, ""])
    settings = wb.create_sheet("settings")
    settings.append(["form_id", "version", "form_title"])
    settings.append([form_id, version, f"Biểu tự làm {form_id}"])
    wb.save(path)
    return path


def listed(client: CollectClient) -> dict[str, str]:
    root = ET.fromstring(client.get("/formList").content)
    return {x.findtext(f"{XF}formID"): x.findtext(f"{XF}version") for x in root.findall(f"{XF}xform")}


def post_form(live_server, path: Path, token: str | None, round_id: str | None = "r-open") -> httpx.Response:
    fields = {"round": round_id} if round_id else {}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with path.open("rb") as fh:
        return httpx.post(
            f"{live_server.url}/api/v1/forms",
            headers=headers,
            data=fields,
            files={"file": (path.name, fh, "application/octet-stream")},
            timeout=120,
        )


def test_api_publishes_any_xlsform_and_phones_get_it(live_server, tmp_path) -> None:
    client = CollectClient(f"{live_server.url}/v1/key/{live_server.seeded.token}/projects/1")
    path = write_xlsform(tmp_path / "local_visit.xlsx", "local_visit", "2026060101")
    assert post_form(live_server, path, None).status_code == 401
    assert post_form(live_server, path, "wrong").status_code == 403

    resp = post_form(live_server, path, live_server.admin_token)  # runs ODK Validate
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["form_id"] == "local_visit" and body["version"] == "2026060101" and body["round"] == "r-open"
    assert listed(client)["local_visit"] == "2026060101"
    audit = [e for e in live_server.store.iter_audit() if e.target in ("local_visit", "r-open")]
    assert any(e.action == "form.publish" and e.actor == "admin" and e.details.get("via") == "api"
               and e.details["round"] == "r-open" for e in audit)
    assert any(e.action == "round.add_form" and e.details == {"form": "local_visit"} for e in audit)
    form = client.get("/forms/local_visit.xml")
    assert hashlib.md5(form.content).hexdigest() == body["md5"]

    # the same version with other content is refused; phones keep what they have
    changed = write_xlsform(tmp_path / "changed.xlsx", "local_visit", "2026060101", extra_label="Khác")
    conflict = post_form(live_server, changed, live_server.admin_token)
    assert conflict.status_code == 409 and "error" in conflict.json()

    # a submission made with version 1 ...
    _, xml = _instance("local_visit", "2026060101")
    assert client.submit(xml).status_code == 201
    # ... then a new version replaces it on phones, and version-1 submissions are still accepted
    v2 = write_xlsform(tmp_path / "v2.xlsx", "local_visit", "2026060102", extra_label="Ghi chú mới")
    assert post_form(live_server, v2, live_server.admin_token).status_code == 201
    assert listed(client)["local_visit"] == "2026060102"
    iid, late = _instance("local_visit", "2026060101")
    assert client.submit(late).status_code == 201
    assert live_server.store.get_submission(iid).form_version == "2026060101"
    client.close()


def test_api_rejects_a_broken_xlsform_with_its_reason(live_server, tmp_path) -> None:
    wb = openpyxl.Workbook()
    wb.active.title = "survey"
    wb.active.append(["type", "name", "label"])
    wb.active.append(["select_one nolist", "q", "Q"])
    bad = tmp_path / "bad.xlsx"
    wb.save(bad)
    resp = post_form(live_server, bad, live_server.admin_token, round_id=None)
    assert resp.status_code == 422
    assert "bad.xlsx" in resp.json()["error"]
    notxlsx = tmp_path / "x.xlsx"
    notxlsx.write_bytes(b"not a workbook")
    assert post_form(live_server, notxlsx, live_server.admin_token).status_code == 422
    body, ctype = multipart(None, {"other": b"x"})
    missing = httpx.post(
        f"{live_server.url}/api/v1/forms",
        content=body,
        headers={"Content-Type": ctype, "Authorization": f"Bearer {live_server.admin_token}"},
    )
    assert missing.status_code == 400


@pytest.mark.slow
def test_cli_forms_publish_into_a_round(tmp_path, backend_url) -> None:
    data = tmp_path / "data"
    with seeded_store(data, backend_url):
        pass
    path = write_xlsform(tmp_path / "cli_form.xlsx", "cli_form", "1")
    out = run_cli(
        "forms",
        "publish",
        str(path),
        "--round",
        "r-open",
        "--json",
        "--data",
        str(data),
        database_url=backend_url,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["form_id"] == "cli_form" and result["version"] == "1"
    with opened_store(data, backend_url) as store:
        assert "cli_form" in store.get_round("r-open").form_ids
        assert store.get_form("cli_form", "1").md5 == result["md5"]
        actions = {(e.action, e.target) for e in store.iter_audit()}
        assert {("form.publish", "cli_form"), ("round.add_form", "r-open")} <= actions
    again = run_cli(
        "forms", "publish", str(path), "--round", "nope", "--data", str(data), database_url=backend_url
    )
    assert again.returncode == 1 and "nope" in again.stderr


def _instance(form_id: str, version: str) -> tuple[str, bytes]:
    import uuid

    iid = f"uuid:{uuid.uuid4()}"
    xml = (
        f'<data id="{form_id}" version="{version}"><commune>{COMMUNE}</commune><hamlet/>'
        f"<note>x</note><meta><instanceID>{iid}</instanceID></meta></data>"
    )
    return iid, xml.encode()
