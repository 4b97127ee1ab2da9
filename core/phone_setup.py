"""A collector's phone set-up: their token, their Collect settings, their QR text (drawn elsewhere).

Showing or printing a collector's card never changes their token: the card carries the token the store
keeps for them (core.collectors), so earlier cards and set-up phones keep working. Replacing a token is
``rotate_token`` (``rasoat collectors rotate``, confirmed), for a lost card or phone. A collector made
before tokens were kept has no showable token; their card needs one rotation.

The server address on a card is ``--url``, else ``$RASOAT_PUBLIC_URL``, else the address the last
``rasoat serve`` on the data directory announced (``core.config.stored_public_url``).

The Collect admin password (it guards the locked settings on every phone) is one per deployment, made
at random on first use and kept in the store's kv; officers see it with ``rasoat qr --show-admin-pw``.
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rasoat.core.collect_settings import collect_settings, encode_settings, project_name
from rasoat.core.collectors import (
    DEFAULT_PROJECT_ID,
    TOKEN_NS,
    CollectorError,
    collector_url,
    current_token,
    get_collector,
    hash_token,
    new_token,
)
from rasoat.core.config import stored_public_url
from rasoat.core.models import AuditEvent, User
from rasoat.core.storage.base import Store
from rasoat.core.units import get_units

KV_NAMESPACE = "mobile"
ADMIN_PW_KEY = "collect_admin_pw"
ENV_PUBLIC_URL = "RASOAT_PUBLIC_URL"


@dataclass(frozen=True)
class PhoneCode:
    """Everything printed for one collector."""

    user: User
    token: str
    server_url: str
    settings: dict[str, Any]
    payload: str  # the QR text
    rotated: bool  # always False here: only rotate_token replaces a token


def base_url(explicit: str | None, data_dir: Path | None = None) -> str:
    """The server address phones reach: ``--url``, else ``$RASOAT_PUBLIC_URL``, else what ``rasoat
    serve`` stored in ``data_dir``; never guessed."""

    url = (explicit or os.environ.get(ENV_PUBLIC_URL) or "").strip().rstrip("/")
    if not url and data_dir is not None:
        url = stored_public_url(data_dir) or ""
    if not url:
        raise CollectorError("collector.no_server_url")
    if not url.startswith(("http://", "https://")) or any(c in url for c in "?#"):
        raise CollectorError("collector.bad_server_url", url=url)
    return url


def place_name(unit_codes: list[str]) -> str:
    """The commune(s) a collector works in: "Xã Phượng Tiến" (a hamlet names its commune)."""

    units = get_units()
    names: list[str] = []
    for code in unit_codes:
        unit = units.get(code)
        if unit is None:
            name = code
        elif unit.level == "hamlet" and unit.parent_code and units.get(unit.parent_code) is not None:
            name = units.require(unit.parent_code).name
        else:
            name = unit.name
        if name not in names:
            names.append(name)
    return ", ".join(names)


def admin_password(store: Store, explicit: str | None = None) -> str:
    """The deployment's Collect admin password (made once, 8 digits: easy to type on a phone)."""
    if explicit:
        return explicit
    stored = store.kv_get(KV_NAMESPACE, ADMIN_PW_KEY)
    if isinstance(stored, str) and stored:
        return stored
    password = "".join(secrets.choice("0123456789") for _ in range(8))
    store.kv_put(KV_NAMESPACE, ADMIN_PW_KEY, password)
    return password


def rotate_token(store: Store, user: User, actor: str = "cli") -> str:
    """Give an active collector a new token; the old one stops working at once."""
    if not user.active:
        raise CollectorError("collector.revoked", username=user.username)
    token = new_token()
    store.put_user(user.model_copy(update={"token_hash": hash_token(token)}))
    store.kv_put(TOKEN_NS, user.id, token)
    store.append_audit(AuditEvent(actor=actor, action="collector.token_rotate", target=user.id))
    return token


def check_token(user: User, token: str) -> None:
    """Refuse a token that is not this collector's current one (a typo would print a useless card)."""
    if not user.active or not user.token_hash or not hmac.compare_digest(user.token_hash, hash_token(token)):
        raise CollectorError("collector.token_not_current", username=user.username)


def phone_code(
    store: Store,
    ref: str,
    url: str | None,
    *,
    token: str | None = None,
    admin_pw: str | None = None,
    project_id: str = DEFAULT_PROJECT_ID,
    actor: str = "cli",
) -> PhoneCode:
    """The QR code for collector ``ref`` (id or username) with their current token (``token``, if given,
    must be it). ``url`` is the server's base address (see ``base_url``). Never replaces the token."""
    base = base_url(url)
    user = get_collector(store, ref)
    if not user.active:
        raise CollectorError("collector.revoked", username=user.username)
    if token:
        check_token(user, token)
    else:
        token = current_token(store, user)
        if token is None:
            raise CollectorError("collector.token_not_kept", username=user.username)
    rotated = False
    server_url = collector_url(base, token, project_id)
    settings = collect_settings(
        server_url,
        project_name(place_name(user.unit_codes)),
        admin_pw=admin_password(store, admin_pw),
        collector_name=user.display_name or user.username,
    )
    return PhoneCode(user, token, server_url, settings, encode_settings(settings), rotated)
