"""Reading who a person is: a permission of the officer's role within their units, never a passphrase.

Every page, export and roster that shows identifying fields (names, ID numbers, addresses, …) asks here:

- ``may_read(user, sub)``: the role holds ``view_personal`` (core.scope), the record lies in the
  officer's units, and the server can read the record at all (an ODK-encrypted record it cannot
  decrypt is readable by nobody, so nobody reviews it either);
- ``require_identities(store, user, ...)``: a clear bilingual refusal for a role without the permission
  (a viewer asking for an export with personal columns), itself audited;
- ``identifying_names(store, form_id, version)``: the form's fields that identify a person, which a reader
  without the permission never sees (empty: the form declares none, so such a reader sees no answers);
- ``full_fields(store, sub)``: the record's whole fields, identifying ones included — the one seam
  between the readers and the protection at rest of identifying fields (``with_identities``: the
  same as a whole record, for exports and OData);
- ``person_names(store, units)``: person_key → name from the F1 register of those units (the management
  lists, which the caller audits);
- ``record_read(...)``: the audit entry of each such view, export or download: who, which records (ids
  or the filter that chose them) and how many, never a field value.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rasoat.core import scope
from rasoat.core.audit import record
from rasoat.core.excel.personal import fallback_personal_fields
from rasoat.core.excel.schema import is_personal
from rasoat.core.models import AuditEvent, Submission, User
from rasoat.core.protection import identifying_fields, is_protected, reveal_stored
from rasoat.core.storage.base import Store, SubmissionQuery

MAX_IDS = 200  # an audit entry names at most this many records; a larger read names its filter and count


class IdentityRefused(scope.ScopeError):
    """A role without the identity permission asked for identities (HTTP 403)."""


def readable(sub: Submission) -> bool:
    """Can the server read this record's answers (an ODK-encrypted record not yet opened: no)?"""
    return not sub.encrypted or bool(sub.fields)


def may_read(user: User | None, sub: Submission) -> bool:
    """May ``user`` see who this record is about?"""
    return scope.can(user, scope.VIEW_PERSONAL) and scope.unit_allowed(user, sub.unit_code) and readable(sub)


def require_identities(store: Store, user: User | None, action: str, target: str = "", via: str = "") -> None:
    """Raise ``IdentityRefused`` unless the user's role may read identities; a refusal is audited as
    ``<action>.refused``."""
    if scope.can(user, scope.VIEW_PERSONAL):
        return
    who = user.username if user is not None else "?"
    role = user.role.value if user is not None else "?"
    record(store, who, f"{action}.refused", target, reason="view_personal", role=role, via=via)
    raise IdentityRefused("scope.no_identities", who=who, role=role)


def identifying_names(store: Store, form_id: str, version: str) -> frozenset[str]:
    """Names (and field paths) of the form's questions a reader without the permission never sees: those
    marked ``rasoat:identifying`` when the form declares them (the rest are its statistics, core.protection),
    else the national forms' known list (core.excel.personal); with those marked P/S in either case."""

    try:
        tree = store.form_schema(form_id, version)
    except (KeyError, FileNotFoundError, ValueError):
        return frozenset()
    declared = identifying_fields(tree)
    names: set[str] = set(declared) | {p.rsplit("/", 1)[-1] for p in declared}
    if not declared:
        names |= fallback_personal_fields(form_id, tree)

    def walk(nodes: list[dict[str, Any]]) -> None:
        for node in nodes:
            if is_personal(node):
                names.add(str(node.get("name", "")))
            walk(node.get("children") or [])

    walk(tree.get("children") or [])
    return frozenset(names)


def full_fields(store: Store, sub: Submission) -> dict[str, Any]:
    """The record's fields with its identifying fields, for a reader ``may_read`` allowed: a record
    protected at rest has them opened in memory (core.protection), never written back."""

    if is_protected(sub.fields):
        return reveal_stored(store, sub.instance_id, sub.fields)
    return sub.fields


def with_identities(store: Store, sub: Submission) -> Submission:
    """``sub`` whose fields include its identifying ones (the same object when nothing is protected)."""
    fields = full_fields(store, sub)
    return sub if fields is sub.fields else sub.model_copy(update={"fields": fields})


def person_names(store: Store, unit_codes: list[str]) -> dict[str, str]:
    """person_key → the name the F1 register holds for it, for the units given (records the server
    cannot read give none)."""

    names: dict[str, str] = {}
    for sub in store.iter_submissions(SubmissionQuery(form_id="f1_person", unit_codes=unit_codes)):
        fields = full_fields(store, sub) if readable(sub) else {}
        key, name = fields.get("person_key"), fields.get("person_name") or fields.get("full_name")
        if key and name:
            names[str(key)] = str(name)
    return names


def record_read(
    store: Store,
    actor: str,
    action: str,
    instance_ids: Iterable[str] = (),
    *,
    count: int | None = None,
    target: str = "",
    **details: Any,
) -> AuditEvent:
    """Audit one read of identities: who, which records, how many (``count`` defaults to the ids')."""
    ids = list(instance_ids)
    shown = {"instance_ids": ids[:MAX_IDS]} if ids else {}
    return record(store, actor, action, target, count=len(ids) if count is None else count, **shown,
                  **details)
