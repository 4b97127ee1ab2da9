"""What every command shares: the store for ``--data``, JSON output, and user-facing errors."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rasoat.core.config import load_settings
from rasoat.core.problems import Problem

if TYPE_CHECKING:  # the store's modules (pydantic models) load when a command opens one, not for --help
    from rasoat.core.storage.base import Store

# The work's modules are imported inside the functions that use them: ``rasoat --help`` imports every
# command module, and loading the store for it would slow every command (benchmarks/cli_startup.py).

JSON_HELP = "xuất dạng JSON / print JSON"
QUIET_HELP = "không hiện tiến độ / no progress bar"


class CommandError(Problem):
    """A problem the user can fix; printed as one line, exit code 1, no traceback."""

    default_code = "command.refused"


@contextmanager
def command_store(args: argparse.Namespace, create: bool = False) -> Iterator[Store]:
    """The store named by ``--data`` / ``RASOAT_DATA`` (and ``RASOAT_DATABASE_URL``), open for the command's
    ``with`` block and closed however it ends. An embedded store must already exist unless ``create``
    (``init``, ``serve``): a mistyped path is an error, never a new empty store. With a database the folder
    only holds attachments and is made when needed."""
    from rasoat.core.datadir import check_can_create, require_data_dir
    from rasoat.core.storage.opening import open_store

    settings = load_settings(getattr(args, "data", None))
    database_url = getattr(args, "database", None) or settings.database_url
    if database_url:
        pass
    elif create:
        check_can_create(settings.data_dir)
    else:
        require_data_dir(settings.data_dir)
    store = open_store(settings.data_dir, database_url)
    try:
        yield store
    finally:
        store.close()


def add_data_option(parser: argparse.ArgumentParser) -> None:
    """``--data DIR`` (and ``--database URL``) for every command that touches stored data."""
    parser.add_argument(
        "--data",
        metavar="DIR",
        help="thư mục dữ liệu / data directory (default ./rasoat-data or $RASOAT_DATA)",
    )
    parser.add_argument("--database", metavar="URL",
                        help="cơ sở dữ liệu PostgreSQL / PostgreSQL database: postgresql://… "
                        "(default $RASOAT_DATABASE_URL)")


def add_settings_option(parser: argparse.ArgumentParser) -> None:
    """``--data DIR`` for commands that read only its ``rasoat.toml`` (plugins turned off), no store."""
    parser.add_argument(
        "--data",
        metavar="DIR",
        help="thư mục dữ liệu, chỉ đọc rasoat.toml / data directory, only its rasoat.toml is read "
        "(default ./rasoat-data or $RASOAT_DATA)",
    )


def command_group(subparsers: Any, name: str, help_text: str) -> Any:
    """The sub-command group ``name`` and its subparsers; another plugin may have made it already
    (the server adds ``forms publish`` to core's ``forms``)."""
    parser = subparsers.choices.get(name)
    if parser is None:
        parser = subparsers.add_parser(name, help=help_text)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return parser.add_subparsers(dest=f"{name}_command", metavar="COMMAND")


def _default(obj: Any) -> Any:
    from pydantic import BaseModel

    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, Path | set | frozenset):
        return str(obj) if isinstance(obj, Path) else sorted(obj)
    if hasattr(obj, "__dataclass_fields__"):
        return {k: getattr(obj, k) for k in obj.__dataclass_fields__}
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def print_json(obj: Any) -> None:
    """Print as JSON with Vietnamese text kept readable."""
    json.dump(obj, sys.stdout, ensure_ascii=False, indent=2, default=_default)
    sys.stdout.write("\n")


MIN_COLUMN = 8
MIN_TEXT_COLUMN = 20  # text is narrowed to this before any id or code is wrapped


def print_table(
    headers: list[str], rows: list[list[Any]], width: int | None = None, narrow: Sequence[int] | None = None
) -> None:
    """An aligned text table that fits the terminal (``$COLUMNS``, else 100 characters). Headers wrap;
    then columns of text (cells with spaces) are narrowed, widest first, and their cells wrapped onto
    more lines; ids and codes (no spaces) are narrowed only when that is not enough, and the columns
    left out of ``narrow`` (default: the first, the row's id) never are. Nothing is cut (``--json``
    gives the same data unwrapped)."""
    import shutil
    import textwrap

    width = width or shutil.get_terminal_size((100, 24)).columns
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    body = cells[1:] or [[""] * len(headers)]
    widths = [max(max(len(r[i]) for r in body), max(map(len, headers[i].split()), default=0))
              for i in range(len(headers))]
    allowed = set(range(1, len(headers)) if narrow is None else narrow)  # the first column is the id
    text = [i for i in sorted(allowed) if any(" " in r[i] for r in body)]
    gaps = 2 * (len(widths) - 1)
    phases = ((text, MIN_TEXT_COLUMN), (sorted(allowed), MIN_TEXT_COLUMN), (text, MIN_COLUMN),
              (sorted(allowed), MIN_COLUMN))
    for shrinkable, floor in phases:
        while sum(widths) + gaps > width:  # level the widest columns down together
            widest = max(shrinkable, key=widths.__getitem__, default=None)
            if widest is None or widths[widest] <= floor:
                break
            runner_up = max((widths[i] for i in shrinkable if i != widest), default=floor)
            excess = sum(widths) + gaps - width
            widths[widest] = max(floor, min(widths[widest] - 1, max(runner_up, widths[widest] - excess)))
    for n, row in enumerate(cells):
        parts = [textwrap.wrap(c, w, break_on_hyphens=False) or [""]
                 for c, w in zip(row, widths, strict=True)]
        for i in range(max(len(p) for p in parts)):
            line = (p[i] if i < len(p) else "" for p in parts)
            print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


def default_actor() -> str:
    """Who the audit log names for a CLI action (every command's ``--by`` falls back to it): $RASOAT_USER,
    else the OS user."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        user = "unknown"
    return os.environ.get("RASOAT_USER") or f"cli:{user}"
