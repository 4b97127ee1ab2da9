"""HTTP Digest authentication (RFC 7616, MD5 with qop=auth) exactly as ODK Collect's okhttp-digest does it.

Collect sends no credentials until it gets a 401 with a ``WWW-Authenticate: Digest`` challenge; it then
reuses the nonce with an increasing ``nc`` until the server says ``stale=true``.

Nonces are stateless: the time they were made, a random part and an HMAC of both under a server secret
(kept in the store, so every server process behind one store checks the others' nonces; created once,
at start-up). A challenge therefore writes nothing: a flood of requests without credentials costs no
store write and no disk sync. Only once a client has proved it knows a password is the nonce's highest
``nc`` recorded (``kv_cas`` in the store's key-value area, shared by the processes) so a replayed
header is refused.

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
import time
import weakref
from dataclasses import dataclass

from rasoat.core.storage.base import Store

REALM = "rasoat"
NONCE_NS = "digest_nonce"
HA1_NS = "digest_ha1"
NONCE_TTL_SECONDS = 3600  # Collect recomputes silently on stale=true, so expiry costs one round trip
SECRET_NS, SECRET_KEY = "digest_secret", "nonce_hmac"
SECRET_TTL_SECONDS = 400 * 24 * 3600  # an expiring entry: not a durable setting migrate-store copies
OPAQUE = "0" * 16  # RFC 7616 wants one; Collect echoes it and nothing rests on it

_secrets: weakref.WeakKeyDictionary[Store, bytes] = weakref.WeakKeyDictionary()

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


def nonce_secret(store: Store, reload: bool = False) -> bytes:
    """The HMAC key of this store's nonces, read once per store object (made once if there is none)."""
    cached = None if reload else _secrets.get(store)
    if cached is not None:
        return cached
    value = store.kv_get(SECRET_NS, SECRET_KEY)
    if not isinstance(value, str):
        fresh = secrets.token_hex(32)
        made = store.kv_cas(SECRET_NS, SECRET_KEY, None, fresh, ttl_seconds=SECRET_TTL_SECONDS)
        value = fresh if made else store.kv_get(SECRET_NS, SECRET_KEY)  # another process was first
    key = bytes.fromhex(str(value))
    _secrets[store] = key
    return key


def _mac(key: bytes, stamp: str) -> str:
    return hmac.new(key, stamp.encode("ascii"), hashlib.sha256).hexdigest()[:32]


def make_nonce(store: Store, now: float | None = None) -> str:
    """``<time, 8 hex><random, 16 hex><HMAC, 32 hex>``: checkable without remembering it."""
    stamp = f"{int(time.time() if now is None else now):08x}{secrets.token_hex(8)}"
    return stamp + _mac(nonce_secret(store), stamp)


def nonce_alive(store: Store, nonce: str, now: float | None = None) -> bool:
    """Was ``nonce`` made by a server of this store less than NONCE_TTL_SECONDS ago?"""
    if len(nonce) != 56:
        return False
    stamp, mac = nonce[:24], nonce[24:]
    try:
        made = int(stamp[:8], 16)
    except ValueError:
        return False
    age = (time.time() if now is None else now) - made
    if not 0 <= age <= NONCE_TTL_SECONDS:
        return False
    if hmac.compare_digest(mac, _mac(nonce_secret(store), stamp)):
        return True
    # another process may have made the secret after this one read none (a race at first start)
    return hmac.compare_digest(mac, _mac(nonce_secret(store, reload=True), stamp))


def challenge(store: Store, stale: bool = False) -> str:
    """A fresh ``WWW-Authenticate`` value; nothing is written (the nonce checks itself)."""
    value = (
        f'Digest realm="{REALM}", qop="auth", algorithm=MD5, nonce="{make_nonce(store)}", '
        f'opaque="{OPAQUE}", charset=UTF-8'
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
    # The password is right; now the nonce must be ours and alive, and its count must move forward.
    if not nonce_alive(store, nonce):
        return DigestResult(stale=True)
    if qop == "auth":
        try:
            count = int(nc, 16)
        except ValueError:
            return DigestResult()
        state = store.kv_get(NONCE_NS, nonce)  # first written here, by a client that knows a password
        seen = int(state.get("nc", 0)) if isinstance(state, dict) else 0
        if count <= seen:
            return DigestResult(stale=True)  # a replay, or requests overtaking each other: start afresh
        # compare-and-set: of two requests (in any processes) carrying one count, only one moves it
        before = state if isinstance(state, dict) else None
        if not store.kv_cas(NONCE_NS, nonce, before, {"nc": count}, ttl_seconds=NONCE_TTL_SECONDS):
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
