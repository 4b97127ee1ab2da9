"""Sign-off of the yearly classification, level by level (QĐ 28/2025 Art. 7).

A commune proposes its computed class with a comment; the province accepts it or sends it back with a
reason (the commune then proposes again); once every commune is accepted the province approves the
list, which locks it: proposals, send-backs and acceptances are refused until a reopen, an audited action
that needs a reason. What changed in the registers after the approval is shown against the approved
figures (``changes_since_approval``), never written over them. The province's list is due before 20/12.

Who may do what: a commune officer proposes for a commune in their scope; a province manager (or an
administrator) reviews and approves for a province in theirs; nobody sees or touches a unit outside
their scope (core.scope). Every change goes to the audit log (``assessment.*``) and to the history of
the rounds of that assessment year (period ``YYYY-QD28``) that cover the unit.

Stored as one small document per (year, unit) in the store's key-value space, changed by compare-and-set
so two officers acting at once cannot both win.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from rasoat.core.assessment import facts
from rasoat.core.assessment.compute import (
    CommuneAssessment,
    ProvinceAssessment,
    assess_communes,
    assess_province,
)
from rasoat.core.audit import record
from rasoat.core.indicators.periods import vn_today
from rasoat.core.models import Role, User, utcnow
from rasoat.core.problems import Problem, Words
from rasoat.core.rounds import scopes_overlap
from rasoat.core.scope import ScopeError, outside, unit_allowed
from rasoat.core.storage.base import Store
from rasoat.core.units import UnitRegistry, get_units

NAMESPACE = "qd28.signoff"
DEADLINE = (12, 20)  # the province reports to the Ministry of Public Security before 20/12 (Art. 7)

STATES: dict[str, tuple[str, str]] = {
    "not_proposed": ("Chưa đề xuất", "Not yet proposed"),
    "proposed": ("Đã đề xuất", "Proposed"),
    "sent_back": ("Bị trả lại", "Sent back"),
    "accepted": ("Đã chấp nhận", "Accepted"),
}
LIST_STATES: dict[str, tuple[str, str]] = {
    "open": ("Đang xét duyệt", "Under review"),
    "approved": ("Đã phê duyệt (khoá)", "Approved (locked)"),
}


class SignoffError(Problem, ValueError):
    """A sign-off step that is not allowed now; the message is bilingual and one line."""


def state_names(state: str) -> Words:
    return {**STATES, **LIST_STATES}.get(state, (state, state))


def deadline(year: int) -> date:
    return date(year, *DEADLINE)


def _key(year: int, unit: str) -> str:
    return f"{year}/{unit}"


def commune_doc(store: Store, year: int, commune: str) -> dict[str, Any]:
    return store.kv_get(NAMESPACE, _key(year, commune)) or {"state": "not_proposed", "history": []}


def commune_docs(store: Store, year: int, communes: list[str]) -> dict[str, dict[str, Any]]:
    """``commune_doc`` of each commune, read at once."""
    found = store.kv_get_many(NAMESPACE, [_key(year, c) for c in communes])
    return {c: found.get(_key(year, c)) or {"state": "not_proposed", "history": []} for c in communes}


def list_doc(store: Store, year: int, province: str) -> dict[str, Any]:
    return store.kv_get(NAMESPACE, _key(year, province)) or {"state": "open", "history": []}


def _change(
    store: Store, year: int, unit: str, default: dict[str, Any], fn: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    """Read, let ``fn`` check and change a copy, write it only if nobody else wrote meanwhile; then
    announce the steps ``fn`` logged (only once the write has won, so a retry never logs twice)."""
    key = _key(year, unit)
    for _ in range(20):
        old = store.kv_get(NAMESPACE, key)
        doc = {**(old or default), "history": list((old or default).get("history", []))}
        before = len(doc["history"])
        fn(doc)
        if store.kv_cas(NAMESPACE, key, old, doc):
            for entry in doc["history"][before:]:
                _announce(store, unit, year, entry)
            return doc
    raise SignoffError("assessment.signoff_concurrent")


def _log(
    store: Store, doc: dict[str, Any], actor: str, action: str, unit: str, year: int, **details: Any
) -> None:
    """The step in the document's own history (``_change`` announces it once written)."""
    doc["history"].append({"at": utcnow().isoformat(), "by": actor, "action": action, **details})


def _announce(store: Store, unit: str, year: int, entry: dict[str, Any]) -> None:
    """A step in the audit log and in the history of the year's rounds over the unit."""
    details = {k: v for k, v in entry.items() if k not in ("at", "by", "action")}
    actor, action = entry["by"], f"assessment.{entry['action']}"
    record(store, actor, action, target=unit, year=year, **details)
    period = f"{year}-QD28"
    for rnd in store.list_rounds():
        if rnd.period == period and scopes_overlap([unit], rnd.unit_codes):
            rnd.history.append({"at": entry["at"], "actor": actor, "action": action, "unit": unit, **details})
            store.put_round(rnd)


# --- who may --------------------------------------------------------------------------------------


def _require_scope(user: User, unit: str) -> None:
    if not unit_allowed(user, unit):
        raise outside(user, "scope.unit_outside", unit=unit)


def _require_province_role(user: User, province: str) -> None:
    if user.role not in (Role.province_manager, Role.admin):
        raise ScopeError("scope.province_signoff_only", username=user.username, role=user.role.value)
    _require_scope(user, province)


def may_review(user: User, province: str) -> bool:
    """May this user accept, send back, approve and reopen the province's list?"""
    try:
        _require_province_role(user, province)
    except ScopeError:
        return False
    return True


def may_propose(user: User, commune: str) -> bool:
    """May this user propose the commune's result (a commune officer, or the province for it)?"""
    roles = (Role.commune_officer, Role.province_manager, Role.admin)
    return user.role in roles and unit_allowed(user, commune)


def may_set_fact(user: User, unit: str, registry: UnitRegistry | None = None) -> bool:
    """May this user enter a figure of ``unit`` (a commune's population, a commune's or province's key
    route): whoever may propose the unit's result, or review the list of the province it lies in."""
    registry = registry or get_units()
    found = registry.get(unit)
    while found is not None and found.level != "province":
        found = registry.get(found.parent_code) if found.parent_code else None
    return may_propose(user, unit) or (found is not None and may_review(user, found.code))


def set_fact(
    store: Store, user: User, year: int, unit: str, name: str, value: Any, source: str, as_of: str,
    registry: UnitRegistry | None = None,
) -> dict[str, Any]:
    """An officer enters one figure of ``unit`` (``facts.set_fact``: checked, kept with its source and
    history, audited as ``assessment.fact``); 403 ``scope.may_not_set_fact`` for anyone
    ``may_set_fact`` refuses."""
    if not may_set_fact(user, unit, registry):
        raise ScopeError("scope.may_not_set_fact", username=user.username, role=user.role.value, unit=unit)
    return facts.set_fact(store, year, unit, name, value, source, as_of, user.username)


def _province_of(registry: UnitRegistry, commune: str) -> str:
    unit = registry.require(commune)
    if unit.level != "commune" or unit.parent_code is None:
        raise SignoffError("assessment.not_commune", commune=commune)
    return unit.parent_code


def _require_open(store: Store, year: int, province: str) -> None:
    if list_doc(store, year, province)["state"] == "approved":
        raise SignoffError("assessment.list_locked", year=year, province=province)


def figures_of(a: CommuneAssessment) -> dict[str, Any]:
    """What an approval freezes of a commune: the class, R, P, A, C, the route and the flags."""
    i, r = a.inputs, a.result
    return {
        "class": r.klass,
        "r_pct": r.r_pct,
        "a_pct": r.a_pct,
        "population": i.population.value,
        "managed": i.managed.value,
        "venues": i.venues.value,
        "arrested": i.arrested.value,
        "plants": i.plants.value,
        "area_m2": i.area_m2.value,
        "on_route": i.on_route.value,
        "flags": [f.code for f in r.flags],
    }


# --- the steps ------------------------------------------------------------------------------------


def propose(
    store: Store, user: User, year: int, commune: str, comment: str, registry: UnitRegistry | None = None
) -> dict[str, Any]:
    """The commune proposes its computed class; a class flagged for review needs a comment."""

    registry = registry or get_units()
    _require_scope(user, commune)
    if not may_propose(user, commune):
        raise ScopeError("scope.may_not_propose", username=user.username, role=user.role.value)
    province = _province_of(registry, commune)
    _require_open(store, year, province)
    [a] = assess_communes(store, year, [commune], registry)
    if a.result.klass == "unknown":
        raise SignoffError(
            "assessment.cannot_classify",
            flags=tuple("; ".join(f.message[lang] for f in a.result.flags) for lang in (0, 1)),
        )
    if a.result.flags and not comment.strip():
        raise SignoffError("assessment.comment_required")

    def step(doc: dict[str, Any]) -> None:
        if doc["state"] not in ("not_proposed", "sent_back"):
            raise SignoffError("assessment.cannot_propose", commune=commune, state=state_names(doc['state']))
        doc.update(
            state="proposed", comment=comment.strip(), figures=figures_of(a), proposed_by=user.username
        )
        _log(
            store, doc, user.username, "propose", commune, year, klass=a.result.klass, comment=comment.strip()
        )

    return _change(store, year, commune, commune_doc(store, year, commune), step)


def review(
    store: Store,
    user: User,
    year: int,
    commune: str,
    accept: bool,
    reason: str = "",
    registry: UnitRegistry | None = None,
) -> dict[str, Any]:
    """The province accepts a proposal or sends it back with a reason."""
    registry = registry or get_units()
    province = _province_of(registry, commune)
    _require_province_role(user, province)
    _require_open(store, year, province)
    if not accept and not reason.strip():
        raise SignoffError("assessment.return_reason")

    def step(doc: dict[str, Any]) -> None:
        allowed = ("proposed",) if accept else ("proposed", "accepted")
        if doc["state"] not in allowed:
            code = "assessment.cannot_accept" if accept else "assessment.cannot_send_back"
            raise SignoffError(code, commune=commune, state=state_names(doc["state"]))
        if accept:
            doc.update(state="accepted", reviewed_by=user.username)
            _log(store, doc, user.username, "accept", commune, year)
        else:
            doc.update(state="sent_back", reason=reason.strip(), reviewed_by=user.username)
            _log(store, doc, user.username, "send_back", commune, year, reason=reason.strip())

    return _change(store, year, commune, commune_doc(store, year, commune), step)


def approve(
    store: Store, user: User, year: int, province: str, registry: UnitRegistry | None = None
) -> dict[str, Any]:
    """Approve and lock the province's list; every commune must be accepted. Freezes the figures."""
    registry = registry or get_units()
    _require_province_role(user, province)
    communes = [u.code for u in registry.communes(province)]
    waiting = [c for c in communes if commune_doc(store, year, c)["state"] != "accepted"]
    if waiting:
        raise SignoffError("assessment.communes_waiting", count=len(waiting), waiting=', '.join(waiting[:10]))
    pa = assess_province(store, year, province, registry)
    frozen = {c.code: figures_of(c) for c in pa.communes}
    late = vn_today() >= deadline(year)

    def step(doc: dict[str, Any]) -> None:
        if doc["state"] == "approved":
            raise SignoffError("assessment.already_approved")
        doc.update(
            state="approved",
            approved_by=user.username,
            approved_at=utcnow().isoformat(),
            communes=frozen,
            province={
                "class": pa.result.klass,
                "criteria": pa.result.criteria,
                "met": pa.result.met,
                "values": pa.result.values,
            },
        )
        _log(store, doc, user.username, "approve", province, year, communes=len(frozen), late=late)

    return _change(store, year, province, list_doc(store, year, province), step)


def reopen(store: Store, user: User, year: int, province: str, reason: str) -> dict[str, Any]:
    """Unlock an approved list; the reason and the approved figures stay in the history."""
    _require_province_role(user, province)
    if not reason.strip():
        raise SignoffError("assessment.reopen_reason")

    def step(doc: dict[str, Any]) -> None:
        if doc["state"] != "approved":
            raise SignoffError("assessment.not_approved")
        _log(
            store,
            doc,
            user.username,
            "reopen",
            province,
            year,
            reason=reason.strip(),
            approved_at=doc.get("approved_at"),
            approved_by=doc.get("approved_by"),
        )
        doc["state"] = "open"

    return _change(store, year, province, list_doc(store, year, province), step)


# --- what officers see ----------------------------------------------------------------------------

_COMPARED = ("class", "population", "managed", "venues", "arrested", "plants", "area_m2", "on_route")


def changes_since_approval(
    approved: dict[str, Any], pa: ProvinceAssessment
) -> dict[str, dict[str, tuple[Any, Any]]]:
    """Per commune, each compared figure whose value now differs from the approved one: (approved, now)."""
    out: dict[str, dict[str, tuple[Any, Any]]] = {}
    for c in pa.communes:
        then = (approved.get("communes") or {}).get(c.code)
        if then is None:
            continue
        now = figures_of(c)
        diff = {k: (then.get(k), now.get(k)) for k in _COMPARED if then.get(k) != now.get(k)}
        if diff:
            out[c.code] = diff
    return out


def province_status(
    store: Store,
    user: User,
    year: int,
    province: str,
    registry: UnitRegistry | None = None,
    assess: Callable[[], ProvinceAssessment] | None = None,
) -> dict[str, Any]:
    """The province's list as the user may see it: each commune (only their own for a commune officer)
    with its computed class, sign-off state and flags; the list's state, deadline and the changes since
    approval. Outside the user's scope: ScopeError, nothing shown. ``assess``: how the province's
    assessment is had when the caller keeps one (the web page, per version of the data), else computed."""
    registry = registry or get_units()
    unit = registry.require(province)
    own_only = not unit_allowed(user, province)
    codes = [u.code for u in registry.communes(province)]
    visible = [c for c in codes if unit_allowed(user, c)] if own_only else codes
    if not visible:
        raise outside(user, "scope.province_outside", province=province)
    pa = assess() if assess is not None else assess_province(store, year, province, registry)
    lst = list_doc(store, year, province)
    changes = changes_since_approval(lst, pa) if lst["state"] == "approved" else {}
    approved_class = (lst.get("province") or {}).get("class") if lst["state"] == "approved" else None
    province_changed = (
        (approved_class, pa.result.klass) if approved_class and approved_class != pa.result.klass else None
    )
    rows: list[dict[str, Any]] = []
    docs = commune_docs(store, year, [c.code for c in pa.communes if c.code in visible])
    for c in pa.communes:
        if c.code not in visible:
            continue
        doc = docs[c.code]
        rows.append({"assessment": c, "signoff": doc, "changed": changes.get(c.code, {})})
    return {
        "province": province,
        "name": unit.name,
        "year": year,
        "list": lst,
        "rows": rows,
        "assessment": None if own_only else pa,
        "deadline": deadline(year),
        "changes": changes,
        "by_state": {s: sum(1 for r in rows if r["signoff"]["state"] == s) for s in STATES},
        "province_changed": None if own_only else province_changed,
    }
