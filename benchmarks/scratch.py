"""A throwaway PostgreSQL schema for a benchmark run, shared by the benchmark scripts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager


def schema_url(database_url: str, schema: str) -> str:
    """``database_url`` naming ``schema`` (rasoat's own ``schema=`` parameter)."""
    return f"{database_url}{'&' if '?' in database_url else '?'}schema={schema}"


def drop_schema(database_url: str, schema: str) -> None:
    """Drop ``schema`` of ``database_url`` and all it holds, if it is there."""
    import psycopg  # only a PostgreSQL run needs the driver
    from psycopg import sql

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@contextmanager
def scratch_schema(
    database_url: str | None, prefix: str, *, name: str | None = None, keep: bool = False
) -> Iterator[str | None]:
    """The URL of schema ``name`` (by default a fresh ``prefix_<random>``) of ``database_url``, dropped
    afterwards unless ``keep``; None (the embedded store) when no database is named."""
    if not database_url:
        yield None
        return
    schema = name or f"{prefix}_{uuid.uuid4().hex[:8]}"
    try:
        yield schema_url(database_url, schema)
    finally:
        if not keep:
            drop_schema(database_url, schema)
