"""The README's Quickstart, step by step, as a newcomer types it (issue 16): the commands run with the
installed ``rasoat`` in a fresh temporary folder (not the checkout), against the real server; every
step must do what the README says, and nothing typed loses data."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import openpyxl
import pytest
from pg_support import fresh_schema
from server_support import CollectClient, free_port
from test_protection_e2e import f1_xml

README = Path(__file__).resolve().parents[1] / "README.md"
RASOAT = Path(sys.executable).with_name("rasoat")  # the console script `pip install -e .` made
COLLECT = {"X-OpenRosa-Version": "1.0"}


class Folder:
    """A terminal in the newcomer's folder: `rasoat …` there, with no RASOAT_* left from elsewhere."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        # the session's folder for key-encryption keys (conftest) stays: not the tester's ~/.config
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("RASOAT_") or k == "RASOAT_KEY_DIR"}

    def __call__(self, *args: str, stdin: str | None = None, ok: bool = True,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([str(RASOAT), *args], cwd=self.cwd, capture_output=True, text=True, input=stdin,
                           env={**self.env, **(env or {})}, timeout=300)
        if ok:
            assert r.returncode == 0, f"rasoat {' '.join(args)}: {r.stderr}"
            for line in r.stdout.splitlines():  # a URL or a path is copied whole, never wrapped
                wide_ok = "://" in line or str(self.cwd) in line
                assert len(line) <= 100 or wide_ok, f"rasoat {' '.join(args)}: too wide: {line}"
        return r

    def serve(self, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], Path]:
        log = self.cwd / f"serve-{uuid.uuid4().hex[:6]}.log"
        with log.open("w") as out:
            proc = subprocess.Popen([str(RASOAT), "serve", *args], cwd=self.cwd, stdout=out,
                                    stderr=subprocess.STDOUT, text=True,
                                    env={**self.env, "PYTHONUNBUFFERED": "1", **(env or {})})
        return proc, log


def wait_for(proc: subprocess.Popen[str], log: Path, url: str) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200 and "Ctrl+C" in log.read_text():
                return log.read_text()
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"server did not start: {log.read_text()}")


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=90)


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_schema() as (url, _schema):
        yield url


@pytest.mark.slow  # rasoat serve and a dozen commands as subprocesses
def test_the_readme_quickstart_runs_as_written(tmp_path: Path, pg_url: str) -> None:
    readme = README.read_text(encoding="utf-8")
    assert RASOAT.is_file(), "run the README's first command: pip install -e ."
    assert not str(tmp_path).startswith(str(README.parent))
    here = Folder(tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    # 1. rasoat serve: a data directory with the demo, its Collect URL printed
    assert "1. `rasoat serve` starts the server" in readme
    server, log = here.serve("--port", str(port))
    try:
        banner = wait_for(server, log, base)
        data = tmp_path / "rasoat-data"
        assert (data / "rasoat.sqlite3").is_file() and (data / "demo-key-passphrase.txt").is_file()
        demo_url = next(line.strip() for line in banner.splitlines() if "/v1/key/" in line)
        # 2. Collect sees the round's forms with that URL
        listed = httpx.get(demo_url + "/formList", headers=COLLECT)
        assert listed.status_code == 200 and b"f1_person" in listed.content

        # 3. the second terminal
        forms = here("forms", "list").stdout
        assert "f1_person" in forms and "f2_pledge" in forms
        assert "`rasoat rounds close demo`" in readme
        here("rounds", "close", "demo")
        created = here("rounds", "create", "Rà soát 2026", "--period", "2026", "--forms", "f1_person",
                       "--units", "05563").stdout
        round_id = re.search(r"[\w-]+", created.strip().splitlines()[-1]).group(0)
        here("rounds", "open", round_id)
        added = here("collectors", "add", "Nguyễn Văn A", "--unit", "05563", "--round", round_id).stdout
        url = next(line.split(": ", 1)[1] for line in added.splitlines() if "/v1/key/" in line)
        assert url.startswith(base + "/v1/key/")  # the running server's address, recorded by serve
        collector_id = added.split()[0]
        phone = CollectClient(url)
        form_list = phone.get("/formList")
        assert form_list.status_code == 200 and b"f1_person" in form_list.content
        version = re.search(rb"<version>(\d+)</version>", form_list.content).group(1).decode()
        iid = f"uuid:{uuid.uuid4()}"
        assert phone.submit(f1_xml(version, iid, "Lò Văn Sáng", "019090001234", "addict")).status_code == 201
        phone.close()
        assert iid in here("submissions", "list", "--form", "f1_person").stdout
        shown = here("forms", "show", "f1_person", "--json", ok=False)  # JSON lines are not wrapped
        assert shown.returncode == 0, shown.stderr
        shown_form = json.loads(shown.stdout)
        assert "full_name" in shown_form["identifying"] and shown_form["id_field"] == "id_number"
        here("export", "f1_person", "-o", "ra-soat.xlsx")
        rows = list(openpyxl.load_workbook(tmp_path / "ra-soat.xlsx", read_only=True).worksheets[0]
                    .iter_rows(values_only=True))
        assert len(rows) == 2 and iid in rows[1] and "Lò Văn Sáng" not in str(rows)
        shown = here("indicators", "--unit", "19", "--period", "2026", "--json", ok=False)
        assert shown.returncode == 0, shown.stderr
        addicts = [r for r in _rows(json.loads(shown.stdout))
                   if r.get("indicator_id") == "nat_persons_addicts"]
        assert addicts and addicts[0]["value"] == 1  # counted with no passphrase (issue 18)
        here("report", "-o", "bao-cao.xlsx", "--unit", "19")
        assert (tmp_path / "bao-cao.xlsx").stat().st_size > 0

        # 4. an officer account, the password asked (here on standard input), then a login
        here("users", "add", "tinh.admin", "--role", "admin", stdin="mật khẩu dài 2026\n")
        assert httpx.get(base + "/login").status_code == 200

        # 5. phones: no --url needed, and printing never replaces the token
        here("qr", collector_id, "-o", "the.png")
        here("qr-sheet", "--unit", "05563", "-o", "the-cards.html")
        here("bundle", "--collector", collector_id, "-o", "forms.zip")
        assert httpx.get(url + "/formList", headers=COLLECT).status_code == 200  # the card still works

        # 6. plugins, audit, backup and restore
        assert "rasoat.core.builtin.national" in here("plugins").stdout
        audit = here("audit", "--json", ok=False)  # the key of person records was made, and audited
        assert audit.returncode == 0 and "protection.key_create" in audit.stdout
        here("backup", "-o", "du-phong.tar.gz")
        here("restore", "du-phong.tar.gz", "--data", "khoi-phuc")
        assert iid in here("submissions", "list", "--form", "f1_person", "--data", "khoi-phuc").stdout
    finally:
        stop(server)

    # 7. PostgreSQL: migrate-store into an empty database, then serve it with two workers
    moved = here("migrate-store", "--from", "rasoat-data", "--to", pg_url).stdout
    assert "Everything matches" in moved
    pg_port = free_port()
    pg_server, pg_log = here.serve("--workers", "2", "--port", str(pg_port),
                                   env={"RASOAT_DATABASE_URL": pg_url})
    try:
        wait_for(pg_server, pg_log, f"http://127.0.0.1:{pg_port}")
        moved_url = url.replace(base, f"http://127.0.0.1:{pg_port}")
        assert httpx.get(moved_url + "/formList", headers=COLLECT).status_code == 200
        pg = {"RASOAT_DATABASE_URL": pg_url}
        out = tmp_path / "from-pg.xlsx"
        here("export", "f1_person", "-o", str(out), env=pg)
        kek = json.loads(here("protection", "show", "--json").stdout)["kek_id"]
        assert json.loads(here("protection", "show", "--json", env=pg).stdout)["kek_id"] == kek  # same key
        assert iid in str(list(openpyxl.load_workbook(out, read_only=True).worksheets[0]
                               .iter_rows(values_only=True)))
        assert sorted(p.name for p in (tmp_path / "rasoat-data").glob("demo-key-passphrase*")) == [
            "demo-key-passphrase.txt"]
    finally:
        stop(pg_server)

    # Writing a province plugin: the pip hint is a path, never a name on the package index
    made = here("plugin", "new", "lang_son", "--province", "20").stdout
    assert "pip install ./rasoat-lang-son" in made and (tmp_path / "rasoat-lang-son").is_dir()
    assert "`pip install ./rasoat-lang-son`" in readme
    assert json.loads(here("rounds", "list", "--json").stdout)


def _rows(node: object) -> list[dict]:
    """Every object in a JSON answer (the indicator rows, wherever they nest)."""
    if isinstance(node, dict):
        return [node, *(r for v in node.values() for r in _rows(v))]
    if isinstance(node, list):
        return [r for v in node for r in _rows(v)]
    return []
