"""Read timeouts in the server itself, not only in a reverse proxy in front of it.

uvicorn closes an idle keep-alive connection, but a client that sends half a request line or half its
headers, or stops in the middle of a body, holds its connection (and, for a body, the request's memory
budget) for ever. ``TimedHttpProtocol`` is uvicorn's httptools protocol with two timers:

- **headers**: the request line and headers must be complete within ``header_timeout`` seconds of the
  connection opening (or of the previous response, on a kept-alive connection);
- **body**: while a body is arriving, ``body_idle_timeout`` seconds may pass without a byte. This bounds
  a stalled client, not a slow one: a 100 MB upload over a weak 3G link may take many minutes and is
  never cut while it moves. Time the application spends not reading (uvicorn pauses the socket when it
  has buffered enough) does not count.

On expiry the connection is closed; the client (a Collect phone keeps the form) sends again later.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("rasoat.server")

HEADER_TIMEOUT_SECONDS = 20.0
BODY_IDLE_TIMEOUT_SECONDS = 60.0  # Collect's own write timeout is 60 s


class TimedHttpProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol with header and body read timeouts (pass as ``uvicorn.Config(http=…)``)."""

    header_timeout = HEADER_TIMEOUT_SECONDS
    body_idle_timeout = BODY_IDLE_TIMEOUT_SECONDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timer: asyncio.TimerHandle | None = None
        self._limit = 0.0
        self._deadline = 0.0  # monotonic; reset by every body byte while the body timer runs
        self._reading_body = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start(self.header_timeout, body=False)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._timer is None:  # a kept-alive connection's next request: its headers are timed too
            self._start(self.header_timeout, body=False)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._start(self.body_idle_timeout, body=True)

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._deadline = time.monotonic() + self._limit  # moving: no new timer per chunk

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._stop()

    def _start(self, seconds: float, body: bool) -> None:
        self._stop()
        self._limit, self._reading_body = seconds, body
        self._deadline = time.monotonic() + seconds
        self._timer = self.loop.call_later(seconds, self._expired)

    def _stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        now = time.monotonic()
        paused = self._reading_body and self.flow is not None and self.flow.read_paused
        if now < self._deadline or paused:  # bytes came meanwhile, or we are the ones not reading
            if paused:
                self._deadline = now + self._limit
            self._timer = self.loop.call_later(self._deadline - now, self._expired)
            return
        what = "body" if self._reading_body else "headers"
        log.warning("closing a connection from %s: %s stalled for %.0f s", self.client, what, self._limit)
        self.transport.close()
