"""A wheel built from the repository carries the forms and plugin data: installed outside the checkout,
``rasoat forms list`` there shows every built-in form and plugin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds and installs the wheel

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel_site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
         str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )
    wheel = next(out.glob("rasoat-*.whl"))
    site = out / "site"
    # --no-deps: the dependencies are those of this environment; only rasoat itself comes from the wheel
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
        check=True, capture_output=True, timeout=300,
    )
    return site


def test_installed_wheel_lists_every_builtin_form(wheel_site, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(wheel_site), "RASOAT_DATA": str(tmp_path / "data")}
    where = subprocess.run(
        [sys.executable, "-c", "import rasoat; print(rasoat.__file__)"], env=env, cwd=tmp_path,
        capture_output=True, text=True, check=True,
    )
    # rasoat must load from the wheel, not from the checkout
    assert where.stdout.strip().startswith(str(wheel_site))
    out = subprocess.run(
        [sys.executable, "-m", "rasoat.core.cli", "forms", "list", "--json"], env=env, cwd=tmp_path,
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    listed = json.loads(out.stdout)
    ids = {f["form_id"] for f in listed}
    shipped = {p.stem for p in (ROOT / "forms").glob("*.xlsx")}
    assert shipped and shipped <= ids
    plugin_forms = {p.stem for p in (ROOT / "plugins").rglob("*.xlsx")}
    assert plugin_forms <= ids
    names = {f.filename for f in zipfile.ZipFile(next(wheel_site.parent.glob("rasoat-*.whl"))).infolist()}
    assert "rasoat/core/data/units.csv" in names
    for lang in ("vi", "en"):  # the error messages: without them every error would show its bare code
        assert f"rasoat/core/locale/{lang}/LC_MESSAGES/errors.po" in names


def test_a_package_named_core_installs_beside_rasoat(wheel_site, tmp_path):
    """rasoat's folders are ``rasoat.*`` once installed: another distribution's top-level ``core`` or
    ``server`` (a Django project's, say) and rasoat both import, and ``import core`` is not rasoat."""
    other = tmp_path / "other-site"
    for name in ("core", "server"):
        (other / name).mkdir(parents=True)
        (other / name / "__init__.py").write_text(f"WHO = 'other {name}'\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(other), str(wheel_site)]),
           "RASOAT_DATA": str(tmp_path / "data")}
    probe = ("import core, server, rasoat.core.cli, rasoat.server.app\n"
             "from rasoat import hookimpl\n"
             "print(core.WHO, '|', server.WHO, '|', rasoat.core.cli.__file__)")
    out = subprocess.run([sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    who_core, who_server, cli = (part.strip() for part in out.stdout.split("|"))
    assert (who_core, who_server) == ("other core", "other server")
    assert cli.startswith(str(wheel_site))
    listed = subprocess.run([sys.executable, "-m", "rasoat.core.cli", "forms", "list", "--json"], env=env,
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0, listed.stderr
    assert "f1_person" in {f["form_id"] for f in json.loads(listed.stdout)}


def test_every_package_folder_is_in_the_wheel_list():
    """pyproject lists rasoat's packages by hand (package-dir maps them); a new folder must be added."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    listed = set(pyproject["tool"]["setuptools"]["packages"])
    rooms = ("core", "server", "plugins", "forms", "mobile_export")
    found = {"rasoat"} | {
        "rasoat." + ".".join(init.parent.relative_to(ROOT).parts)
        for room in rooms for init in (ROOT / room).rglob("__init__.py")
    }
    assert found == listed
