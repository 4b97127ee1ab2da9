"""``rasoat plugin new``: the project it writes installs with pip, passes its own tests, and its form and
indicator show up in ``rasoat forms list`` and ``rasoat indicators``."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from rasoat.core.commands.common import CommandError
from rasoat.core.commands.plugin_new import create_plugin, describe, plugin_name
from rasoat.core.problems import Problem

pytestmark = pytest.mark.slow  # pip-installs a new plugin project and runs its tests

RASOAT = [sys.executable, "-m", "rasoat.core.cli"]
# Not "lang_son": the README's own example may be installed next to rasoat, and a second plugin of one
# name is refused; these tests must pass with it installed.
NAME = "lang_son_thu"
PROJECT = "rasoat-lang-son-thu"
Completed = subprocess.CompletedProcess


def rasoat(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Completed:
    environ = {**os.environ, **(env or {})}
    return subprocess.run([*RASOAT, *args], capture_output=True, text=True, env=environ, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(project, site): ``rasoat plugin new`` run as an officer would, then ``pip install`` into a fresh
    target directory (rasoat's own dependencies come from this environment)."""
    root = tmp_path_factory.mktemp("plugin-new")
    out = rasoat("plugin", "new", NAME, "--province", "20", "-o", str(root), cwd=root)
    assert out.returncode == 0, out.stderr
    project = root / PROJECT
    assert f"pip install {project}\n" in out.stdout
    site = root / "site"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(project)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert pip.returncode == 0, pip.stderr
    return project, site


def test_the_project_is_a_separate_plugin_package(installed: tuple[Path, Path]) -> None:
    project, site = installed
    meta = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["project"]["name"] == PROJECT
    assert meta["project"]["entry-points"]["rasoat"] == {NAME: f"rasoat_{NAME}"}
    pkg = site / f"rasoat_{NAME}"
    for name in ("__init__.py", "plan.yaml", "indicators.yaml", "hamlets.csv", "forms/provinces.csv",
                 f"forms/{NAME}_checklist.xlsx", "forms/communes.csv", "forms/hamlets.csv"):
        assert (pkg / name).is_file(), name  # the data files travel with the installed package
    assert (project / "tests" / "test_plugin.py").is_file()
    with (pkg / "hamlets.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and all(r["sample"] == "1" and r["code"].startswith(r["commune_code"] + "-") for r in rows)
    with (pkg / "forms" / "communes.csv").open(encoding="utf-8") as fh:
        communes = list(csv.DictReader(fh))
    assert len(communes) > 10 and {c["province"] for c in communes} == {"20"}  # every commune of Lạng Sơn


def test_the_projects_own_tests_pass_once_installed(installed: tuple[Path, Path]) -> None:
    project, site = installed
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project, capture_output=True,
        text=True, env={**os.environ, "PYTHONPATH": str(site)}, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "4 passed" in out.stdout
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=project, capture_output=True,
                          text=True, timeout=120)
    assert lint.returncode == 0, lint.stdout  # the generated project is style-clean as made


def test_rasoat_sees_its_form_and_indicator(installed: tuple[Path, Path], tmp_path: Path) -> None:
    _, site = installed
    env = {"PYTHONPATH": str(site), "RASOAT_DATA": str(tmp_path / "data")}
    out = rasoat("forms", "list", "--json", env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    forms = {f["form_id"]: f for f in json.loads(out.stdout)}
    assert forms[f"{NAME}_checklist"]["plugin"] == NAME
    assert forms[f"{NAME}_checklist"]["missing_media"] == []
    commune = describe(NAME, "20").commune_code
    assert rasoat("init", env=env, cwd=tmp_path).returncode == 0
    out = rasoat("indicators", "--unit", commune, "--period", "2026", "--json", env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    row = {r["indicator_id"]: r for r in json.loads(out.stdout)}[f"{NAME}_mailbox"]
    assert row["unit_code"] == commune and row["status"] == "no_data"  # nothing collected yet
    assert (row["target_op"], row["target_value"], row["target_deadline"]) == (">=", 100, 2030)
    assert row["name_vi"] == "Tỷ lệ thôn có hòm thư tố giác tội phạm"


def test_names_provinces_and_folders(tmp_path: Path) -> None:
    assert plugin_name("Lạng Sơn") == "lang_son" and plugin_name("cao-bang") == "cao_bang"
    spec = describe("Đắk Lắk", "Đắk Lắk", term="buôn")  # a province given by name
    assert (spec.name, spec.province_code, spec.package) == ("dak_lak", "66", "rasoat_dak_lak")
    assert spec.form_id == "dak_lak_checklist" and spec.term == "buôn"
    for bad in ("1abc", "x", "tỉnh!@#" * 10):
        with pytest.raises(CommandError, match="invalid plugin name"):
            plugin_name(bad)
    with pytest.raises(Problem, match="99"):  # UnknownUnit, shown by the CLI as any Problem
        describe("abc", "99")
    with pytest.raises(CommandError, match="already installed"):
        describe("Thái Nguyên", "19")  # the built-in plugin's name: the new one would be skipped
    with pytest.raises(CommandError, match="hamlet term"):
        describe("abc", "20", term="village")
    root = create_plugin(describe(NAME, "20"), tmp_path)
    with pytest.raises(CommandError, match="not empty"):
        create_plugin(describe(NAME, "20"), tmp_path)
    assert root == tmp_path / PROJECT


def test_command_errors_are_one_line(tmp_path: Path) -> None:
    out = rasoat("plugin", "new", NAME, "--province", "99", "-o", str(tmp_path), cwd=tmp_path)
    assert out.returncode == 1 and out.stderr.startswith("Lỗi / Error:") and "Traceback" not in out.stderr
    assert not any(tmp_path.iterdir())


def test_the_pip_hint_is_a_path_and_the_project_never_lands_in_rasoats_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Problems 3 and 5: `pip install rasoat-lang-son` would ask the package index for that name; a
    project made inside the checkout would be collected by rasoat's own tests and style checks."""
    from rasoat.core.commands.plugin_new import default_output

    out = rasoat("plugin", "new", NAME, "--province", "20", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"pip install ./{PROJECT}\n" in out.stdout and (tmp_path / PROJECT).is_dir()
    monkeypatch.chdir(tmp_path)
    assert default_output() == (Path("."), None)
    checkout = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(checkout / "docs")  # anywhere in an editable install's checkout
    where, note = default_output()
    assert where == checkout.parent and note is not None and "inside rasoat's checkout" in note
