"""Shared fixtures. Each room adds its own below; nobody removes another's."""

from __future__ import annotations

import pytest


# --- server: a real uvicorn server on a free port over a seeded embedded store (tests/server_support.py)
@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory):
    """One server for the session: ``.url``, ``.store``, ``.data_dir``, ``.seeded``, ``.admin_token`` (the
    personal API token of the administrator account ``admin``)."""
    from types import SimpleNamespace

    from server_support import ThreadServer, seed

    from core.storage import open_store
    from server.app import ServerSettings, create_app

    data_dir = tmp_path_factory.mktemp("live-server") / "data"
    store = open_store(data_dir)
    seeded = seed(store)
    from core.users import create_user, new_api_token

    create_user(store, "admin", "mật-khẩu-quản-trị", "admin", actor="test")
    admin_token = new_api_token(store, "admin", actor="test")
    settings = ServerSettings(max_body_bytes=5_000_000)
    app = create_app(store, settings)
    server = ThreadServer(app).start()
    yield SimpleNamespace(
        url=server.url, store=store, data_dir=data_dir, seeded=seeded, app=app, admin_token=admin_token
    )
    server.stop()
    store.close()
