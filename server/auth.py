"""Who is calling: a collector's token in the URL, or a named account over HTTP Digest.

Collect never sends credentials before a 401 challenge, so Digest routes answer 401 with a
``WWW-Authenticate: Digest`` header. A well-formed but unknown or revoked token gets 403 (as ODK
Central does) so the phone does not prompt for a password that cannot help.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from rasoat.core.collectors import find_by_token
from rasoat.core.models import User
from rasoat.core.problems import Problem
from rasoat.core.storage.base import Store
from rasoat.core.users import check_throttle, note_failure
from rasoat.server import digest


@dataclass(frozen=True)
class Caller:
    """An authenticated phone: the user, and the URL prefix its links must keep."""

    user: User
    prefix: str  # "/v1/key/<token>/projects/<pid>" or "/v1/projects/<pid>"

    @property
    def via_token(self) -> bool:
        return self.prefix.startswith("/v1/key/")


def by_token(store: Store, token: str, project_id: str) -> Caller:
    user = find_by_token(store, token)
    if user is None:
        raise Problem("auth.token_revoked")
    return Caller(user=user, prefix=f"/v1/key/{quote(token, safe='')}/projects/{quote(project_id, safe='')}")


def by_digest(
    store: Store,
    method: str,
    path: str,
    query: str,
    authorization: str | None,
    project_id: str,
    ip: str | None = None,
) -> Caller:
    """Verify Digest; on any failure raise a 401 carrying a fresh challenge.

    Wrong passwords count towards the same login lock as officers' logins (``core.users``: per name and
    per address); while locked the answer is 429 with Retry-After, whatever the password."""

    stale = False
    if authorization:
        params = digest.parse_authorization(authorization) or {}
        claimed = params.get("username", "")
        if claimed:
            check_throttle(store, claimed, ip, via="digest")  # Throttled: 429 with Retry-After
        result = digest.verify(store, method, authorization)
        if result.username and _same_target(params.get("uri", ""), path, query):
            user = store.get_user_by_name(result.username)
            if user is not None and user.active:
                return Caller(user=user, prefix=f"/v1/projects/{quote(project_id, safe='')}")
        if claimed and not result.username and not result.stale:  # a wrong password, not an old nonce
            note_failure(store, claimed, ip, via="digest")
        stale = result.stale
    raise Problem("auth.required", headers={"WWW-Authenticate": digest.challenge(store, stale=stale)})


def _same_target(uri: str, path: str, query: str) -> bool:
    """The Digest ``uri`` must name this request (path, and query when it has one), not another URL."""
    parts = urlsplit(uri)
    if unquote(parts.path) != unquote(path):
        return False
    return not parts.query or not query or unquote(parts.query) == unquote(query)
