"""Run the app under uvicorn: one process, or several workers sharing one store.

uvicorn handles SIGTERM/SIGINT gracefully: it stops accepting connections and lets requests in flight
finish (bounded by ``GRACEFUL_SECONDS``) before the store is closed.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from litestar import Litestar
from rasoat.core.indicators.loading import collect
from rasoat.core.plugins import get_manager
from rasoat.core.storage.opening import open_store
from rasoat.core.units import get_units
from rasoat.server.accesslog import setup_logging
from rasoat.server.app import ServerSettings, create_app
from rasoat.server.timeouts import TimedHttpProtocol

GRACEFUL_SECONDS = 60  # Collect's own read timeout; nothing a phone waits for is cut shorter
ENV_CONFIG = "RASOAT_SERVE_CONFIG"


def build_app(data_dir: Path, database_url: str | None, settings: ServerSettings) -> Litestar:
    """Open the store and the app; the store is closed when the app shuts down."""

    store = open_store(data_dir, database_url)
    settings.extra.setdefault("data_dir", str(data_dir))
    if settings.plugin_manager is None:
        settings.plugin_manager = get_manager()
    app = create_app(store, settings)
    app.on_shutdown.append(lambda: store.close())
    settle()
    return app


def settle() -> None:
    """Load what the pages read on every request (the unit registry, the plugins' indicators) before the
    first one, then keep every object alive now out of the garbage collector's walks (``gc.freeze``): a
    full collection, every few dozen requests, then walks what requests made since, not also the
    registry and every module (about 70 ms of CPU each time: the p95 of whichever page it fell on)."""
    get_units()
    collect()
    gc.collect()
    gc.freeze()


def app_from_env() -> Litestar:
    """Factory for uvicorn workers (``--workers N``): the serve command passes its settings as JSON."""
    conf: dict[str, Any] = json.loads(os.environ[ENV_CONFIG])
    setup_logging()
    settings = ServerSettings(
        public_url=conf.get("public_url"),
        project_id=conf.get("project_id", "1"),
    )
    return build_app(Path(conf["data_dir"]), conf.get("database_url"), settings)


def uvicorn_options() -> dict[str, Any]:
    """How uvicorn runs our app (also what tests start): header and body read timeouts in the server
    itself (``server.timeouts``), our access log instead of uvicorn's, a graceful stop."""
    return dict(
        http=TimedHttpProtocol,
        access_log=False,  # ours masks tokens; uvicorn's would print them
        log_level="warning",
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        server_header=False,
    )


def serve(
    data_dir: Path,
    database_url: str | None,
    host: str,
    port: int,
    settings: ServerSettings,
    workers: int = 1,
) -> None:
    """Serve until SIGTERM/SIGINT."""
    setup_logging()
    common: dict[str, Any] = dict(host=host, port=port, **uvicorn_options())
    if workers > 1:
        os.environ[ENV_CONFIG] = json.dumps({
            "data_dir": str(data_dir), "database_url": database_url, "public_url": settings.public_url,
            "project_id": settings.project_id,
        })
        uvicorn.run("rasoat.server.runner:app_from_env", factory=True, workers=workers, **common)
    else:
        server = _QuietServer(uvicorn.Config(build_app(data_dir, database_url, settings), **common))
        server.run()
        if server.stopped_by:
            print("Đã dừng / Stopped", flush=True)


class _QuietServer(uvicorn.Server):
    """uvicorn re-raises SIGTERM after its graceful shutdown (exit status -15); a clean stop exits 0."""

    stopped_by: list[int] = []

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            try:
                yield
            finally:
                self.stopped_by = list(self._captured_signals)
                self._captured_signals.clear()
