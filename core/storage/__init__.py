"""Storage: one interface (``core.storage.base.Store``), one SQL implementation (``core.storage.sql``) on two
engines, SQLite (the embedded default) and PostgreSQL, under one set of rules (``core.storage.rules``)."""

from pathlib import Path

from rasoat.core.storage.base import Conflict, SaveOutcome, Store, SubmissionQuery

__all__ = ["Conflict", "SaveOutcome", "Store", "SubmissionQuery", "open_store"]


def open_store(data_dir: Path, database_url: str | None = None) -> Store:
    """The store for a data directory: PostgreSQL when a database URL is given, else the embedded one."""
    if database_url:
        from rasoat.core.storage.postgres import PostgresStore

        return PostgresStore(database_url, files_dir=Path(data_dir))
    from rasoat.core.storage.embedded import EmbeddedStore

    return EmbeddedStore(Path(data_dir))
