-- Keyset paging of one form's submissions (Store.page_submissions: OData and the Central API), both ways;
-- as pg_migrations/0002 (SQLite's default collation already compares instanceIDs by code point).
CREATE INDEX submissions_page ON submissions (form_id, received_at, instance_id);
