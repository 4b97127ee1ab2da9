"""``rasoat plugins`` lists indicator ids however a plugin gives its definitions, a YAML path included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_plugin_conflicts import fake_install, run_cli

PACK = """\
source: {document: "01/KH-UBND"}
indicators:
  - id: ls_mailbox
    name_vi: Hòm thư tố giác
    name_en: Denunciation mailbox
    numerator: {form: f5_hamlet, where: {mailbox: "yes"}}
  - overrides: nat_services_reach
    target: {op: ">", value: 90, deadline: 2030}
"""


@pytest.mark.slow
def test_a_yaml_path_is_listed_by_its_indicator_ids(tmp_path: Path) -> None:
    site = tmp_path / "site"
    yaml_path = tmp_path / "chi_tieu.yaml"
    yaml_path.write_text(PACK, encoding="utf-8")
    fake_install(site, "rasoat-lang-son", "lang_son", "rasoat_ls_yaml", f"""
        from rasoat.core import hookimpl

        @hookimpl
        def indicators():
            return [{str(yaml_path)!r}]
        """)
    out = run_cli(site, tmp_path, "plugins", "--json")
    assert out.returncode == 0, out.stderr
    plugins = {p["name"]: p for p in json.loads(out.stdout)}
    assert plugins["lang_son"]["indicators"] == ["ls_mailbox", "nat_services_reach"]
    assert "nat_services_reach" in plugins["rasoat.core.builtin.national"]["indicators"]
    table = run_cli(site, tmp_path, "plugins")
    row = next(line for line in table.stdout.splitlines() if line.startswith("lang_son "))
    assert row.split()[-1] == "2"  # two indicators, not one file


@pytest.mark.slow
def test_a_broken_indicator_file_is_one_line_naming_the_plugin(tmp_path: Path) -> None:
    site = tmp_path / "site"
    fake_install(site, "rasoat-lang-son", "lang_son", "rasoat_ls_missing", f"""
        from rasoat.core import hookimpl

        @hookimpl
        def indicators():
            return [{str(tmp_path / "khong_co.yaml")!r}]
        """)
    out = run_cli(site, tmp_path, "plugins")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.startswith("Lỗi / Error: plugin 'lang_son'") and "khong_co.yaml" in out.stderr
