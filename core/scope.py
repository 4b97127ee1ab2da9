"""The one place that decides what a user may see and do.

Every read of submissions for a person (JSON API, web pages, CLI run as a named officer, exports,
indicators) goes through here:

- ``allowed_units(user)``: the unit codes a user may see — their units and everything below them;
  ``None`` means everything and is given to active administrators only.
- ``narrow(query, user)``: the same ``SubmissionQuery`` cut to those units (an empty list when nothing is
  left, which every store answers with no rows). A submission with no unit is visible to
  administrators only.
- ``require_unit`` / ``require_submission`` / ``require_round``: raise ``ScopeError`` (a 403) for one
  thing outside the scope. ``can`` / ``require`` check a permission of the user's role.
- ``export_units`` and ``report_unit`` turn what a user asked an export or report for into units inside
  their scope (their own units when they asked for none).

Roles and what they may do are ``ROLE_PERMISSIONS``; a disabled account may do nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from rasoat.core.models import Role, Round, Submission, User
from rasoat.core.problems import Problem
from rasoat.core.rounds import ancestors_of, scopes_overlap
from rasoat.core.storage.base import SubmissionQuery
from rasoat.core.units import get_units

VIEW = "view"  # submission metadata, counts, indicators
VIEW_PERSONAL = "view_personal"  # field values of person-level records, exports with personal columns
REVIEW = "review"
EDIT = "edit"
EXPORT = "export"
DECRYPT = "decrypt"  # use the project passphrase to read encrypted forms
MANAGE_ROUNDS = "manage_rounds"
MANAGE_COLLECTORS = "manage_collectors"
PUBLISH_FORMS = "publish_forms"
MANAGE_USERS = "manage_users"
MANAGE_KEYS = "manage_keys"
VIEW_AUDIT = "view_audit"
MANAGE_OFFICERS = "manage_officers"  # officer accounts within one's units (core.users.may_manage says whose)
MANAGE_UNIT_LISTS = "manage_unit_lists"  # load the hamlet, school, enterprise, zone lists of one's communes

ALL_PERMISSIONS = frozenset(
    {
        VIEW,
        VIEW_PERSONAL,
        REVIEW,
        EDIT,
        EXPORT,
        DECRYPT,
        MANAGE_ROUNDS,
        MANAGE_COLLECTORS,
        PUBLISH_FORMS,
        MANAGE_USERS,
        MANAGE_KEYS,
        VIEW_AUDIT,
        MANAGE_OFFICERS,
        MANAGE_UNIT_LISTS,
    }
)

ROLE_PERMISSIONS: dict[Role, frozenset[str]] = {
    Role.admin: ALL_PERMISSIONS,
    Role.province_manager: frozenset(
        {
            VIEW,
            VIEW_PERSONAL,
            REVIEW,
            EDIT,
            EXPORT,
            DECRYPT,
            MANAGE_ROUNDS,
            MANAGE_COLLECTORS,
            PUBLISH_FORMS,
            VIEW_AUDIT,
            MANAGE_OFFICERS,
            MANAGE_UNIT_LISTS,
        }
    ),
    Role.commune_officer: frozenset(
        {VIEW, VIEW_PERSONAL, REVIEW, EDIT, EXPORT, DECRYPT, MANAGE_COLLECTORS, MANAGE_UNIT_LISTS}
    ),
    Role.viewer: frozenset({VIEW, EXPORT}),  # aggregates and exports without personal columns
    Role.collector: frozenset(),  # phones submit through OpenRosa; they read nothing back
}


class ScopeError(Problem, PermissionError):
    """Outside the user's units, or not allowed for their role (HTTP 403), or a unit code no registry
    knows (``scope.unknown_unit``, 400)."""


# --- permissions ------------------------------------------------------------------------------


def can(user: User | None, permission: str) -> bool:
    """May this user do ``permission`` (one of the constants above) at all, somewhere in their scope?"""
    if user is None or not user.active:
        return False
    if permission not in ALL_PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")
    return permission in ROLE_PERMISSIONS.get(user.role, frozenset())


def require(user: User | None, permission: str) -> None:
    if not can(user, permission):
        # one code per permission ("scope.no_view"…): the catalogue says what it lets an officer do
        raise ScopeError(f"scope.no_{permission}", who=user.username if user is not None else "?")


# --- units ------------------------------------------------------------------------------------


_CACHE_ATTR = "_rasoat_scope_cache"
_CACHE_SIZE = 1024


def _expand(codes: tuple[str, ...]) -> frozenset[str]:
    """The codes and everything below them, cached on the registry itself (a new registry starts a
    fresh cache)."""

    registry = get_units()
    cache: dict[tuple[tuple[str, ...], int], frozenset[str]] = registry.__dict__.setdefault(_CACHE_ATTR, {})
    key = (codes, len(registry))  # hamlets added to this registry later change its size
    hit = cache.get(key)
    if hit is not None:
        return hit
    out: set[str] = set()
    for code in codes:
        out.add(code)
        if registry.get(code) is not None:
            out.update(registry.expand([code]))
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[key] = frozenset(out)
    return cache[key]


def _allowed(user: User | None) -> frozenset[str] | None:
    """``allowed_units`` as the registry's cached set itself: a page checks thousands of figures' units."""
    if user is None or not user.active:
        return frozenset()
    if user.role is Role.admin:
        return None
    return _expand(tuple(sorted(set(user.unit_codes))))


def allowed_units(user: User | None) -> set[str] | None:
    """Unit codes the user may see (their units and all below); None = everything (administrators)."""
    allowed = _allowed(user)
    return None if allowed is None else set(allowed)


def common_unit(codes: Sequence[str]) -> str | None:
    """The most precise unit that holds every one of ``codes`` (None when they span provinces)."""

    codes = list(dict.fromkeys(codes))
    if not codes:
        return None
    chains = [[c, *ancestors_of(c)] for c in codes]
    for candidate in chains[0]:
        if all(candidate in chain for chain in chains[1:]):
            return candidate
    return None


def unit_allowed(user: User | None, code: str | None) -> bool:
    return unit_check(user)(code)


def unit_check(user: User | None) -> Callable[[str | None], bool]:
    """``unit_allowed`` for one user, the scope looked up once: for a page that checks thousands of units."""
    allowed = _allowed(user)
    if allowed is None:
        return lambda code: True
    return lambda code: code is not None and code in allowed


def narrow(query: SubmissionQuery | None, user: User | None) -> SubmissionQuery:
    """``query`` cut to what ``user`` may see."""
    query = query or SubmissionQuery()
    allowed = allowed_units(user)
    if allowed is None:
        return query
    codes = sorted(allowed if query.unit_codes is None else set(query.unit_codes) & allowed)
    return query.model_copy(update={"unit_codes": codes})


def outside(user: User | None, code: str, **params: Any) -> ScopeError:
    """``code`` names what is outside (``scope.unit_outside``…), said with whose units it is outside."""
    who = user.username if user is not None else "?"
    units = ", ".join(user.unit_codes) if user is not None and user.unit_codes else "—"
    return ScopeError(code, who=who, units=units, **params)


def require_unit(user: User | None, code: str | None) -> None:
    """Raise unless ``code`` is in the user's units: "outside" only for a unit the registry knows (a code
    it does not know is said to be unknown, status 400)."""
    if unit_allowed(user, code):
        return

    if code and get_units().get(code) is None:
        raise ScopeError("scope.unknown_unit", code=code)
    raise outside(user, "scope.unit_outside", unit=code or "—")


def entity_visible(user: User | None, unit_code: str | None) -> bool:
    """May the user see an entity filed under ``unit_code``: by that unit, or by its commune (a hamlet
    the registry does not list yet)."""
    allowed = allowed_units(user)
    unit = unit_code or ""
    return allowed is None or unit in allowed or unit.split("-", 1)[0] in allowed


def require_entity(user: User | None, uuid: str, unit_code: str | None) -> None:
    if not entity_visible(user, unit_code):
        raise outside(user, "scope.entity_outside", uuid=uuid)


def draft_visible(user: User | None, unit_codes: Sequence[str]) -> bool:
    """May the user see, test, publish or replace a form draft made by an officer of ``unit_codes``: when
    all of them lie in the user's scope (a draft made for the whole country, with no units, is only for
    officers of the whole country), as a round a form may join from this officer."""
    allowed = allowed_units(user)
    return allowed is None or (bool(unit_codes) and all(u in allowed for u in unit_codes))


def require_draft(user: User | None, form_id: str, unit_codes: Sequence[str]) -> None:
    if not draft_visible(user, unit_codes):
        raise outside(user, "scope.draft_outside", form=form_id)


def require_submission(user: User | None, sub: Submission) -> None:
    """Raise unless the user may see this submission (by its unit)."""
    if not can(user, VIEW) or not unit_allowed(user, sub.unit_code):
        raise outside(user, "scope.submission_outside", instance_id=sub.instance_id)


def round_visible(user: User | None, rnd: Round) -> bool:
    """A round is visible when it covers some unit of the user's scope (or lies inside it)."""
    allowed = allowed_units(user)
    if allowed is None:
        return True
    if not can(user, VIEW) or user is None:
        return False
    if not rnd.unit_codes:  # a round with no units covers the whole country
        return True

    return scopes_overlap(rnd.unit_codes, user.unit_codes)


def require_round(user: User | None, rnd: Round) -> None:
    if not round_visible(user, rnd):
        raise outside(user, "scope.round_outside", round=rnd.id)


def visible_rounds(rounds: Iterable[Round], user: User | None) -> list[Round]:
    return [r for r in rounds if round_visible(user, r)]


# --- exports and reports ------------------------------------------------------------------------


def export_units(user: User | None, requested: Sequence[str] = ()) -> tuple[str, ...]:
    """The units an export for ``user`` covers: what was asked (each inside the scope, else ScopeError),
    or the user's own units when nothing was asked. Administrators get what they asked (``()`` = all)."""
    require(user, EXPORT)
    assert user is not None
    if allowed_units(user) is None:
        return tuple(requested)
    for code in requested:
        require_unit(user, code)
    return tuple(requested) or tuple(user.unit_codes)


def may_include_personal(user: User | None) -> bool:
    return can(user, VIEW_PERSONAL)


def report_unit(user: User | None, unit_code: str | None) -> str | None:
    """The unit an indicator report is computed for: the one asked (inside the scope), else the user's
    only unit; a user with several units must name one. None = every province (administrators)."""
    require(user, VIEW)
    assert user is not None
    if unit_code:
        require_unit(user, unit_code)
        return unit_code
    if allowed_units(user) is None:
        return None
    if len(user.unit_codes) == 1:
        return user.unit_codes[0]
    raise ScopeError("scope.choose_unit", units=', '.join(user.unit_codes))
