"""Shared fixtures. Each room adds its own below; nobody removes another's."""

from __future__ import annotations

import pytest


# --- server: a real uvicorn server on a free port over a seeded embedded store (tests/server_support.py)
@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory):
    """One server for the session: ``.url``, ``.store``, ``.data_dir``, ``.seeded``, ``.admin_token``."""
    import hashlib
    from types import SimpleNamespace

    from server_support import ThreadServer, seed

    from core.storage import open_store
    from server.app import ServerSettings, create_app

    data_dir = tmp_path_factory.mktemp("live-server") / "data"
    store = open_store(data_dir)
    seeded = seed(store)
    admin_token = "test-officer-api-token"
    settings = ServerSettings(
        max_body_bytes=5_000_000, admin_token_hash=hashlib.sha256(admin_token.encode()).hexdigest()
    )
    app = create_app(store, settings)
    server = ThreadServer(app).start()
    yield SimpleNamespace(
        url=server.url, store=store, data_dir=data_dir, seeded=seeded, app=app, admin_token=admin_token
    )
    server.stop()
    store.close()
