"""Officer sessions: a random id in an HttpOnly cookie, the state in the store's kv (``sessions``).

Several server processes behind one load balancer share the store, so they share the sessions too.
The kv key is the SHA-256 of the cookie value: the store never holds a usable session id. Each session
carries its own CSRF token, which every form posts back (``csrf`` field) and every POST handler checks.
Before login there is no session, so the login form uses a double-submit cookie instead.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from litestar import Request, Response
from litestar.datastructures import Cookie
from rasoat.core.models import User
from rasoat.core.storage.base import Store

NAMESPACE = "sessions"
COOKIE = "rasoat_session"
LOGIN_CSRF_COOKIE = "rasoat_login_csrf"
TTL_SECONDS = 10 * 3600  # a working day; then log in again
IDLE_SECONDS = 2 * 3600  # a session unused for this long ends
TOUCH_AFTER = 10 * 60  # write "last seen" at most this often (one kv write per 10 minutes, not per page)


@dataclass
class Session:
    key: str  # sha256 of the cookie value
    user_id: str
    csrf: str
    created: float
    seen: float


def _key(cookie_value: str) -> str:
    return hashlib.sha256(cookie_value.encode("utf-8")).hexdigest()


def secure_request(request: Request, public_url: str | None) -> bool:
    """Is the officer on HTTPS (directly, behind a proxy that says so, or by the configured public URL)?"""
    if request.url.scheme == "https":
        return True
    if request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower() == "https":
        return True
    return bool(public_url and public_url.lower().startswith("https://"))


def cookie(name: str, value: str, secure: bool, max_age: int | None = None, http_only: bool = True) -> Cookie:
    return Cookie(
        key=name, value=value, path="/", httponly=http_only, samesite="lax", secure=secure, max_age=max_age
    )


def expired_cookie(name: str, secure: bool) -> Cookie:
    return Cookie(
        key=name, value="", path="/", httponly=True, samesite="lax", secure=secure, max_age=0, expires=0
    )


def start(store: Store, user: User) -> tuple[str, Session]:
    """A new session for ``user``; returns the cookie value (shown to the browser only) and the session."""
    value = secrets.token_urlsafe(32)
    now = time.time()
    sess = Session(key=_key(value), user_id=user.id, csrf=secrets.token_urlsafe(24), created=now, seen=now)
    _save(store, sess)
    return value, sess


def _save(store: Store, sess: Session) -> None:
    left = int(sess.created + TTL_SECONDS - time.time())
    store.kv_put(
        NAMESPACE,
        sess.key,
        {"uid": sess.user_id, "csrf": sess.csrf, "created": sess.created, "seen": sess.seen},
        ttl_seconds=max(1, min(left, IDLE_SECONDS)),
    )


def load(store: Store, cookie_value: str | None) -> Session | None:
    """The live session for a cookie value, or None (unknown, ended, idle too long)."""
    if not cookie_value or len(cookie_value) > 200:
        return None
    key = _key(cookie_value)
    data: Any = store.kv_get(NAMESPACE, key)
    if not isinstance(data, dict):
        return None
    now = time.time()
    sess = Session(
        key=key,
        user_id=str(data.get("uid", "")),
        csrf=str(data.get("csrf", "")),
        created=float(data.get("created", 0)),
        seen=float(data.get("seen", 0)),
    )
    if now - sess.created > TTL_SECONDS or now - sess.seen > IDLE_SECONDS:
        store.kv_delete(NAMESPACE, key)
        return None
    if now - sess.seen > TOUCH_AFTER:
        sess.seen = now
        _save(store, sess)
    return sess


def ended_for(sess: Session, user: User) -> bool:
    """Has this session been ended for its officer (password set or reset, account disabled since)?"""
    return user.sessions_ended_at is not None and sess.created < user.sessions_ended_at


def end(store: Store, cookie_value: str | None) -> None:
    if cookie_value:
        store.kv_delete(NAMESPACE, _key(cookie_value))


def csrf_ok(expected: str | None, given: Any) -> bool:
    if not expected or not isinstance(given, str):
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def set_cookies(response: Response, *cookies: Cookie) -> Response:
    for c in cookies:
        response.set_cookie(c)
    return response
