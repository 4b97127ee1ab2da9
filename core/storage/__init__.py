"""Storage: one interface (``core.storage.base.Store``), one SQL implementation (``core.storage.sql``) on two
engines, SQLite (the embedded default) and PostgreSQL, under one set of rules (``core.storage.rules``);
``core.storage.opening.open_store`` picks the engine. The package imports none of them, so importing a rule
module does not load every backend."""
