"""The plugin contract: hooks reach core's own plugins and installed ones; plugins can be disabled."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import openpyxl
import pytest
from rasoat.core import hookimpl, hookspecs
from rasoat.core.payloads import PlanInfo, PluginAnswerError
from rasoat.core.plugins import PluginConflict, build_manager, plugin_infos, results_by_plugin, unique_by_key

RASOAT = [sys.executable, "-m", "rasoat.core.cli"]


def run_rasoat(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*RASOAT, *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd=cwd,
        timeout=120,
    )


def write_xlsform(path: Path, form_id: str, title: str) -> None:
    """A minimal valid XLSForm written with openpyxl, as a province officer would save it from Excel."""
    wb = openpyxl.Workbook()
    survey = wb.active
    survey.title = "survey"
    survey.append(["type", "name", "label::Tiếng Việt (vi)", "label::English (en)"])
    survey.append(["text", "ten_xom", "Tên xóm", "Hamlet name"])
    survey.append(["integer", "so_ho", "Số hộ", "Households"])
    settings = wb.create_sheet("settings")
    settings.append(["form_id", "form_title", "version"])
    settings.append([form_id, title, "2026112601"])
    wb.save(path)


class CheckPlugin:
    """A plugin object registered directly, as a test would; returns a message for empty names."""

    @hookimpl
    def check_submission(self, form_id, fields):
        return ["Thiếu tên / Name missing"] if not fields.get("name") else []


def test_builtin_plugins_registered_through_the_same_hooks():
    pm = build_manager()
    names = {info.name: info for info in plugin_infos(pm)}
    national = names["rasoat.core.builtin.national"]
    assert national.builtin
    assert "forms" in national.hooks and "plan_info" in national.hooks
    # server and mobile_export come through the `rasoat` entry-point group, like an outside plugin
    assert "server" in names and not names["server"].builtin


def test_hook_results_keep_the_plugin_that_gave_them():
    pm = build_manager()
    pm.register(CheckPlugin(), name="province_check")
    answers = dict(results_by_plugin(pm, "check_submission", form_id="f1_person", fields={"name": ""}))
    assert answers["province_check"] == ["Thiếu tên / Name missing"]
    assert pm.hook.check_submission(form_id="f1_person", fields={"name": "An"}) == [[]]


def test_disabled_plugin_is_not_loaded():
    pm = build_manager(disabled=["rasoat.core.builtin.national", "server"])
    names = {info.name for info in plugin_infos(pm)}
    assert "rasoat.core.builtin.national" not in names and "server" not in names
    assert "mobile_export" in names


@pytest.mark.slow
def test_disable_by_configuration_file(tmp_path):
    (tmp_path / "rasoat.toml").write_text('disabled_plugins = ["mobile_export"]\n', encoding="utf-8")
    out = run_rasoat("plugins", "--json", "--data", str(tmp_path))
    assert out.returncode == 0, out.stderr
    names = {p["name"] for p in json.loads(out.stdout)}
    assert "mobile_export" not in names and "rasoat.core.builtin.national" in names
    out = run_rasoat("plugins", "--json", env={"RASOAT_DISABLE_PLUGINS": "server"})
    assert "server" not in {p["name"] for p in json.loads(out.stdout)}


def test_conflicting_ids_name_both_plugins():
    with pytest.raises(PluginConflict) as err:
        claims = [("quang_tri", {"id": "hotspots_new"}), ("ho_chi_minh", {"id": "hotspots_new"})]
        unique_by_key(claims, "id", "chỉ tiêu")
    assert "quang_tri" in str(err.value) and "ho_chi_minh" in str(err.value)


def test_plugins_command_json_shows_core():
    out = run_rasoat("plugins", "--json")
    assert out.returncode == 0, out.stderr
    plugins = {p["name"]: p for p in json.loads(out.stdout)}
    assert plugins["rasoat.core.builtin.national"]["builtin"] is True
    assert plugins["rasoat.core.builtin.national"]["version"]


def test_unknown_command_is_one_clear_line():
    out = run_rasoat("forms", "validate", "/nonexistent/x.xlsx")
    assert out.returncode != 0
    assert "Traceback" not in out.stderr


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory) -> Path:
    """A throwaway province plugin project, installed with pip into a target dir on the test's path."""
    root = tmp_path_factory.mktemp("plugin")
    project = root / "rasoat-thu-nghiem"
    pkg = project / "rasoat_thu_nghiem"
    pkg.mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [build-system]
            requires = ["setuptools>=69"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "rasoat-thu-nghiem"
            version = "0.3.1"
            dependencies = []

            [project.entry-points.rasoat]
            thu_nghiem = "rasoat_thu_nghiem"

            [tool.setuptools.package-data]
            rasoat_thu_nghiem = ["*.xlsx"]
            """
        ),
        encoding="utf-8",
    )
    (pkg / "__init__.py").write_text(
        textwrap.dedent(
            """
            from pathlib import Path
            from rasoat.core import hookimpl

            @hookimpl
            def forms():
                return [Path(__file__).parent / "tn_checklist.xlsx"]

            @hookimpl
            def plan_info():
                return {"name": "Kế hoạch thử nghiệm", "province_code": "19"}
            """
        ),
        encoding="utf-8",
    )
    write_xlsform(pkg / "tn_checklist.xlsx", "tn_checklist", "Kiểm tra xóm (thử nghiệm)")
    target = root / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
         str(target), str(project)],
        check=True, capture_output=True, timeout=300,
    )
    return target


@pytest.mark.slow
def test_installed_plugin_shows_up_with_its_form(installed_plugin, tmp_path):
    env = {"PYTHONPATH": str(installed_plugin)}
    out = run_rasoat("plugins", "--json", env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    plugins = {p["name"]: p for p in json.loads(out.stdout)}
    assert plugins["thu_nghiem"]["version"] == "0.3.1"
    assert "forms" in plugins["thu_nghiem"]["hooks"]
    assert plugins["thu_nghiem"]["forms"] == ["tn_checklist"]


@pytest.mark.slow
def test_trace_hooks_prints_every_hook_call(installed_plugin, tmp_path):
    """RASOAT_TRACE_HOOKS=1 shows each plugin's call of every hook the command uses, not only
    register_commands: core reads plugins' answers through pm.hook, one plugin at a time."""
    env = {"PYTHONPATH": str(installed_plugin), "RASOAT_TRACE_HOOKS": "1", "RASOAT_DATA": str(tmp_path / "d")}
    out = run_rasoat("forms", "list", env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    calls = [line.split()[0] for line in out.stderr.splitlines() if line.strip().endswith("[hook]")
             and not line.strip().startswith("finish")]
    pm = build_manager()
    form_plugins = len(pm.hook.forms.get_hookimpls()) + 1  # and the installed thu_nghiem
    assert calls.count("register_commands") == 1
    assert calls.count("forms") == form_plugins
    assert "thu_nghiem" not in {i.plugin_name for i in pm.hook.forms.get_hookimpls()}
    assert "tn_checklist" in out.stdout


class WrongAnswers:
    @hookimpl
    def forms(self):
        return [42]

    @hookimpl
    def plan_info(self):
        return {"issuer": "UBND xã"}  # no name


@pytest.mark.parametrize("hook, where", [("forms", "'0'"), ("plan_info", "'name'")])
def test_a_wrong_hook_answer_is_one_line_naming_the_plugin(hook, where):
    pm = build_manager()
    pm.register(WrongAnswers(), name="lang_son")
    with pytest.raises(PluginAnswerError) as err:
        results_by_plugin(pm, hook)
    message = str(err.value)
    assert "\n" not in message
    assert f"plugin 'lang_son': hook '{hook}'" in message and where in message


def test_plan_info_comes_back_typed():
    infos = dict(results_by_plugin(build_manager(), "plan_info"))
    plan = infos["thai_nguyen"]
    assert isinstance(plan, PlanInfo)
    assert plan.province_code == "19" and str(plan.period) == "2026–2030"
    assert plan.implements[0].document == "80/KH-UBND"


def test_plugin_hooks_are_documented():
    """Every hook in core/hookspecs.py has a section in docs/plugins.md and a docstring that says when it
    is called and what it returns (as datasette's test_plugin_hooks_are_documented)."""
    docs = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text(encoding="utf-8")
    specs = {name: fn for name, fn in vars(hookspecs).items() if hasattr(fn, "rasoat_spec")}
    assert {"plan_info", "forms", "check_submission", "register_commands"} <= set(specs)
    for name, fn in specs.items():
        params = list(inspect.signature(fn).parameters)
        assert f"### `{name}({', '.join(params)})`" in docs, f"docs/plugins.md lacks a section for {name}"
        doc = inspect.getdoc(fn) or ""
        assert "Called" in doc and "Return" in doc, f"hookspec {name} does not say when it runs and returns"
        for param in params:
            assert f"``{param}``" in doc, f"hookspec {name} does not document {param}"
