-- rasoat embedded (SQLite) schema, version 1: the same tables as pg_migrations/0001_initial.sql.

CREATE TABLE forms (
    seq          INTEGER PRIMARY KEY,           -- publication order, breaks published_at ties
    form_id      TEXT    NOT NULL,
    version      TEXT    NOT NULL,
    title        TEXT    NOT NULL,
    md5          TEXT    NOT NULL,
    media        TEXT    NOT NULL DEFAULT '[]',
    encrypted    INTEGER NOT NULL DEFAULT 0,
    source       TEXT    NOT NULL,
    published_at TEXT    NOT NULL,
    xml          BLOB    NOT NULL,
    schema       TEXT    NOT NULL,
    UNIQUE (form_id, version)
);
CREATE INDEX forms_latest ON forms (form_id, published_at, seq);

CREATE TABLE form_media (
    form_id TEXT NOT NULL,
    version TEXT NOT NULL,
    name    TEXT NOT NULL,
    data    BLOB NOT NULL,
    md5     TEXT NOT NULL,
    PRIMARY KEY (form_id, version, name)
) WITHOUT ROWID;

CREATE TABLE rounds (
    id   TEXT PRIMARY KEY,
    data TEXT NOT NULL
);

CREATE TABLE round_snapshots (
    round_id TEXT PRIMARY KEY,
    taken_at TEXT NOT NULL,
    data     TEXT NOT NULL
);

CREATE TABLE users (
    id         TEXT PRIMARY KEY,
    username   TEXT NOT NULL UNIQUE,
    token_hash TEXT,
    data       TEXT NOT NULL
);
CREATE UNIQUE INDEX users_token_hash ON users (token_hash) WHERE token_hash IS NOT NULL;

CREATE TABLE submissions (
    seq                  INTEGER PRIMARY KEY,    -- arrival order within equal received_at (the rowid)
    instance_id          TEXT    NOT NULL UNIQUE,
    form_id              TEXT    NOT NULL,
    form_version         TEXT    NOT NULL,
    round_id             TEXT,
    unit_code            TEXT,
    collector_id         TEXT,
    received_at          TEXT    NOT NULL,
    xml_md5              TEXT    NOT NULL,
    fields               TEXT    NOT NULL DEFAULT '{}',
    attachments          TEXT    NOT NULL DEFAULT '[]',
    expected_attachments TEXT    NOT NULL DEFAULT '[]',
    review_state         TEXT    NOT NULL,
    review_history       TEXT    NOT NULL DEFAULT '[]',
    deprecated_id        TEXT,
    current              INTEGER NOT NULL DEFAULT 1,
    encrypted            INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX submissions_received ON submissions (received_at, seq);
CREATE INDEX submissions_export ON submissions (form_id, round_id, received_at, seq);
CREATE INDEX submissions_indicators ON submissions (form_id, unit_code, review_state, received_at);
CREATE INDEX submissions_unit ON submissions (unit_code, received_at);
CREATE INDEX submissions_collector ON submissions (collector_id, received_at) WHERE collector_id IS NOT NULL;
CREATE INDEX submissions_deprecated ON submissions (deprecated_id) WHERE deprecated_id IS NOT NULL;

CREATE TABLE submission_xml (
    instance_id TEXT PRIMARY KEY REFERENCES submissions (instance_id) ON DELETE CASCADE,
    xml         BLOB NOT NULL,
    md5         TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE attachments (
    instance_id TEXT    NOT NULL REFERENCES submissions (instance_id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    blob_key    TEXT    NOT NULL,
    size        INTEGER NOT NULL,
    md5         TEXT    NOT NULL,
    added_at    TEXT    NOT NULL,
    PRIMARY KEY (instance_id, name)
) WITHOUT ROWID;

CREATE TABLE audit (
    seq     INTEGER PRIMARY KEY,
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL DEFAULT '',
    details TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_actor ON audit (actor, seq);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'nhật ký kiểm toán chỉ được ghi thêm / the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'nhật ký kiểm toán chỉ được ghi thêm / the audit log is append-only'); END;

CREATE TABLE kv (
    namespace  TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    expires_at REAL,                             -- unix time; NULL: never
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
CREATE INDEX kv_expires ON kv (expires_at) WHERE expires_at IS NOT NULL;
