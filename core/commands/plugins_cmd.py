"""``rasoat plugins``: every loaded plugin with its version, hooks, forms and indicators."""

from __future__ import annotations

import argparse
from typing import Any

from rasoat.core import hookimpl
from rasoat.core.commands.common import JSON_HELP, CommandError, add_data_option, print_json, print_table
from rasoat.core.indicators.loading import IndicatorError, raw_definitions
from rasoat.core.plugins import get_manager, plugin_infos, results_by_plugin


def describe_plugins(pm: Any = None) -> list[dict[str, Any]]:
    """Plugins as dicts: name, version, builtin, hooks, and the form files and indicator ids they add
    (of ``pm``, else the loaded plugins)."""
    pm = pm or get_manager()
    forms: dict[str, list[str]] = {}
    for name, paths in results_by_plugin(pm, "forms"):
        forms.setdefault(name, []).extend(_form_name(p) for p in paths)
    indicators: dict[str, list[str]] = {}
    for name, answer in results_by_plugin(pm, "indicators"):
        indicators.setdefault(name, []).extend(_indicator_ids(name, answer))
    return [
        {
            "name": info.name,
            "version": info.version,
            "builtin": info.builtin,
            "hooks": info.hooks,
            "forms": forms.get(info.name, []),
            "indicators": indicators.get(info.name, []),
        }
        for info in plugin_infos(pm)
    ]


def _form_name(item: Any) -> str:
    from pathlib import Path

    return Path(str(item)).stem


def _indicator_ids(plugin: str, answer: Any) -> list[str]:
    """Ids of what a plugin's ``indicators`` hook gives, read the way the engine reads it (a YAML/JSON path,
    a pack, models or dicts); an override shows the id it replaces."""

    try:
        definitions = raw_definitions(answer)
    except IndicatorError as exc:
        raise CommandError("command.plugin_refused", plugin=plugin, problem=exc) from exc
    return [str(d.get("id") or d.get("overrides")) for d in definitions]


def run(args: argparse.Namespace) -> int:
    plugins = describe_plugins()
    if args.json:
        print_json(plugins)
        return 0
    rows = [
        [p["name"], p["version"] or "", ", ".join(p["hooks"]), len(p["forms"]), len(p["indicators"])]
        for p in plugins
    ]
    print_table(["Plugin", "Phiên bản / Version", "Hooks", "Biểu mẫu / Forms", "Chỉ tiêu / Indicators"], rows)
    return 0


@hookimpl
def register_commands(subparsers: Any) -> None:
    parser = subparsers.add_parser("plugins", help="liệt kê plugin / list loaded plugins")
    parser.add_argument("--json", action="store_true", help=JSON_HELP)
    add_data_option(parser)  # the data directory's rasoat.toml may disable plugins
    parser.set_defaults(func=run)
