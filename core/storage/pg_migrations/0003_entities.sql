-- ODK Entities (issue 23; core.entities, EntityStore in core.storage.base); as sqlite_migrations/0003.
CREATE TABLE entity_lists (
    name              text        PRIMARY KEY,
    approval_required boolean     NOT NULL DEFAULT false,
    forms             jsonb       NOT NULL DEFAULT '[]',
    properties        jsonb       NOT NULL DEFAULT '[]',
    identifying       jsonb       NOT NULL DEFAULT '[]',
    created_at        timestamptz NOT NULL
);

CREATE SEQUENCE entity_rev;

CREATE TABLE entities (
    seq          bigserial   NOT NULL UNIQUE,
    uuid         text        PRIMARY KEY,
    list_name    text        NOT NULL REFERENCES entity_lists (name),
    label        text        NOT NULL,
    properties   jsonb       NOT NULL DEFAULT '{}',
    version      integer     NOT NULL,
    unit_code    text,
    commune_code text,
    deleted      boolean     NOT NULL DEFAULT false,
    conflict     text,
    forced       boolean     NOT NULL DEFAULT false,
    rev          bigint      NOT NULL,
    created_at   timestamptz NOT NULL,
    created_by   text        NOT NULL,
    updated_at   timestamptz NOT NULL,
    updated_by   text        NOT NULL
);
CREATE INDEX entities_page ON entities (list_name, uuid COLLATE "C");
CREATE INDEX entities_unit ON entities (list_name, unit_code);
CREATE INDEX entities_commune ON entities (list_name, commune_code);

CREATE TABLE entity_versions (
    uuid                text        NOT NULL REFERENCES entities (uuid),
    version             integer     NOT NULL,
    base_version        integer,
    trunk_version       integer,
    branch_id           text,
    branch_base_version integer,
    instance_id         text,
    actor               text        NOT NULL,
    at                  timestamptz NOT NULL,
    label               text        NOT NULL,
    data                jsonb       NOT NULL DEFAULT '{}',
    conflict            text,
    conflicting         jsonb       NOT NULL DEFAULT '[]',
    source_action       text        NOT NULL,
    PRIMARY KEY (uuid, version)
);
CREATE INDEX entity_versions_branch ON entity_versions (uuid, branch_id, branch_base_version);
CREATE INDEX entity_versions_instance ON entity_versions (instance_id);

CREATE TABLE entity_backlog (
    seq                 bigserial   PRIMARY KEY,
    reason              text        NOT NULL,
    instance_id         text        NOT NULL,
    list_name           text        NOT NULL,
    uuid                text        NOT NULL,
    branch_id           text,
    branch_base_version integer,
    block               jsonb       NOT NULL,
    unit_code           text,
    actor               text        NOT NULL,
    held_at             timestamptz NOT NULL
);
CREATE INDEX entity_backlog_branch ON entity_backlog (branch_id, branch_base_version);
CREATE INDEX entity_backlog_uuid ON entity_backlog (uuid);
CREATE INDEX entity_backlog_instance ON entity_backlog (instance_id);
CREATE INDEX entity_backlog_held ON entity_backlog (held_at);
