"""Which columns hold personal data, for forms that do not mark it yet.

The mark itself lives in the XLSForm (``bind::rasoat:sensitive`` or ``instance::rasoat:sensitive`` =
P or S; see ``core.excel.schema.is_personal``). Until the national forms carry it, this list, taken
from the domain analysis (reference/domain.md §2C: P basic personal, S sensitive), keeps the known
personal questions out of exports. It applies only to a form whose schema has no mark at all, so a
marked form is never second-guessed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rasoat.core.excel.schema import is_personal

# form id -> question names that are P or S. "*" means every question except those in KEEP_ALWAYS.
NATIONAL_PERSONAL_FIELDS: dict[str, frozenset[str]] = {
    "f1_person": frozenset({"*"}),  # the whole person register is S
    "f2_pledge": frozenset({"head_name", "household_code"}),
    "f4_enterprise": frozenset({"contact_name", "contact_phone"}),
}
# Location and round metadata stay even in a wholly sensitive form: they are what aggregates need.
KEEP_ALWAYS = frozenset(
    {
        "start",
        "end",
        "today",
        "province",
        "commune",
        "hamlet",
        "ref_date",
        "enumerator_role",
        "entry_type",
        "admin_data_version",
    }
)


def has_marks(schema: Mapping[str, Any]) -> bool:
    """True when any question of the schema carries a sensitivity mark."""

    def walk(children: Iterable[Mapping[str, Any]]) -> bool:
        for node in children:
            if node.get("type") not in {"deviceid", "username"} and is_personal(node):
                return True
            if walk(node.get("children") or []):
                return True
        return False

    return walk(schema.get("children") or [])


def fallback_personal_fields(form_id: str, schema: Mapping[str, Any]) -> frozenset[str]:
    """Names to treat as personal for an unmarked national form (empty for a marked or unknown form)."""
    names = NATIONAL_PERSONAL_FIELDS.get(form_id)
    if not names or has_marks(schema):
        return frozenset()
    if "*" not in names:
        return names
    found: set[str] = set()

    def walk(children: Iterable[Mapping[str, Any]]) -> None:
        for node in children:
            name = str(node.get("name", ""))
            if node.get("type") in {"group", "repeat"}:
                walk(node.get("children") or [])
            elif name and name not in KEEP_ALWAYS and name != "meta":
                found.add(name)

    walk(schema.get("children") or [])
    return frozenset(found)
