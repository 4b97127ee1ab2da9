"""Multipart uploads: read with the maintained ``multipart`` package's streaming parser (the one litestar's
``request.form()`` uses for the web pages), every part spooled to a temporary file above 1 MiB while it
arrives (text parts too, and as bytes: nothing decoded), and bound the bytes all uploads in this process
may hold at once.

Why a budget as well as spooling: the store takes an attachment as bytes, so while a submission is being
stored its files are in memory. ``UploadBudget`` admits an upload (by its Content-Length) only while the
uploads in flight stay under ``max_bytes``; one upload alone is always admitted. An upload that does not
fit waits a little for room (phones often send together at the end of a day), then gets 503 with
Retry-After, an answer Collect shows and the collector can act on; the form stays on the phone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from tempfile import SpooledTemporaryFile
from typing import Any

import anyio
from litestar import Request
from litestar.exceptions import ClientException
from multipart import MultipartSegment, ParserError, ParserLimitReached, PushMultipartParser
from rasoat.core.problems import Problem
from rasoat.server.errors import too_large

RETRY_AFTER_SECONDS = 60


class UploadBudget:
    """Bytes of uploads this process holds at once (one per server process; all on its event loop)."""

    def __init__(self, max_bytes: int, wait_seconds: float) -> None:
        self.max_bytes = max_bytes
        self.wait_seconds = wait_seconds
        self.in_flight = 0
        self._room: asyncio.Condition | None = None  # made on the server's loop, at first use

    def _fits(self, size: int) -> bool:
        return self.in_flight == 0 or self.in_flight + size <= self.max_bytes

    @asynccontextmanager
    async def hold(self, size: int) -> AsyncIterator[None]:
        """Hold ``size`` bytes of the budget for the block; raises ``busy()`` (503, Retry-After) when no
        room frees in time."""
        if self._room is None:
            self._room = asyncio.Condition()
        room = self._room
        async with room:
            try:
                await asyncio.wait_for(room.wait_for(lambda: self._fits(size)), self.wait_seconds)
            except TimeoutError:
                raise busy() from None
            self.in_flight += size
        try:
            yield
        finally:
            async with room:
                self.in_flight -= size
                room.notify_all()


def busy() -> Problem:
    return Problem("server.busy", headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def upload_size(request: Request, limit: int) -> int:
    """What an upload holds of the budget: its Content-Length, or ``limit`` for a chunked body."""
    length = request.headers.get("content-length", "")
    return int(length) if length.isdigit() else limit


def declared_length(request: Request, limit: int) -> int | None:
    """The body's Content-Length (None when chunked); 413 at once when it is over ``limit``."""
    length = request.headers.get("content-length", "")
    if not length.isdigit():
        return None
    if int(length) > limit:
        raise too_large(limit)
    return int(length)


SPOOL_BYTES = 1 << 20  # a part larger than this goes to a temporary file (TMPDIR) as it arrives
MAX_PARTS = 1000


@dataclass
class Part:
    """One part of a multipart body: its form name, file name (None for a plain field) and bytes."""

    name: str
    filename: str | None
    file: Any = field(default_factory=lambda: SpooledTemporaryFile(max_size=SPOOL_BYTES))  # noqa: SIM115

    def read(self) -> bytes:
        """The part's bytes (from disk when spooled there); call from a worker thread."""
        self.file.seek(0)
        return self.file.read()

    @property
    def size(self) -> int:
        self.file.seek(0, 2)
        return int(self.file.tell())


async def read_parts(request: Request, limit: int) -> list[Part]:
    """The parts of a multipart body, in order; OpenRosa errors for a body that is not multipart, is
    malformed, has more than MAX_PARTS parts, or is over ``limit`` (checked as it streams)."""
    content_type, options = request.content_type
    boundary = options.get("boundary")
    if content_type != "multipart/form-data" or not boundary:
        raise Problem("request.not_multipart")
    parts: list[Part] = []
    current: Part | None = None
    try:
        with PushMultipartParser(boundary.encode("latin-1"), max_segment_count=MAX_PARTS) as parser:
            async for chunk in request.stream():  # litestar stops a body over request_max_body_size (413)
                for event in parser.parse(chunk):
                    if isinstance(event, MultipartSegment):
                        current = Part(event.name or "", event.filename)
                        parts.append(current)
                    elif event and current is not None:
                        if current.file._rolled:  # on disk: write off the event loop
                            await anyio.to_thread.run_sync(current.file.write, event)
                        else:
                            current.file.write(event)
            for _event in parser.parse(b""):  # the end of the body: the last boundary must have come
                pass
    except ClientException as exc:
        close_parts(parts)
        if exc.status_code == 413:
            raise too_large(limit) from None
        raise
    except (ParserError, ParserLimitReached) as exc:
        close_parts(parts)
        raise Problem("request.bad_multipart", detail=str(exc)) from None
    except BaseException:
        close_parts(parts)
        raise
    return parts


def close_parts(parts: list[Part]) -> None:
    """Remove the parts' temporary files."""
    for part in parts:
        part.file.close()
