"""Forms' logic run in JavaRosa, the engine inside ODK Collect: tests/fixtures/xlsform/FormEval.java,
compiled against ODK Validate's jar (which carries JavaRosa), fills in answers and reads back fields."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from pyxform.validators.odk_validate import ODK_VALIDATE_PATH

FORM_EVAL = Path(__file__).resolve().parent / "fixtures" / "xlsform" / "FormEval.java"


def compile_form_eval(work: Path) -> None:
    """FormEval compiled into ``work``; the test is skipped where there is no Java compiler."""
    if shutil.which("javac") is None:
        pytest.skip("javac is not installed")
    subprocess.run(["javac", "-d", str(work), "-cp", ODK_VALIDATE_PATH, str(FORM_EVAL)], check=True)


def form_eval(
    work: Path, form_id: str, xml: bytes, media: Path, *scenarios: dict[str, str], ask: list[str]
) -> list[dict[str, str]]:
    """One {path: value} of the ``ask`` paths per scenario ({path: value} answers typed into a fresh
    form), as JavaRosa computes them for the XForm ``xml`` with its media files in ``media``."""
    xform = work / f"{form_id}.xml"
    xform.write_bytes(xml)
    args: list[str] = []
    for n, scenario in enumerate(scenarios):
        if n:
            args.append("--reset")
        args += [f"/data/{k}={v}" for k, v in scenario.items()] + [f"?/data/{q}" for q in ask]
    out = subprocess.run(
        ["java", "-cp", f"{ODK_VALIDATE_PATH}{os.pathsep}{work}", "FormEval", str(xform), str(media), *args],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout
    results: list[dict[str, str]] = [{}]
    for line in out.splitlines():
        if line == "--":
            results.append({})
        elif line.startswith("/data/"):
            key, _, value = line[len("/data/"):].partition(" = ")
            results[-1][key] = value
    return results
