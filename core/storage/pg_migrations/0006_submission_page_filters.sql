-- As sqlite_migrations/0006: keyset paging of one form (0002) also holds ``current`` and the unit, so a
-- list's total and page are answered from the index (an index-only scan for the count).
DROP INDEX submissions_page;
CREATE INDEX submissions_page ON submissions (form_id, received_at, instance_id COLLATE "C", current, unit_code);
