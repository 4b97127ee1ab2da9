"""SQLite schema migrations of the embedded store: numbered ``NNNN_name.sql`` files, applied in order, each
exactly once, by the same runner as PostgreSQL's (``core.storage.migrations``).

The tables mirror ``pg_migrations`` column for column; where SQLite lacks a type, JSON is text, arrays
are JSON text, times are UTC ISO text of fixed width (so text order is time order) and booleans 0/1.
"""
