"""Log in and log out. The login form is protected by a double-submit cookie (there is no session yet)."""

from __future__ import annotations

import secrets

import anyio
from litestar import Request, Response, get, post
from litestar.response import Redirect
from rasoat.core.problems import Problem
from rasoat.core.users import AuthError, authenticate
from rasoat.server.web import session as sessions
from rasoat.server.web.base import (
    SECURITY_HEADERS,
    LoginRequired,
    context,
    form_data,
    public_page,
    request_lang,
    safe_next,
    state,
)
from rasoat.server.web.i18n import t


def _login_page(
    request: Request, error: str | None = None, status: int = 200, username: str = "",
    retry_after: int | None = None,
) -> Response:
    st = state(request)
    token = secrets.token_urlsafe(24)
    secure = sessions.secure_request(request, st.settings.public_url)
    lang, _ = request_lang(request)
    notice = None
    if request.query_params.get("expired"):
        notice = t("login.expired", lang)
    elif request.query_params.get("msg") in ("logged_out", "password.reset_done"):
        notice = t(request.query_params["msg"], lang)
    page = public_page(
        request,
        "login.html",
        status=status,
        cookies=[sessions.cookie(sessions.LOGIN_CSRF_COOKIE, token, secure, max_age=3600)],
        login_csrf=token,
        next=safe_next(request.query_params.get("next")),
        error=error,
        notice=notice,
        username=username,
    )
    if retry_after is not None:  # a locked login says when to try again, as the API and OpenRosa do
        page.headers["Retry-After"] = str(retry_after)
    return page


@get("/login", sync_to_thread=True)
def login_form(request: Request) -> Response:
    try:
        context(request)
        return Redirect(path=safe_next(request.query_params.get("next")), status_code=303)
    except LoginRequired:
        return _login_page(request)


@post("/login")
async def login(request: Request) -> Response:
    st = state(request)
    form = await form_data(request, 20_000)
    lang, _ = request_lang(request)
    username = str(form.get("username") or "")[:128]
    if not sessions.csrf_ok(request.cookies.get(sessions.LOGIN_CSRF_COOKIE), form.get("csrf")):
        return _login_page(request, t("csrf", lang), 403, username)
    password = str(form.get("password") or "")
    ip = request.client.host if request.client else None
    try:
        user = await anyio.to_thread.run_sync(
            lambda: authenticate(st.store, username, password, ip, via="web")
        )
    except AuthError as exc:
        status = getattr(exc, "status", 401)
        key = "login.throttled" if status == 429 else "login.failed"
        message = t(key, lang) if status in (401, 429) else exc.message
        return _login_page(request, message, status, username, getattr(exc, "retry_after", None))
    old = request.cookies.get(sessions.COOKIE)
    def replace_session() -> tuple[str, sessions.Session]:
        sessions.end(st.store, old)
        return sessions.start(st.store, user)

    value, _sess = await anyio.to_thread.run_sync(replace_session)
    secure = sessions.secure_request(request, st.settings.public_url)
    return Redirect(
        path=safe_next(str(form.get("next") or "/")),
        status_code=303,
        cookies=[
            sessions.cookie(sessions.COOKIE, value, secure),
            sessions.expired_cookie(sessions.LOGIN_CSRF_COOKIE, secure),
        ],
        headers={"Cache-Control": "no-store"},
    )


@post("/logout")
async def logout(request: Request) -> Response:
    st = state(request)
    form = await form_data(request)
    ctx = await anyio.to_thread.run_sync(context, request)
    if not sessions.csrf_ok(ctx.sess.csrf, form.get("csrf")):
        raise Problem("request.csrf")
    await anyio.to_thread.run_sync(sessions.end, st.store, request.cookies.get(sessions.COOKIE))
    secure = sessions.secure_request(request, st.settings.public_url)
    return Redirect(
        path="/login?msg=logged_out",
        status_code=303,
        cookies=[sessions.expired_cookie(sessions.COOKIE, secure)],
        headers={**SECURITY_HEADERS},
    )


handlers = [login_form, login, logout]
