"""Stream a file that a writer produces in a worker thread straight to the HTTP client.

The export writers take a binary file object. ``stream_file`` gives them a ``ChunkPipe``: what they
write is cut into chunks and handed to the response through a small bounded queue, so the download
starts as soon as the first chunk is ready and memory holds a few chunks, whatever the file's size.
A slow client slows the writer down (the queue is full); a client that goes away stops it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import queue
import threading
from collections.abc import AsyncIterator, Callable
from typing import IO, Any, cast

import anyio

log = logging.getLogger("rasoat.server")

CHUNK = 256 * 1024
_END = object()


class ClientGone(Exception):
    """The client closed the connection: the writer stops."""


class ChunkPipe(io.RawIOBase):
    """A write-only, non-seekable binary file whose bytes come out of ``chunks`` in pieces of ``CHUNK``."""

    def __init__(self, depth: int = 8) -> None:
        super().__init__()
        self.chunks: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self.cancelled = threading.Event()
        self._buf = bytearray()
        self._threshold = 1  # the first bytes (a zip's first header) go at once: the download starts

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.cancelled.is_set():
            raise ClientGone
        self._buf += data
        if len(self._buf) >= self._threshold:
            self._put(bytes(self._buf))
            self._buf.clear()
            self._threshold = CHUNK
        return len(data)

    def finish(self) -> None:
        """Send what is left and mark the end."""
        if self._buf:
            self._put(bytes(self._buf))
            self._buf.clear()
        self._put(_END)

    def fail(self, exc: BaseException) -> None:
        self._put(exc)

    def _put(self, item: Any) -> None:
        while not self.cancelled.is_set():
            try:
                self.chunks.put(item, timeout=0.5)
                return
            except queue.Full:
                continue
        raise ClientGone


def stream_file(write: Callable[[IO[bytes]], Any], name: str = "export") -> AsyncIterator[bytes]:
    """Run ``write(file)`` in its own thread and yield the bytes it writes, as they come."""
    pipe = ChunkPipe()

    def run() -> None:
        try:
            write(cast(IO[bytes], pipe))  # a binary file object, as the writers expect
            pipe.finish()
        except ClientGone:
            log.info("%s: the client went away; writing stopped", name)
        except BaseException as exc:  # the response has started: the client gets a cut-off download
            log.exception("%s failed while streaming", name)
            with contextlib.suppress(ClientGone):
                pipe.fail(exc)

    thread = threading.Thread(target=run, name=f"rasoat-{name}", daemon=True)
    thread.start()
    return _chunks(pipe)


async def _chunks(pipe: ChunkPipe) -> AsyncIterator[bytes]:
    try:
        while True:
            item = await anyio.to_thread.run_sync(pipe.chunks.get, abandon_on_cancel=True)
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        pipe.cancelled.set()
