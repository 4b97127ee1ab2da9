"""Protected records on a running server (issue 18), on both backends, one server per backend: rotating the
key-encryption key needs no restart (the server opens records re-wrapped under the new key and seals new
arrivals under it; when it cannot read the new key it refuses person records with a 503 that says why,
and takes them once the key is where it looks); an OData ``$filter`` on an identifying field, whose values
are sealed, is a 400 naming the field rather than an empty page."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from rasoat.core import protection
from rasoat.core.protection import PROTECTED
from server_support import CollectClient, instance_xml, run_main, seeded_store, serving, store_args
from test_protection import _publish_marked

pytestmark = pytest.mark.slow

ADMIN, PASSWORD = "tinh.admin", "mật khẩu dài 2026"
NAMES = ["Hoàng Văn Khoá", "Lê Thị Bọc", "Vi Văn Xoay"]


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory, module_backend_url: str | None
) -> Iterator[SimpleNamespace]:
    from rasoat.core.users import create_user

    root = tmp_path_factory.mktemp("protection-live")
    with seeded_store(root / "data", module_backend_url) as (store, seeded):
        _publish_marked(store, "2")  # tform with its name declared identifying
        create_user(store, ADMIN, PASSWORD, "admin", actor="test")
        with serving(store) as server:
            yield SimpleNamespace(store=store, server=server, root=root, url=module_backend_url,
                                  phone=f"{server.url}/v1/key/{seeded.token}/projects/1")


def send(live: SimpleNamespace, name: str) -> tuple[str, bytes, httpx.Response]:
    iid, xml = instance_xml(version="2", name=name)
    phone = CollectClient(live.phone)
    try:
        return iid, xml, phone.submit(xml)
    finally:
        phone.close()


def cli(live: SimpleNamespace, *args: str) -> subprocess.CompletedProcess:
    """``rasoat ARGS`` on the server's data directory: another store, as another process has."""
    return run_main(*args, *store_args(live.root / "data", live.url))


def current_kek(live: SimpleNamespace) -> str:
    shown = cli(live, "protection", "show", "--json")
    assert shown.returncode == 0, shown.stderr
    return str(json.loads(shown.stdout)["kek_id"])


def sealed_under(live: SimpleNamespace, iid: str) -> str:
    sub = live.store.get_submission(iid)
    assert sub is not None
    return str(sub.fields[PROTECTED]["kek"])


def record_xml(live: SimpleNamespace, iid: str) -> httpx.Response:
    return httpx.get(f"{live.server.url}/v1/projects/1/forms/tform/submissions/{iid}.xml",
                     auth=(ADMIN, PASSWORD), timeout=60)


def test_a_filter_on_a_sealed_field_is_a_400_naming_it(live: SimpleNamespace) -> None:
    iid, _, sent = send(live, NAMES[0])
    assert sent.status_code == 201, sent.text
    odata = f"{live.server.url}/v1/projects/1/forms/tform.svc/Submissions"
    refused = httpx.get(odata, params={"$filter": f"name eq '{NAMES[0]}'"}, auth=(ADMIN, PASSWORD),
                        timeout=60)
    assert refused.status_code == 400
    problem = refused.json()
    assert problem["code"] == 400.18 and problem["details"] == {"field": "name", "reason": "sealed"}
    assert "'name'" in problem["message"] and "sealed at rest" in problem["message"]
    assert problem["message"].startswith("Không lọc được theo 'name'")  # Vietnamese first
    assert NAMES[0] not in problem["message"]  # the value asked for is not echoed back
    inside = httpx.get(odata, params={"$filter": "not (__system/submitterId eq 0) and name eq 'x'"},
                       auth=(ADMIN, PASSWORD), timeout=60)
    assert inside.status_code == 400 and inside.json()["details"]["field"] == "name"
    other = httpx.get(odata, params={"$filter": "commune eq '05563'"}, auth=(ADMIN, PASSWORD), timeout=60)
    assert other.status_code == 501 and other.json()["code"] == 501.5  # a clear field: as Central answers
    fine = httpx.get(odata, params={"$filter": f"__id eq '{iid}'"}, auth=(ADMIN, PASSWORD), timeout=60)
    assert fine.status_code == 200 and [r["__id"] for r in fine.json()["value"]] == [iid]


def test_rotating_the_kek_needs_no_restart(live: SimpleNamespace, tmp_path: Path) -> None:
    first, first_xml, sent = send(live, NAMES[1])
    assert sent.status_code == 201, sent.text
    old = sealed_under(live, first)

    done = cli(live, "protection", "rotate-kek")
    assert done.returncode == 0, done.stderr
    new = current_kek(live)  # what the command made
    assert new != old and sealed_under(live, first) == new  # re-wrapped by the command
    # the running server, which loaded the old key, opens the re-wrapped record …
    got = record_xml(live, first)
    assert got.status_code == 200 and got.content == first_xml
    # … and seals what arrives next under the new key
    second, _, sent = send(live, NAMES[2])
    assert sent.status_code == 201, sent.text
    assert sealed_under(live, second) == new
    (protection.key_dir() / f"{old}.key").unlink()  # the old key goes: nothing needs it
    shown = cli(live, "protection", "show", "--json")
    assert shown.returncode == 0, shown.stderr
    assert set(json.loads(shown.stdout)["records_by_kek"]) == {new}

    # a key written where this server does not look: it refuses person records, and says why
    elsewhere = tmp_path / "elsewhere" / "kek.key"
    done = cli(live, "protection", "rotate-kek", "--to", str(elsewhere))
    assert done.returncode == 0, done.stderr
    newest = [protection.kek_id(base64.b64decode(elsewhere.read_text()))]
    assert newest != [new] and newest[0] in done.stdout
    third, third_xml, refused = send(live, "Đinh Thị Chờ")
    assert refused.status_code == 503, refused.text
    assert f"was rotated from {new} to {newest[0]}" in refused.text and f"{newest[0]}.key" in refused.text
    assert live.store.get_submission(third) is None  # nothing stored: the phone keeps it and sends it again
    unreadable = record_xml(live, second)  # re-wrapped under the key this server cannot read: said so
    assert unreadable.status_code == 503 and f"{newest[0]}.key" in unreadable.text
    shutil.copy(elsewhere, protection.key_dir() / f"{newest[0]}.key")
    phone = CollectClient(live.phone)
    try:
        again = phone.submit(third_xml)
    finally:
        phone.close()
    assert again.status_code == 201, again.text
    assert sealed_under(live, third) == newest[0]
    assert record_xml(live, second).content.count(NAMES[2].encode()) == 1
    audit = [e.action for e in live.store.iter_audit() if e.action.startswith("protection.")]
    assert audit.count("protection.key_rotate") == 2 and audit.count("protection.rewrap") == 2
