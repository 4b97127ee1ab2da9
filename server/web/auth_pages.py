"""Log in and log out. The login form is protected by a double-submit cookie (there is no session yet)."""

from __future__ import annotations

from typing import Annotated

from litestar import Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter
from litestar.response import Redirect
from rasoat.core.problems import Problem
from rasoat.core.users import AuthError, authenticate
from rasoat.server.web import session as sessions
from rasoat.server.web.base import SECURITY_HEADERS, Ctx, Visitor, public_page, safe_next

LOGIN_FORM = {"max_form": 20_000}  # the posted form's size limit (base.provide_form)


def _login_page(
    visitor: Visitor, error: str | Problem | None = None, status: int = 200, username: str = "",
    retry_after: int | None = None, next_path: str | None = None, notice: str | None = None,
) -> Response:
    token, csrf_cookie = visitor.csrf_cookie()
    page = public_page(
        visitor.request,
        "login.html",
        status=status,
        cookies=[csrf_cookie],
        login_csrf=token,
        next=safe_next(next_path),
        error=error,
        notice=notice,
        username=username,
    )
    if retry_after is not None:  # a locked login says when to try again, as the API and OpenRosa do
        page.headers["Retry-After"] = str(retry_after)
    return page


NOTICES = ("logged_out", "password.reset_done")  # the ``msg`` a redirect to the login page may carry


@get("/login", sync_to_thread=False)
def login_form(
    visitor: NamedDependency[Visitor], logged_in: NamedDependency[Ctx | None],
    next_path: Annotated[str | None, QueryParameter(name="next", max_length=2000)] = None,
    expired: FromQuery[bool] = False, msg: FromQuery[str] = "",
) -> Response:
    """The login page; an officer already logged in goes on to ``next`` (a path of this site only)."""
    if logged_in is not None:
        return Redirect(path=safe_next(next_path), status_code=303)
    notice = visitor.t("login.expired") if expired else visitor.t(msg) if msg in NOTICES else None
    return _login_page(visitor, next_path=next_path, notice=notice)


@post("/login", opt=LOGIN_FORM, sync_to_thread=True)
def login(
    visitor: NamedDependency[Visitor], unchecked_form: NamedDependency[FormMultiDict]
) -> Response:
    """No session yet: the form's token must match the login page's double-submit cookie."""
    request = visitor.request
    username = str(unchecked_form.get("username") or "")[:128]
    next_path = str(unchecked_form.get("next") or "/")
    if not visitor.csrf_ok(unchecked_form):
        return _login_page(visitor, visitor.t("csrf"), 403, username, next_path=next_path)
    password = str(unchecked_form.get("password") or "")
    ip = request.client.host if request.client else None
    try:
        user = authenticate(visitor.store, username, password, ip, via="web")
    except AuthError as exc:
        status = getattr(exc, "status", 401)
        key = "login.throttled" if status == 429 else "login.failed"
        message: str | Problem = visitor.t(key) if status in (401, 429) else exc
        return _login_page(visitor, message, status, username, getattr(exc, "retry_after", None), next_path)
    sessions.end(visitor.store, request.cookies.get(sessions.COOKIE))
    value, _sess = sessions.start(visitor.store, user)
    return Redirect(
        path=safe_next(next_path),
        status_code=303,
        cookies=[
            sessions.cookie(sessions.COOKIE, value, visitor.secure),
            sessions.expired_cookie(sessions.LOGIN_CSRF_COOKIE, visitor.secure),
        ],
        headers={"Cache-Control": "no-store"},
    )


@post("/logout", sync_to_thread=True)
def logout(ctx: NamedDependency[Ctx], posted: NamedDependency[FormMultiDict]) -> Response:
    """(``posted``: logging out is a POST whose CSRF token is checked.)"""
    sessions.end(ctx.store, ctx.request.cookies.get(sessions.COOKIE))
    return Redirect(
        path="/login?msg=logged_out",
        status_code=303,
        cookies=[sessions.expired_cookie(sessions.COOKIE, ctx.secure)],
        headers={**SECURITY_HEADERS},
    )


handlers = [login_form, login, logout]
