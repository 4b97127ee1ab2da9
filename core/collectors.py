"""Collectors: the app users whose phones sync with a token in their Collect server URL.

A token is long and random (``secrets.token_urlsafe(48)``, 64 characters, as long as ODK Central's);
requests are checked against its SHA-256 (``User.token_hash``), and the token itself is kept in the
store's kv (``collector_token``) so a card can be printed again without replacing it. Replacing it is
its own, confirmed step (``rasoat collectors rotate``). Revoking sets ``active=False`` and drops both:
the server looks the caller up on every request, so the token stops working at once, in every process.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Iterable
from urllib.parse import quote

from rasoat.core.models import AuditEvent, Role, RoundState, User
from rasoat.core.problems import Problem
from rasoat.core.storage.base import Store
from rasoat.core.units import get_units

TOKEN_BYTES = 48
DEFAULT_PROJECT_ID = "1"
TOKEN_NS = "collector_token"
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{20,200}$")


class CollectorError(Problem, ValueError):
    """A collector operation that cannot be done; the message is one bilingual line."""


def new_token() -> str:
    """A fresh app-user token (URL-safe, 64 characters)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """What the store keeps of a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def looks_like_token(token: str) -> bool:
    """Shape check before any lookup (a URL segment that cannot be a token is refused cheaply)."""
    return bool(_TOKEN_RE.match(token))


def collector_url(base_url: str, token: str, project_id: str = DEFAULT_PROJECT_ID) -> str:
    """The Collect ``server_url`` for a token: ``{base}/v1/key/{token}/projects/{pid}`` (Central's shape)."""
    return f"{base_url.rstrip('/')}/v1/key/{quote(token, safe='')}/projects/{quote(project_id, safe='')}"


def digest_url(base_url: str, project_id: str = DEFAULT_PROJECT_ID) -> str:
    """The Collect ``server_url`` for accounts that log in with a username and password (Digest)."""
    return f"{base_url.rstrip('/')}/v1/projects/{quote(project_id, safe='')}"


def find_by_token(store: Store, token: str) -> User | None:
    """The active collector holding this token, or None (unknown, malformed or revoked)."""
    if not looks_like_token(token):
        return None
    user = store.get_user_by_token_hash(hash_token(token))
    if user is None or not user.active or user.role is not Role.collector:
        return None
    return user


def _slug(name: str) -> str:
    text = name.replace("đ", "d").replace("Đ", "D")
    text = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "collector"


def _unique_username(store: Store, base: str) -> str:
    name, n = base, 1
    while store.get_user_by_name(name) is not None:
        n += 1
        name = f"{base}-{n}"
    return name


def _check_units(unit_codes: list[str]) -> None:
    units = get_units()
    unknown = [c for c in unit_codes if units.get(c) is None]
    if unknown:
        raise CollectorError("unit.unknown_codes", codes=', '.join(unknown))


def _in_scope(code: str, scope: Iterable[str]) -> bool:
    scope = set(scope)
    if code in scope:
        return True
    units = get_units()
    if units.get(code) is None:
        return False
    return any(u.code in scope for u in units.ancestors(code))


def scopes_overlap(a: Iterable[str], b: Iterable[str]) -> bool:
    """A unit of one scope is, or lies under or above, a unit of the other."""
    a, b = list(a), list(b)
    return any(_in_scope(x, b) for x in a) or any(_in_scope(y, a) for y in b)


def create_collector(
    store: Store,
    name: str,
    unit_codes: Iterable[str],
    round_ids: Iterable[str] = (),
    *,
    username: str | None = None,
    actor: str = "cli",
) -> tuple[User, str]:
    """Make a collector scoped to ``unit_codes`` and assign it to the rounds; returns (user, token).

    The store keeps the token's hash for checking requests, and the token itself under ``TOKEN_NS`` so
    the collector's card can be shown again without replacing it (as ODK Central keeps app-user tokens).
    """
    name = " ".join(name.split())
    if not name:
        raise CollectorError("collector.name_empty")
    units = list(dict.fromkeys(u.strip() for u in unit_codes if u.strip()))
    if not units:
        raise CollectorError("collector.no_units")
    _check_units(units)
    rounds = []
    for round_id in dict.fromkeys(round_ids):
        rnd = store.get_round(round_id)
        if rnd is None:
            raise CollectorError("round.no_round", round=round_id)
        if rnd.state in (RoundState.closed, RoundState.archived):
            raise CollectorError("collector.round_closed", state=rnd.state.value, round=round_id)
        if rnd.unit_codes and not scopes_overlap(units, rnd.unit_codes):
            raise CollectorError(
                "collector.outside_round",
                units=", ".join(units),
                round=round_id,
                round_units=", ".join(rnd.unit_codes),
            )
        rounds.append(rnd)
    if username:
        if store.get_user_by_name(username) is not None:
            raise CollectorError("user.username_taken", username=username)
    else:
        username = _unique_username(store, _slug(name))
    token = new_token()
    user = User(
        id=f"c-{secrets.token_hex(5)}",
        username=username,
        display_name=name,
        role=Role.collector,
        unit_codes=units,
        token_hash=hash_token(token),
    )
    store.put_user(user)
    store.kv_put(TOKEN_NS, user.id, token)
    for rnd in rounds:
        if user.id not in rnd.collector_ids:
            rnd.collector_ids.append(user.id)
            store.put_round(rnd)
    store.append_audit(
        AuditEvent(actor=actor, action="collector.add", target=user.id,
                   details={"units": units, "rounds": [r.id for r in rounds]})
    )
    return user, token


def current_token(store: Store, user: User) -> str | None:
    """The collector's working token, or None (revoked, or made before tokens were kept: rotate it)."""
    token = store.kv_get(TOKEN_NS, user.id)
    if not user.active or not user.token_hash or not isinstance(token, str):
        return None
    return token if hmac.compare_digest(user.token_hash, hash_token(token)) else None


def same_name(store: Store, name: str) -> list[User]:
    """Active collectors already called ``name`` (two cards with one name get mixed up in a commune)."""
    wanted = " ".join(name.split()).casefold()
    return [u for u in list_collectors(store, include_revoked=False)
            if " ".join((u.display_name or "").split()).casefold() == wanted]


def list_collectors(store: Store, include_revoked: bool = True) -> list[User]:
    """Collectors by creation time; revoked ones too unless asked not to."""
    users = [u for u in store.list_users() if u.role is Role.collector and (include_revoked or u.active)]
    return sorted(users, key=lambda u: (u.created_at, u.id))


def get_collector(store: Store, ref: str) -> User:
    """A collector by id or username."""
    user = store.get_user(ref) or store.get_user_by_name(ref)
    if user is None or user.role is not Role.collector:
        raise CollectorError("collector.not_found", collector=ref)
    return user


def revoke_collector(store: Store, ref: str, actor: str = "cli") -> User:
    """Stop a collector's token (and password login) at once; their submissions stay."""
    user = get_collector(store, ref)
    if not user.active and user.token_hash is None:
        return user
    user = user.model_copy(update={"active": False, "token_hash": None})
    store.put_user(user)
    store.kv_delete(TOKEN_NS, user.id)
    store.append_audit(AuditEvent(actor=actor, action="collector.revoke", target=user.id))
    return user


def rounds_of(store: Store, user: User) -> list[str]:
    """Ids of the rounds a collector is assigned to."""
    return [r.id for r in store.list_rounds() if user.id in r.collector_ids]
