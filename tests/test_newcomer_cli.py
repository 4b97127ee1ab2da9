"""The command line as a newcomer meets it (issue 16): a data directory knows what it is, ``serve`` knows
and records its public address, picks the LAN address for ``--host 0.0.0.0``, reports a busy port before
anything else, and never prints a URL the server would refuse."""

from __future__ import annotations

import argparse
import json
import re
import socket
import time
from pathlib import Path

import httpx
import pytest
from rasoat.core.cli import main as cli_main
from rasoat.server.plugin import lan_address
from server_support import COMMUNE, ProcessServer, free_port, run_cli


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli_main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


# --- problem 8: a mistyped --data never becomes a new store ----------------------------------------------


@pytest.mark.parametrize("command", [["rounds", "list"], ["collectors", "list"], ["keys", "show"],
                                     ["audit"], ["submissions", "list", "--form", "f1_person"],
                                     ["users", "list"]])
def test_a_folder_that_is_not_a_store_is_refused_and_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    typo = tmp_path / "rasoat-dat"
    code, out, err = run(capsys, *command, "--data", str(typo))
    assert code == 1 and out == ""
    assert f"{typo} is not a rasoat data directory" in err and "không phải thư mục dữ liệu rasoat" in err
    assert f"rasoat init {typo}" in err and err.count("\n") == 1
    assert not typo.exists()
    other = tmp_path / "Documents"
    other.mkdir()
    (other / "notes.txt").write_text("x")
    code, _, err = run(capsys, *command, "--data", str(other))
    assert code == 1 and "is not a rasoat data directory" in err
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]


def test_init_makes_a_store_once_and_refuses_a_folder_with_other_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "tinh" / "du-lieu"
    code, out, err = run(capsys, "init", str(data))
    assert code == 0, err
    assert "Data directory created" in out and (data / "rasoat.sqlite3").is_file()
    code, out, _ = run(capsys, "rounds", "list", "--json", "--data", str(data))
    assert code == 0 and json.loads(out) == []
    code, out, _ = run(capsys, "init", str(data))
    assert code == 0 and "Already a rasoat data directory" in out
    other = tmp_path / "Documents"
    other.mkdir()
    (other / "notes.txt").write_text("x")
    code, _, err = run(capsys, "init", "--data", str(other))
    assert code == 1 and "holds other files" in err
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]


# --- problems 6 and 7, and the busy port: serve ------------------------------------------------------


def banner(server: ProcessServer, needle: str = "Dừng: Ctrl+C") -> str:
    deadline = time.monotonic() + 20
    while needle not in server.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    return server.output()


@pytest.mark.slow  # three rasoat serve starts
def test_serve_on_all_interfaces_names_the_lan_address_records_it_and_never_prints_a_dead_url(
    tmp_path: Path,
) -> None:
    lan = lan_address()
    if lan is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    data = tmp_path / "rasoat-data"
    server = ProcessServer(data, "--host", "0.0.0.0").start(timeout=120)
    try:
        out = banner(server)
        base = f"http://{lan}:{server.port}"
        assert f"Server: {base}" in out and f"local network address is {lan}" in out
        demo_url = next(line.strip() for line in out.splitlines() if "/v1/key/" in line)
        assert demo_url.startswith(base + "/v1/key/")
        assert httpx.get(demo_url + "/formList", headers={"X-OpenRosa-Version": "1.0"}).status_code == 200
        assert (data / "public-url.txt").read_text().strip() == base
        # collectors add, qr and rotate print the address serve recorded, with no --url
        added = run_cli("collectors", "add", "Nguyễn Văn A", "--unit", COMMUNE, "--round", "demo", "--json",
                        "--data", str(data))
        assert added.returncode == 0, added.stderr
        assert json.loads(added.stdout)["url"].startswith(base + "/v1/key/")
        twin = run_cli("collectors", "add", "Nguyễn  văn a", "--unit", COMMUNE, "--data", str(data))
        assert twin.returncode == 0 and "a collector with the same name exists" in twin.stderr
        png = tmp_path / "demo.png"
        shown = run_cli("qr", "demo", "-o", str(png), "--json", "--data", str(data))
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["server_url"] == demo_url  # showing a card keeps its token
        rotated = run_cli("collectors", "rotate", "demo", "--yes", "--data", str(data))
        assert rotated.returncode == 0, rotated.stderr
        new_url = next(line.split(": ", 1)[1] for line in rotated.stdout.splitlines() if "/v1/key/" in line)
        assert new_url != demo_url and new_url.startswith(base)
    finally:
        assert server.terminate() == 0
    # the next start prints the demo collector's working URL, not the one rotated away
    again = ProcessServer(data, "--host", "0.0.0.0", port=server.port).start(timeout=120)
    try:
        out = banner(again)
        printed = [line.strip() for line in out.splitlines() if "/v1/key/" in line]
        assert printed == [new_url]
        assert httpx.get(new_url + "/formList", headers={"X-OpenRosa-Version": "1.0"}).status_code == 200
    finally:
        again.terminate()
    revoked = run_cli("collectors", "revoke", "demo", "--data", str(data))
    assert revoked.returncode == 0
    third = ProcessServer(data, "--public-url", "https://rasoat.example.vn", port=server.port)
    third.start(timeout=120)
    try:
        out = banner(third)
        assert "/v1/key/" not in out and "Server: https://rasoat.example.vn" in out
        assert (data / "public-url.txt").read_text().strip() == "https://rasoat.example.vn"
    finally:
        third.terminate()


def test_a_busy_port_is_reported_before_anything_else(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        data = tmp_path / "fresh"
        r = run_cli("serve", "--port", str(port), "--data", str(data), timeout=60)
    assert r.returncode == 1
    assert f"Port {port} on 127.0.0.1 is in use" in r.stderr and r.stderr.count("\n") == 1
    assert r.stdout == "" and not data.exists()  # no banner, no QR code, no store made


# --- problem 10: help, --debug, --data everywhere, tables ------------------------------------------------

VIETNAMESE = re.compile(r"[àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđ]", re.I)


def every_command() -> list[tuple[str, argparse.ArgumentParser]]:
    from rasoat.core.cli import build_parser
    from rasoat.core.plugins import build_manager, set_manager

    pm = build_manager(frozenset())
    set_manager(pm)
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    pm.hook.register_commands(subparsers=sub)
    found = [("rasoat", parser)]

    def walk(p: argparse.ArgumentParser, path: str) -> None:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    found.append((f"{path} {name}", child))
                    walk(child, f"{path} {name}")

    walk(parser, "rasoat")
    return found


def test_every_help_string_is_vietnamese_then_english() -> None:
    missing = []
    for path, parser in every_command():
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            texts = ([c.help for c in action._choices_actions]
                     if isinstance(action, argparse._SubParsersAction) else [action.help])
            for text in texts:
                vi, _, en = (text or "").partition(" / ")
                if not (VIETNAMESE.search(vi) and en.strip()):
                    missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}: {text!r}")
    assert missing == []
    assert len(every_command()) > 50  # the walk reached the sub-commands


def test_every_command_touching_data_takes_data_and_debug_goes_anywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    leaves = [(path, p) for path, p in every_command()
              if not any(isinstance(a, argparse._SubParsersAction) for a in p._actions) and path != "rasoat"]
    without = [path for path, p in leaves
               if "--data" not in {o for a in p._actions for o in a.option_strings}]
    assert without == []
    code, out, err = run(capsys, "forms", "list", "--json", "--data", str(tmp_path), "--debug")
    assert code == 0, err
    assert "f1_person" in {f["form_id"] for f in json.loads(out)}
    code, _, err = run(capsys, "rounds", "list", "--debug", "--data", str(tmp_path / "nowhere"))
    assert code == 1 and "Traceback" in err and "is not a rasoat data directory" in err


def test_wide_tables_fit_100_columns_and_json_keeps_everything(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    code, out, err = run(capsys, "forms", "list")
    assert code == 0, err
    assert max(len(line) for line in out.splitlines()) <= 100
    code, js, _ = run(capsys, "forms", "list", "--json")
    forms = json.loads(js)
    for f in forms:  # every id and md5 is whole in the table, titles wrapped rather than cut
        assert f["form_id"] in out and f["md5"] in out
    assert "communes.csv" in json.dumps(forms)


@pytest.mark.parametrize("content", [b"ma_xa,ten\n05563,Phuong Tien\n", b"PK\x03\x04 not really a zip",
                                     b"<html><body>Google Sheets</body></html>"])
def test_a_file_named_xlsx_that_is_not_excel_gets_a_plain_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    fake = tmp_path / "bieu-mau.xlsx"
    fake.write_bytes(content)
    code, _, err = run(capsys, "forms", "validate", str(fake))
    assert code == 1
    assert "not an Excel workbook, although the name ends in .xlsx" in err and "Không phải tệp Excel" in err
    assert "Argument 'definition'" not in err and "Traceback" not in err
