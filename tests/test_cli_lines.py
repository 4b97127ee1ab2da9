"""The CLI's own lines (core/cli_lines.py, core/locale/{vi,en}/LC_MESSAGES/cli.po): every line has both
languages with the same parameters, every key the commands say exists and every key in the catalogue is
said somewhere, and a command prints its line as the CLI's documented "Việt / English"."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rasoat.core.cli import main
from rasoat.core.cli_lines import DOMAIN, line, lines
from rasoat.core.problems import LANGS, LOCALE_DIR, placeholders, read_catalogue

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [p for room in ("core", "server", "mobile_export") for p in (ROOT / room).rglob("*.py")]
SAID = re.compile(r"""\b(?:say|line)\(\s*["']([\w.]+)["']""")  # say("users.created", …), line('label.forms')


def test_every_line_has_both_languages_with_the_same_parameters() -> None:
    vi, en = (read_catalogue(LOCALE_DIR, DOMAIN, lang) for lang in LANGS)
    assert set(vi) == set(en) and len(vi) > 80  # read_catalogue leaves out an empty translation
    for key in vi:
        assert re.fullmatch(r"[a-z_]+\.[a-z_]+", key), key
        assert placeholders(vi[key]) == placeholders(en[key]), key
        assert " / " not in vi[key] + en[key], key  # each language whole: the CLI joins them with " / "


def test_every_key_the_commands_say_is_in_the_catalogue_and_none_is_left_over() -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in SOURCES)
    said = set(SAID.findall(text))
    assert {"users.created", "label.forms", "serve.stop"} <= said  # the scan finds say() and line()
    assert said - set(lines("vi")) == set()
    # a key chosen by a condition (``say("users.active" if … else "users.disabled")``) is a literal too
    assert [key for key in lines("vi") if f'"{key}"' not in text and f"'{key}'" not in text] == []


def test_a_line_is_one_line_in_both_languages() -> None:
    assert line("users.created", username="lan", role="officer", units=("toàn quốc", "all")) == (
        "Đã tạo lan (officer; toàn quốc) / Created lan (officer; all)"
    )
    assert line("label.forms") == "Biểu mẫu / Forms"
    assert line("no.such_key") == "no.such_key"  # shown as itself, never a crash


def test_init_prints_its_line_from_the_catalogue(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "du-lieu"
    assert main(["init", str(data)]) == 0
    out = capsys.readouterr().out
    assert out == f"Đã tạo thư mục dữ liệu: {data} / Data directory created: {data}\n"
