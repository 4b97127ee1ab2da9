"""What every officer page shares: who is asking (session → user), the language, CSRF, rendering, errors.

Handlers name what they need and the web router's dependencies (``WEB_DEPENDENCIES``) hand it over:
``ctx`` the logged-in officer (no session: the login page, with ``?next=``), ``posted`` the form with its
CSRF token checked against the session, and for the pages that need no session, ``visitor``,
``unchecked_form`` (they check a double-submit cookie) and ``logged_in`` (the officer or None). A role
is a guard, ``guards=[allowed(scope.X)]`` (refused: the 403 page). Handlers that read the store are sync
(``sync_to_thread=True``: litestar runs them in a worker thread), POST handlers too, the dependencies
having read the form; only those taking uploaded files are async, to read the files, then do their work
in a thread. Every page goes through ``page`` so the security headers, the language cookie and the
common template context are the same everywhere.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import anyio
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, FormMultiDict
from litestar.di import NamedDependency, Provide
from litestar.exceptions import ClientException, HTTPException
from litestar.handlers.base import BaseRouteHandler
from litestar.response import Redirect, Template
from rasoat.core import scope
from rasoat.core.models import User
from rasoat.core.plugins import get_manager, results_by_plugin
from rasoat.core.problems import Problem, said
from rasoat.core.review import queue_count
from rasoat.core.storage.base import Store
from rasoat.core.units import get_units
from rasoat.server.errors import disk_full, disk_full_problem, http_problem, too_large
from rasoat.server.web import session as sessions
from rasoat.server.web.i18n import DEFAULT_LANG, LABELS, LANG_COOKIE, norm_lang, t

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
BUILTIN = "rasoat.core.builtin"  # the national pack's plugins, named so on the pages
log = logging.getLogger("rasoat.web")
MAX_FORM_BODY = 1_000_000  # an ordinary form post
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # pages hold personal data: never in a shared cache or the back button's
}

# Navigation: (path, label key, permission needed to see the entry)
NAV: list[tuple[str, str, str | None]] = [
    ("/", "nav.overview", scope.VIEW),
    ("/indicators", "nav.indicators", scope.VIEW),
    ("/review", "nav.review", scope.REVIEW),
    ("/submissions", "nav.submissions", scope.VIEW),
    ("/rounds", "nav.rounds", scope.VIEW),
    ("/forms", "nav.forms", scope.VIEW),
    ("/assessment", "nav.assessment", scope.VIEW),
    ("/management", "nav.management", scope.VIEW_PERSONAL),
    ("/persons", "nav.persons", scope.VIEW),
    ("/collectors", "nav.collectors", scope.MANAGE_COLLECTORS),
    ("/exports", "nav.exports", scope.EXPORT),
    ("/plugins", "nav.plugins", scope.VIEW),
    ("/audit", "nav.audit", scope.VIEW_AUDIT),
    ("/accounts", "nav.accounts", scope.MANAGE_OFFICERS),
    ("/units", "nav.units", scope.MANAGE_UNIT_LISTS),
]


class LoginRequired(Exception):
    """No live session: the handler answers with a redirect to the login page."""

    def __init__(self, next_url: str = "/", expired: bool = False) -> None:
        super().__init__(next_url)
        self.next_url = next_url
        self.expired = expired


@dataclass
class Visitor:
    """One request to a page that needs no session (logging in, a password-reset link). With no session
    there is no session CSRF token, so such a page's form is guarded by a double-submit cookie."""

    request: Request
    store: Store
    settings: Any  # server.app.ServerSettings
    lang: str

    def t(self, key: str) -> str:
        return t(key, self.lang)

    @property
    def secure(self) -> bool:
        """On HTTPS: the cookies set for this browser are then Secure."""
        return sessions.secure_request(self.request, self.settings.public_url)

    def csrf_cookie(self) -> tuple[str, Cookie]:
        """A new double-submit token: the form's hidden field and the cookie it must match."""
        token = secrets.token_urlsafe(24)
        return token, sessions.cookie(sessions.LOGIN_CSRF_COOKIE, token, self.secure, max_age=3600)

    def csrf_ok(self, form: FormMultiDict) -> bool:
        return sessions.csrf_ok(self.request.cookies.get(sessions.LOGIN_CSRF_COOKIE), form.get("csrf"))


@dataclass
class Ctx(Visitor):
    """One request from a logged-in officer."""

    user: User
    sess: sessions.Session
    extra_cookies: list[Cookie] = field(default_factory=list)
    # what this request has already computed (one page may show the same figures twice: the overview's
    # pledge block and its off-target table read one evaluation)
    memo: dict[tuple[Any, ...], Any] = field(default_factory=dict)

    @property
    def actor(self) -> str:
        return self.user.username

    def can(self, permission: str) -> bool:
        return scope.can(self.user, permission)


def state(request: Request) -> Any:
    return request.app.state["rasoat"]


def request_lang(request: Request) -> tuple[str, list[Cookie]]:
    """``?lang=`` wins and is remembered in a cookie; else the cookie; else Vietnamese."""
    asked = norm_lang(request.query_params.get("lang"))
    if asked:
        return asked, [
            Cookie(key=LANG_COOKIE, value=asked, path="/", max_age=365 * 86400, samesite="lax", httponly=True)
        ]
    return norm_lang(request.cookies.get(LANG_COOKIE)) or DEFAULT_LANG, []


def current_path(request: Request) -> str:
    """The path and query of this request without ``lang``/``msg`` (where to come back after login)."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("lang", "msg")]
    query = urlencode(params)
    return request.url.path + (f"?{query}" if query else "")


def safe_next(value: str | None) -> str:
    """Only local paths: never let ``next`` send an officer to another site."""
    value = (value or "").strip()
    if not value.startswith("/") or value.startswith("//") or "\\" in value or "\n" in value or "\r" in value:
        return "/"
    return value


def context(request: Request) -> Ctx:
    """The logged-in officer of this request, else ``LoginRequired``."""
    st = state(request)
    lang, cookies = request_lang(request)
    sess = sessions.load(st.store, request.cookies.get(sessions.COOKIE))
    next_url = current_path(request) if request.method == "GET" else "/"
    if sess is None:
        raise LoginRequired(next_url, expired=bool(request.cookies.get(sessions.COOKIE)))
    user = st.store.get_user(sess.user_id)
    if user is None or not user.active or sessions.ended_for(sess, user) or not scope.can(user, scope.VIEW):
        sessions.end(st.store, request.cookies.get(sessions.COOKIE))
        raise LoginRequired(next_url, expired=True)
    return Ctx(
        request=request,
        store=st.store,
        settings=st.settings,
        user=user,
        sess=sess,
        lang=lang,
        extra_cookies=cookies,
    )


# --- what litestar hands a page handler (``WEB_DEPENDENCIES``) and the role guard ---------------------

CTX_KEY = "rasoat_ctx"


async def page_context(connection: ASGIConnection[Any, Any, Any, Any]) -> Ctx:
    """The logged-in officer of this request (``context``, in a worker thread: it reads the store), found
    once per request by the first guard or dependency that asks."""
    state = connection.state
    if CTX_KEY not in state:
        request = connection if isinstance(connection, Request) else Request(connection.scope)
        state[CTX_KEY] = await anyio.to_thread.run_sync(context, request)
    ctx: Ctx = state[CTX_KEY]
    return ctx


def allowed(*permissions: str) -> Any:
    """A guard: the officer's role must allow one of ``permissions`` (``core.scope`` constants), else a 403
    page naming the first; no session: the login page."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
        ctx = await page_context(connection)
        if not any(ctx.can(permission) for permission in permissions):
            scope.require(ctx.user, permissions[0])

    guard.__name__ = "allowed_" + "_or_".join(permissions)
    return guard


async def provide_ctx(request: Request[Any, Any, Any]) -> Ctx:
    return await page_context(request)


async def provide_logged_in(request: Request[Any, Any, Any]) -> Ctx | None:
    """The logged-in officer, or None: for a page anyone may open that an officer sees differently."""
    try:
        return await page_context(request)
    except LoginRequired:
        return None


def provide_visitor(request: Request[Any, Any, Any]) -> Visitor:
    st = state(request)
    return Visitor(request=request, store=st.store, settings=st.settings, lang=request_lang(request)[0])


async def provide_form(request: Request[Any, Any, Any]) -> FormMultiDict:
    """The posted form, its CSRF token not yet checked (the pages without a session check their
    double-submit cookie: ``Visitor.csrf_ok``). Bodies over the handler's ``opt["max_form"]`` (else
    ``MAX_FORM_BODY``) are refused, and so are those whose size the browser did not say."""
    limit = request.route_handler.opt.get("max_form", MAX_FORM_BODY)
    length = request.headers.get("content-length", "")
    if not length.isdigit():
        raise Problem("request.length_required")
    if int(length) > limit:
        raise too_large(limit)
    try:
        form: FormMultiDict = await request.form()
    except ClientException as exc:  # litestar's own detail is English only: the page says it in one language
        if exc.status_code == 413:
            raise too_large(limit) from None
        raise Problem("request.bad_form") from None
    return form


async def provide_posted(
    request: Request[Any, Any, Any], unchecked_form: NamedDependency[FormMultiDict]
) -> FormMultiDict:
    """The posted form, its CSRF token checked against the officer's session: every POST handler's
    preamble, written once."""
    if not sessions.csrf_ok((await page_context(request)).sess.csrf, unchecked_form.get("csrf")):
        raise Problem("request.csrf")
    return unchecked_form


# A handler parameter of one of these names is the dependency, whatever its annotation says: hence no
# short name a query parameter would take (``?form=`` chooses a form on several pages).
WEB_DEPENDENCIES = {
    "ctx": Provide(provide_ctx),
    "logged_in": Provide(provide_logged_in),
    "visitor": Provide(provide_visitor, sync_to_thread=False),
    "unchecked_form": Provide(provide_form),
    "posted": Provide(provide_posted),
}


def form_list(form: Any, name: str) -> list[str]:
    """Every value of a repeated field (ticked boxes): empty when none was ticked, never a KeyError."""
    return [str(v) for v in form.getall(name, [])] if hasattr(form, "getall") else []


# --- formatting -------------------------------------------------------------------------------


def vn_time(value: datetime | str | None, with_time: bool = True) -> str:
    """UTC → Asia/Ho_Chi_Minh, Vietnamese order (day/month/year)."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    else:
        moment = value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(LOCAL_TZ)
    return local.strftime("%d/%m/%Y %H:%M" if with_time else "%d/%m/%Y")


def number(value: Any, digits: int = 1) -> str:
    """1234.5 → "1.234,5" (Vietnamese) is easy to misread next to English; keep digits plain: 1234.5."""
    if value is None:
        return "—"
    if isinstance(value, float):
        if value.is_integer():
            return f"{int(value):,}".replace(",", " ")
        return f"{value:,.{digits}f}".replace(",", " ")
    if isinstance(value, int):
        return f"{value:,}".replace(",", " ")
    return str(value)


def unit_name(code: str | None) -> str:
    if not code:
        return "—"

    unit = get_units().get(code)
    return unit.name if unit is not None else code


def query_with(request: Request, **changes: Any) -> str:
    """This page's query string with some parameters changed (None removes one)."""
    params = {k: v for k, v in request.query_params.items() if k not in ("msg",)}
    for k, v in changes.items():
        if v is None or v == "":
            params.pop(k, None)
        else:
            params[k] = str(v)
    return ("?" + urlencode(params)) if params else "?"


# --- responses --------------------------------------------------------------------------------


def _common(request: Request, lang: str, user: User | None, csrf: str) -> dict[str, Any]:
    nav = [
        (p, t(k, lang)) for p, k, perm in NAV if user is not None and (perm is None or scope.can(user, perm))
    ]
    path = request.url.path
    msg_key = request.query_params.get("msg")
    return {
        "lang": lang,
        "other_lang": "en" if lang == "vi" else "vi",
        "t": lambda key: t(key, lang),
        "said": lambda words: said(words, lang),  # core's (Việt, English) labels
        "user": user,
        "csrf": csrf,
        "nav": nav,
        "path": path,
        "nav_active": lambda p: p == path or (p != "/" and path.startswith(p + "/")),
        "lang_query": query_with(request, lang="en" if lang == "vi" else "vi"),
        "query_with": lambda **kw: query_with(request, **kw),
        "flash": t(msg_key, lang) if msg_key in LABELS else None,
        "vn_time": vn_time,
        "number": number,
        "unit_name": unit_name,
        "quote": lambda s: quote(str(s), safe=""),
        "role_label": (lambda u: t(f"role.{u.role.value}", lang)) if user is not None else None,
        "nav_counts": {},
    }


def form_titles(store: Store) -> Any:
    """``form_title(code)``: the title officers know a form by (read once per page, only if asked)."""
    titles: dict[str, str] = {}

    def title(form_id: str) -> str:
        if not titles:
            titles.update({f.form_id: f.title or f.form_id for f in store.list_forms()})
            titles.setdefault("", "")
        return titles.get(form_id, form_id)

    return title


def form_sources(ctx: Ctx) -> Any:
    """``form_source(source)``: who published a form as officers know them: the national pack by name, a
    province's plugin by its plan's province, anything else (an upload) as recorded; read once a page."""
    names: dict[str, str] = {}

    def source(src: str) -> str:
        if str(src).startswith(BUILTIN):
            return t("plg.national", ctx.lang)
        if not names:
            pm = ctx.settings.plugin_manager or get_manager()
            plans = results_by_plugin(pm, "plan_info")
            names.update({name: info.province_name or name for name, info in plans})
            names.setdefault("", "")
        return names.get(src, src)

    return source


def _in_lang(values: dict[str, Any], lang: str) -> dict[str, Any]:
    """A page's values with each Problem (an ``error`` on a form, a ``flash``) as its message in the page's
    language: the one place a form's error is rendered, so a page never shows both languages."""
    return {k: v.text(lang) if isinstance(v, Problem) else v for k, v in values.items()}


def page(ctx: Ctx, template: str, status: int = 200, **values: Any) -> Template:
    """An officer's page; a value that is a Problem is shown as its message in the page's language."""
    data = _common(ctx.request, ctx.lang, ctx.user, ctx.sess.csrf)
    data["form_title"] = form_titles(ctx.store)
    data["form_source"] = form_sources(ctx)
    if ctx.can(scope.REVIEW):  # the navigation says how many records wait for this officer's review
        data["nav_counts"] = {"/review": queue_count(ctx.store, ctx.user)}
    data.update(_in_lang(values, ctx.lang))
    data["ctx"] = ctx
    return Template(
        template_name=template,
        context=data,
        status_code=status,
        headers=dict(SECURITY_HEADERS),
        cookies=list(ctx.extra_cookies),
        media_type="text/html; charset=utf-8",
    )


def public_page(
    request: Request, template: str, status: int = 200, cookies: list[Cookie] | None = None, **values: Any
) -> Template:
    """A page for someone not logged in (the login page, errors before login)."""
    lang, lang_cookies = request_lang(request)
    data = _common(request, lang, None, "")
    data.update(_in_lang(values, lang))
    return Template(
        template_name=template,
        context=data,
        status_code=status,
        headers=dict(SECURITY_HEADERS),
        cookies=[*lang_cookies, *(cookies or [])],
        media_type="text/html; charset=utf-8",
    )


def redirect(ctx: Ctx | None, path: str, msg: str | None = None) -> Redirect:
    """303 See Other after a POST (the browser GETs the page; a reload does not post again)."""
    if msg:
        path += ("&" if "?" in path else "?") + urlencode({"msg": msg})
    cookies = list(ctx.extra_cookies) if ctx is not None else []
    return Redirect(path=path, status_code=303, cookies=cookies, headers={"Cache-Control": "no-store"})


# --- errors -----------------------------------------------------------------------------------


def problem_page(request: Request, exc: Problem) -> Response:
    """The web pages' answer to a Problem: an error page with the menu, in the page's language only."""
    lang, _ = request_lang(request)
    user = None
    csrf = ""
    try:
        ctx = context(request)
        user, csrf = ctx.user, ctx.sess.csrf
    except Exception:  # an error page never needs a session
        pass
    data = _common(request, lang, user, csrf)
    data.update(status=exc.status, message=exc.text(lang))
    return Template(
        template_name="error.html",
        context=data,
        status_code=exc.status,
        headers={**SECURITY_HEADERS, **exc.headers},
        media_type="text/html; charset=utf-8",
    )


def on_login_required(request: Request, exc: LoginRequired) -> Response:
    target = "/login?" + urlencode(
        {"next": safe_next(exc.next_url), **({"expired": "1"} if exc.expired else {})}
    )
    return Redirect(path=target, status_code=303, headers={"Cache-Control": "no-store"})


def page_problem(request: Request, exc: HTTPException) -> Problem:
    """Litestar's refusal as an officer's page says it: no such page (pick one from the menu), a method
    the page does not take (its Allow header kept), else as any surface (``server.errors.http_problem``)."""
    if exc.status_code == 404:
        return Problem("page.not_found")
    if exc.status_code == 405:
        return Problem("page.method_not_allowed", headers=dict(exc.headers or {}))
    return http_problem(request, exc)


def on_server_error(request: Request, exc: Exception) -> Response:
    """Litestar's refusals and unexpected failures as problem pages (a full disk is a 503)."""
    if isinstance(exc, HTTPException):
        return problem_page(request, page_problem(request, exc))
    if disk_full(exc):
        log.error("disk full on %s %s: %s", request.method, request.url.path, exc)
        return problem_page(request, disk_full_problem())
    log.exception("error on %s %s", request.method, request.url.path)
    return problem_page(request, Problem("server.error"))
