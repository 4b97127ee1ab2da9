-- A list's page and total read from one index, not the rows: keyset paging of one form (0002) now also
-- holds ``current`` and the unit, so the administrator's list of 90,000 pledges counts its current
-- records and a unit's list finds its rows without reading each row (issue 21); as pg_migrations/0006.
-- ``current`` is not second: unit-scoped counts stay on submissions_counts (unit first).
DROP INDEX submissions_page;
CREATE INDEX submissions_page ON submissions (form_id, received_at, instance_id, current, unit_code);
