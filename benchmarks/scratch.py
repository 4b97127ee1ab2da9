"""A throwaway PostgreSQL schema for a benchmark run, shared by the benchmark scripts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def scratch_schema(database_url: str | None, prefix: str) -> Iterator[str | None]:
    """The URL of a fresh schema ``prefix_<random>`` of ``database_url``, dropped afterwards; None (the
    embedded store) when no database is named."""
    if not database_url:
        yield None
        return
    schema = f"{prefix}_{uuid.uuid4().hex[:8]}"
    try:
        yield f"{database_url}{'&' if '?' in database_url else '?'}schema={schema}"
    finally:
        import psycopg  # only a PostgreSQL run needs the driver

        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
