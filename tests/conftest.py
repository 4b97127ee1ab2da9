"""Shared fixtures. Each room adds its own below; nobody removes another's."""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from types import SimpleNamespace

import pytest

# the web site and browser fixtures of the web page tests (``site``, ``browser``)
pytest_plugins = ["web_support", "fuzz_support"]

# Subprocesses (``rasoat`` commands, servers, test workers) keep the bytecode they compile, outside the
# checkout: with PYTHONDONTWRITEBYTECODE (set in many container images) every start compiled rasoat's
# modules from source again, 0.25 s of CPU each time.
if os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
    os.environ.setdefault("PYTHONPYCACHEPREFIX", str(Path(tempfile.gettempdir()) / "rasoat-test-pycache"))

BACKENDS = ["embedded", "postgres"]

# an audit line whose action has no label (core/audit_actions.py) fails the test that writes it, in this
# process and in the servers and commands it starts
os.environ["RASOAT_STRICT_AUDIT"] = "1"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files with the most slow tests run first. With ``--dist loadfile`` a worker takes the next file
    when it is done with one, so the long files (servers, browsers, wheels, fuzzing) start at once and the
    short ones fill in around them; xdist's own order (most tests first, turned off in pyproject with
    --no-loadscope-reorder) left the slowest files, a few long tests each, to end the run alone."""
    slow = Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.path])  # stable: each file's own order is kept


@pytest.fixture(autouse=True)
def _store_named_by_the_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test's store is the one it names: the in-process CLI (``core.cli.main``, ``command_store``) of
    tests that fill an EmbeddedStore and then run a command must not follow a RASOAT_DATABASE_URL left in
    the shell. PostgreSQL tests name theirs (pg_support: RASOAT_TEST_DATABASE_URL; backend_url below)."""
    monkeypatch.delenv("RASOAT_DATABASE_URL", raising=False)
    monkeypatch.delenv("RASOAT_READ_DATABASE_URL", raising=False)


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashes() -> None:
    """Officer passwords hashed in the test process take argon2id's cheapest parameters (as Django's test
    settings swap in a fast hasher): the production profile costs 0.2 s of CPU a hash, and the suite makes
    hundreds. What is asserted (a password is checked, never stored, throttled) does not depend on the
    cost; servers and CLIs started as subprocesses keep the production profile, and re-hash such a
    password on its next login (core.users.authenticate)."""
    from argon2 import PasswordHasher, profiles
    from rasoat.core import users

    users._hasher = PasswordHasher.from_parameters(profiles.CHEAPEST)


@pytest.fixture(autouse=True, scope="session")
def _protection_keys_in_a_temporary_folder(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Record-protection key files (core.protection) of every test store go to a temporary folder, not
    the tester's ~/.config; servers started as subprocesses inherit it."""
    os.environ["RASOAT_KEY_DIR"] = str(tmp_path_factory.mktemp("protection-keys"))


# --- server: a real uvicorn server on a free port over a seeded store (tests/server_support.py)
@contextmanager
def _serving(data_dir: Path, backend: str) -> Iterator[SimpleNamespace]:
    """A seeded store of ``backend`` (PostgreSQL: a fresh schema, dropped afterwards) served in a thread."""
    from pg_support import fresh_schema
    from rasoat.core.users import create_user, new_api_token
    from server_support import seeded_store, serving

    schema = fresh_schema() if backend == "postgres" else nullcontext((None, None))
    with schema as (database_url, _name), seeded_store(data_dir, database_url) as (store, seeded):
        create_user(store, "admin", "mật-khẩu-quản-trị", "admin", actor="test")
        admin_token = new_api_token(store, "admin", actor="test")
        with serving(store, max_body_bytes=5_000_000) as server:
            yield SimpleNamespace(
                url=server.url, store=store, data_dir=data_dir, seeded=seeded, app=server.app,
                admin_token=admin_token, backend=backend, database_url=database_url,
            )


@pytest.fixture(scope="session")
def _live_server_embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    with _serving(tmp_path_factory.mktemp("live-server") / "data", "embedded") as served:
        yield served


@pytest.fixture(scope="session")
def live_server(_live_server_embedded: SimpleNamespace) -> SimpleNamespace:
    """One server over the embedded store for the session: ``.url``, ``.store``, ``.data_dir``, ``.seeded``,
    ``.app``, ``.admin_token`` (the personal API token of the administrator account ``admin``),
    ``.backend`` ("embedded"), ``.database_url`` (None)."""
    return _live_server_embedded


@pytest.fixture(scope="session", params=BACKENDS)
def live_server_any(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SimpleNamespace]:
    """``live_server`` once per backend: the embedded one (the very same server as ``live_server``) and one
    over PostgreSQL (a fresh schema of RASOAT_TEST_DATABASE_URL; RASOAT_SKIP_PG=1 skips it). Opt in per
    module, so slow browser tests on ``live_server`` are not run twice::

        @pytest.fixture
        def live_server(live_server_any):
            return live_server_any
    """
    if request.param == "embedded":
        yield request.getfixturevalue("_live_server_embedded")
        return
    with _serving(tmp_path_factory.mktemp("live-server-pg") / "data", "postgres") as served:
        yield served


# --- a data dir's store for tests that run `rasoat serve` / the CLI in a subprocess: the database URL
# to hand to server_support's seeded_store / opened_store / ProcessServer / run_cli (None = embedded)
def _backend_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    from pg_support import fresh_schema

    if request.param == "embedded":
        yield None
        return
    with fresh_schema() as (url, _schema):
        yield url


@pytest.fixture(params=BACKENDS)
def backend_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None (embedded) or a fresh PostgreSQL schema's URL, dropped after the test."""
    yield from _backend_url(request)


@pytest.fixture(scope="module", params=BACKENDS)
def module_backend_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """``backend_url`` for a module-scoped fixture (one schema for the module)."""
    yield from _backend_url(request)


