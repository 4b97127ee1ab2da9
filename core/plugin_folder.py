"""A province plugin kept as data in one folder, so a plugin's code is only what is truly its own.

The folder holds ``plan.yaml`` (plan metadata), ``forms/*.xlsx`` (with their media), ``indicators.yaml``
(a ``source`` shared by every definition, and ``indicators``) and ``hamlets.csv``. A plugin module
exposes the folder's hooks as its own::

    _folder = PluginFolder(Path(__file__).parent)
    plan_info, forms, indicators, hamlets = _folder.hooks()
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rasoat.core.hooks import hookimpl
from rasoat.core.indicators.loading import parse_data_file


class PluginFolder:
    """The data files of one plugin and the hook implementations that serve them."""

    def __init__(self, here: Path) -> None:
        self.here = Path(here).resolve()

    def read(self, name: str) -> Any:
        """A YAML file of the folder, parsed (once per version of the file)."""
        return parse_data_file(self.here / name)

    @hookimpl
    def plan_info(self) -> dict[str, Any]:
        return self.read("plan.yaml")

    @hookimpl
    def forms(self) -> list[Path]:
        return sorted((self.here / "forms").glob("*.xlsx"))

    @hookimpl
    def indicators(self) -> list[dict[str, Any]]:
        # Each definition carries the plan's source plus its own row reference (reports cite both).
        pack = self.read("indicators.yaml")
        base = pack.get("source") or {}
        return [{**d, "source": {**base, **(d.get("source") or {})}} for d in pack["indicators"]]

    @hookimpl
    def hamlets(self) -> list[Path]:
        return [self.here / "hamlets.csv"]

    def hooks(self) -> tuple[Callable[..., Any], ...]:
        """``plan_info, forms, indicators, hamlets``, bound to this folder, for a plugin module to expose."""
        return self.plan_info, self.forms, self.indicators, self.hamlets
