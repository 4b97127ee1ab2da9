-- Indicator totals kept per commune (issue 21 item 8): ``Store.aggregate`` keeps each commune's groups and
-- recomputes a commune only when its records changed. ``touched`` is what tells: every insert and update of
-- a submission takes the next value of ``touch_clock`` (a trigger, so that no write path can forget it), and
-- a commune's (count, sum, max) of ``touched`` over ``submissions_touched`` changes with any write to its
-- records, a delete included. SQLite has one writer at a time: a counter row is enough. The triggers'
-- own UPDATE does not fire them again (recursive_triggers is off; the WHEN clause holds if it were on).
-- As pg_migrations/0007.
CREATE TABLE touch_clock (n INTEGER NOT NULL);
INSERT INTO touch_clock (n) SELECT coalesce(max(seq), 0) FROM submissions;
ALTER TABLE submissions ADD COLUMN touched INTEGER;
UPDATE submissions SET touched = seq;
CREATE TRIGGER submissions_touch_insert AFTER INSERT ON submissions
BEGIN
    UPDATE touch_clock SET n = n + 1;
    UPDATE submissions SET touched = (SELECT n FROM touch_clock) WHERE seq = NEW.seq;
END;
CREATE TRIGGER submissions_touch_update AFTER UPDATE ON submissions WHEN NEW.touched IS OLD.touched
BEGIN
    UPDATE touch_clock SET n = n + 1;
    UPDATE submissions SET touched = (SELECT n FROM touch_clock) WHERE seq = NEW.seq;
END;
CREATE INDEX submissions_touched ON submissions (form_id, unit_code, touched);

-- One row per (what was asked, commune and its units with records): the fingerprint its groups were
-- computed at, the groups (JSON; NULL: answers the store cannot total exactly) and when.
CREATE TABLE kept_groups (
    spec        TEXT    NOT NULL,
    part        TEXT    NOT NULL,
    rows        INTEGER NOT NULL,
    touched_sum INTEGER NOT NULL,
    touched_max INTEGER NOT NULL,
    groups      TEXT,
    computed_at TEXT    NOT NULL,
    PRIMARY KEY (spec, part)
) WITHOUT ROWID;
