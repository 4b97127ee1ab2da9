"""Which store a data directory uses: PostgreSQL when a database URL is given, else embedded SQLite."""

from pathlib import Path

from rasoat.core.storage.base import Store
from rasoat.core.storage.embedded import EmbeddedStore


def open_store(data_dir: Path, database_url: str | None = None) -> Store:
    """The store for a data directory: PostgreSQL when a database URL is given, else the embedded one."""
    if database_url:
        # psycopg and its pool are loaded only by a deployment that names a database
        from rasoat.core.storage.postgres import PostgresStore

        return PostgresStore(database_url, files_dir=Path(data_dir))
    return EmbeddedStore(Path(data_dir))
