"""A 201 is a promise: a server killed with SIGKILL mid-load keeps every submission it acknowledged."""

from __future__ import annotations

import pytest
from server_support import (
    ProcessServer,
    assert_all_kept,
    assert_serves_again,
    load_until_cut,
    seeded_store,
)

pytestmark = pytest.mark.slow  # kill -9 under load, then a restart


def test_sigkill_mid_load_loses_no_acknowledged_submission(tmp_path, backend_url) -> None:
    data = tmp_path / "data"
    with seeded_store(data, backend_url) as (_store, seeded):
        pass
    server = ProcessServer(data, "--no-demo", database_url=backend_url).start()
    errors: list[str] = []
    acked = load_until_cut(server.url, seeded.token, server.kill,  # SIGKILL while the clients still send
                           acked_before_cut=150, within=20, at_least=50, extra_files=True, unexpected=errors)
    assert not errors, errors[:3]

    # opens cleanly after the crash (replaying or rebuilding what it must)
    assert_all_kept(data, backend_url, acked)

    # and the server comes back and takes submissions
    assert_serves_again(data, seeded.token, backend_url)
