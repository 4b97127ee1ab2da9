"""Installed plugins (name, version, hooks) and the province plans they carry."""

from __future__ import annotations

from litestar import Request, Response, get
from rasoat.core.plugins import get_manager, plugin_infos, results_by_plugin
from rasoat.server.web.base import context, page


@get("/plugins", sync_to_thread=True)
def plugins(request: Request) -> Response:
    ctx = context(request)
    pm = ctx.settings.plugin_manager or get_manager()
    infos = sorted(plugin_infos(pm), key=lambda i: (i.builtin, i.name))
    plans = []
    for name, info in results_by_plugin(pm, "plan_info"):  # validated: core.payloads.PlanInfo
        plans.append(
            {
                "plugin": name,
                "name": (info.name_en if ctx.lang == "en" else None) or info.name,
                "other_name": info.name if ctx.lang == "en" else info.name_en,
                "issuer": info.issuer or "",
                "number": info.number or "",
                "date": info.date or "",
                "period": str(info.period or ""),
                "province": info.province_name or info.province_code or "",
                "hamlet_term": info.hamlet_term or "",
                "implements": [d.model_dump() for d in info.implements],
            }
        )
    return page(ctx, "plugins.html", infos=infos, plans=plans)


handlers = [plugins]
