-- Counts of an officer's records without reading the rows (the review queue on every page, a list's
-- total, coverage per unit): unit, form, review state and round from the index alone; as pg_migrations/0004.
CREATE INDEX submissions_counts ON submissions (unit_code, form_id, review_state, current, round_id);
