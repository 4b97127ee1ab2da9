"""PostgreSQL for tests: the database URL, a fresh schema per test, and the opt-out for developers.

Tests run against ``RASOAT_TEST_DATABASE_URL`` (default postgresql://postgres@127.0.0.1:5432/test),
each in its own schema ``rasoat_test_<random>`` dropped afterwards, so parallel runs never collide.
An unreachable database FAILS the PostgreSQL tests (CI must not pass by skipping them); set
``RASOAT_SKIP_PG=1`` to skip them on a machine without PostgreSQL.

Server tests can reuse this: ``with fresh_schema() as (url, _schema): store = PostgresStore(url, files_dir)``.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def base_url() -> str:
    return os.environ.get("RASOAT_TEST_DATABASE_URL", DEFAULT_URL)


@functools.cache
def _reachable() -> str | None:
    """None when the database answers, else why not."""
    try:
        with psycopg.connect(base_url(), connect_timeout=5) as conn:
            conn.execute("SELECT 1")
        return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def require_pg() -> None:
    """Fail (or, with RASOAT_SKIP_PG=1, skip) when PostgreSQL is not reachable."""
    if os.environ.get("RASOAT_SKIP_PG") == "1":
        pytest.skip("RASOAT_SKIP_PG=1: PostgreSQL tests skipped")
    problem = _reachable()
    if problem is not None:
        pytest.fail(
            f"PostgreSQL không truy cập được / not reachable at {base_url()}: {problem}. "
            "Start it, set RASOAT_TEST_DATABASE_URL, or set RASOAT_SKIP_PG=1 to skip these tests.",
            pytrace=False,
        )


def with_schema(url: str, schema: str) -> str:
    """The URL with rasoat's ``schema=`` parameter (PostgresStore strips it before libpq sees it)."""
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


def drop_schema(schema: str) -> None:
    with psycopg.connect(base_url(), autocommit=True) as conn:
        drop = psycopg.sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE")
        conn.execute(drop.format(psycopg.sql.Identifier(schema)))


@contextmanager
def fresh_schema() -> Iterator[tuple[str, str]]:
    """(database URL naming a new schema, schema name); the schema and all in it are dropped afterwards."""
    require_pg()
    schema = f"rasoat_test_{uuid.uuid4().hex[:12]}"
    try:
        yield with_schema(base_url(), schema), schema
    finally:
        drop_schema(schema)
