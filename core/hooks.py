"""The markers a plugin imports: ``from core import hookimpl``."""

import pluggy

PROJECT = "rasoat"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
