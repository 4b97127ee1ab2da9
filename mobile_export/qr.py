"""ODK Collect project settings as a QR code, rendered by segno (PNG/SVG files, inline SVG, terminal).

The settings JSON itself (what Collect imports, its checks and its zlib + base64 encoding) lives in
``core.collect_settings`` so the server's web pages can build codes too; its names are re-exported here.
"""

from __future__ import annotations

from pathlib import Path

import segno
from rasoat.core.collect_settings import (  # noqa: F401 - re-exported: mobile_export.qr is their old home
    ADMIN_BOOLEANS,
    DEFAULT_COLOR,
    DEFAULT_ICON,
    GENERAL_BOOLEANS,
    GENERAL_ENUMS,
    GENERAL_STRINGS,
    LOCKED_ADMIN,
    PROJECT_KEYS,
    PROJECT_PREFIX,
    UPDATE_CHECK,
    SettingsError,
    collect_settings,
    decode_settings,
    encode_settings,
    minimal_settings,
    project_name,
    validate_settings,
)


def make_qr(payload: str) -> segno.QRCode:
    """A full-size QR code; level M survives a smudged printout and still fits a phone camera easily."""
    return segno.make(payload, error="m", micro=False, boost_error=False)


def save_qr(payload: str, path: str | Path, scale: int = 8) -> Path:
    """Write the code as PNG or SVG, chosen by the file's suffix."""
    path = Path(path)
    kind = path.suffix.lower().lstrip(".")
    if kind not in ("png", "svg"):
        raise SettingsError("settings.qr_suffix", suffix=path.suffix)
    make_qr(payload).save(str(path), kind=kind, scale=scale, border=4)
    return path


def inline_svg(payload: str) -> str:
    """An ``<svg>`` element with a viewBox and no fixed size, for HTML that sizes it with CSS."""
    return make_qr(payload).svg_inline(scale=1, border=4, omitsize=True, title="ODK Collect QR")


def terminal_qr(server_url: str, name: str = "") -> str:
    """A QR code for a terminal (half-block characters) holding ``minimal_settings``, like ODK Central's
    codes; printed codes for field staff come from ``collect_settings`` with the admin settings locked."""
    import io

    out = io.StringIO()
    segno.make(encode_settings(minimal_settings(server_url, name)), error="l", micro=False).terminal(
        out=out, compact=True, border=2
    )
    return out.getvalue()
