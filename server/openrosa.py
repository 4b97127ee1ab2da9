"""OpenRosa's wire format and nothing else: the XML documents and headers ODK Collect expects.

See shared/reference/openrosa.md §1–4. Collect rejects a form list or manifest whose Content-Type lacks
``text/xml`` or that has no ``X-OpenRosa-Version`` header; ``md5:`` hashes must be lowercase hex of the
exact bytes served; one malformed entry invalidates the whole document.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import formatdate
from xml.sax.saxutils import escape, quoteattr

XFORMS_LIST_NS = "http://openrosa.org/xforms/xformsList"
MANIFEST_NS = "http://openrosa.org/xforms/xformsManifest"
RESPONSE_NS = "http://openrosa.org/http/response"
XML_MEDIA_TYPE = "text/xml"  # litestar adds "; charset=utf-8", so the header is exactly Collect's favourite
ACCEPT_CONTENT_LENGTH = 100_000_000  # what Central advertises; Collect splits uploads above it
OPENROSA_VERSION = "1.0"


@dataclass(frozen=True)
class FormEntry:
    """One ``<xform>`` of a form list; URLs absolute and already percent-encoded."""

    form_id: str
    name: str
    version: str
    md5: str
    download_url: str
    manifest_url: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class MediaEntry:
    """One ``<mediaFile>`` of a manifest; an entity list has a ``type`` (``entityList``, or
    ``approvalEntityList``) and an ``integrity_url`` (entities.md §2.2), and its hash is not the md5 of
    bytes but changes whenever the list the phone would get changes."""

    filename: str
    md5: str
    download_url: str
    type: str | None = None
    integrity_url: str | None = None


def md5_hex(data: bytes) -> str:
    """Lowercase, zero-padded hex MD5, as Collect computes it."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def http_date() -> str:
    """An RFC 7231 date for the ``Date`` header."""
    return formatdate(usegmt=True)


def headers(*, accept_length: bool = True) -> dict[str, str]:
    """Headers every OpenRosa response carries (the HTTP server adds ``Date`` to every response)."""
    out = {"X-OpenRosa-Version": OPENROSA_VERSION}
    if accept_length:
        out["X-OpenRosa-Accept-Content-Length"] = str(ACCEPT_CONTENT_LENGTH)
    return out


def _el(tag: str, text: str) -> str:
    return f"<{tag}>{escape(text)}</{tag}>"


def form_list_xml(entries: Iterable[FormEntry], verbose: bool = False) -> bytes:
    """The ``xformsList`` document (an empty list only when there truly are no forms)."""
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n', f'<xforms xmlns="{XFORMS_LIST_NS}">']
    for e in entries:
        parts.append("<xform>")
        parts.append(_el("formID", e.form_id))
        parts.append(_el("name", e.name or e.form_id))
        parts.append(_el("version", e.version))
        parts.append(_el("hash", f"md5:{e.md5}"))
        if verbose and e.description:
            parts.append(_el("descriptionText", e.description))
        parts.append(_el("downloadUrl", e.download_url))
        if e.manifest_url:
            parts.append(_el("manifestUrl", e.manifest_url))
        parts.append("</xform>")
    parts.append("</xforms>\n")
    return "".join(parts).encode("utf-8")


def manifest_xml(entries: Iterable[MediaEntry]) -> bytes:
    """The ``xformsManifest`` document."""
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n', f'<manifest xmlns="{MANIFEST_NS}">']
    for e in entries:
        parts.append(f"<mediaFile type={quoteattr(e.type)}>" if e.type else "<mediaFile>")
        parts.append(_el("filename", e.filename))
        parts.append(_el("hash", f"md5:{e.md5}"))
        parts.append(_el("downloadUrl", e.download_url))
        if e.integrity_url:
            parts.append(_el("integrityUrl", e.integrity_url))
        parts.append("</mediaFile>")
    parts.append("</manifest>\n")
    return "".join(parts).encode("utf-8")


def integrity_xml(states: dict[str, bool]) -> bytes:
    """The entity integrity answer (entities.md §2.5): for each id asked and known, whether the phone must
    drop it (``deleted`` exactly ``true`` or ``false``: Collect parses it strictly)."""
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<data><entities>']
    for uuid in sorted(states):
        deleted = "true" if states[uuid] else "false"
        parts.append(f"<entity id={quoteattr(uuid)}><deleted>{deleted}</deleted></entity>")
    parts.append("</entities></data>\n")
    return "".join(parts).encode("utf-8")


def response_xml(message: str, nature: str = "") -> bytes:
    """An OpenRosaResponse; Collect shows the first ``<message>`` (unprefixed) to the collector."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<OpenRosaResponse xmlns="{RESPONSE_NS}" items="0">'
        f"<message nature={quoteattr(nature)}>{escape(message)}</message>"
        "</OpenRosaResponse>\n"
    ).encode()
