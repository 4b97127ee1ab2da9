"""What makes a folder a rasoat data directory, so a mistyped ``--data`` never becomes a new empty store.

A data directory is made by ``rasoat init DIR`` or by the first ``rasoat serve``; every other command
opens only a folder that already is one: one holding the embedded store's database
(``rasoat.sqlite3``), or ``store.json`` of the earlier file layout (converted when opened).
"""

from __future__ import annotations

from pathlib import Path

from rasoat.core.problems import Problem
from rasoat.core.storage.embedded import DB_NAME

LEGACY_MARKER = "store.json"


class NotADataDirectory(Problem):
    """The folder is not a rasoat data directory; the message names it and says how to make one."""


def markers() -> tuple[str, ...]:
    return DB_NAME, LEGACY_MARKER


def is_data_dir(path: Path) -> bool:
    return any((path / name).is_file() for name in markers())


def require_data_dir(path: Path) -> None:
    """Raise NotADataDirectory unless ``path`` is a rasoat data directory."""
    if is_data_dir(path):
        return
    if not path.exists():
        raise NotADataDirectory("datadir.missing", path=path)
    raise NotADataDirectory("datadir.no_store", path=path, db=markers()[0])


def check_can_create(path: Path) -> None:
    """A new store goes into a missing or empty folder, or an existing store (then nothing is made);
    never into a folder that holds other files."""
    if path.exists() and not path.is_dir():
        raise NotADataDirectory("datadir.is_a_file", path=path)
    if path.is_dir() and not is_data_dir(path) and any(path.iterdir()):
        raise NotADataDirectory("datadir.not_empty", path=path)
