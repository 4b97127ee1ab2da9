"""Multipart uploads: read with litestar's own streaming parser (``request.form()``, built on the maintained
``multipart`` package), so a part above 1 MiB is spooled to a temporary file while it arrives, and bound
the bytes all uploads in this process may hold at once.

Why a budget as well as spooling: the store takes an attachment as bytes, so while a submission is being
stored its files are in memory. ``UploadBudget`` admits an upload (by its Content-Length) only while the
uploads in flight stay under ``max_bytes``; one upload alone is always admitted. An upload that does not
fit waits a little for room (phones often send together at the end of a day), then gets 503 with
Retry-After, an answer Collect shows and the collector can act on; the form stays on the phone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from litestar import Request
from litestar.datastructures import UploadFile
from litestar.exceptions import ClientException
from rasoat.server.errors import OpenRosaError, bad_request, too_large

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
    async def hold(self, size: int, refuse: Callable[[], Exception] | None = None) -> AsyncIterator[None]:
        """Hold ``size`` bytes of the budget for the block; raises ``refuse()`` (default: the OpenRosa
        503 of ``busy``) when no room frees in time."""
        if self._room is None:
            self._room = asyncio.Condition()
        room = self._room
        async with room:
            try:
                await asyncio.wait_for(room.wait_for(lambda: self._fits(size)), self.wait_seconds)
            except TimeoutError:
                raise (refuse or busy)() from None
            self.in_flight += size
        try:
            yield
        finally:
            async with room:
                self.in_flight -= size
                room.notify_all()


BUSY_MESSAGE = (
    "Máy chủ đang nhận nhiều dữ liệu cùng lúc; biểu mẫu vẫn còn trên máy, hãy gửi lại sau ít phút / "
    "The server is receiving too much data at once; the form stays on the phone, send it again in "
    "a few minutes"
)


def busy() -> OpenRosaError:
    return OpenRosaError(503, BUSY_MESSAGE, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


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


async def read_form(request: Request, limit: int) -> list[tuple[str, Any]]:
    """The parts of a multipart body as (name, str or UploadFile), in order; OpenRosa errors for a body
    that is not multipart, is malformed, or is over ``limit`` (checked as it streams)."""
    content_type, options = request.content_type
    if content_type != "multipart/form-data" or not options.get("boundary"):
        raise bad_request(
            "Dữ liệu phải gửi dạng multipart/form-data / The submission must be multipart/form-data"
        )
    try:
        form = await request.form()
    except ClientException as exc:
        if exc.status_code == 413:
            raise too_large(limit) from None
        raise bad_request(
            f"Không đọc được dữ liệu gửi lên ({exc.detail}) / Unreadable multipart body ({exc.detail})"
        ) from None
    except UnicodeDecodeError:  # a text part (no file name) that is not UTF-8
        raise bad_request("Phần dữ liệu không phải UTF-8 / A text part is not UTF-8") from None
    return list(form.multi_items())


def part_bytes(value: Any) -> bytes:
    """A part's bytes (from its spooled file when it is a file); call from a worker thread."""
    if isinstance(value, UploadFile):
        value.file.seek(0)
        return value.file.read()
    return str(value).encode("utf-8")


def part_size(value: Any) -> int:
    if isinstance(value, UploadFile):
        value.file.seek(0, 2)
        return value.file.tell()
    return len(str(value).encode("utf-8"))


async def close_parts(parts: list[tuple[str, Any]]) -> None:
    for _name, value in parts:
        if isinstance(value, UploadFile):
            await value.close()
