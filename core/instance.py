"""Parse a submitted instance XML safely into what a Submission holds.

Pure functions shared by the server, the importer and the exports. XML from outside is parsed with
defusedxml: a DTD, an entity declaration or an external reference is refused before anything is built,
and size and depth are bounded. Elements are matched by local name (Collect may write ``orx:meta``).

Field convention (fixed for the whole project): ``fields`` is keyed by the element's path below the root,
'/'-joined ("commune", "household/head_name", "meta/instanceID"); a repeat is a list of dicts keyed the
same way relative to the repeat; values are the strings in the XML ("" for an empty element). Attributes
of inner elements are not kept (the root's ``id``/``version`` are read separately).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import defusedxml
import defusedxml.ElementTree as SafeET
from rasoat.core.problems import Problem

MAX_INSTANCE_BYTES = 10 * 1024 * 1024  # an instance XML (not its attachments); Collect's are a few kB
MAX_DEPTH = 48  # nesting of groups and repeats; a real form stays far below this
MAX_NAME_CHARS = 255
MAX_ID_CHARS = 200  # Collect's are "uuid:" + 36; stores use the id as a file or key name

class InstanceError(Problem, ValueError):
    """The XML cannot be accepted; ``reason`` says why (``too_large``…), the message says it Vietnamese
    first."""

    def __init__(self, reason: str, code: str, /, **params: Any) -> None:
        super().__init__(code, **params)
        self.reason = reason


@dataclass(frozen=True)
class FormShape:
    """What the instance alone cannot tell: which paths are repeats and which fields hold file names."""

    repeats: frozenset[str] = frozenset()
    binaries: frozenset[str] = frozenset()

    @classmethod
    def from_xform(cls, xform: bytes) -> FormShape:
        """Read ``<bind type="binary">`` and ``<repeat nodeset>`` from an XForm (parsed safely too)."""
        root = _parse(xform, max_bytes=max(len(xform), 1))
        binaries: set[str] = set()
        repeats: set[str] = set()
        for el in root.iter():
            tag = _local(el.tag)
            if tag == "bind" and el.get("type", "").split(":")[-1] == "binary":
                binaries.add(el.get("nodeset", ""))
            elif tag == "repeat" and el.get("nodeset"):
                repeats.add(el.get("nodeset", ""))
        return cls(
            repeats=frozenset(_strip_root(p) for p in repeats),
            binaries=frozenset(_strip_root(p) for p in binaries),
        )


@dataclass
class ParsedInstance:
    """One instance, parsed: identity, edit link, fields and the attachment names it expects."""

    form_id: str
    version: str  # "" when the root has no version attribute
    instance_id: str
    deprecated_id: str | None
    instance_name: str | None
    root_name: str
    fields: dict[str, Any] = field(default_factory=dict)
    attachment_names: list[str] = field(default_factory=list)  # file names the XML refers to, in order
    encrypted: bool = False


ShapeSource = FormShape | Callable[[str, str], FormShape | None] | None


def parse_instance(
    xml: bytes,
    shape: ShapeSource = None,
    *,
    max_bytes: int = MAX_INSTANCE_BYTES,
    max_depth: int = MAX_DEPTH,
) -> ParsedInstance:
    """Parse instance XML. ``shape`` may be a FormShape or a callable ``(form_id, version) -> FormShape``
    (called once the root is read, so the XML is parsed only once); without one, repeated siblings are
    taken as repeats and no field is known to hold a file name.

    Raises InstanceError for anything that cannot be stored as it is.
    """
    root = _parse(xml, max_bytes=max_bytes)
    form_id = (_attr(root, "id") or "").strip()
    if not form_id:
        raise InstanceError("no_form_id", "instance.no_form_id")
    version = (_attr(root, "version") or "").strip()
    _check_depth(root, max_depth)

    children = list(root)
    if any(_local(c.tag) == "base64EncryptedKey" for c in children):
        return _parse_envelope(root, form_id, version)

    if callable(shape):
        shape = shape(form_id, version)
    shape = shape or FormShape()
    fields = _flatten(root, "", shape)

    meta = _child(root, "meta")
    instance_id = _text(_child(meta, "instanceID")) if meta is not None else ""
    if not instance_id:  # some hand-written forms put it at the root
        instance_id = _text(_child(root, "instanceID"))
    instance_id = instance_id.strip()
    if not instance_id:
        raise InstanceError("no_instance_id", "instance.no_instance_id")
    deprecated_id = _text(_child(meta, "deprecatedID")).strip() if meta is not None else ""
    _check_id(instance_id, "instanceID")
    if deprecated_id:
        _check_id(deprecated_id, "deprecatedID")
    instance_name = _text(_child(meta, "instanceName")) if meta is not None else ""

    names: list[str] = []
    if shape.binaries:
        _collect_binaries(fields, "", shape.binaries, names)
    _check_names(names)
    return ParsedInstance(
        form_id=form_id,
        version=version,
        instance_id=instance_id,
        deprecated_id=deprecated_id or None,
        instance_name=instance_name or None,
        root_name=_local(root.tag),
        fields=fields,
        attachment_names=list(dict.fromkeys(names)),
    )


def read_identity(xml: bytes, *, max_bytes: int = MAX_INSTANCE_BYTES) -> tuple[str, str]:
    """Only the form id and version of an instance (root attributes), after the same safety checks."""
    root = _parse(xml, max_bytes=max_bytes)
    return (_attr(root, "id") or "").strip(), (_attr(root, "version") or "").strip()


_BAD_NAME = re.compile(r"[\x00-\x1f\x7f/\\:]")


_BAD_ID = re.compile(r"[\x00-\x1f\x7f/\\]")


def _check_id(value: str, what: str) -> None:
    """An instance id names a record everywhere (files, keys, URLs): no paths, no control characters."""
    if len(value) > MAX_ID_CHARS or value in (".", "..") or _BAD_ID.search(value):
        shown = value[:60] + ("…" if len(value) > 60 else "")
        raise InstanceError(
            "bad_instance_id", "instance.bad_id", what=what, shown=repr(shown), max=MAX_ID_CHARS,
        )


def safe_attachment_name(name: str) -> bool:
    """A bare file name that can never leave its folder: no path, no drive, no control characters."""
    return (
        bool(name)
        and len(name) <= MAX_NAME_CHARS
        and name not in (".", "..")
        and not name.startswith(".")
        and not _BAD_NAME.search(name)
        and name == name.strip()
    )


# --- internals -----------------------------------------------------------------------------


def _check_names(names: list[str]) -> None:
    for name in names:
        if not safe_attachment_name(name):
            raise InstanceError("bad_attachment_name", "instance.bad_attachment", name=repr(name))


_REFUSED = (defusedxml.DTDForbidden, defusedxml.EntitiesForbidden, defusedxml.ExternalReferenceForbidden)


def _parse(xml: bytes, *, max_bytes: int) -> ET.Element:
    if len(xml) > max_bytes:
        raise InstanceError("too_large", "instance.too_large", size=len(xml), max=max_bytes)
    if not xml.strip():
        raise InstanceError("not_xml", "instance.empty")
    try:
        return SafeET.fromstring(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except _REFUSED as exc:
        raise InstanceError("xml_entities", "instance.dtd", error=type(exc).__name__) from None
    except ET.ParseError as exc:
        raise InstanceError("not_xml", "instance.malformed", detail=exc) from None
    except (ValueError, LookupError) as exc:  # e.g. an unknown encoding declaration
        raise InstanceError("not_xml", "instance.malformed", detail=exc) from None


def _check_depth(root: ET.Element, max_depth: int) -> None:
    stack = [(root, 1)]
    while stack:
        el, depth = stack.pop()
        if depth > max_depth:
            raise InstanceError("too_deep", "instance.too_deep", max=max_depth)
        stack.extend((c, depth + 1) for c in el)


def _local(tag: Any) -> str:
    if not isinstance(tag, str):  # comments / processing instructions
        return ""
    return tag.rsplit("}", 1)[-1]


def _attr(el: ET.Element, name: str) -> str | None:
    value = el.get(name)
    if value is not None:
        return value
    for key, val in el.attrib.items():  # e.g. orx:version
        if _local(key) == name:
            return val
    return None


def _child(el: ET.Element | None, name: str) -> ET.Element | None:
    if el is None:
        return None
    for c in el:
        if _local(c.tag) == name:
            return c
    return None


def _text(el: ET.Element | None) -> str:
    return (el.text or "") if el is not None else ""


def _strip_root(path: str) -> str:
    """``/data/household/member`` → ``household/member`` (the root's name is arbitrary)."""
    parts = [p.split(":")[-1] for p in path.strip().strip("/").split("/")]
    return "/".join(parts[1:])


def _flatten(el: ET.Element, base: str, shape: FormShape) -> dict[str, Any]:
    """Fields of ``el``'s children, keys relative to ``el``; ``base`` is el's path below the root."""
    out: dict[str, Any] = {}
    _flatten_into(out, el, "", base, shape)
    return out


def _flatten_into(out: dict[str, Any], el: ET.Element, rel: str, base: str, shape: FormShape) -> None:
    kids = [c for c in el if isinstance(c.tag, str)]
    counts: dict[str, int] = {}
    if not shape.repeats:
        for c in kids:
            name = _local(c.tag)
            counts[name] = counts.get(name, 0) + 1
    for c in kids:
        name = _local(c.tag)
        key = f"{rel}{name}"
        full = f"{base}{name}"
        is_repeat = full in shape.repeats if shape.repeats else counts.get(name, 0) > 1
        if is_repeat:
            out.setdefault(key, []).append(_flatten(c, f"{full}/", shape))
        elif len(c):
            _flatten_into(out, c, f"{key}/", f"{full}/", shape)
        else:
            out[key] = c.text or ""


def _collect_binaries(fields: dict[str, Any], base: str, binaries: frozenset[str], names: list[str]) -> None:
    for key, value in fields.items():
        full = f"{base}{key}"
        if isinstance(value, list):
            for item in value:
                _collect_binaries(item, f"{full}/", binaries, names)
        elif full in binaries and value.strip():
            names.append(value.strip())


def _parse_envelope(root: ET.Element, form_id: str, version: str) -> ParsedInstance:
    """An encrypted submission's plaintext envelope: keep only what identifies it and its files."""
    meta = _child(root, "meta")
    instance_id = _text(_child(meta, "instanceID")).strip()
    if not instance_id:
        raise InstanceError("no_instance_id", "instance.envelope_no_id")
    _check_id(instance_id, "instanceID")
    media = [_text(_child(m, "file")).strip() for m in root if _local(m.tag) == "media"]
    xml_file = _text(_child(root, "encryptedXmlFile")).strip()
    names = [n for n in [*media, xml_file] if n]
    _check_names(names)
    fields = {
        "meta/instanceID": instance_id,
        "base64EncryptedKey": _text(_child(root, "base64EncryptedKey")).strip(),
        "encryptedXmlFile": xml_file,
        "media": [{"file": name} for name in media],
        "base64EncryptedElementSignature": _text(_child(root, "base64EncryptedElementSignature")).strip(),
    }
    return ParsedInstance(
        form_id=form_id,
        version=version,
        instance_id=instance_id,
        deprecated_id=None,
        instance_name=None,
        root_name=_local(root.tag),
        fields=fields,
        attachment_names=names,
        encrypted=True,
    )
