"""One migrations mechanism for both engines: numbered ``NNNN_name.sql`` files in a package per engine
(``pg_migrations``, ``sqlite_migrations``), applied in order, each exactly once, recorded in the
``schema_version`` table of the database. A change is a new file with the next number in both
packages; a released file is never edited."""

from __future__ import annotations

import importlib.resources
import re

_MIGRATION_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migration_files(package: str) -> list[tuple[int, str, str]]:
    """(number, file name, SQL) of every migration shipped in ``package``, in order."""
    out = []
    for entry in importlib.resources.files(package).iterdir():
        match = _MIGRATION_RE.match(entry.name)
        if match:
            out.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    out.sort()
    numbers = [n for n, _, _ in out]
    if numbers != list(range(1, len(out) + 1)):
        raise RuntimeError(f"migrations must be numbered 0001, 0002, … without gaps: {numbers}")
    return out
