-- As sqlite_migrations/0005 (PostgreSQL takes rev from the entity_rev sequence; the index keeps the
-- two schemas alike and serves "what changed since" reads).
CREATE INDEX entities_rev ON entities (rev);
