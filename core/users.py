"""Officer accounts: roles, argon2id passwords, personal API tokens, and login with throttling.

Collectors (app users with a token in their Collect URL) live in ``core.collectors``; this module is for
the people who read data: administrators, province managers, commune officers and viewers.

- Passwords are hashed with argon2id (argon2-cffi's defaults, re-hashed on login when they change).
- ``authenticate(store, username, password, ip)`` is the one login check (JSON API Basic, web login).
  Failures are counted per username and per client address in the store's key-value area, so every
  server process sees the same counts: ``MAX_USER_FAILURES`` failures for one name, or
  ``MAX_IP_FAILURES`` from one address, within ``FAILURE_WINDOW_SECONDS`` lock logins for
  ``LOCK_SECONDS``. While locked even the right password is refused (a guesser learns nothing).
  Every attempt, good or bad, leaves an audit line (never the password).
- A personal API token (``new_api_token``) lets an officer's scripts call the JSON API as that officer.
  Only its SHA-256 is kept (``User.token_hash``, shared with collectors' tokens; the role tells them
  apart), so it is shown once; making a new one replaces the old.
- A password-reset link (``issue_reset_link``) is issued by whoever manages the account: a random token
  shown once, kept only as its SHA-256 in the store's key-value area (every server process sees it),
  valid for ``RESET_LINK_HOURS``, for one use, and only the newest link of an account works.
  ``use_reset_link`` sets the new password. Issuing and using are audited.
"""

from __future__ import annotations

import functools
import re
import secrets
import time
from collections.abc import Iterable
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from rasoat.core import scope
from rasoat.core.collectors import hash_token, looks_like_token
from rasoat.core.models import OFFICER_ROLES, AuditEvent, Role, User
from rasoat.core.problems import Problem
from rasoat.core.storage.base import Store
from rasoat.core.units import get_units

MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 1024  # argon2 takes any length; a megabyte "password" is only a way to burn CPU
MAX_USER_FAILURES = 5
MAX_IP_FAILURES = 20  # an office behind one NAT address may hold several people who mistype
FAILURE_WINDOW_SECONDS = 15 * 60
LOCK_SECONDS = 15 * 60
THROTTLE_NS = "login_throttle"
API_TOKEN_BYTES = 32
RESET_NS = "password_reset"
RESET_LINK_HOURS = 24  # long enough to reach an officer by phone the same day, short enough to go stale

_USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile (64 MiB, t=3, p=4)
# Verified against when the username is unknown, so a wrong name costs the same time as a wrong password.


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against for an unknown user, so the answer takes as long as for a known one;
    made on first use, not at import (it costs 0.2 s of CPU, which every ``rasoat`` start would pay)."""
    return _hasher.hash(secrets.token_hex(16))


class UserError(Problem, ValueError):
    """An account operation that cannot be done; one bilingual line."""


class AuthError(Problem):
    """A login refused; the message is safe to show (it never says which part was wrong)."""

    default_code = "auth.refused"


class WrongCredentials(AuthError):
    def __init__(self) -> None:
        super().__init__("auth.refused")


class Throttled(AuthError):
    def __init__(self, retry_after: int) -> None:
        minutes = max(1, (retry_after + 59) // 60)
        super().__init__("auth.throttled", minutes=minutes, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


class AccountDisabled(AuthError):
    def __init__(self) -> None:
        super().__init__("auth.disabled")


# --- passwords ----------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    """An argon2id hash (the encoded string holds its own salt and parameters)."""
    check_password_policy(password)
    return _hasher.hash(password)


def verify_password(encoded: str | None, password: str) -> bool:
    """True when ``password`` matches; False for a mismatch or a malformed/missing hash."""
    try:
        return _hasher.verify(encoded or _dummy_hash(), password) and encoded is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def check_password_policy(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise UserError("user.password_short", min=MIN_PASSWORD_CHARS)
    if len(password) > MAX_PASSWORD_CHARS:
        raise UserError("user.password_long", max=MAX_PASSWORD_CHARS)


# --- accounts -----------------------------------------------------------------------------------


def parse_role(value: str | Role) -> Role:
    try:
        role = Role(value)
    except ValueError:
        allowed = ", ".join(r.value for r in OFFICER_ROLES)
        raise UserError("user.bad_role", allowed=allowed, role=value) from None
    if role is Role.collector:
        raise UserError("user.collector_role")
    return role


def _check_units(role: Role, unit_codes: list[str]) -> list[str]:
    units = list(dict.fromkeys(u.strip() for u in unit_codes if u and u.strip()))
    if role is not Role.admin and not units:
        raise UserError("user.no_units")
    if units:
        registry = get_units()
        unknown = [c for c in units if registry.get(c) is None]
        if unknown:
            raise UserError("unit.unknown_codes", codes=', '.join(unknown))
    return units


def create_user(
    store: Store,
    username: str,
    password: str,
    role: str | Role,
    unit_codes: Iterable[str] = (),
    display_name: str = "",
    actor: str = "cli",
) -> User:
    """Make an officer account. Administrators may have no unit (they see everything)."""
    username = username.strip().lower()
    if not _USERNAME_RE.match(username):
        raise UserError("user.bad_username", username=username)
    if store.get_user_by_name(username) is not None:
        raise UserError("user.username_taken", username=username)
    role = parse_role(role)
    units = _check_units(role, list(unit_codes))
    user = User(
        id=f"u-{secrets.token_hex(5)}",
        username=username,
        display_name=" ".join(display_name.split()) or username,
        role=role,
        unit_codes=units,
        password_hash=hash_password(password),
    )
    store.put_user(user)
    store.append_audit(
        AuditEvent(
            actor=actor, action="user.add", target=user.username, details={"role": role.value, "units": units}
        )
    )
    return user


def get_officer(store: Store, ref: str) -> User:
    """An officer by username or id."""
    user = store.get_user_by_name(ref.strip().lower()) or store.get_user(ref)
    if user is None or user.role is Role.collector:
        raise UserError("user.no_officer", ref=ref)
    return user


def list_officers(store: Store, include_disabled: bool = True) -> list[User]:
    users = [u for u in store.list_users() if u.role is not Role.collector and (include_disabled or u.active)]
    return sorted(users, key=lambda u: (u.created_at, u.id))


# Who may manage whom: an administrator any officer; a province manager the commune officers and viewers
# whose units all lie in their own (never another manager or an administrator).
PROVINCE_MANAGED_ROLES = (Role.commune_officer, Role.viewer)


def roles_managed_by(actor: User) -> tuple[Role, ...]:
    if not actor.active:
        return ()
    if actor.role is Role.admin:
        return OFFICER_ROLES
    if actor.role is Role.province_manager:
        return PROVINCE_MANAGED_ROLES
    return ()


def may_manage(actor: User, role: Role, unit_codes: Iterable[str]) -> bool:
    if role not in roles_managed_by(actor):
        return False
    units = list(unit_codes)
    return actor.role is Role.admin or (bool(units) and all(scope.unit_allowed(actor, u) for u in units))


def require_manages(actor: User, role: Role, unit_codes: Iterable[str]) -> None:
    if not may_manage(actor, role, unit_codes):
        raise scope.ScopeError("scope.may_not_manage", username=actor.username)


def manageable_officers(store: Store, actor: User) -> list[User]:
    """The officer accounts ``actor`` may create, disable and re-enable, oldest first (never themselves)."""
    return [u for u in list_officers(store) if u.id != actor.id and may_manage(actor, u.role, u.unit_codes)]


def set_role(
    store: Store, ref: str, role: str | Role, unit_codes: Iterable[str] | None = None, actor: str = "cli"
) -> User:
    """Change an officer's role (and units, when given); audited with the before and after."""
    user = get_officer(store, ref)
    new_role = parse_role(role)
    units = _check_units(new_role, list(unit_codes) if unit_codes is not None else list(user.unit_codes))
    updated = user.model_copy(update={"role": new_role, "unit_codes": units})
    store.put_user(updated)
    store.append_audit(
        AuditEvent(
            actor=actor,
            action="user.set_role",
            target=user.username,
            details={
                "from": {"role": user.role.value, "units": user.unit_codes},
                "to": {"role": new_role.value, "units": units},
            },
        )
    )
    return updated


def set_password(store: Store, ref: str, password: str, actor: str = "cli") -> User:
    """A new password (an administrator's reset, a reset link, or the officer's own change); every web
    session signed in with the old one ends."""
    user = get_officer(store, ref)
    updated = user.model_copy(update={"password_hash": hash_password(password),
                                      "sessions_ended_at": time.time()})
    store.put_user(updated)
    store.kv_delete(THROTTLE_NS, _user_key(user.username))
    store.append_audit(AuditEvent(actor=actor, action="user.set_password", target=user.username))
    return updated


def disable_user(store: Store, ref: str, actor: str = "cli") -> User:
    """Stop an officer at once: logins, open web sessions and the API token are refused in every server
    process (re-enabling the account does not bring a session back)."""
    user = get_officer(store, ref)
    updated = user.model_copy(update={"active": False, "token_hash": None,
                                      "sessions_ended_at": time.time()})
    store.put_user(updated)
    store.append_audit(AuditEvent(actor=actor, action="user.disable", target=user.username))
    return updated


def enable_user(store: Store, ref: str, actor: str = "cli") -> User:
    user = get_officer(store, ref)
    updated = user.model_copy(update={"active": True})
    store.put_user(updated)
    store.append_audit(AuditEvent(actor=actor, action="user.enable", target=user.username))
    return updated


def new_api_token(store: Store, ref: str, actor: str = "cli") -> str:
    """A fresh personal API token for an officer (replaces the previous one); shown only now."""
    user = get_officer(store, ref)
    if not user.active:
        raise UserError("user.account_disabled", username=user.username)
    token = secrets.token_urlsafe(API_TOKEN_BYTES)
    store.put_user(user.model_copy(update={"token_hash": hash_token(token)}))
    store.append_audit(AuditEvent(actor=actor, action="user.api_token", target=user.username))
    return token


def issue_reset_link(store: Store, ref: str, actor: str = "cli") -> tuple[str, float]:
    """A one-time password-reset token for an active officer (shown only now) and when it expires (epoch
    seconds). A newer link replaces an older one."""
    user = get_officer(store, ref)
    if not user.active:
        raise UserError("user.account_disabled", username=user.username)
    token = secrets.token_urlsafe(API_TOKEN_BYTES)
    expires = time.time() + RESET_LINK_HOURS * 3600
    ttl = RESET_LINK_HOURS * 3600 + 3600  # kept an hour past expiry, so a late click is told it expired
    key = hash_token(token)
    store.kv_put(RESET_NS, key, {"uid": user.id, "expires": expires, "used": None}, ttl_seconds=ttl)
    store.kv_put(RESET_NS, "newest:" + user.id, key, ttl_seconds=ttl)
    store.append_audit(AuditEvent(actor=actor, action="user.reset_link", target=user.username,
                                  details={"expires": int(expires)}))
    return token, expires


class ResetLinkError(UserError):
    """A reset link that cannot be used (unknown, used, expired, replaced, or the account disabled)."""


def reset_link_user(store: Store, token: str) -> User:
    """The officer a reset link is for, while it may still be used; else ``ResetLinkError``."""
    user, _ = _live_reset(store, token)
    return user


def use_reset_link(store: Store, token: str, password: str) -> User:
    """Set the officer's new password through the link, once: a second use is refused."""
    user, entry = _live_reset(store, token)
    check_password_policy(password)
    key = hash_token(token)
    ttl = max(1, int(float(entry["expires"]) - time.time()) + 3600)
    if not store.kv_cas(RESET_NS, key, entry, {**entry, "used": time.time()}, ttl_seconds=ttl):
        raise ResetLinkError("user.reset_link_gone")  # another use won the race
    updated = set_password(store, user.username, password, actor=user.username)
    store.append_audit(AuditEvent(actor=user.username, action="user.reset_link_used", target=user.username))
    return updated




def _live_reset(store: Store, token: str) -> tuple[User, dict[str, Any]]:
    token = (token or "").strip()
    if not looks_like_token(token):
        raise ResetLinkError("user.reset_link_gone")
    key = hash_token(token)
    entry = store.kv_get(RESET_NS, key)
    if not isinstance(entry, dict) or entry.get("used") or float(entry.get("expires") or 0) <= time.time():
        raise ResetLinkError("user.reset_link_gone")
    user = store.get_user(str(entry.get("uid", "")))
    if user is None or not user.active or store.kv_get(RESET_NS, "newest:" + user.id) != key:
        raise ResetLinkError("user.reset_link_gone")
    return user, entry


def user_by_api_token(store: Store, token: str) -> User | None:
    """The active officer holding this personal API token, or None."""
    token = token.strip()
    if not looks_like_token(token):
        return None
    user = store.get_user_by_token_hash(hash_token(token))
    if user is None or not user.active or user.role is Role.collector:
        return None
    return user


# --- login with throttling -------------------------------------------------------------------------


def _user_key(username: str) -> str:
    return "u:" + username.strip().lower()[:128]


def _ip_key(ip: str | None) -> str:
    return "ip:" + (ip or "unknown")[:64]


def _locked_for(store: Store, key: str) -> int:
    entry = store.kv_get(THROTTLE_NS, key)
    if not isinstance(entry, dict):
        return 0
    until = float(entry.get("locked_until") or 0)
    return max(0, int(until - time.time() + 0.999))


def _count_failure(store: Store, key: str, limit: int) -> None:
    """One more failure in the window; at ``limit`` the key is locked. Read-modify-write without a lock:
    two processes may lose one count between them, which only delays the lock by one attempt."""
    now = time.time()
    entry = store.kv_get(THROTTLE_NS, key)
    if not isinstance(entry, dict) or now - float(entry.get("first", 0)) > FAILURE_WINDOW_SECONDS:
        entry = {"count": 0, "first": now, "locked_until": 0}
    entry["count"] = int(entry.get("count", 0)) + 1
    if entry["count"] >= limit:
        entry["locked_until"] = now + LOCK_SECONDS
    store.kv_put(THROTTLE_NS, key, entry, ttl_seconds=FAILURE_WINDOW_SECONDS + LOCK_SECONDS)


def _audit_login(store: Store, action: str, username: str, ip: str | None, **details: Any) -> None:
    shown = username.strip()[:64]  # a password typed into the name field is at worst partly logged
    store.append_audit(
        AuditEvent(actor=shown or "?", action=action, target=shown, details={"ip": ip or "", **details})
    )


def check_throttle(store: Store, username: str, ip: str | None, via: str = "") -> None:
    """Raise ``Throttled`` (and audit it) while the name or the address is locked. Other login paths
    (HTTP Digest for collectors) call this and ``note_failure`` so one lock covers them all."""
    wait = max(_locked_for(store, _user_key(username)), _locked_for(store, _ip_key(ip)))
    if wait:
        _audit_login(store, "login.throttled", username, ip, via=via, retry_after=wait)
        raise Throttled(wait)


def note_failure(store: Store, username: str, ip: str | None, via: str = "") -> None:
    """Count one failed login for the name and the address, and audit it."""
    _count_failure(store, _user_key(username), MAX_USER_FAILURES)
    _count_failure(store, _ip_key(ip), MAX_IP_FAILURES)
    _audit_login(store, "login.failed", username, ip, via=via)


def authenticate(store: Store, username: str, password: str, ip: str | None = None, via: str = "") -> User:
    """The officer with these credentials, or an ``AuthError`` (wrong credentials, throttled, disabled).

    ``via`` says where the login came from ("api", "web") for the audit line.
    """
    uname = (username or "").strip().lower()
    check_throttle(store, uname, ip, via)
    user = store.get_user_by_name(uname) if uname and len(password or "") <= MAX_PASSWORD_CHARS else None
    if user is not None and user.role is Role.collector:
        user = None
    ok = verify_password(user.password_hash if user is not None else None, password or "")
    if user is None or not ok:
        note_failure(store, uname, ip, via)
        raise WrongCredentials()
    if not user.active:
        _audit_login(store, "login.failed", uname, ip, via=via, reason="disabled")
        raise AccountDisabled()
    store.kv_delete(THROTTLE_NS, _user_key(uname))
    if user.password_hash and _hasher.check_needs_rehash(user.password_hash):
        store.put_user(user.model_copy(update={"password_hash": _hasher.hash(password)}))
    _audit_login(store, "login.ok", uname, ip, via=via)
    return user


def unlock(store: Store, username: str | None = None, ip: str | None = None) -> None:
    """Lift a login lock early (an administrator's decision)."""
    if username:
        store.kv_delete(THROTTLE_NS, _user_key(username))
    if ip:
        store.kv_delete(THROTTLE_NS, _ip_key(ip))
