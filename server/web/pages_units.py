"""Unit lists (/units): a commune or province officer downloads a register's template (hamlets, schools,
enterprises, industrial zones), uploads it filled, sees every problem with its row and what was typed (the
file is refused whole), or a preview of what changes per commune, and confirms it (``core.unit_lists``).

Between preview and confirm the checked rows wait in the store's kv for an hour under a random key bound
to the officer, so confirming applies exactly what was previewed, from any server process."""

from __future__ import annotations

import secrets
from dataclasses import asdict
from typing import Any

import anyio
from litestar import Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from litestar.params import FromPath
from rasoat.core import scope, unit_lists
from rasoat.core.problems import Problem
from rasoat.core.unit_lists import KINDS, Parsed, Preview, UnitListError
from rasoat.server.web.base import Ctx, allowed, page, redirect

MAX_LIST_UPLOAD = 5_000_000
MANAGE = [allowed(scope.MANAGE_UNIT_LISTS)]
PENDING_NS = "unit_lists_pending"
PENDING_SECONDS = 3600
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _scope_codes(ctx: Ctx) -> list[str] | None:
    """The officer's units for the checks (None: an administrator, everything)."""
    return None if scope.allowed_units(ctx.user) is None else list(ctx.user.unit_codes)


def _units_page(ctx: Ctx, status: int = 200, **extra: Any) -> Response:
    registry = unit_lists.units_for(ctx.store)
    codes = _scope_codes(ctx)
    communes = [] if codes is None else sorted({r["name"] for r in registry.choice_rows("commune", codes)})
    lists = _transpose(unit_lists.list_status(ctx.store, communes[:200]))
    # a province's communes without any list yet are one line, not a screen of "0 · chưa có" rows each
    without = [c for c, by_kind in lists.items() if not any(info["count"] for info in by_kind.values())]
    values: dict[str, Any] = {
        "kinds": list(KINDS.values()),
        "chosen": "hamlets",
        "problems": None,
        "preview": None,
        "token": "",
        # an administrator's page would list 3,321 communes: it shows the versions loaded instead
        "lists": {c: by_kind for c, by_kind in lists.items() if c not in without},
        "without": without,
        "commune_names": {c: registry.require(c).name for c in communes[:200]},
        "versions": {k: list(reversed(unit_lists.versions(ctx.store, k)))[:5] for k in KINDS},
    }
    values.update(extra)
    return page(ctx, "units.html", status=status, **values)


def _transpose(by_kind: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for kind, by_commune in by_kind.items():
        for commune, info in by_commune.items():
            out.setdefault(commune, {})[kind] = info
    return out


@get("/units", guards=MANAGE, sync_to_thread=True)
def units_page(ctx: NamedDependency[Ctx]) -> Response:
    return _units_page(ctx)


@get("/units/template/{kind:str}", guards=MANAGE, sync_to_thread=True)
def units_template(kind: FromPath[str]) -> Response:
    name, _, ext = kind.partition(".")
    if name not in KINDS or ext not in ("xlsx", "csv"):
        raise Problem("web.no_template")
    return Response(
        content=unit_lists.template(name, ext),
        media_type=XLSX if ext == "xlsx" else "text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="mau-{name}.{ext}"',
                 "Cache-Control": "no-store"},
    )


@post("/units/preview", guards=MANAGE, opt={"max_form": MAX_LIST_UPLOAD})
async def units_preview(ctx: NamedDependency[Ctx], posted: NamedDependency[FormMultiDict]) -> Response:
    kind = str(posted.get("kind") or "")
    upload = posted.get("file")
    data = await upload.read() if upload is not None and hasattr(upload, "read") else b""
    filename = str(getattr(upload, "filename", "") or "")

    def run() -> Response:
        if kind not in KINDS:
            raise Problem("web.choose_list")
        if not data:
            problems = [unit_lists.Refusal(None, Problem("unit_list.no_file"))]
            return _units_page(ctx, 400, chosen=kind, problems=problems)
        try:
            pv = unit_lists.preview(ctx.store, unit_lists.read_file(ctx.store, kind, data, filename,
                                                                     _scope_codes(ctx)))
        except UnitListError as exc:
            return _units_page(ctx, 422, chosen=kind, problems=exc.problems, filename=filename)
        token = secrets.token_urlsafe(24)
        ctx.store.kv_put(PENDING_NS, token, {"actor": ctx.actor, "base_version": pv.base_version,
                                             "parsed": asdict(pv.parsed)}, ttl_seconds=PENDING_SECONDS)
        return _units_page(ctx, chosen=kind, preview=pv, token=token)

    return await anyio.to_thread.run_sync(run)


@post("/units/apply", guards=MANAGE, sync_to_thread=True)
def units_apply(ctx: NamedDependency[Ctx], posted: NamedDependency[FormMultiDict]) -> Response:
    token = str(posted.get("token") or "")
    pending = ctx.store.kv_get(PENDING_NS, token) if token else None
    if pending is None or pending.get("actor") != ctx.actor:
        raise Problem("web.preview_expired")
    parsed = Parsed(**pending["parsed"])
    try:
        # the preview is computed again (same rows, same base version) so what is applied is what was
        # shown; a register changed meanwhile is refused by apply
        pv = unit_lists.preview(ctx.store, parsed)
        pv = Preview(parsed, pending["base_version"], pv.changes)
        unit_lists.apply(ctx.store, pv, ctx.actor)
    except UnitListError as exc:
        return _units_page(ctx, 409, chosen=parsed.kind, problems=exc.problems)
    ctx.store.kv_delete(PENDING_NS, token)
    return redirect(ctx, "/units", "units.applied")


handlers = [units_page, units_template, units_preview, units_apply]
