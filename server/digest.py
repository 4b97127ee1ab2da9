"""HTTP Digest authentication (RFC 7616, MD5 with qop=auth) exactly as ODK Collect's okhttp-digest does it.

Collect sends no credentials until it gets a 401 with a ``WWW-Authenticate: Digest`` challenge; it then
reuses the nonce with an increasing ``nc`` until the server says ``stale=true``. Nonces and the highest
``nc`` seen for each are kept in the store's key-value area (``kv_*``), so several server processes
behind one store share them and keep no state of their own.

Why MD5 and a stored HA1: Digest needs ``HA1 = MD5(username:realm:password)`` on the server side, which
an argon2 hash cannot give. Accounts that log in with Digest therefore keep their HA1 (per realm, so the
realm never changes) in the ``digest_ha1`` namespace of the store, beside any argon2 ``password_hash``
used for the officers' web login. HA1 is password-equivalent for this realm only; tokens in the URL
(app users) need none of this.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from rasoat.core.storage.base import Store

REALM = "rasoat"
NONCE_NS = "digest_nonce"
HA1_NS = "digest_ha1"
NONCE_TTL_SECONDS = 3600  # Collect recomputes silently on stale=true, so expiry costs one round trip

_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def make_ha1(username: str, password: str, realm: str = REALM) -> str:
    """``MD5(username:realm:password)``, UTF-8 (the challenge announces ``charset=UTF-8``)."""
    return _md5(f"{username}:{realm}:{password}")


def set_password(store: Store, username: str, password: str) -> None:
    """Let ``username`` log in with Digest: store its HA1 for our realm."""
    store.kv_put(HA1_NS, username, {"realm": REALM, "ha1": make_ha1(username, password)})


def forget_password(store: Store, username: str) -> None:
    """Digest login stops working for ``username`` at once."""
    store.kv_delete(HA1_NS, username)


def stored_ha1(store: Store, username: str) -> str | None:
    entry = store.kv_get(HA1_NS, username)
    if not isinstance(entry, dict) or entry.get("realm") != REALM:
        return None
    return str(entry.get("ha1") or "") or None


def challenge(store: Store, stale: bool = False) -> str:
    """A fresh ``WWW-Authenticate`` value; the nonce is remembered in the store."""
    nonce = secrets.token_hex(16)
    opaque = secrets.token_hex(8)
    store.kv_put(NONCE_NS, nonce, {"nc": 0, "opaque": opaque}, ttl_seconds=NONCE_TTL_SECONDS)
    value = (
        f'Digest realm="{REALM}", qop="auth", algorithm=MD5, nonce="{nonce}", opaque="{opaque}", '
        'charset=UTF-8'
    )
    return value + (", stale=true" if stale else "")


def parse_authorization(header: str) -> dict[str, str] | None:
    """The parameters of a ``Digest`` Authorization header, or None for another scheme."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "digest":
        return None
    params: dict[str, str] = {}
    for m in _PARAM.finditer(rest):
        value = m.group(2) if m.group(2) is not None else m.group(3)
        params[m.group(1).lower()] = value.replace('\\"', '"').replace("\\\\", "\\")
    return params


@dataclass(frozen=True)
class DigestResult:
    """``username`` on success; ``stale`` when only the nonce was unknown or expired (re-challenge)."""

    username: str | None = None
    stale: bool = False


def verify(store: Store, method: str, header: str) -> DigestResult:
    """Check an Authorization header. ``uri`` is taken from the header, as Collect sends it (path+query).

    The caller must also check that the header's ``uri`` names the request it came with.
    """
    p = parse_authorization(header)
    if not p:
        return DigestResult()
    username, nonce, uri, response = p.get("username"), p.get("nonce"), p.get("uri"), p.get("response")
    if not (username and nonce and uri and response) or p.get("realm") != REALM:
        return DigestResult()
    algorithm = p.get("algorithm", "MD5").upper()
    qop = p.get("qop")
    if algorithm not in ("MD5", "MD5-SESS") or (qop is not None and qop != "auth"):
        return DigestResult()
    ha1 = stored_ha1(store, username)
    if ha1 is None:
        return DigestResult()
    cnonce = p.get("cnonce", "")
    nc = p.get("nc", "")
    if algorithm == "MD5-SESS":
        ha1 = _md5(f"{ha1}:{nonce}:{cnonce}")
    ha2 = _md5(f"{method}:{uri}")
    if qop == "auth":
        expected = _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
    else:
        expected = _md5(f"{ha1}:{nonce}:{ha2}")
    if not hmac.compare_digest(expected, response.lower()):
        return DigestResult()
    # The password is right; now the nonce must be ours, alive, and its count must move forward.
    state = store.kv_get(NONCE_NS, nonce)
    if not isinstance(state, dict):
        return DigestResult(stale=True)
    if qop == "auth":
        try:
            count = int(nc, 16)
        except ValueError:
            return DigestResult()
        if count <= int(state.get("nc", 0)):
            return DigestResult(stale=True)  # a replay, or requests overtaking each other: start afresh
        # compare-and-set: of two requests (in any processes) carrying one count, only one moves it
        if not store.kv_cas(NONCE_NS, nonce, state, {**state, "nc": count}, ttl_seconds=NONCE_TTL_SECONDS):
            return DigestResult(stale=True)
    return DigestResult(username=username)


def authorization_header(
    method: str, uri: str, username: str, password: str, www_authenticate: str, nc: int = 1
) -> str:
    """Build the reply to a challenge as okhttp-digest does (tests and the benchmark client use it)."""
    p = parse_authorization(www_authenticate) or {}
    cnonce = secrets.token_hex(8)
    ha1 = make_ha1(username, password, p.get("realm", REALM))
    ha2 = _md5(f"{method}:{uri}")
    ncv = f"{nc:08x}"
    response = _md5(f"{ha1}:{p['nonce']}:{ncv}:{cnonce}:auth:{ha2}")
    return (
        f'Digest username="{username}", realm="{p.get("realm", REALM)}", nonce="{p["nonce"]}", uri="{uri}", '
        f'response="{response}", qop=auth, nc={ncv}, cnonce="{cnonce}", opaque="{p.get("opaque", "")}", '
        "algorithm=MD5"
    )
