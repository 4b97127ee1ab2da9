"""A plugin's YAML data files are parsed once per version of the file (the indicator, overview and plugin
pages read every definition on each visit): a changed file is read again, and each caller may change
what it got without changing what the next one gets."""

from __future__ import annotations

import os
from pathlib import Path

from rasoat.core.indicators.loading import parse_data_file


def test_a_changed_file_is_read_again_and_each_caller_gets_its_own_copy(tmp_path: Path) -> None:
    path = tmp_path / "indicators.yaml"
    path.write_text("indicators:\n  - id: a\n    target: {op: '>=', value: 80}\n", encoding="utf-8")
    first = parse_data_file(path)
    first["indicators"][0]["target"]["value"] = 1  # a caller merging overrides into what it got
    assert parse_data_file(path)["indicators"][0]["target"]["value"] == 80
    path.write_text("indicators:\n  - id: a\n    target: {op: '>=', value: 90}\n", encoding="utf-8")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))
    assert parse_data_file(path)["indicators"][0]["target"]["value"] == 90
