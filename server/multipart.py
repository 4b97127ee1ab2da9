"""A small, strict ``multipart/form-data`` reader for OpenRosa submissions.

Collect's bodies are simple (one XML part, one part per file, maybe ``*isIncomplete*``); part names and
file names may hold raw UTF-8 (OpenRosa reference §4.3), which generic parsers often decode as Latin-1.
The whole body is already in memory and bounded by the server's size limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class MultipartError(ValueError):
    """The body is not multipart/form-data we can read."""


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None
    content_type: str
    data: bytes


_PARAM = re.compile(r';\s*([A-Za-z0-9_*.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))')


def boundary_of(content_type: str) -> str | None:
    """The boundary parameter of a multipart Content-Type, or None if it is not multipart."""
    main, _, params = content_type.partition(";")
    if not main.strip().lower().startswith("multipart/"):
        return None
    for m in _PARAM.finditer(";" + params):
        if m.group(1).lower() == "boundary":
            value = m.group(2) if m.group(2) is not None else m.group(3)
            return value or None
    return None


def _header_params(value: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in _PARAM.finditer(value):
        raw = m.group(2) if m.group(2) is not None else m.group(3)
        out[m.group(1).lower()] = raw.replace('\\"', '"')
    return out


def parse(body: bytes, boundary: str, max_parts: int = 1000) -> list[Part]:
    """Split a multipart body into parts. Raises MultipartError when it is not well formed."""
    delim = b"--" + boundary.encode("latin-1")
    start = body.find(delim)
    if start < 0:
        raise MultipartError("no boundary found")
    parts: list[Part] = []
    pos = start
    while True:
        pos += len(delim)
        if body.startswith(b"--", pos):  # closing delimiter
            return parts
        # skip transport padding and the CRLF after the delimiter
        eol = body.find(b"\n", pos)
        if eol < 0:
            raise MultipartError("truncated part")
        pos = eol + 1
        head_end = body.find(b"\r\n\r\n", pos)
        sep = 4
        if head_end < 0:
            head_end = body.find(b"\n\n", pos)
            sep = 2
            if head_end < 0:
                raise MultipartError("part without headers")
        headers = _parse_headers(body[pos:head_end])
        data_start = head_end + sep
        nxt = body.find(b"\r\n" + delim, data_start)
        data_end = nxt
        if nxt < 0:
            nxt = body.find(b"\n" + delim, data_start)
            if nxt < 0:
                raise MultipartError("missing closing boundary")
            data_end = nxt
            pos = nxt + 1
        else:
            pos = nxt + 2
        disposition = headers.get("content-disposition", "")
        params = _header_params(";" + disposition.partition(";")[2])
        name = params.get("name")
        if name is None:
            raise MultipartError("part without a name")
        parts.append(
            Part(
                name=name,
                filename=params.get("filename"),
                content_type=headers.get("content-type", ""),
                data=body[data_start:data_end],
            )
        )
        if len(parts) > max_parts:
            raise MultipartError(f"more than {max_parts} parts")


def _parse_headers(raw: bytes) -> dict[str, str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, colon, value = line.partition(":")
        if colon:
            out[key.strip().lower()] = value.strip()
    return out
