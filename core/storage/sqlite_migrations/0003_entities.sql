-- ODK Entities (issue 23; core.entities, EntityStore in core.storage.base); as pg_migrations/0003.
CREATE TABLE entity_lists (
    name              TEXT    PRIMARY KEY,
    approval_required INTEGER NOT NULL DEFAULT 0,
    forms             TEXT    NOT NULL DEFAULT '[]',  -- ids of the forms declaring the list
    properties        TEXT    NOT NULL DEFAULT '[]',  -- property names, first-declared order
    identifying       TEXT    NOT NULL DEFAULT '[]',  -- properties sealed at rest
    created_at        TEXT    NOT NULL
);

CREATE TABLE entities (
    seq          INTEGER PRIMARY KEY,
    uuid         TEXT    NOT NULL UNIQUE,
    list_name    TEXT    NOT NULL REFERENCES entity_lists (name),
    label        TEXT    NOT NULL,
    properties   TEXT    NOT NULL DEFAULT '{}',       -- current values; identifying ones sealed
    version      INTEGER NOT NULL,
    unit_code    TEXT,                                -- the unit it is served to (its creator's filing)
    commune_code TEXT,                                -- the commune of unit_code (a loaded hamlet's too)
    deleted      INTEGER NOT NULL DEFAULT 0,
    conflict     TEXT,                                -- NULL, 'soft' or 'hard'
    forced       INTEGER NOT NULL DEFAULT 0,
    rev          INTEGER NOT NULL,                    -- store-wide change counter: the served list's hash
    created_at   TEXT    NOT NULL,
    created_by   TEXT    NOT NULL,
    updated_at   TEXT    NOT NULL,
    updated_by   TEXT    NOT NULL
);
CREATE INDEX entities_page ON entities (list_name, uuid);
CREATE INDEX entities_unit ON entities (list_name, unit_code);
CREATE INDEX entities_commune ON entities (list_name, commune_code);

CREATE TABLE entity_versions (
    uuid                TEXT    NOT NULL REFERENCES entities (uuid),
    version             INTEGER NOT NULL,
    base_version        INTEGER,
    trunk_version       INTEGER,
    branch_id           TEXT,
    branch_base_version INTEGER,
    instance_id         TEXT,                         -- the submission it came from (NULL: the API)
    actor               TEXT    NOT NULL,
    at                  TEXT    NOT NULL,
    label               TEXT    NOT NULL,
    data                TEXT    NOT NULL DEFAULT '{}', -- the properties the source sent
    conflict            TEXT,
    conflicting         TEXT    NOT NULL DEFAULT '[]',
    source_action       TEXT    NOT NULL,
    PRIMARY KEY (uuid, version)
);
CREATE INDEX entity_versions_branch ON entity_versions (uuid, branch_id, branch_base_version);
CREATE INDEX entity_versions_instance ON entity_versions (instance_id);

CREATE TABLE entity_backlog (
    seq                 INTEGER PRIMARY KEY,
    reason              TEXT    NOT NULL,             -- 'branch' or 'approval'
    instance_id         TEXT    NOT NULL,
    list_name           TEXT    NOT NULL,
    uuid                TEXT    NOT NULL,
    branch_id           TEXT,
    branch_base_version INTEGER,
    block               TEXT    NOT NULL,             -- the EntityBlock as received (sealed as stored)
    unit_code           TEXT,
    actor               TEXT    NOT NULL,
    held_at             TEXT    NOT NULL
);
CREATE INDEX entity_backlog_branch ON entity_backlog (branch_id, branch_base_version);
CREATE INDEX entity_backlog_uuid ON entity_backlog (uuid);
CREATE INDEX entity_backlog_instance ON entity_backlog (instance_id);
CREATE INDEX entity_backlog_held ON entity_backlog (held_at);
