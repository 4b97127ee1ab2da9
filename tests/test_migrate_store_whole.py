"""``rasoat migrate-store`` of a store as a newcomer makes it (issue 16, problem 1): the demo's project key,
encrypted F1 records sent by Collect, a collector with a Digest password, an officer, rounds with a
snapshot, reviews and the audit log. After embedded → PostgreSQL and back, ``keys show``, the F1 export
with the passphrase, ``audit``, ``rounds list``, ``collectors list`` and the review history are the
source's, compared command by command."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from pg_support import fresh_schema
from rasoat.core.cli import main as cli_main
from rasoat.core.storage.base import SubmissionQuery
from rasoat.core.storage.opening import open_store
from server_support import COMMUNE, CollectClient, opened_store, serving
from test_encryption import collect_encrypt

pytestmark = pytest.mark.slow  # every command against two stores

NAMES = ("Lò Văn Sáng", "Hà Thị Mai")


def f1_instance(version: str, instance_id: str, name: str) -> bytes:
    return (
        f'<?xml version="1.0"?><data id="f1_person" version="{version}">'
        f"<province>19</province><commune>{COMMUNE}</commune><full_name>{name}</full_name>"
        f"<sex>male</sex><birth_date>1990-01-02</birth_date><category>user</category>"
        f"<meta><instanceID>{instance_id}</instanceID></meta></data>"
    ).encode()


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = cli_main(list(argv))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


@pytest.fixture
def source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A data directory made the way the Quickstart makes one, with every kind of record in it."""
    from rasoat.core.crypto import public_key
    from rasoat.core.plugins import build_manager, set_manager
    from rasoat.server.demo import demo_token, publish_builtin_forms, setup_demo
    from rasoat.server.plugin import demo_key

    set_manager(build_manager(frozenset()))
    data = tmp_path / "rasoat-data"
    with opened_store(data) as store:
        demo_key(store, data)
        from rasoat.core.crypto import set_encrypted_form_ids

        set_encrypted_form_ids(store, ["f1_person"])  # a province's choice (none by default, issue 18)
        publish_builtin_forms(store)
        setup_demo(store)
        token, pub = demo_token(store), public_key(store)
        f1 = store.get_form("f1_person")
        assert token and pub and f1 is not None and f1.encrypted
        with serving(store) as server:
            client = CollectClient(f"{server.url}/v1/key/{token}/projects/1")
            try:
                for name in NAMES:
                    iid = f"uuid:{uuid.uuid4()}"
                    envelope, files = collect_encrypt(pub, "f1_person", f1.version, iid,
                                                      f1_instance(f1.version, iid, name), [])
                    assert client.submit(envelope, files).status_code == 201
            finally:
                client.close()
    d = ["--data", str(data)]
    cli(capsys, "collectors", "add", "Nguyễn Văn A", "--unit", COMMUNE, "--round", "demo", "--password", *d)
    cli(capsys, "rounds", "create", "Rà soát 2025", "--period", "2025", "--forms", "f1_person",
        "--units", COMMUNE, "--id", "r2025", *d)
    # one open round per form and commune; its F1 records are encrypted and not derived
    cli(capsys, "rounds", "close", "demo", "--acknowledge-encrypted", *d)
    cli(capsys, "rounds", "open", "r2025", *d)
    cli(capsys, "rounds", "close", "r2025", *d)  # freezes a snapshot
    first = json.loads(cli(capsys, "submissions", "list", "--form", "f1_person", "--json", *d))[0]
    cli(capsys, "submissions", "review", first["instance_id"], "--state", "has_issues",
        "--comment", "Thiếu số CCCD", *d)
    return data


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_schema() as (url, _schema):
        yield url


def views(capsys: pytest.CaptureFixture[str], tmp_path: Path, *where: str) -> dict[str, object]:
    """What an officer sees of a store through the commands the issue names."""
    passphrase = tmp_path / "rasoat-data" / "demo-key-passphrase.txt"
    shown = {
        "audit": json.loads(cli(capsys, "audit", "--json", *where)),  # before the commands below add lines
        "keys": json.loads(cli(capsys, "keys", "show", "--json", *where)),
        "rounds": json.loads(cli(capsys, "rounds", "list", "--json", *where)),
        "collectors": json.loads(cli(capsys, "collectors", "list", "--json", *where)),
    }
    out = tmp_path / f"f1-{uuid.uuid4().hex}.xlsx"
    cli(capsys, "export", "f1_person", "-o", str(out), "--include-personal", "-q",
        "--passphrase-file", str(passphrase), *where)
    wb = openpyxl.load_workbook(out, read_only=True)
    shown["f1"] = [list(row) for row in wb.worksheets[0].iter_rows(values_only=True)]  # not the export time
    wb.close()
    store = open_store(Path(where[1]), where[3] if len(where) > 2 else None)
    try:
        shown["reviews"] = {s.instance_id: s.review_history
                            for s in store.iter_submissions(SubmissionQuery(current_only=False))}
    finally:
        store.close()
    return shown


def test_migrated_store_answers_every_command_as_the_source(source: Path, pg_url: str, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    before = views(capsys, tmp_path, "--data", str(source))
    assert before["keys"]["key"] is not None
    header, *rows = before["f1"]
    commune = header.index("Xã, phường, đặc khu")  # a field inside the encrypted XML
    assert len(rows) == len(NAMES) and {r[commune] for r in rows} == {"Xã Phượng Tiến"}
    assert any(h for h in before["reviews"].values())
    files = tmp_path / "pg-files"
    out = cli(capsys, "migrate-store", "--from", str(source), "--to", pg_url, "--data", str(files), "--quiet")
    assert "Everything matches" in out and "settings" in out
    after = views(capsys, tmp_path, "--data", str(files), "--database", pg_url)
    for what in ("keys", "rounds", "collectors", "f1", "reviews"):
        assert after[what] == before[what], what
    # the audit as it was at the copy: the first views' export lines included, line for line
    assert after["audit"] == json.loads(cli(capsys, "audit", "--json", "--data", str(source)))
    assert len(after["audit"]) > len(before["audit"])

    back = tmp_path / "back"
    out = cli(capsys, "migrate-store", "--from", pg_url, "--from-files", str(files), "--to", str(back),
              "--data", str(files), "--quiet")
    assert "Everything matches" in out
    returned = views(capsys, tmp_path, "--data", str(back))
    for what in ("keys", "rounds", "collectors", "f1", "reviews"):
        assert returned[what] == before[what], what


def test_a_second_store_on_the_folder_keeps_both_passphrases_and_migrating_into_it_is_refused(
        source: Path, pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Quickstart step 7 on the same folder (problem 2), then migrate-store into that database: the
    embedded store's passphrase file is kept, and the database's own key is neither mixed nor replaced."""
    from rasoat.server.plugin import demo_key

    first = source / "demo-key-passphrase.txt"
    kept = first.read_bytes()
    store = open_store(source, pg_url)
    try:
        second = demo_key(store, source)
        kv_before = sorted(store.iter_durable_kv())
    finally:
        store.close()
    assert second == source / "demo-key-passphrase-2.txt" and second.read_bytes() != kept
    assert first.read_bytes() == kept and oct(second.stat().st_mode & 0o777) == "0o600"
    # the embedded store's F1 records still open with their own file
    out = source.parent / "again.xlsx"
    cli(capsys, "export", "f1_person", "-o", str(out), "-q", "--passphrase-file", str(first),
        "--data", str(source))

    assert cli_main(["migrate-store", "--from", str(source), "--to", pg_url, "--data", str(source)]) == 1
    err = capsys.readouterr().err
    assert "already holds data the source does not" in err and "setting crypto/project" in err
    assert "empty database" in err and "Traceback" not in err and err.count("\n") == 1
    store = open_store(source, pg_url)
    try:
        assert sorted(store.iter_durable_kv()) == kv_before  # the database's key was not overwritten
        assert store.list_rounds() == []
    finally:
        store.close()
