"""ODK Collect project settings: the JSON Collect imports from a QR code, checked and encoded (zlib + base64).

Format (openrosa reference §6): QR text = base64(zlib(utf-8 JSON)), standard alphabet with padding, a
zlib stream *with* its header (Collect inflates with ``Inflater()``), so the text starts with ``eJ``.
``general`` and ``admin`` are required objects; importing a code *replaces* the project's settings, so
every setting we rely on is written out. The token in ``server_url`` is the only credential: no
username or password, as ODK Central's app-user codes do.

Pure data, no drawing: ``mobile_export.qr`` draws the codes for files and sheets, and the server's web
pages draw them for officers; both build the settings here (core, which neither may be imported by).
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from typing import Any

from rasoat.core.problems import Problem

# Collect's settings schema (client-settings.schema.json) as far as we write it: key → allowed values,
# or a type for free values. An enum mismatch makes Collect silently skip the key; a wrong type
# rejects the whole code, so ``validate_settings`` refuses both before a code is ever printed.
GENERAL_ENUMS: dict[str, tuple[str, ...]] = {
    "protocol": ("odk_default",),
    "appTheme": ("system", "light_theme", "dark_theme"),
    "font_size": ("13", "17", "21", "25", "29"),
    "navigation": ("swipe", "buttons", "swipe_buttons"),
    "form_update_mode": ("manual", "previously_downloaded", "match_exactly"),
    "periodic_form_updates_check": (
        "every_fifteen_minutes", "every_one_hour", "every_six_hours", "every_24_hours",
    ),
    "autosend": ("off", "wifi_only", "cellular_only", "wifi_and_cellular"),
    "constraint_behavior": ("on_swipe", "on_finalize"),
    "image_size": ("original_image_size", "small", "very_small", "medium", "large"),
    "guidance_hint": ("no", "yes", "yes_collapsed"),
}
GENERAL_STRINGS = frozenset(
    {"server_url", "username", "password", "app_language", "metadata_username", "metadata_phonenumber",
     "metadata_email", "reference_layer"}
)
GENERAL_BOOLEANS = frozenset(
    {"automatic_update", "hide_old_form_versions", "delete_send", "high_resolution", "external_app_recording",
     "instance_sync", "analytics", "background_location", "background_recording"}
)
ADMIN_BOOLEANS = frozenset(
    {"edit_saved", "send_finalized", "view_sent", "get_blank", "delete_saved", "change_server",
     "change_project_display", "change_app_theme", "change_app_language", "change_font_size",
     "change_navigation", "maps", "form_update_mode", "periodic_form_updates_check", "automatic_update",
     "hide_old_form_versions", "change_autosend", "delete_after_send", "change_constraint_behavior",
     "high_resolution", "image_size", "guidance_hint", "external_app_recording", "instance_form_sync",
     "change_form_metadata", "analytics", "moving_backwards", "access_settings", "change_language", "jump_to",
     "save_mid", "save_as_draft", "finalize_in_form_entry", "bulk_finalize"}
)
PROJECT_KEYS = frozenset({"name", "icon", "color"})

DEFAULT_COLOR = "#b3261e"  # the red of the national anti-drug campaign posters; readable as a small badge
DEFAULT_ICON = "📋"  # one code point: Collect keeps only the first character
PROJECT_PREFIX = "Rà soát ma túy"
UPDATE_CHECK = "every_one_hour"  # an hourly check is gentle on rural mobile data and still same-day

# What field staff may not change: where data goes, how forms stay matched to the server, sending.
LOCKED_ADMIN: dict[str, bool] = {
    "change_server": False,
    "change_project_display": False,
    "form_update_mode": False,
    "periodic_form_updates_check": False,
    "automatic_update": False,
    "hide_old_form_versions": False,
    "change_autosend": False,
    "delete_after_send": False,
    "change_form_metadata": False,
    "instance_form_sync": False,
    "analytics": False,
}

_COLOR_RE = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


class SettingsError(Problem, ValueError):
    """Settings Collect would reject or silently ignore."""


def project_name(place: str, prefix: str = PROJECT_PREFIX) -> str:
    """The project's name on the phone: "Rà soát ma túy – Xã Phượng Tiến"."""
    return f"{prefix} – {place}" if place else prefix


def collect_settings(
    server_url: str,
    name: str,
    *,
    admin_pw: str,
    color: str = DEFAULT_COLOR,
    icon: str = DEFAULT_ICON,
    collector_name: str = "",
    language: str = "vi",
) -> dict[str, Any]:
    """The settings JSON for one collector's phone.

    ``match_exactly`` keeps the phone's blank forms equal to the server's list (new rounds arrive, closed
    ones go away); finished forms go out on any network as soon as there is one, and Collect deletes
    each record once it is sent (``delete_send``; locked by ``delete_after_send``), so person records do
    not stay readable on a lost phone.
    """
    settings: dict[str, Any] = {
        "general": {
            "protocol": "odk_default",
            "server_url": server_url,
            "username": "",
            "password": "",
            "form_update_mode": "match_exactly",
            "periodic_form_updates_check": UPDATE_CHECK,
            "automatic_update": True,
            "autosend": "wifi_and_cellular",
            "delete_send": True,  # a sent record leaves the phone: person records never stay readable there
            "app_language": language,
            "metadata_username": collector_name,
        },
        "admin": {"admin_pw": admin_pw, **LOCKED_ADMIN},
        "project": {"name": name, "icon": icon, "color": color},
    }
    problems = validate_settings(settings)
    if problems:
        raise SettingsError("settings.invalid", problems="; ".join(problems))
    return settings


def minimal_settings(server_url: str, name: str = "") -> dict[str, Any]:
    """Settings like ODK Central's app-user codes (server URL, sync as forms change, send at once and
    delete what was sent, nothing locked): what ``rasoat serve`` shows for the demo collector. Printed
    codes for field staff come from
    ``collect_settings`` with the admin settings locked."""
    settings: dict[str, Any] = {
        "general": {
            "server_url": server_url, "form_update_mode": "match_exactly", "autosend": "wifi_and_cellular",
            "delete_send": True,
        },
        "admin": {},
        "project": {"name": name or project_name("demo"), "icon": DEFAULT_ICON, "color": DEFAULT_COLOR},
    }
    problems = validate_settings(settings)
    if problems:
        raise SettingsError("settings.invalid", problems="; ".join(problems))
    return settings


DRAFT_ICON = "📝"  # Central's draft codes use it too: a test project is told apart at a glance


def draft_settings(server_url: str, title: str) -> dict[str, Any]:
    """Settings of a form draft's test code (ODK Central's draft QR: the draft URL as the server, the
    project named "[Nháp] title"); records sent are deleted from the phone like every rasoat code's."""
    settings: dict[str, Any] = {
        "general": {
            "server_url": server_url, "form_update_mode": "match_exactly", "autosend": "wifi_and_cellular",
            "delete_send": True,
        },
        "admin": {},
        "project": {"name": f"[Nháp] {title}", "icon": DRAFT_ICON, "color": DEFAULT_COLOR},
    }
    problems = validate_settings(settings)
    if problems:
        raise SettingsError("settings.invalid", problems="; ".join(problems))
    return settings


def validate_settings(settings: Any) -> list[str]:
    """What Collect would reject (wrong types, missing sections) or skip (unknown keys, enum mismatches)."""
    if not isinstance(settings, dict):
        return ["settings must be a JSON object"]
    problems: list[str] = []
    for section in ("general", "admin"):
        if not isinstance(settings.get(section), dict):
            problems.append(f"'{section}' must be an object (Collect requires it)")
    general = settings.get("general")
    if not isinstance(general, dict):
        general = {}
    for key, value in general.items():
        if key in GENERAL_ENUMS:
            if value not in GENERAL_ENUMS[key]:
                problems.append(f"general.{key}={value!r} is not one of {GENERAL_ENUMS[key]}")
        elif key in GENERAL_STRINGS:
            if not isinstance(value, str):
                problems.append(f"general.{key} must be a string")
        elif key in GENERAL_BOOLEANS:
            if not isinstance(value, bool):
                problems.append(f"general.{key} must be true/false")
        else:
            problems.append(f"general.{key} is not a Collect setting")
    url = general.get("server_url", "")
    if not re.match(r"^https?://[^/?#\s]+(/[^?#\s]*)?$", str(url)):
        problems.append("general.server_url must be an http(s) URL without query or fragment")
    admin = settings.get("admin")
    if not isinstance(admin, dict):
        admin = {}
    for key, value in admin.items():
        if key == "admin_pw":
            if not isinstance(value, str):
                problems.append("admin.admin_pw must be a string")
        elif key in ADMIN_BOOLEANS:
            if not isinstance(value, bool):
                problems.append(f"admin.{key} must be true/false")
        else:
            problems.append(f"admin.{key} is not a Collect admin setting")
    project = settings.get("project", {})
    if not isinstance(project, dict):
        problems.append("'project' must be an object")
        project = {}
    for key, value in project.items():
        if key not in PROJECT_KEYS:
            problems.append(f"project.{key} is not a Collect project setting")
        elif not isinstance(value, str):
            problems.append(f"project.{key} must be a string")
    if "color" in project and not _COLOR_RE.match(str(project["color"])):
        problems.append("project.color must be #RRGGBB or #RGB")
    return problems


def encode_settings(settings: dict[str, Any]) -> str:
    """QR text: base64(zlib(JSON)). Non-ASCII stays UTF-8 (3 bytes for "ộ", not 6 for ``\\u1ed9``)."""
    raw = json.dumps(settings, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return base64.b64encode(zlib.compress(raw)).decode("ascii")


def decode_settings(text: str) -> dict[str, Any]:
    """The inverse of ``encode_settings``, as Collect reads a scanned code."""
    data = zlib.decompress(base64.b64decode(text.strip(), validate=True))
    value = json.loads(data.decode("utf-8"))
    if not isinstance(value, dict):
        raise SettingsError("settings.not_an_object")
    return value
