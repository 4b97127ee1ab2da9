"""The plugin manager: core's built-in plugins first, then the ``rasoat`` entry-point group.

Set ``RASOAT_TRACE_HOOKS=1`` to print every hook call and its results to stderr.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pluggy
from rasoat.core import __version__, hookspecs
from rasoat.core.config import load_settings
from rasoat.core.hooks import PROJECT
from rasoat.core.payloads import validate_answer
from rasoat.core.problems import Problem, Words

# Core's own behaviour, registered through the same hooks a province plugin uses.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "rasoat.core.builtin.national",
    "rasoat.core.commands.init",
    "rasoat.core.commands.plugins_cmd",
    "rasoat.core.commands.forms",
    "rasoat.core.commands.units",
    "rasoat.core.commands.rounds",
    "rasoat.core.commands.submissions",
    "rasoat.core.commands.export",
    "rasoat.core.commands.indicators",
    "rasoat.core.commands.migrate_store",
    "rasoat.core.commands.plugin_new",
    "rasoat.core.commands.users",
    "rasoat.core.commands.audit",
    "rasoat.core.commands.keys",
    "rasoat.core.commands.protection",
    "rasoat.core.commands.backup",
    "rasoat.core.commands.assessment",
    "rasoat.core.commands.management",
    "rasoat.core.commands.entities",
)


class PluginConflict(Problem):
    """Two plugins claim the same thing (a form id, an indicator id, …)."""


@dataclass(frozen=True)
class PluginInfo:
    name: str
    version: str | None
    hooks: list[str]
    builtin: bool


def build_manager(disabled: Iterable[str] = ()) -> pluggy.PluginManager:
    """A fresh manager with defaults and installed plugins, minus the ``disabled`` names."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    blocked = set(disabled)
    for name in blocked:
        pm.set_blocked(name)
    for modname in DEFAULT_PLUGINS:
        if modname not in blocked:
            pm.register(importlib.import_module(modname), name=modname)
    check_entry_point_names(blocked)
    pm.load_setuptools_entrypoints(PROJECT)
    if os.environ.get("RASOAT_TRACE_HOOKS"):
        pm.trace.root.setwriter(sys.stderr.write)
        pm.enable_tracing()
    return pm


def check_entry_point_names(blocked: Iterable[str] = ()) -> None:
    """Two installed distributions declaring one ``rasoat`` entry-point name: pluggy would load the first
    it meets and silently skip the other, so which province's plugin runs would depend on install order.
    Raise PluginConflict naming both distributions instead (a disabled name is not loaded, so no clash)."""
    blocked = set(blocked)
    owners: dict[str, str] = {}
    for ep in importlib.metadata.entry_points(group=PROJECT):
        if ep.name in blocked:
            continue
        dist = ep.dist.name if ep.dist is not None else ep.value
        other = owners.setdefault(ep.name, dist)
        if _normal(other) != _normal(dist):
            raise PluginConflict("plugin.declared_twice", other=other, dist=dist, plugin=ep.name)


def _normal(dist_name: str) -> str:
    return re.sub(r"[-_.]+", "-", dist_name).lower()  # PEP 503: rasoat_lang_son is rasoat-lang-son


_manager: pluggy.PluginManager | None = None


def get_manager() -> pluggy.PluginManager:
    """The process-wide manager, built once from the settings' disabled list."""
    global _manager
    if _manager is None:
        _manager = build_manager(load_settings().disabled_plugins)
    return _manager


def set_manager(pm: pluggy.PluginManager | None) -> None:
    """Replace (or with None, forget) the process-wide manager; tests and ``--data`` use this."""
    global _manager
    _manager = pm


def plugin_infos(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """Each registered plugin with its distribution version and the hooks it implements."""
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    infos = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # blocked
            continue
        dist = dists.get(id(plugin))
        version = _module_version(plugin) or (dist.version if dist is not None else None)  # package's first
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        infos.append(PluginInfo(name=name, version=version, hooks=hooks, builtin=name in DEFAULT_PLUGINS))
    return infos


def _module_version(plugin: Any) -> str | None:
    version = getattr(plugin, "__version__", None)
    if version:
        return str(version)

    return __version__ if getattr(plugin, "__name__", "").startswith("rasoat.") else None


def results_by_plugin(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
    """Call a hook on each plugin separately, so every answer keeps the name of the plugin that gave it,
    each answer validated as ``core.payloads.ANSWERS`` says (PluginAnswerError naming the plugin if not).

    Each call goes through ``pm.hook`` (a subset caller holding that one plugin), so pluggy's tracing
    (RASOAT_TRACE_HOOKS=1) and any hook wrapper see it as they see ``pm.hook.<name>(...)``."""
    impls = getattr(pm.hook, hook_name).get_hookimpls()
    out = []
    for impl in impls:
        others = [other.plugin for other in impls if other is not impl]
        for result in pm.subset_hook_caller(hook_name, remove_plugins=others)(**kwargs):
            out.append((impl.plugin_name, validate_answer(impl.plugin_name, hook_name, result)))
    return out


def unique_by_key(
    items: Iterable[tuple[str, Any]], key: str, what: str | Words
) -> dict[str, tuple[str, Any]]:
    """Map ``key`` of each item to (plugin name, item); a key claimed twice raises PluginConflict."""
    seen: dict[str, tuple[str, Any]] = {}
    for plugin_name, item in items:
        value = item[key] if isinstance(item, dict) else getattr(item, key)
        if value in seen and seen[value][0] != plugin_name:
            raise PluginConflict(
                "plugin.defined_twice", what=what, value=value, first=seen[value][0], plugin=plugin_name
            )
        seen[value] = (plugin_name, item)
    return seen
