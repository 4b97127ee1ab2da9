"""mobile_export's commands, registered through the ``rasoat`` entry-point group like any plugin."""

from __future__ import annotations

from typing import Any

from rasoat.core import hookimpl
from rasoat.mobile_export.commands import register


@hookimpl
def register_commands(subparsers: Any) -> None:
    """``rasoat qr``, ``qr-sheet``, ``bundle`` and ``import-instances``."""

    register(subparsers)
