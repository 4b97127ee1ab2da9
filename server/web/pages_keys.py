"""The project key page: an officer who may decrypt unlocks the key with the passphrase, so the server
derives and keeps the statistical fields of the encrypted records it holds (``core.derive``) and, for the
minutes chosen, of those arriving. The passphrase travels only in the POST body (CSRF-checked), is never
written to a log, the audit or the page, and the unlocked key lives in this server process only."""

from __future__ import annotations

from typing import Any

from litestar import Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from rasoat.core import scope
from rasoat.core.crypto import CryptoError, encrypted_counts, key_entry
from rasoat.core.derive import DEFAULT_MINUTES, MAX_MINUTES, forget, held_until, unlock_and_derive
from rasoat.core.problems import Problem
from rasoat.server.web import remember
from rasoat.server.web.base import Ctx, allowed, page, redirect

MAX_KEY_FORM = 4096
DECRYPT = [allowed(scope.DECRYPT)]
FORM = {"max_form": MAX_KEY_FORM}  # the posted form's size limit (base.provide_posted)


def _page(ctx: Ctx, status: int = 200, error: Problem | None = None, done: Any = None) -> Response:
    left = held_until(ctx.store)
    return page(ctx, "keys.html", status=status, error=error, done=done,
                has_key=key_entry(ctx.store) is not None,
                unread=encrypted_counts(ctx.store, scope.narrow(None, ctx.user)),
                minutes_left=None if left is None else max(1, round(left / 60)),
                default_minutes=DEFAULT_MINUTES, max_minutes=MAX_MINUTES)


@get("/keys", guards=DECRYPT, sync_to_thread=True)
def keys_page(ctx: NamedDependency[Ctx]) -> Response:
    return _page(ctx)


@post("/keys/unlock", guards=DECRYPT, opt=FORM, sync_to_thread=True)
def keys_unlock(ctx: NamedDependency[Ctx], posted: NamedDependency[FormMultiDict]) -> Response:
    passphrase = str(posted.get("passphrase") or "")
    try:
        minutes = int(str(posted.get("minutes") or DEFAULT_MINUTES))
    except ValueError:
        minutes = DEFAULT_MINUTES
    try:
        done = unlock_and_derive(ctx.store, passphrase, ctx.actor, max(1, min(minutes, MAX_MINUTES)))
    except CryptoError as exc:
        return _page(ctx, 400, exc)
    remember.forget(ctx.store)  # figures kept before the derivation no longer hold
    return _page(ctx, done=done)


@post("/keys/lock", guards=DECRYPT, opt=FORM)
async def keys_lock(ctx: NamedDependency[Ctx], posted: NamedDependency[FormMultiDict]) -> Response:
    """(``posted``: the lock is a POST whose CSRF token is checked.)"""
    forget(ctx.store)
    return redirect(ctx, "/keys", "keys.locked")


handlers = [keys_page, keys_unlock, keys_lock]
