"""ODK end-to-end encryption with honest consequences (issue 18, item 3), on both backends.

F1 is published with the project's public key (pyxform + ODK Validate) and three persons of Xã Phượng
Tiến (one new user, one addict, one post-rehab) are sent encrypted exactly as Collect sends them. Then:
every figure that needs them says "3 encrypted records not counted" with the status Unknown, in
``rasoat indicators --json``, in the report workbook's cells and cover, and on the web indicator page and
overview; closing the round is refused, then allowed with an acknowledgement that the round's history,
its snapshot and the report keep; an officer unlocks the key on the web page, the server derives the
statistical fields (and those of a record arriving while unlocked), the figures are 1/1/1 and stay so
after a server restart without the passphrase; the passphrase is in neither the audit log nor the
server's log, and no name is kept in clear."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import openpyxl
import pytest
from rasoat.core.models import Round, RoundState, unread
from rasoat.core.plugins import set_manager
from rasoat.core.storage.base import Store
from rasoat.core.storage.opening import open_store
from server_support import COMMUNE, CollectClient, run_main, serve, store_args
from test_encryption import collect_encrypt

pytestmark = pytest.mark.slow

PASSPHRASE = "cụm mật khẩu Thái Nguyên 2026"
OFFICER, OFFICER_PASSWORD = "tinh.quanly", "mật-khẩu-quản-lý-tỉnh"
ROUND = "r-f1-enc"
HAMLET = f"{COMMUNE}-01"
PERSONS = [  # (name, ID number, category)
    ("Nguyễn Văn Một", "019090000101", "user"),
    ("Trần Thị Hai", "019090000102", "addict"),
    ("Lê Văn Ba", "019090000103", "post_rehab"),
]
BY_CATEGORY = {"user": "nat_persons_users", "addict": "nat_persons_addicts",
               "post_rehab": "nat_persons_post_rehab"}
NOT_COUNTED = "3 bản ghi mã hoá chưa tính / 3 encrypted records not counted"
F1 = Path(__file__).resolve().parents[1] / "forms" / "f1_person.xlsx"


class _Lines(logging.Handler):
    """Every log line of this process while the module runs (the server runs in a thread here)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def encrypted_f1_round(store: Store, passphrase: str, round_id: str) -> SimpleNamespace:
    """F1 encrypted to a new project key (``passphrase``) and published, in an open round ``round_id``
    over COMMUNE with one collector: F1's ``version``, ``today``, the collector's ``user`` and ``token``."""
    from rasoat.core.collectors import create_collector
    from rasoat.core.crypto import create_project_key, public_key, set_encrypted_form_ids
    from rasoat.core.formreg import compile_cached, find_media
    from rasoat.core.xlsform import publish_form
    from rasoat.server.web.base import LOCAL_TZ

    create_project_key(store, passphrase, actor="admin")
    set_encrypted_form_ids(store, ["f1_person"], actor="admin")  # the per-form option (rasoat keys forms)
    compiled = compile_cached(F1, validate=True, public_key=public_key(store))
    assert compiled.encrypted
    media, missing = find_media(F1, compiled.form_id, compiled.media)
    assert not missing
    publish_form(store, compiled, {n: p.read_bytes() for n, p in media.items()}, "rasoat.builtin")
    today = datetime.now(LOCAL_TZ).date()
    store.put_round(Round(id=round_id, name="Rà soát 2026", period=str(today.year), form_ids=["f1_person"],
                          unit_codes=[COMMUNE], state=RoundState.open))
    user, token = create_collector(store, "Người thu Phượng Tiến", [COMMUNE], [round_id])
    return SimpleNamespace(version=compiled.version, today=today, user=user, token=token)


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, module_backend_url: str | None
) -> Iterator[SimpleNamespace]:
    from rasoat.core.crypto import public_key
    from rasoat.core.users import create_user

    root = tmp_path_factory.mktemp("enc-counting")
    data_dir = root / "data"
    store = open_store(data_dir, module_backend_url)
    f1 = encrypted_f1_round(store, PASSPHRASE, ROUND)
    create_user(store, OFFICER, OFFICER_PASSWORD, "province_manager", ["19"], actor="test")
    lines = _Lines()
    names = ("", "rasoat", "rasoat.access", "rasoat.server", "rasoat.ingest")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:  # the server's own loggers (server.accesslog.setup_logging's), at the level serve uses
        lg.addHandler(lines)
        lg.setLevel(logging.INFO)
    env = pytest.MonkeyPatch()
    env.setenv("RASOAT_USER", OFFICER)  # who the commands below run as (the audit's actor)
    server = serve(store, access_log=True)
    w = SimpleNamespace(store=store, data_dir=data_dir, url=module_backend_url, root=root, server=server,
                        version=f1.version, pub=public_key(store), today=f1.today.isoformat(),
                        year=str(f1.today.year), token=f1.token, lines=lines, ids=[])
    try:
        for n, (name, id_number, category) in enumerate(PERSONS, start=1):
            w.ids.append(submit(w, name, id_number, category, f"P{n}"))
        yield w
    finally:
        env.undo()
        set_manager(None)  # the commands set the process's plugin manager
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(lines)
            lg.setLevel(level)
        w.server.stop()
        w.store.close()


def person_xml(w: SimpleNamespace, iid: str, name: str, id_number: str, category: str, key: str,
               present: str = "yes") -> bytes:
    """An F1 record for a new person as Collect writes it (before encrypting it)."""
    answers = {"province": "19", "commune": COMMUNE, "hamlet": HAMLET, "ref_date": w.today,
               "enumerator_role": "police", "entry_type": "new", "person_key": key, "person_name": name,
               "present": present, "full_name": name, "sex": "male", "birth_date": "1990-05-01",
               "id_number": id_number, "residence_status": "resident", "address_text": f"Xóm 1, {name}",
               "first_basis": "test", "category": category, "psychosis": "no", "has_record": "no",
               "services": "none"}
    body = "".join(f"<{k}>{v}</{k}>" for k, v in answers.items())
    return (f'<data id="f1_person" version="{w.version}">{body}'
            f"<meta><instanceID>{iid}</instanceID></meta></data>").encode()


def submit(
    w: SimpleNamespace, name: str, id_number: str, category: str, key: str, present: str = "yes"
) -> str:
    iid = f"uuid:{uuid.uuid4()}"
    xml = person_xml(w, iid, name, id_number, category, key, present)
    envelope, files = collect_encrypt(w.pub, "f1_person", w.version, iid, xml, [])
    client = CollectClient(f"{w.server.url}/v1/key/{w.token}/projects/1")
    try:
        resp = client.submit(envelope, files)
    finally:
        client.close()
    assert resp.status_code == 201, resp.text
    return iid


def cli(w: SimpleNamespace, *args: str) -> subprocess.CompletedProcess:
    """``rasoat ARGS`` as the officer, in this process, on the world's store."""
    return run_main(*args, *store_args(w.data_dir, w.url))


def indicators_json(w: SimpleNamespace) -> dict[str, dict[str, Any]]:
    done = cli(w, "indicators", "--unit", COMMUNE, "--period", w.year, "--json")
    assert done.returncode == 0, done.stderr
    return {r["indicator_id"]: r for r in json.loads(done.stdout) if r["unit_code"] == COMMUNE}


def login(w: SimpleNamespace) -> httpx.Client:
    client = httpx.Client(base_url=w.server.url, follow_redirects=False, timeout=60)
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf, page.text
    resp = client.post("/login", data={"username": OFFICER, "password": OFFICER_PASSWORD,
                                       "csrf": csrf.group(1), "next": "/"})
    assert resp.status_code == 303, resp.text
    return client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def web_row(client: httpx.Client, w: SimpleNamespace, indicator: str, lang: str = "vi") -> tuple[str, str]:
    """(value cell, status badge) of the commune's row for ``indicator`` on the indicators page."""
    page = client.get(f"/indicators?unit={COMMUNE}&period={w.year}&lang={lang}")
    assert page.status_code == 200, page.text
    row = re.search(rf'<tr data-indicator="{indicator}">(.*?)</tr>', page.text, re.S)
    assert row, indicator
    value = re.search(r'<td class="num" data-label="[^"]+">([^<]*)</td>', row.group(1))
    status = re.search(r'<span class="badge [^"]+">([^<]*)</span>', row.group(1))
    assert value and status
    return value.group(1).strip(), status.group(1).strip()


def report(w: SimpleNamespace, name: str) -> openpyxl.Workbook:
    out = w.root / name
    done = cli(w, "report", "-o", str(out), "--unit", COMMUNE, "--period", w.year, "-q")
    assert done.returncode == 0, done.stderr
    return openpyxl.load_workbook(out)


def cover_notes(wb: openpyxl.Workbook) -> list[str]:
    return [str(r[1]) for r in wb["Bìa"].iter_rows(values_only=True) if r[0] == "Ghi chú / Note"]


# --- before any unlock: nothing is a bare zero ------------------------------------------------------------


def test_figures_that_need_the_records_say_not_counted_and_unknown(world: SimpleNamespace) -> None:
    rows = indicators_json(world)
    for indicator in [*BY_CATEGORY.values(), "nat_persons_listed", "tn_new_persons"]:
        r = rows[indicator]
        assert (r["value"], r["status"], r["uncounted_encrypted"]) == (None, "unknown", 3), indicator
        assert r["status_label"] == "Không xác định / Unknown"
    # Thái Nguyên's "no new persons" (= 0) is not "Đạt" on three unread registrations
    assert rows["tn_new_persons"]["status"] != "met"

    wb = report(world, "locked.xlsx")
    cells = {(r[0], r[2]): r for r in wb["Cấp xã"].iter_rows(min_row=2, values_only=True)}
    for indicator in BY_CATEGORY.values():
        row = cells[(COMMUNE, indicator)]
        assert (row[5], row[12]) == (NOT_COUNTED, "Không xác định"), indicator
    assert any("3 encrypted records not counted" in n for n in cover_notes(wb))

    client = login(world)
    try:
        assert web_row(client, world, "nat_persons_users") == ("3 bản ghi mã hoá chưa tính", "Không xác định")
        assert web_row(client, world, "nat_persons_addicts", "en") == ("3 encrypted records not counted",
                                                                       "Unknown")
        overview = client.get("/?lang=vi")
        assert "encrypted-uncounted" in overview.text and "3 bản ghi mã hoá chưa tính" in overview.text
    finally:
        client.close()


def test_closing_is_refused_then_allowed_with_an_acknowledgement(world: SimpleNamespace) -> None:
    done = cli(world, "rounds", "close", ROUND)
    assert done.returncode != 0
    assert "3 encrypted records not counted" in done.stderr and "--acknowledge-encrypted" in done.stderr
    assert "rasoat keys unlock" in done.stderr
    client = login(world)
    try:
        page = client.get(f"/rounds/{ROUND}")
        refused = client.post(f"/rounds/{ROUND}/state", data={"csrf": csrf_of(page.text), "target": "closed"})
        assert refused.status_code == 400 and "3 bản ghi mã hoá chưa tính" in refused.text
        assert world.store.get_round(ROUND).state is RoundState.open
        closed = client.post(f"/rounds/{ROUND}/state", data={"csrf": csrf_of(page.text), "target": "closed",
                                                             "acknowledge_encrypted": "1"})
        assert closed.status_code == 303, closed.text
    finally:
        client.close()
    rnd = world.store.get_round(ROUND)
    close = [h for h in rnd.history if h["action"] == "close"][-1]
    assert rnd.state is RoundState.closed and close["encrypted_uncounted_acknowledged"] == 3
    assert close["actor"] == OFFICER
    snapshot = world.store.get_snapshot(ROUND)
    assert snapshot["lifecycle"]["encrypted_uncounted_acknowledged"] == 3
    frozen = snapshot["indicators"]["nat_persons_users"]
    assert frozen["units"][COMMUNE] == [None, None, None] and frozen["uncounted_encrypted"][COMMUNE] == 3
    notes = cover_notes(report(world, "acknowledged.xlsx"))
    assert any(f"Round '{ROUND}' was closed with 3 encrypted records not counted" in n for n in notes)
    done = cli(world, "rounds", "reopen", ROUND, "--reason", "tính lại sau khi mở khoá")
    assert done.returncode == 0, done.stderr


# --- unlock: derived once, counted from then on -------------------------------------------------------------


def test_an_unlock_on_the_web_derives_the_figures(world: SimpleNamespace) -> None:
    client = login(world)
    try:
        page = client.get("/keys")
        assert page.status_code == 200 and 'data-unread="3"' in page.text
        wrong = client.post("/keys/unlock", data={"csrf": csrf_of(page.text), "minutes": "15",
                                                  "passphrase": "không phải cụm này"})
        assert wrong.status_code == 400 and "Sai cụm mật khẩu" in wrong.text
        done = client.post("/keys/unlock", data={"csrf": csrf_of(page.text), "passphrase": PASSPHRASE,
                                                 "minutes": "15"})
        assert done.status_code == 200 and 'data-derived="3"' in done.text and 'data-unread="0"' in done.text
        assert PASSPHRASE not in done.text
        for category, indicator in BY_CATEGORY.items():
            assert web_row(client, world, indicator) == ("1 người", "Không có chỉ tiêu"), category
    finally:
        client.close()
    rows = indicators_json(world)
    for indicator in BY_CATEGORY.values():
        assert (rows[indicator]["value"], rows[indicator]["uncounted_encrypted"]) == (1, 0), indicator
    assert rows["nat_persons_listed"]["value"] == 3
    assert rows["tn_new_persons"]["status"] == "not_met"  # three new persons against "no new persons"
    derive = [e for e in world.store.iter_audit() if e.action == "key.derive"]
    assert derive[-1].actor == OFFICER and derive[-1].details["derived"] == {"f1_person": 3}
    # the identifying answers were not kept in clear with the derived ones
    for iid in world.ids:
        sub = world.store.get_submission(iid)
        assert not unread(sub) and sub.fields["category"] in BY_CATEGORY and sub.unit_code == HAMLET
        kept = json.dumps(sub.fields, ensure_ascii=False)
        assert all(name not in kept and number not in kept for name, number, _ in PERSONS)


def test_a_record_arriving_while_unlocked_is_derived(world: SimpleNamespace) -> None:
    iid = submit(world, "Phạm Văn Bốn", "019090000104", "user", "P4", present="no")
    sub = world.store.get_submission(iid)
    assert sub.encrypted and not unread(sub) and sub.fields["present"] == "no"
    arrival = [e for e in world.store.iter_audit() if e.action == "key.derive"][-1]
    assert arrival.details["purpose"] == "arrival" and arrival.details["derived"] == {"f1_person": 1}


def test_figures_stay_right_after_a_restart_without_the_passphrase(world: SimpleNamespace) -> None:
    world.server.stop()
    world.store.close()
    world.store = open_store(world.data_dir, world.url)
    world.server = serve(world.store, access_log=True)
    client = login(world)
    try:
        page = client.get("/keys")
        assert 'data-unread="0"' in page.text and "unlocked" not in page.text  # the key was not kept
        for indicator in BY_CATEGORY.values():
            assert web_row(client, world, indicator)[0] == "1 người"
    finally:
        client.close()
    rows = indicators_json(world)
    assert [rows[i]["value"] for i in BY_CATEGORY.values()] == [1, 1, 1]
    wb = report(world, "after-restart.xlsx")
    cells = {(r[0], r[2]): r for r in wb["Cấp xã"].iter_rows(min_row=2, values_only=True)}
    assert [cells[(COMMUNE, i)][5] for i in BY_CATEGORY.values()] == [1, 1, 1]


def test_the_passphrase_is_in_no_log(world: SimpleNamespace) -> None:
    audit = json.dumps([e.model_dump(mode="json") for e in world.store.iter_audit()], ensure_ascii=False)
    assert "key.unlock" in audit and PASSPHRASE not in audit
    assert all(name not in audit for name, _, _ in PERSONS)
    server_log = "\n".join(world.lines.lines)
    assert "/keys/unlock" in server_log  # the access log saw the request…
    assert PASSPHRASE not in server_log  # …and never its body
