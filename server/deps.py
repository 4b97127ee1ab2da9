"""What litestar hands the JSON API's handlers: the store, the officer asking (``Provide``), and guards for
what their role allows.

The officer is found once per request, by the first guard or dependency that asks (``officer_of`` keeps
it in the request's state): a guard runs before the handler's dependencies, so a refused role never
reaches the handler, and the handler names ``user: User`` rather than calling ``officer()`` itself.
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

OFFICER_KEY = "rasoat_officer"
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
    Problem (401 with a Basic challenge, 403, 429)."""
    state = connection.state
    if OFFICER_KEY not in state:
        request = connection if isinstance(connection, Request) else Request(connection.scope)
        state[OFFICER_KEY] = await anyio.to_thread.run_sync(officer, request)
    user: User = state[OFFICER_KEY]
    return user


def requires(permission: str) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler],
                                          Awaitable[None]]:
    """A guard: the officer's role must allow ``permission`` (a ``core.scope`` constant), else 403."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
        scope.require(await officer_of(connection), permission)

    guard.__name__ = f"requires_{permission}"
    return guard


async def provide_officer(request: Request[Any, Any, Any]) -> User:
    return await officer_of(request)


def provide_store(request: Request[Any, Any, Any]) -> Store:
    store: Store = request.app.state["rasoat"].store
    return store


API_DEPENDENCIES = {
    "store": Provide(provide_store, sync_to_thread=False),
    "user": Provide(provide_officer),
}
