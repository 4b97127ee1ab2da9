"""Officer accounts in the browser: an administrator or province manager creates, edits (role and units
picked from lists), disables and re-enables the accounts within their scope (``core.users.may_manage``)
and issues one-time password-reset links; the officer sets a new password on the link's page (no login);
every officer changes their own password. Each change is audited by ``core.users``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect
from rasoat.core import scope
from rasoat.core.models import User
from rasoat.core.problems import Problem
from rasoat.core.users import (
    ResetLinkError,
    UserError,
    check_password_policy,
    create_user,
    disable_user,
    enable_user,
    get_officer,
    issue_reset_link,
    manageable_officers,
    parse_role,
    require_manages,
    reset_link_user,
    roles_managed_by,
    set_password,
    set_role,
    use_reset_link,
    verify_password,
)
from rasoat.server.web import scoped
from rasoat.server.web import session as sessions
from rasoat.server.web.base import (
    Ctx,
    Visitor,
    allowed,
    form_list,
    page,
    public_page,
    redirect,
    unit_name,
)

MAX_ACCOUNT_FORM = 50_000


def _accounts_page(ctx: Ctx, status: int = 200, error: Problem | None = None,
                   values: dict[str, Any] | None = None) -> Response:
    return page(
        ctx, "accounts.html", status=status,
        accounts=manageable_officers(ctx.store, ctx.user),
        roles=[r.value for r in roles_managed_by(ctx.user)],
        unit_choices=scoped.unit_choices(ctx),
        error=error, values=values or {},
    )


MANAGE = [allowed(scope.MANAGE_OFFICERS)]
FORM = {"max_form": MAX_ACCOUNT_FORM}  # the posted form's size limit (base.provide_posted)


@get("/accounts", guards=MANAGE, sync_to_thread=True)
def accounts(ctx: NamedDependency[Ctx]) -> Response:
    return _accounts_page(ctx)


@post("/accounts", guards=MANAGE, opt=FORM, sync_to_thread=True)
def account_create(ctx: NamedDependency[Ctx], posted: NamedDependency[FormMultiDict]) -> Response:
    username = str(posted.get("username") or "").strip()[:64]
    display_name = str(posted.get("display_name") or "").strip()[:200]
    role_value = str(posted.get("role") or "")
    units = form_list(posted, "units")
    password = str(posted.get("password") or "")  # never sent back into the page
    values = {"username": username, "display_name": display_name, "role": role_value, "units": units}
    try:
        role = parse_role(role_value or "?")
        require_manages(ctx.user, role, units)
        check_password_policy(password)
        create_user(ctx.store, username, password, role, units, display_name=display_name,
                    actor=ctx.actor)
    except (UserError, scope.ScopeError) as exc:
        status = 403 if isinstance(exc, scope.ScopeError) else 400
        return _accounts_page(ctx, status, exc, values)
    return redirect(ctx, "/accounts", "accounts.created")


@post("/accounts/{username:str}/active", guards=MANAGE, opt=FORM, sync_to_thread=True)
def account_active(
    ctx: NamedDependency[Ctx], posted: NamedDependency[FormMultiDict], username: FromPath[str]
) -> Response:
    """Disable (``active=0``) or re-enable (``active=1``) an account in scope; a disabled officer's
    next request finds no session (``base.context`` checks ``active`` every time)."""
    active = str(posted.get("active") or "") == "1"
    target = get_officer(ctx.store, username)
    if target.id == ctx.user.id:
        raise scope.ScopeError("scope.not_own_disable")
    require_manages(ctx.user, target.role, target.unit_codes)
    (enable_user if active else disable_user)(ctx.store, target.username, actor=ctx.actor)
    return redirect(ctx, "/accounts", "accounts.enabled" if active else "accounts.disabled")


def _managed(ctx: Ctx, username: str) -> User:
    """An account the officer may manage (never their own: that is /account/password)."""
    target = get_officer(ctx.store, username)
    if target.id == ctx.user.id:
        raise scope.ScopeError("scope.not_own_account")
    require_manages(ctx.user, target.role, target.unit_codes)
    return target


def _account_page(ctx: Ctx, target: User, status: int = 200, error: Problem | None = None,
                  values: dict[str, Any] | None = None, link: tuple[str, float] | None = None) -> Response:
    choices = scoped.unit_choices(ctx)
    listed = {code for code, _ in choices}  # the account's own units stay visible even when not listed
    choices += [(code, unit_name(code)) for code in target.unit_codes if code not in listed]
    return page(
        ctx, "account.html", status=status, target=target,
        roles=[r.value for r in roles_managed_by(ctx.user)],
        unit_choices=choices,
        error=error,
        values=values or {"role": target.role.value, "units": list(target.unit_codes)},
        reset_link=link[0] if link else None,
        reset_expires=datetime.fromtimestamp(link[1], UTC) if link else None,
    )


@get("/accounts/{username:str}", guards=MANAGE, sync_to_thread=True)
def account_edit_form(ctx: NamedDependency[Ctx], username: FromPath[str]) -> Response:
    return _account_page(ctx, _managed(ctx, username))


@post("/accounts/{username:str}", guards=MANAGE, opt=FORM, sync_to_thread=True)
def account_edit(
    ctx: NamedDependency[Ctx], posted: NamedDependency[FormMultiDict], username: FromPath[str]
) -> Response:
    """Change an account's role and units: both the account as it is and as it becomes must be within
    the editor's scope (a province manager never makes an administrator or reaches another province)."""
    role_value = str(posted.get("role") or "")
    units = form_list(posted, "units")
    target = _managed(ctx, username)
    try:
        role = parse_role(role_value or "?")
        require_manages(ctx.user, role, units)
        set_role(ctx.store, target.username, role, units, actor=ctx.actor)
    except (UserError, scope.ScopeError) as exc:
        status = 403 if isinstance(exc, scope.ScopeError) else 400
        return _account_page(ctx, target, status, exc,
                             {"role": role_value, "units": units})
    return redirect(ctx, "/accounts", "accounts.saved")


@post("/accounts/{username:str}/reset-link", guards=MANAGE, opt=FORM, sync_to_thread=True)
def account_reset_link(
    ctx: NamedDependency[Ctx], posted: NamedDependency[FormMultiDict], username: FromPath[str]
) -> Response:
    """Issue a one-time password-reset link and show it once (the store keeps only its hash)."""
    target = _managed(ctx, username)
    token, expires = issue_reset_link(ctx.store, target.username, actor=ctx.actor)
    base = (ctx.settings.public_url or str(ctx.request.base_url)).rstrip("/")
    return _account_page(ctx, target, link=(f"{base}/password-reset/{token}", expires))


def _reset_page(visitor: Visitor, token: str, status: int = 200, error: Problem | str | None = None,
                who: User | None = None) -> Response:
    """The link's page, for someone not logged in: a double-submit cookie guards the form (as login's)."""
    csrf, csrf_cookie = visitor.csrf_cookie()
    return public_page(visitor.request, "password_reset.html", status=status, cookies=[csrf_cookie],
                       login_csrf=csrf, token=token, who=who, error=error)


@get("/password-reset/{token:str}", sync_to_thread=True)
def password_reset_form(visitor: NamedDependency[Visitor], token: FromPath[str]) -> Response:
    try:
        who = reset_link_user(visitor.store, token)
    except ResetLinkError as exc:
        return _reset_page(visitor, token, 410, exc)
    return _reset_page(visitor, token, who=who)


@post("/password-reset/{token:str}", opt=FORM, sync_to_thread=True)
def password_reset(
    visitor: NamedDependency[Visitor], unchecked_form: NamedDependency[FormMultiDict], token: FromPath[str]
) -> Response:
    new, repeat = str(unchecked_form.get("new") or ""), str(unchecked_form.get("repeat") or "")
    if not visitor.csrf_ok(unchecked_form):
        return _reset_page(visitor, token, 403, visitor.t("csrf"))
    try:
        who = reset_link_user(visitor.store, token)
    except ResetLinkError as exc:
        return _reset_page(visitor, token, 410, exc)
    try:
        if new != repeat:
            raise UserError("user.password_mismatch")
        use_reset_link(visitor.store, token, new)
    except ResetLinkError as exc:
        return _reset_page(visitor, token, 410, exc)
    except UserError as exc:
        return _reset_page(visitor, token, 400, exc, who)
    return Redirect(path="/login?msg=password.reset_done", status_code=303,
                    headers={"Cache-Control": "no-store"})


@get("/account/password", sync_to_thread=True)
def password_form(ctx: NamedDependency[Ctx]) -> Response:
    return page(ctx, "password.html", error=None)


@post("/account/password", opt=FORM, sync_to_thread=True)
def password_change(ctx: NamedDependency[Ctx], posted: NamedDependency[FormMultiDict]) -> Response:
    current = str(posted.get("current") or "")
    new = str(posted.get("new") or "")
    repeat = str(posted.get("repeat") or "")
    try:
        if not verify_password(ctx.user.password_hash, current):
            raise UserError("user.wrong_password")
        if new != repeat:
            raise UserError("user.password_mismatch")
        check_password_policy(new)
        updated = set_password(ctx.store, ctx.user.username, new, actor=ctx.actor)
    except UserError as exc:
        return page(ctx, "password.html", status=400, error=exc)
    # every session of the old password ended, this one too: the officer goes on in a new one
    sessions.end(ctx.store, ctx.request.cookies.get(sessions.COOKIE))
    value, _ = sessions.start(ctx.store, updated)
    response = redirect(ctx, "/", "password.changed")
    return sessions.set_cookies(response, sessions.cookie(sessions.COOKIE, value, ctx.secure))


handlers = [accounts, account_create, account_active, account_edit_form, account_edit, account_reset_link,
            password_reset_form, password_reset, password_form, password_change]
