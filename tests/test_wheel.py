"""A wheel built from the repository carries the forms and plugin data: installed outside the checkout,
``rasoat forms list`` there shows every built-in form and plugin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

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
        [sys.executable, "-c", "import core; print(core.__file__)"], env=env, cwd=tmp_path,
        capture_output=True, text=True, check=True,
    )
    # rasoat must load from the wheel, not from the checkout
    assert where.stdout.strip().startswith(str(wheel_site))
    out = subprocess.run(
        [sys.executable, "-m", "core.cli", "forms", "list", "--json"], env=env, cwd=tmp_path,
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
    assert "core/data/units.csv" in names
