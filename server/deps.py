"""What litestar hands the JSON APIs' handlers (rasoat's /api/v1 and the Central API's /v1): the store, the
officer asking (``Provide``), and guards for what their role allows and for the project they name.

The officer is found once per request, by the first guard or dependency that asks (``officer_of`` keeps
it in the request's state): a guard runs before the handler's dependencies, so a refused role never
reaches the handler, and the handler names ``user: User`` rather than calling ``officer()`` itself. Both
APIs check the same credentials; each answers a refusal in its own shape, so a router names the function
that finds its officer in its ``opt`` (``AUTHENTICATE``; ``CENTRAL_OPT`` for the Central API).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.handlers.base import BaseRouteHandler
from rasoat.core import scope
from rasoat.core.models import User
from rasoat.core.problems import Problem
from rasoat.core.storage.base import Store
from rasoat.server.central.auth import officer as central_officer
from rasoat.server.central.project import check_project

OFFICER_KEY = "rasoat_officer"
AUTHENTICATE = "authenticate"  # a router's opt: Request -> User, or a Problem in the router's shape
BASIC_CHALLENGE = 'Basic realm="rasoat", charset="UTF-8"'


def officer(request: Request) -> User:
    """The officer making this request, or a Problem (401 with a Basic challenge, 403, 429).

    The credentials are checked by ``server.central.auth.officer``, the one rule for both APIs (so a
    Central session token works here too); only the answer keeps this API's shape: a bad or revoked
    token, or Basic over plain HTTP, is 403, and a 401 carries a Basic challenge."""
    try:
        return central_officer(request)
    except Problem as exc:
        if exc.code == "auth.https_only":
            raise Problem("auth.https_only_refused") from None
        bearer = request.headers.get("authorization", "").strip().lower().startswith("bearer ")
        if exc.status == 401 and bearer:
            raise Problem("auth.token_refused") from None
        if exc.status == 401:
            exc.headers["WWW-Authenticate"] = BASIC_CHALLENGE
        raise


async def officer_of(connection: ASGIConnection[Any, Any, Any, Any]) -> User:
    """The officer behind this request (authenticated in a worker thread: Basic runs argon2), or a
    Problem: by ``officer`` (401 with a Basic challenge, 403, 429) unless the route's router names
    another way (``AUTHENTICATE``)."""
    state = connection.state
    if OFFICER_KEY not in state:
        request = connection if isinstance(connection, Request) else Request(connection.scope)
        authenticate: Callable[[Request], User] = connection.route_handler.opt.get(AUTHENTICATE, officer)
        state[OFFICER_KEY] = await anyio.to_thread.run_sync(authenticate, request)
    user: User = state[OFFICER_KEY]
    return user


def requires(permission: str) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler],
                                          Awaitable[None]]:
    """A guard: the officer's role must allow ``permission`` (a ``core.scope`` constant), else 403."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
        scope.require(await officer_of(connection), permission)

    guard.__name__ = f"requires_{permission}"
    return guard


async def in_project(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    """A guard: the ``pid`` the path names must be rasoat's one project, else 404.1 (before any
    credentials are looked at, as Central answers an unknown project)."""
    check_project(connection)


async def provide_officer(request: Request[Any, Any, Any]) -> User:
    return await officer_of(request)


def provide_store(request: Request[Any, Any, Any]) -> Store:
    store: Store = request.app.state["rasoat"].store
    return store


API_DEPENDENCIES = {
    "store": Provide(provide_store, sync_to_thread=False),
    "user": Provide(provide_officer),
}
CENTRAL_OPT = {AUTHENTICATE: central_officer}  # Central's refusals: 401.2 with no challenge, 403.1
