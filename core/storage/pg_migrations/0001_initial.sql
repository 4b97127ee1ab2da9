-- rasoat PostgreSQL schema, version 1.
-- Unqualified names: the runner sets search_path to the store's schema.
-- Times are timestamptz (UTC on the wire); parsed submission fields are JSONB; raw XML is bytea in its
-- own table so scans over submissions (indicators, exports) never read it; attachment bytes live in a
-- BlobStore (shared filesystem, later S3) and only their keys and hashes are here.

CREATE TABLE forms (
    form_id      text        NOT NULL,
    version      text        NOT NULL,
    seq          bigserial   NOT NULL,           -- publication order, breaks published_at ties
    title        text        NOT NULL,
    md5          text        NOT NULL,
    media        text[]      NOT NULL DEFAULT '{}',
    encrypted    boolean     NOT NULL DEFAULT false,
    source       text        NOT NULL,
    published_at timestamptz NOT NULL,
    xml          bytea       NOT NULL,
    schema       json        NOT NULL,           -- json, not jsonb: keeps pyxform's key order as written
    PRIMARY KEY (form_id, version)
);
CREATE INDEX forms_latest ON forms (form_id, published_at DESC, seq DESC);

CREATE TABLE form_media (
    form_id text  NOT NULL,
    version text  NOT NULL,
    name    text  NOT NULL,
    data    bytea NOT NULL,
    md5     text  NOT NULL,
    PRIMARY KEY (form_id, version, name),
    FOREIGN KEY (form_id, version) REFERENCES forms ON DELETE CASCADE
);

CREATE TABLE rounds (
    id   text      PRIMARY KEY,
    seq  bigserial NOT NULL,
    data jsonb     NOT NULL                      -- the Round model as JSON
);

CREATE TABLE round_snapshots (
    round_id text        PRIMARY KEY,
    taken_at timestamptz NOT NULL DEFAULT now(),
    data     jsonb       NOT NULL
);

CREATE TABLE users (
    id         text      PRIMARY KEY,
    seq        bigserial NOT NULL,
    username   text      NOT NULL UNIQUE,
    token_hash text,
    data       jsonb     NOT NULL                -- the User model as JSON
);
CREATE UNIQUE INDEX users_token_hash ON users (token_hash) WHERE token_hash IS NOT NULL;

CREATE TABLE submissions (
    seq                  bigserial   NOT NULL UNIQUE,  -- arrival order within equal received_at
    instance_id          text        PRIMARY KEY,      -- one row per instanceID, across all processes
    form_id              text        NOT NULL,
    form_version         text        NOT NULL,
    round_id             text,
    unit_code            text,
    collector_id         text,
    received_at          timestamptz NOT NULL,
    xml_md5              text        NOT NULL,
    fields               jsonb       NOT NULL DEFAULT '{}',
    attachments          text[]      NOT NULL DEFAULT '{}',
    expected_attachments text[]      NOT NULL DEFAULT '{}',
    review_state         text        NOT NULL,
    review_history       jsonb       NOT NULL DEFAULT '[]',
    deprecated_id        text,
    current              boolean     NOT NULL DEFAULT true,
    encrypted            boolean     NOT NULL DEFAULT false
);
-- streaming in received order (iter_submissions with no filter, migrations)
CREATE INDEX submissions_received ON submissions (received_at, seq);
-- exports: one form, one round, in received order
CREATE INDEX submissions_export ON submissions (form_id, round_id, received_at, seq);
-- indicators: counts per form and unit, by review state, within a period
CREATE INDEX submissions_indicators ON submissions (form_id, unit_code, review_state, received_at);
-- officers' lists scoped to units, collectors' own submissions
CREATE INDEX submissions_unit ON submissions (unit_code, received_at);
CREATE INDEX submissions_collector ON submissions (collector_id, received_at) WHERE collector_id IS NOT NULL;
-- edit chains: which version replaced this one
CREATE INDEX submissions_deprecated ON submissions (deprecated_id) WHERE deprecated_id IS NOT NULL;

CREATE TABLE submission_xml (
    instance_id text  PRIMARY KEY REFERENCES submissions ON DELETE CASCADE,
    xml         bytea NOT NULL,
    md5         text  NOT NULL                   -- md5 of exactly these bytes, for verification
);

CREATE TABLE attachments (
    instance_id text        NOT NULL REFERENCES submissions ON DELETE CASCADE,
    name        text        NOT NULL,            -- the client's file name: a label only, never a path
    blob_key    text        NOT NULL,            -- where the BlobStore keeps the bytes (content address)
    size        bigint      NOT NULL,
    md5         text        NOT NULL,
    added_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance_id, name)
);

CREATE TABLE audit (
    seq     bigserial   PRIMARY KEY,             -- append order
    at      timestamptz NOT NULL,
    actor   text        NOT NULL,
    action  text        NOT NULL,
    target  text        NOT NULL DEFAULT '',
    details jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_actor ON audit (actor, seq);

-- The audit log is append-only: the database itself refuses to change or remove a line.
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'nhật ký kiểm toán chỉ được ghi thêm / the audit log is append-only';
END
$$;
CREATE TRIGGER audit_no_update_delete BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

-- Small shared state (sessions, digest nonces, throttles) so server processes keep none.
CREATE TABLE kv (
    namespace  text        NOT NULL,
    key        text        NOT NULL,
    value      jsonb       NOT NULL,
    expires_at timestamptz,
    PRIMARY KEY (namespace, key)
);
CREATE INDEX kv_expires ON kv (expires_at) WHERE expires_at IS NOT NULL;
