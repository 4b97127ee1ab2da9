"""Installed plugins (name, version, hooks) and the province plans they carry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litestar import Request, Response, get
from rasoat.core.plugins import get_manager, plugin_infos, results_by_plugin
from rasoat.server.web.base import context, page


def _period(value: Any) -> str:
    if isinstance(value, Mapping):
        return f"{value.get('from', '')}–{value.get('to', '')}".strip("–")
    return str(value or "")


@get("/plugins", sync_to_thread=True)
def plugins(request: Request) -> Response:
    ctx = context(request)
    pm = ctx.settings.plugin_manager or get_manager()
    infos = sorted(plugin_infos(pm), key=lambda i: (i.builtin, i.name))
    plans = []
    for name, info in results_by_plugin(pm, "plan_info"):
        if not isinstance(info, Mapping):
            continue
        plans.append(
            {
                "plugin": name,
                "name": (info.get("name_en") if ctx.lang == "en" else None) or info.get("name") or "",
                "other_name": info.get("name") if ctx.lang == "en" else info.get("name_en"),
                "issuer": info.get("issuer") or "",
                "number": info.get("number") or "",
                "date": info.get("date") or "",
                "period": _period(info.get("period")),
                "province": info.get("province_name") or info.get("province_code") or "",
                "hamlet_term": info.get("hamlet_term") or "",
                "implements": [d for d in info.get("implements") or [] if isinstance(d, Mapping)],
            }
        )
    return page(ctx, "plugins.html", infos=infos, plans=plans)


handlers = [plugins]
