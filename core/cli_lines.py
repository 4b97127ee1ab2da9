"""The command line's own lines (what a command did, a warning, what to do next), in Vietnamese and English.

They live in a gettext catalogue, ``core/locale/{vi,en}/LC_MESSAGES/cli.po``, read with Babel as the error
messages are (``core.problems``); the message id is a key (``users.created``) with named parameters. The
CLI's documented form is one line "Việt / English" (docs/errors.md, "How each surface shows an error"):
``say`` prints it, ``line`` makes it. Tables, JSON and the values a script reads stay as they are.
"""

from __future__ import annotations

import functools
import sys
from typing import Any, TextIO

from rasoat.core.problems import LANGS, LOCALE_DIR, both, fill, read_catalogue

DOMAIN = "cli"


@functools.cache
def lines(lang: str) -> dict[str, str]:
    """The CLI's line templates of one language, by key (read once, when a command first says something)."""
    return read_catalogue(LOCALE_DIR, DOMAIN, lang)


def line(key: str, /, **params: Any) -> str:
    """The line ``key`` with its parameters, "Việt / English" (once when both are the same); an unknown key
    shows itself (tests/test_cli_lines.py finds every key the code uses in both catalogues)."""
    vi, en = (fill(lines(lang).get(key, key), params, lang) for lang in LANGS)
    return both((vi, en))


def say(key: str, /, *, file: TextIO | None = None, **params: Any) -> None:
    """Print the line ``key`` (stdout unless ``file``), flushed so it shows before a long step."""
    print(line(key, **params), file=file or sys.stdout, flush=True)
