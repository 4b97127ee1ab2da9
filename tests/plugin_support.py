"""A test's own plugins as the process's: the built-in provinces left out (so the test's hamlets are the
only ones under their communes), the unit registry reloaded, both restored afterwards; and a plugin that
gives hamlet lists."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pluggy
from rasoat.core import hookimpl
from rasoat.core.plugins import build_manager, set_manager
from rasoat.core.units import reset_units
from rasoat.plugins import BUILTIN_PROVINCES


class HamletPlugin:
    """A province plugin whose ``hamlets`` hook gives these CSV files."""

    def __init__(self, *paths: Path) -> None:
        self.paths = list(paths)

    @hookimpl
    def hamlets(self) -> list[Path]:
        return self.paths


@contextmanager
def plugins_installed(**plugins: object) -> Iterator[pluggy.PluginManager]:
    """A plugin manager of ``plugins`` (by name) and none of the built-in provinces, as the process's."""
    pm = build_manager(disabled=BUILTIN_PROVINCES)
    for name, plugin in plugins.items():
        pm.register(plugin, name=name)
    set_manager(pm)
    reset_units()
    try:
        yield pm
    finally:
        set_manager(None)
        reset_units()
