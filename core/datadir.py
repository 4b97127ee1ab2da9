"""What makes a folder a rasoat data directory, so a mistyped ``--data`` never becomes a new empty store.

A data directory is made by ``rasoat init DIR`` or by the first ``rasoat serve``; every other command
opens only a folder that already is one: one holding the embedded store's database
(``rasoat.sqlite3``), or ``store.json`` of the earlier file layout (converted when opened).
"""

from __future__ import annotations

from pathlib import Path

from rasoat.core.problems import Problem

LEGACY_MARKER = "store.json"


class NotADataDirectory(Problem):
    """The folder is not a rasoat data directory; the message names it and says how to make one."""

    default_code = "datadir.refused"


def markers() -> tuple[str, ...]:
    from rasoat.core.storage.embedded import DB_NAME

    return DB_NAME, LEGACY_MARKER


def is_data_dir(path: Path) -> bool:
    return any((path / name).is_file() for name in markers())


def require_data_dir(path: Path) -> None:
    """Raise NotADataDirectory unless ``path`` is a rasoat data directory."""
    if is_data_dir(path):
        return
    db = markers()[0]
    why = "không có thư mục này / no such folder" if not path.exists() else f"thiếu {db} / it has no {db}"
    raise NotADataDirectory(
        f"{path} không phải thư mục dữ liệu rasoat ({why}); kiểm tra --data / RASOAT_DATA, hoặc tạo mới bằng "
        f"'rasoat init {path}' / {path} is not a rasoat data directory; check --data / RASOAT_DATA, or "
        f"create one with 'rasoat init {path}' (the first 'rasoat serve' also creates it)"
    )


def check_can_create(path: Path) -> None:
    """A new store goes into a missing or empty folder, or an existing store (then nothing is made);
    never into a folder that holds other files."""
    if path.exists() and not path.is_dir():
        raise NotADataDirectory(f"{path} là một tệp, không phải thư mục / {path} is a file, not a folder")
    if path.is_dir() and not is_data_dir(path) and any(path.iterdir()):
        raise NotADataDirectory(
            f"{path} đã có tệp khác và không phải thư mục dữ liệu rasoat; chọn thư mục trống / {path} "
            "holds other files and is not a rasoat data directory; choose an empty or new folder"
        )
