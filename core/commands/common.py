"""What every command shares: the store for ``--data``, JSON output, and user-facing errors."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from rasoat.core.config import load_settings
from rasoat.core.storage import Store, open_store


class CommandError(Exception):
    """A problem the user can fix; printed as one line, exit code 1, no traceback."""


def store_from_args(args: argparse.Namespace) -> Store:
    """Open the store named by ``--data`` / ``RASOAT_DATA`` (and ``RASOAT_DATABASE_URL``)."""
    settings = load_settings(getattr(args, "data", None))
    database_url = getattr(args, "database", None) or settings.database_url
    return open_store(settings.data_dir, database_url)


def add_data_option(parser: argparse.ArgumentParser) -> None:
    """``--data DIR`` (and ``--database URL``) for every command that touches stored data."""
    parser.add_argument(
        "--data",
        metavar="DIR",
        help="thư mục dữ liệu / data directory (default ./rasoat-data or $RASOAT_DATA)",
    )
    parser.add_argument("--database", metavar="URL", help="postgresql://… (default $RASOAT_DATABASE_URL)")


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


def print_table(headers: list[str], rows: list[list[Any]]) -> None:
    """A plain aligned text table (wide Vietnamese text stays readable in a terminal)."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
