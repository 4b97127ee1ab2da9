"""Submissions as OData rows, value for value as Central writes them (reference §2.4, §2.5).

Groups nest as objects; every field of the schema is present (``null`` when empty or absent); numbers,
decimals and geo values are typed, everything else is the XML text. Repeats are a navigation link on
their parent and, with ``$expand=*``, an array of their rows. A repeat row's ``__id`` is Central's: the
SHA-1 of ``Submissions#<instanceId>`` followed by ``%%<group>#`` / ``%%<repeat>#<index>`` for each
element from the root down to the row. Encrypted records carry only ``__id`` and ``__system``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from rasoat.core.models import Submission
from rasoat.server.central.auth import iso
from rasoat.server.central.schema import ROOT_TABLE, FormSchema, Node, Table
from rasoat.server.central.shapes import TO_CENTRAL, actor_id, last_change


@dataclass(frozen=True)
class RowOptions:
    expand: bool = False
    wkt: bool = False
    hidden: frozenset[str] = frozenset()  # personal field names the reader may not see: sent as null
    names: dict[str, str] | None = None  # account id -> display name


def system(sub: Submission, names: dict[str, str] | None) -> dict[str, Any]:
    return {
        "submissionDate": iso(sub.received_at),
        "updatedAt": last_change(sub),
        "deletedAt": None,
        "submitterId": str(actor_id(sub.collector_id)),
        "submitterName": (names or {}).get(sub.collector_id or "", None),
        "attachmentsPresent": len(sub.attachments),
        "attachmentsExpected": len(sub.expected_attachments),
        "status": "notDecrypted" if sub.encrypted else None,
        "reviewState": TO_CENTRAL[sub.review_state],
        "deviceId": _text(sub.fields.get("meta/deviceID")),
        "edits": 1 if sub.deprecated_id else 0,
        "formVersion": sub.form_version,
    }


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def submission_row(sub: Submission, schema: FormSchema, opts: RowOptions) -> dict[str, Any]:
    row: dict[str, Any] = {"__id": sub.instance_id, "__system": system(sub, opts.names)}
    if sub.encrypted:
        return row
    nav = f"Submissions('{_quoted(sub.instance_id)}')"
    _fill(row, schema.root.children, sub.fields, f"Submissions#{sub.instance_id}", nav, schema, opts)
    return row


def _fill(
    out: dict[str, Any],
    nodes: tuple[Node, ...],
    fields: dict[str, Any],
    hash_base: str,
    nav: str,
    schema: FormSchema,
    opts: RowOptions,
) -> None:
    for node in nodes:
        name = node.odata_name
        if node.kind == "group":
            sub_out: dict[str, Any] = {}
            _fill(
                sub_out,
                node.children,
                fields,
                f"{hash_base}%%{node.name}#",
                f"{nav}/{node.name}",
                schema,
                opts,
            )
            out[name] = sub_out
        elif node.kind == "repeat":
            out[f"{name}@odata.navigationLink"] = f"{nav}/{node.name}"
            if opts.expand:
                table = schema.tables[node.table]
                rows = []
                for index, item in enumerate(_items(fields.get(node.key))):
                    rid = _hash(f"{hash_base}%%{node.name}#{index}")
                    child: dict[str, Any] = {"__id": rid}
                    _fill(
                        child,
                        table.children,
                        item,
                        f"{hash_base}%%{node.name}#{index}",
                        f"{nav}/{node.name}('{rid}')",
                        schema,
                        opts,
                    )
                    rows.append(child)
                out[name] = rows
        else:
            raw = fields.get(node.key)
            out[name] = None if node.name in opts.hidden else typed(node.type, raw, opts.wkt)


_PLAIN_ID = re.compile(r"[A-Za-z0-9_.~-]*(?::[A-Za-z0-9_.~-]*)?")


def _quoted(instance_id: str) -> str:
    """``quote(id, safe="")``, fast for the usual ``uuid:…`` ids."""
    if _PLAIN_ID.fullmatch(instance_id):
        return instance_id.replace(":", "%3A")
    return quote(instance_id, safe="")


def _items(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def repeat_rows(
    sub: Submission, schema: FormSchema, table: Table, opts: RowOptions
) -> Iterator[dict[str, Any]]:
    """The rows of one repeat table that one submission holds, with their parent keys."""
    if sub.encrypted:
        return
    yield from _descend(
        sub.fields,
        table.segments,
        0,
        f"Submissions#{sub.instance_id}",
        sub.instance_id,
        f"Submissions('{_quoted(sub.instance_id)}')",
        schema,
        table,
        opts,
        "",
    )


def _descend(
    fields: dict[str, Any],
    segments: tuple[tuple[str, str], ...],
    depth: int,
    hash_base: str,
    parent_id: str,
    nav: str,
    schema: FormSchema,
    table: Table,
    opts: RowOptions,
    prefix: str,
) -> Iterator[dict[str, Any]]:
    kind, name = segments[depth]
    last = depth == len(segments) - 1
    if kind == "group":
        yield from _descend(
            fields,
            segments,
            depth + 1,
            f"{hash_base}%%{name}#",
            parent_id,
            f"{nav}/{name}",
            schema,
            table,
            opts,
            f"{prefix}{name}/",
        )
        return
    for index, item in enumerate(_items(fields.get(f"{prefix}{name}"))):
        rid = _hash(f"{hash_base}%%{name}#{index}")
        if last:
            row: dict[str, Any] = {"__id": rid}
            _fill(
                row,
                table.children,
                item,
                f"{hash_base}%%{name}#{index}",
                f"{nav}/{name}('{rid}')",
                schema,
                opts,
            )
            row[table.parent_key or ""] = parent_id
            yield row
        else:
            yield from _descend(
                item,
                segments,
                depth + 1,
                f"{hash_base}%%{name}#{index}",
                rid,
                f"{nav}/{name}('{rid}')",
                schema,
                table,
                opts,
                "",
            )


# --- values --------------------------------------------------------------------------------------------


def typed(kind: str, raw: Any, wkt: bool = False) -> Any:
    if not isinstance(raw, str) or raw.strip() == "":
        return None
    text = raw.strip()
    try:
        if kind == "int":
            return int(float(text)) if "." in text or "e" in text.lower() else int(text)
        if kind == "decimal":
            return float(text)
        if kind == "geopoint":
            return _point(text, wkt)
        if kind in ("geotrace", "geoshape"):
            return _line(text, wkt, kind == "geoshape")
    except (ValueError, IndexError):
        return raw
    if kind == "dateTime" and len(text) > 3 and text[-3] in "+-" and text[-3:][1:].isdigit():
        return text + ":00"  # "+07" → "+07:00", as Central pads it
    return raw


def _coords(text: str) -> tuple[list[float], float | None]:
    parts = [float(p) for p in text.split()]
    lat, lon = parts[0], parts[1]
    coords = [lon, lat] + ([parts[2]] if len(parts) > 2 else [])
    return coords, parts[3] if len(parts) > 3 else None


def _num(value: float) -> str:
    return repr(int(value)) if value == int(value) else repr(value)


def _point(text: str, wkt: bool) -> Any:
    coords, accuracy = _coords(text)
    if wkt:
        return "POINT (" + " ".join(_num(c) for c in coords) + ")"
    out: dict[str, Any] = {"type": "Point", "coordinates": [_clean(c) for c in coords]}
    if accuracy is not None:
        out["properties"] = {"accuracy": _clean(accuracy)}
    return out


def _line(text: str, wkt: bool, polygon: bool) -> Any:
    points = [_coords(p) for p in text.split(";") if p.strip()]
    coords = [[_clean(c) for c in cs] for cs, _a in points]
    accuracies = [a for _c, a in points]
    if wkt:
        inner = ",".join(" ".join(_num(c) for c in cs) for cs in coords)
        return f"POLYGON (({inner}))" if polygon else f"LINESTRING ({inner})"
    out: dict[str, Any] = {
        "type": "Polygon" if polygon else "LineString",
        "coordinates": [coords] if polygon else coords,
    }
    if any(a is not None for a in accuracies):
        out["properties"] = {"accuracies": [None if a is None else _clean(a) for a in accuracies]}
    return out


def _clean(value: float) -> float | int:
    return int(value) if value == int(value) else value


__all__ = ["ROOT_TABLE", "RowOptions", "repeat_rows", "submission_row", "system", "typed"]
