"""One-time password-reset links in the store, on SQLite and PostgreSQL: kept only as a hash, used once,
expired after RESET_LINK_HOURS, replaced by a newer link, refused for a disabled account; audited."""

from __future__ import annotations

from pathlib import Path

import pytest
from rasoat.core.collectors import hash_token
from rasoat.core.storage.base import Store
from rasoat.core.storage.opening import open_store
from rasoat.core.users import (
    RESET_NS,
    ResetLinkError,
    UserError,
    authenticate,
    create_user,
    disable_user,
    issue_reset_link,
    reset_link_user,
    use_reset_link,
)

NEW = "mật-khẩu-mới-đặt-lại"


@pytest.fixture
def store(tmp_path: Path, backend_url: str | None):
    store = open_store(tmp_path / "data", backend_url)
    create_user(store, "xa.quen", "mật-khẩu-cũ-00001", "commune_officer", ["05563"], actor="test")
    yield store
    store.close()


def test_a_link_sets_the_password_once(store: Store) -> None:
    token, _ = issue_reset_link(store, "xa.quen", actor="tinh.admin")
    assert store.kv_get(RESET_NS, token) is None and store.kv_get(RESET_NS, hash_token(token)) is not None
    assert reset_link_user(store, token).username == "xa.quen"
    use_reset_link(store, token, NEW)
    assert authenticate(store, "xa.quen", NEW).username == "xa.quen"
    with pytest.raises(ResetLinkError, match="không còn dùng được"):
        use_reset_link(store, token, "mật-khẩu-lần-hai-0001")
    assert authenticate(store, "xa.quen", NEW).username == "xa.quen"  # the second use changed nothing
    events = [(e.actor, e.action) for e in store.iter_audit() if e.target == "xa.quen"]
    assert ("tinh.admin", "user.reset_link") in events and ("xa.quen", "user.reset_link_used") in events
    assert not any(token in str(e.details) for e in store.iter_audit())


def test_a_short_password_keeps_the_link_usable(store: Store) -> None:
    token, _ = issue_reset_link(store, "xa.quen", actor="tinh.admin")
    with pytest.raises(UserError, match="ít nhất 10"):
        use_reset_link(store, token, "ngắn")
    use_reset_link(store, token, NEW)


def test_expired_replaced_and_disabled_links_are_refused(store: Store) -> None:
    old, _ = issue_reset_link(store, "xa.quen", actor="tinh.admin")
    token, expires = issue_reset_link(store, "xa.quen", actor="tinh.admin")
    with pytest.raises(ResetLinkError):
        reset_link_user(store, old)  # a newer link replaced it
    entry = store.kv_get(RESET_NS, hash_token(token))
    store.kv_put(RESET_NS, hash_token(token), {**entry, "expires": expires - 25 * 3600}, ttl_seconds=3600)
    with pytest.raises(ResetLinkError):
        use_reset_link(store, token, NEW)  # issued 25 hours ago: expired
    fresh, _ = issue_reset_link(store, "xa.quen", actor="tinh.admin")
    disable_user(store, "xa.quen", actor="tinh.admin")
    with pytest.raises(ResetLinkError):
        use_reset_link(store, fresh, NEW)
    with pytest.raises(ResetLinkError):
        reset_link_user(store, "not-a-token-at-all-but-long-enough")


def test_a_reset_and_disabling_end_the_sessions_begun_before(store: Store) -> None:
    """Kept in the stored account, so every server process on the store sees it (server/web/session.py)."""
    from rasoat.server.web import session as sessions

    user = store.get_user_by_name("xa.quen")
    _, before = sessions.start(store, user)
    token, _ = issue_reset_link(store, "xa.quen", actor="tinh.admin")
    use_reset_link(store, token, NEW)
    user = store.get_user_by_name("xa.quen")
    assert sessions.ended_for(before, user)
    _, after = sessions.start(store, user)
    assert not sessions.ended_for(after, store.get_user_by_name("xa.quen"))
    disable_user(store, "xa.quen", actor="tinh.admin")
    assert sessions.ended_for(after, store.get_user_by_name("xa.quen"))
