"""Who calls the Central API and OData: an officer, by a session token, a personal API token or Basic.

- ``POST /v1/sessions`` with ``{"email", "password"}`` (the officer's username, or the e-mail-looking name
  they log in with) checks the password through ``core.users.authenticate`` (argon2id, throttled, audited,
  the same as the web login) and returns a bearer token valid for a day. The store's kv holds only the
  token's SHA-256 (``central_sessions``), so every server process knows it and a leaked store reveals none.
- ``Authorization: Bearer`` takes such a session token, or an officer's personal API token
  (``rasoat users token NAME``).
- ``Authorization: Basic`` (Excel, Power BI, ruODK) is accepted over HTTPS (behind a proxy: uvicorn's
  ``--forwarded-allow-ips`` makes the proxy's ``X-Forwarded-Proto`` count) or from this machine, as for
  the officers' JSON API; over plain HTTP from elsewhere → 401.3.

Failures answer as Central does: 401.2 for missing or wrong credentials (no ``WWW-Authenticate``, so tools
do not pop up a prompt), 429 while the login lock holds, 403.1 for a disabled account.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import threading
import time
from datetime import UTC, datetime
from typing import Any

from litestar import Request
from rasoat.core.models import Role, User
from rasoat.core.storage.base import Store
from rasoat.core.users import AuthError, authenticate, user_by_api_token
from rasoat.server.central import problems

BASIC_CACHE_SECONDS = 300
_basic_cache: dict[str, tuple[float, str, str | None]] = {}  # key -> (until, user id, password hash)
_basic_lock = threading.Lock()
SESSION_NS = "central_sessions"
SESSION_SECONDS = 86400  # Central's default session lifetime
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def wants_central(request: Request) -> bool:
    """An API caller (Bearer or Basic) rather than ODK Collect (Digest, or a token in the path)."""
    scheme = request.headers.get("authorization", "").strip().partition(" ")[0].lower()
    return scheme in ("bearer", "basic")


def _key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def secure(request: Request) -> bool:
    """HTTPS as uvicorn saw it (it applies ``X-Forwarded-Proto`` only from the trusted proxy), or this
    machine: the same rule as the officers' JSON API."""
    return request.url.scheme == "https" or client_ip(request) in LOOPBACK


def login(store: Store, email: str, password: str, ip: str) -> tuple[str, User, dict[str, Any]]:
    """Check the password and open a session: (token, officer, Central's session body)."""
    user = check_password(store, email, password, ip)
    token = secrets.token_urlsafe(48)
    now = time.time()
    store.kv_put(SESSION_NS, _key(token), {"uid": user.id, "created": now}, ttl_seconds=SESSION_SECONDS)
    body = {
        "createdAt": iso(now),
        "expiresAt": iso(now + SESSION_SECONDS),
        "token": token,
        "csrf": secrets.token_urlsafe(32),
    }
    return token, user, body


def logout(store: Store, token: str) -> None:
    store.kv_delete(SESSION_NS, _key(token))


def check_password(store: Store, username: str, password: str, ip: str) -> User:
    try:
        return authenticate(store, username, password, ip, via="api")
    except AuthError as exc:
        if exc.code == "auth.refused":  # never says which part was wrong: Central's 401.2
            raise problems.auth_failed() from None
        raise  # throttled (429, Retry-After) or disabled (403)


def bearer_token(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").strip().partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None


def officer(request: Request) -> User:
    """The officer behind this request, or a Problem (401.2, 401.3, 403.1, 429)."""

    store: Store = request.app.state["rasoat"].store
    header = request.headers.get("authorization", "").strip()
    scheme, _, credentials = header.partition(" ")
    scheme, credentials = scheme.lower(), credentials.strip()
    if scheme == "bearer" and credentials:
        if len(credentials) > 200:
            raise problems.auth_failed()
        data = store.kv_get(SESSION_NS, _key(credentials))
        user = store.get_user(str(data.get("uid", ""))) if isinstance(data, dict) else None
        if user is None:
            user = user_by_api_token(store, credentials)
        if user is None or not user.active or user.role is Role.collector:
            raise problems.auth_failed()
        return user
    if scheme == "basic" and credentials:
        if not secure(request):
            raise problems.https_only()
        try:
            raw = base64.b64decode(credentials, validate=True)
        except (binascii.Error, ValueError):
            raise problems.auth_failed() from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
        username, sep, password = text.partition(":")
        if not sep:
            raise problems.auth_failed()
        return _basic(store, username, password, client_ip(request))
    raise problems.auth_failed()


def _basic(store: Store, username: str, password: str, ip: str) -> User:
    """Basic credentials come with every request (Excel and Power BI send them on each page), and an
    argon2 check costs ~0.1-0.5 s of CPU: a success is remembered for a few minutes, in this process
    only, under a hash of the credentials. A hit still reads the account: a disabled account or a changed
    password (another hash) ends it at once."""
    key = hashlib.sha256(f"{username}\0{password}".encode()).hexdigest()
    now = time.monotonic()
    with _basic_lock:
        hit = _basic_cache.get(key)
    if hit is not None and hit[0] > now:
        user = store.get_user(hit[1])
        if user is not None and user.active and user.password_hash == hit[2]:
            return user
    user = check_password(store, username, password, ip)
    with _basic_lock:
        if len(_basic_cache) >= 1024:
            _basic_cache.clear()
        _basic_cache[key] = (now + BASIC_CACHE_SECONDS, user.id, user.password_hash)
    return user


def iso(when: float | datetime | None) -> str | None:
    """Central's timestamps: ISO 8601 in UTC with milliseconds and ``Z``."""
    if when is None:
        return None
    if not isinstance(when, datetime):
        when = datetime.fromtimestamp(when, UTC)
    elif when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
