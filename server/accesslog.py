"""One access-log line per request, with no tokens and no personal data.

The path's ``/key/<token>`` (and ``/password-reset/<token>``) segment is masked, the query string
(``deviceID``, form ids) and client address are left out, and no user name is written.
Times are shown in Vietnam's time zone.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

log = logging.getLogger("rasoat.access")

try:
    from zoneinfo import ZoneInfo

    VN_TZ: Any = ZoneInfo("Asia/Ho_Chi_Minh")
except Exception:  # no tz database on this machine: Vietnam has had no DST since 1975
    VN_TZ = timezone(timedelta(hours=7), "ICT")

_TOKEN = re.compile(r"/(key|password-reset)/[^/]+")


def mask_path(path: str) -> str:
    """``/v1/key/SECRET/projects/1/formList`` → ``/v1/key/***/projects/1/formList``."""
    return _TOKEN.sub(r"/\1/***", path)


def vn_time(at: datetime | None = None) -> str:
    """A UTC time shown in Asia/Ho_Chi_Minh, to the millisecond."""
    at = at or datetime.now(UTC)
    return at.astimezone(VN_TZ).isoformat(timespec="milliseconds")


def access_log_middleware(app: Any) -> Any:
    """ASGI middleware writing ``time method path status bytes duration`` once the response is sent."""

    async def middleware(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        size = 0

        async def send_wrapper(message: dict) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        finally:
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "%s %s %s %d %dB %.1fms",
                    vn_time(),
                    scope.get("method", "-"),
                    mask_path(scope.get("path", "")),
                    status or 500,
                    size,
                    (time.perf_counter() - started) * 1000,
                )

    return middleware


def setup_logging(level: int = logging.INFO) -> None:
    """Plain lines on stderr for the access log and server messages (uvicorn's access log stays off)."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in ("rasoat.access", "rasoat.server", "rasoat.ingest"):
        logger = logging.getLogger(name)
        if not logger.handlers:
            logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
