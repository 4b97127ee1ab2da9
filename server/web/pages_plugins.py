"""Installed plugins, written for officers: which plan each carries (issuer, number, date, period,
province), the forms and indicators it brings by their titles; plugin names, versions and hooks are
technical details, folded away."""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from litestar.di import NamedDependency
from rasoat.core.commands.plugins_cmd import describe_plugins
from rasoat.core.indicators.loading import collect
from rasoat.core.plugins import get_manager, results_by_plugin
from rasoat.server.web.base import Ctx, page


def _plan(ctx: Ctx, info: Any) -> dict[str, Any]:
    """A ``core.payloads.PlanInfo`` as the page shows it, in the page's language."""
    return {
        "name": (info.name_en if ctx.lang == "en" else None) or info.name,
        "issuer": info.issuer or "",
        "number": str(info.number or ""),
        "date": str(info.date or ""),
        "period": str(info.period or ""),
        "province": info.province_name or str(info.province_code or ""),
        "hamlet_term": info.hamlet_term or "",
        "implements": [d.model_dump() for d in info.implements],
    }


@get("/plugins", sync_to_thread=True)
def plugins(ctx: NamedDependency[Ctx]) -> Response:
    pm = ctx.settings.plugin_manager or get_manager()
    plans = {name: _plan(ctx, info) for name, info in results_by_plugin(pm, "plan_info")}
    indicators = {i.id: (i.name_en if ctx.lang == "en" else i.name_vi) for i in collect(pm)}
    titles = {f.form_id: f.title or f.form_id for f in ctx.store.list_forms()}
    described = describe_plugins(pm)
    cards = [
        {
            "plugin": p["name"],
            "version": p["version"],
            "hooks": p["hooks"],
            "builtin": p["builtin"],
            "plan": plans.get(p["name"]),
            "forms": [(titles.get(code), code) for code in p["forms"]],  # no title: not yet published
            "indicators": [indicators.get(code, code) for code in p["indicators"]],
        }
        for p in described
        if p["name"] in plans or p["forms"] or p["indicators"]
    ]
    cards.sort(key=lambda c: (c["plan"] is None, c["builtin"], c["plan"]["province"] if c["plan"] else ""))
    infos = sorted(described, key=lambda p: (p["builtin"], p["name"]))
    return page(ctx, "plugins.html", cards=cards, infos=infos)


handlers = [plugins]
