"""Conflicts between installed plugins stop rasoat at start-up with one line naming both sides: two
plugins declaring one indicator id (``rasoat serve``), two distributions declaring one entry-point name."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def fake_install(site: Path, dist: str, entry_point: str, module: str, body: str) -> None:
    """An installed distribution as pip leaves it: a package and a dist-info declaring the entry point."""
    pkg = site / module
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(body), encoding="utf-8")
    info = site / f"{dist.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[rasoat]\n{entry_point} = {module}\n")


def run_cli(site: Path, tmp_path: Path, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
           "RASOAT_DATA": str(tmp_path / "data")}
    return subprocess.run([sys.executable, "-m", "rasoat.core.cli", *argv], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_line_naming(out: subprocess.CompletedProcess[str], *names: str) -> None:
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    assert out.stderr.startswith("Lỗi / Error:") and out.stderr.count("\n") == 1, out.stderr
    for name in names:
        assert name in out.stderr, out.stderr


INDICATOR_PLUGIN = """
    from rasoat.core import hookimpl

    @hookimpl
    def indicators():
        return [{"id": "shared_mailbox", "name_vi": "Hòm thư", "name_en": "Mailbox",
                 "numerator": {"form": "f5_hamlet"}}]
    """


@pytest.mark.slow
def test_serve_stops_on_an_indicator_id_two_plugins_declare(tmp_path: Path) -> None:
    site = tmp_path / "site"
    for name in ("lang_son", "cao_bang"):
        fake_install(site, f"rasoat-{name}", name, f"rasoat_{name}", INDICATOR_PLUGIN)
    out = run_cli(site, tmp_path, "serve", "--host", "127.0.0.1", "--port", str(free_port()), "--no-demo")
    one_line_naming(out, "shared_mailbox", "'lang_son'", "'cao_bang'")
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())  # nothing stored


# --- two distributions, one entry-point name -----------------------------------------------------------

PLAN_PLUGIN = """
    from rasoat.core import hookimpl

    @hookimpl
    def plan_info():
        return {{"name": "{name}", "province_code": "20"}}
    """


def two_lang_sons(site: Path) -> None:
    for dist, module in (("rasoat-lang-son", "rasoat_ls_official"), ("lang-son-fork", "rasoat_ls_fork")):
        fake_install(site, dist, "lang_son", module, PLAN_PLUGIN.format(name=module))


def test_one_entry_point_name_from_two_distributions_is_a_conflict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rasoat.core.plugins import PluginConflict, build_manager

    site = tmp_path / "site"
    two_lang_sons(site)
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(PluginConflict, match=r"'lang_son'.*'rasoat-lang-son'.*'lang-son-fork'"):
        build_manager()
    pm = build_manager(disabled=["lang_son"])  # disabled: neither loads, so nothing clashes
    assert pm.get_plugin("lang_son") is None


def test_one_distribution_loads_as_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rasoat.core.plugins import build_manager

    site = tmp_path / "site"
    fake_install(site, "rasoat-lang-son", "lang_son", "rasoat_ls_single", PLAN_PLUGIN.format(name="single"))
    monkeypatch.syspath_prepend(str(site))
    pm = build_manager()
    assert pm.get_plugin("lang_son").__name__ == "rasoat_ls_single"


def test_the_command_line_names_both_distributions(tmp_path: Path) -> None:
    site = tmp_path / "site"
    two_lang_sons(site)
    one_line_naming(run_cli(site, tmp_path, "plugins"), "'lang_son'", "'rasoat-lang-son'", "'lang-son-fork'")
