"""The ready-to-try demo ``rasoat serve`` sets up in an empty data directory.

An open round with the built-in forms for the sample commune Xã Phượng Tiến (05563, Thái Nguyên) and
one demo collector. The demo collector's token is kept in the store (``kv demo/token``) so each start
can print its Collect URL again; revoke it (``rasoat collectors revoke demo``) before real work.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from core.models import AuditEvent, Round, RoundState, User
from core.storage.base import Store

log = logging.getLogger("rasoat.server")

DEMO_COMMUNE = "05563"  # Xã Phượng Tiến, Tỉnh Thái Nguyên
DEMO_ROUND_ID = "demo"
DEMO_USERNAME = "demo"
KV_NS = "demo"


def publish_builtin_forms(store: Store) -> list[str]:
    """Publish the plugin catalogue's forms whose version the store does not have yet; returns their ids.

    Uses ``core.formreg`` (the form registry); a missing registry or a form that fails to compile is
    reported and skipped, so the server still starts.
    """
    try:
        from core import formreg  # type: ignore[attr-defined]
    except ImportError:
        log.warning("core.formreg is not available: built-in forms not published")
        return []
    for name in ("sync_catalogue", "publish_catalogue", "publish_builtin", "publish_all"):
        func = getattr(formreg, name, None)
        if callable(func):
            result: Any = func(store)
            return _ids(result)
    log.warning("core.formreg has no publish function: built-in forms not published")
    return []


def _ids(result: Any) -> list[str]:
    out = []
    for item in result or []:
        out.append(item if isinstance(item, str) else getattr(item, "form_id", str(item)))
    return out


def is_empty(store: Store) -> bool:
    return not store.list_rounds() and not store.list_users()


def setup_demo(store: Store, form_ids: list[str] | None = None) -> str:
    """Create the demo round and collector; returns the collector's token."""
    from core.collectors import create_collector

    if form_ids is None:
        form_ids = [f.form_id for f in store.list_forms()]
    year = date.today().year
    rnd = Round(
        id=DEMO_ROUND_ID,
        name=f"Thử nghiệm / Demo {year}",
        kind="census",
        period=str(year),
        form_ids=sorted(form_ids, key=_form_order),
        unit_codes=[DEMO_COMMUNE],
        state=RoundState.open,
    )
    rnd.history.append({"at": rnd.created_at.isoformat(), "actor": "serve", "action": "demo"})
    store.put_round(rnd)
    user, token = create_collector(
        store, "Người thu thập thử / Demo collector", [DEMO_COMMUNE], [DEMO_ROUND_ID],
        username=DEMO_USERNAME, actor="serve",
    )
    store.kv_put(KV_NS, "token", {"token": token, "user_id": user.id})
    store.append_audit(AuditEvent(actor="serve", action="demo.setup", target=DEMO_ROUND_ID))
    return token


def demo_token(store: Store) -> str | None:
    """The demo collector's token while that collector is still active."""
    entry = store.kv_get(KV_NS, "token")
    if not isinstance(entry, dict):
        return None
    user: User | None = store.get_user(str(entry.get("user_id")))
    if user is None or not user.active:
        return None
    return str(entry.get("token"))


def _form_order(form_id: str) -> tuple[int, str]:
    """f1 … f10 in number order, others after."""
    if form_id.startswith("f") and "_" in form_id and form_id[1:].split("_", 1)[0].isdigit():
        return int(form_id[1:].split("_", 1)[0]), form_id
    return 1000, form_id
