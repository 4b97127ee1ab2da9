-- The next entities.rev is max(rev) + 1 (SQLite has one writer): without this index every entity write
-- scanned the whole table (100,000 entities: 35 minutes to load instead of seconds). As pg_migrations/0005.
CREATE INDEX entities_rev ON entities (rev);
