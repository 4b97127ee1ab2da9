"""The ready-to-try demo ``rasoat serve`` sets up in an empty data directory.

An open round with the built-in forms for the sample commune Xã Phượng Tiến (05563, Thái Nguyên) and
one demo collector. The demo collector's token is kept in the store (``kv demo/token``) so each start
can print its Collect URL again; revoke it (``rasoat collectors revoke demo``) before real work.
"""

from __future__ import annotations

import hmac
import logging
from datetime import date

from rasoat.core.collectors import create_collector, current_token, hash_token
from rasoat.core.formreg import publish_catalogue
from rasoat.core.models import AuditEvent, User
from rasoat.core.plans import form_allowed
from rasoat.core.round_lifecycle import open_round
from rasoat.core.rounds import create_round
from rasoat.core.storage.base import Store
from rasoat.core.xlsform import XLSFormError

log = logging.getLogger("rasoat.server")

DEMO_COMMUNE = "05563"  # Xã Phượng Tiến, Tỉnh Thái Nguyên
DEMO_ROUND_ID = "demo"
DEMO_USERNAME = "demo"
KV_NS = "demo"


def publish_builtin_forms(store: Store) -> list[str]:
    """Publish the plugin catalogue's forms whose version the store lacks; returns their ids.

    A catalogue that cannot be built (a plugin's form does not compile) is reported and skipped, so the
    server still starts and serves what is already published.
    """

    try:
        return [form.form_id for form in publish_catalogue(store)]
    except (XLSFormError, ValueError) as exc:
        log.warning("built-in forms not published: %s", exc)
        print(f"Cảnh báo / Warning: không đăng được biểu mẫu / forms not published: {exc}")
        return []


def is_empty(store: Store) -> bool:
    return not store.list_rounds() and not store.list_users()


def setup_demo(store: Store, form_ids: list[str] | None = None) -> str:
    """Create the demo round and collector; returns the collector's token."""

    if form_ids is None:  # the national forms and the demo commune's own province plan, no other plan's

        forms = store.list_forms()
        form_ids = [f.form_id for f in forms if form_allowed(f.source, f.form_id, [DEMO_COMMUNE])]

    year = date.today().year
    create_round(
        store, f"Thử nghiệm / Demo {year}", str(year), sorted(form_ids, key=_form_order), [DEMO_COMMUNE],
        kind="census", actor="serve", round_id=DEMO_ROUND_ID,
    )
    open_round(store, DEMO_ROUND_ID, actor="serve")
    user, token = create_collector(
        store, "Người thu thập thử / Demo collector", [DEMO_COMMUNE], [DEMO_ROUND_ID],
        username=DEMO_USERNAME, actor="serve",
    )
    store.kv_put(KV_NS, "token", {"token": token, "user_id": user.id})
    store.append_audit(AuditEvent(actor="serve", action="demo.setup", target=DEMO_ROUND_ID))
    return token


def demo_token(store: Store) -> str | None:
    """The demo collector's working token, or None (revoked, or rotated before tokens were kept): a
    token the server would refuse is never returned, so ``serve`` never prints a dead URL."""
    entry = store.kv_get(KV_NS, "token")
    if not isinstance(entry, dict):
        return None
    user: User | None = store.get_user(str(entry.get("user_id")))
    if user is None or not user.active or not user.token_hash:
        return None
    kept = current_token(store, user)
    if kept is not None:
        return kept
    token = str(entry.get("token"))
    return token if hmac.compare_digest(user.token_hash, hash_token(token)) else None


def _form_order(form_id: str) -> tuple[int, str]:
    """f1 … f10 in number order, others after."""
    if form_id.startswith("f") and "_" in form_id and form_id[1:].split("_", 1)[0].isdigit():
        return int(form_id[1:].split("_", 1)[0]), form_id
    return 1000, form_id
