"""Officer accounts in the browser: an administrator or province manager creates, disables and re-enables
the accounts within their scope (``core.users.may_manage``), role and units picked from lists; every
officer changes their own password. Each change is audited by ``core.users``."""

from __future__ import annotations

from typing import Any

import anyio
from litestar import Request, Response, get, post
from rasoat.core import scope
from rasoat.core.users import (
    UserError,
    check_password_policy,
    create_user,
    disable_user,
    enable_user,
    get_officer,
    manageable_officers,
    parse_role,
    require_manages,
    roles_managed_by,
    set_password,
    verify_password,
)
from rasoat.server.web import scoped
from rasoat.server.web.base import Ctx, check_csrf, context, form_data, form_list, page, redirect

MAX_ACCOUNT_FORM = 50_000


def _accounts_page(ctx: Ctx, status: int = 200, error: str | None = None,
                   values: dict[str, Any] | None = None) -> Response:
    return page(
        ctx, "accounts.html", status=status,
        accounts=manageable_officers(ctx.store, ctx.user),
        roles=[r.value for r in roles_managed_by(ctx.user)],
        unit_choices=scoped.unit_choices(ctx),
        error=error, values=values or {},
    )


@get("/accounts", sync_to_thread=True)
def accounts(request: Request) -> Response:
    ctx = context(request)
    ctx.require(scope.MANAGE_OFFICERS)
    return _accounts_page(ctx)


@post("/accounts")
async def account_create(request: Request) -> Response:
    form = await form_data(request, MAX_ACCOUNT_FORM)
    ctx = await anyio.to_thread.run_sync(context, request)
    check_csrf(ctx, form)
    ctx.require(scope.MANAGE_OFFICERS)
    username = str(form.get("username") or "").strip()[:64]
    display_name = str(form.get("display_name") or "").strip()[:200]
    role_value = str(form.get("role") or "")
    units = form_list(form, "units")
    password = str(form.get("password") or "")  # never sent back into the page
    values = {"username": username, "display_name": display_name, "role": role_value, "units": units}

    def run() -> Response:
        try:
            role = parse_role(role_value or "?")
            require_manages(ctx.user, role, units)
            check_password_policy(password)
            create_user(ctx.store, username, password, role, units, display_name=display_name,
                        actor=ctx.actor)
        except (UserError, scope.ScopeError) as exc:
            status = 403 if isinstance(exc, scope.ScopeError) else 400
            return _accounts_page(ctx, status, getattr(exc, "message", str(exc)), values)
        return redirect(ctx, "/accounts", "accounts.created")

    return await anyio.to_thread.run_sync(run)


@post("/accounts/{username:str}/active")
async def account_active(request: Request, username: str) -> Response:
    """Disable (``active=0``) or re-enable (``active=1``) an account in scope; a disabled officer's
    next request finds no session (``base.context`` checks ``active`` every time)."""
    form = await form_data(request, MAX_ACCOUNT_FORM)
    ctx = await anyio.to_thread.run_sync(context, request)
    check_csrf(ctx, form)
    ctx.require(scope.MANAGE_OFFICERS)
    active = str(form.get("active") or "") == "1"

    def run() -> Response:
        target = get_officer(ctx.store, username)
        if target.id == ctx.user.id:
            raise scope.ScopeError("Không thể tự khoá tài khoản của mình / You cannot disable yourself")
        require_manages(ctx.user, target.role, target.unit_codes)
        (enable_user if active else disable_user)(ctx.store, target.username, actor=ctx.actor)
        return redirect(ctx, "/accounts", "accounts.enabled" if active else "accounts.disabled")

    return await anyio.to_thread.run_sync(run)


@get("/account/password", sync_to_thread=True)
def password_form(request: Request) -> Response:
    return page(context(request), "password.html", error=None)


@post("/account/password")
async def password_change(request: Request) -> Response:
    form = await form_data(request, MAX_ACCOUNT_FORM)
    ctx = await anyio.to_thread.run_sync(context, request)
    check_csrf(ctx, form)
    current = str(form.get("current") or "")
    new = str(form.get("new") or "")
    repeat = str(form.get("repeat") or "")

    def run() -> Response:
        try:
            if not verify_password(ctx.user.password_hash, current):
                raise UserError(ctx.t("password.wrong_current"))
            if new != repeat:
                raise UserError(ctx.t("password.mismatch"))
            check_password_policy(new)
            set_password(ctx.store, ctx.user.username, new, actor=ctx.actor)
        except UserError as exc:
            return page(ctx, "password.html", status=400, error=str(exc))
        return redirect(ctx, "/", "password.changed")

    return await anyio.to_thread.run_sync(run)


handlers = [accounts, account_create, account_active, password_form, password_change]
