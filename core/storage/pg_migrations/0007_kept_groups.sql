-- As sqlite_migrations/0007: ``touched`` takes the next value of a sequence at every insert and update of
-- a submission (a trigger), and ``kept_groups`` holds each commune's indicator groups with the (count,
-- sum, max) of ``touched`` they were computed at. The sum, not only the max: a transaction may commit a
-- smaller value after a larger one was seen; its rows still change the count or the sum.
CREATE SEQUENCE submissions_touch_clock;
ALTER TABLE submissions ADD COLUMN touched bigint;
CREATE FUNCTION submissions_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.touched := nextval('submissions_touch_clock');
    RETURN NEW;
END
$$;
CREATE TRIGGER submissions_touch BEFORE INSERT OR UPDATE ON submissions
    FOR EACH ROW EXECUTE FUNCTION submissions_touch();
UPDATE submissions SET touched = 0;
CREATE INDEX submissions_touched ON submissions (form_id, unit_code, touched);

CREATE TABLE kept_groups (
    spec        text        NOT NULL,
    part        text        NOT NULL,
    rows        bigint      NOT NULL,
    touched_sum numeric     NOT NULL,
    touched_max bigint      NOT NULL,
    groups      text,
    computed_at timestamptz NOT NULL,
    PRIMARY KEY (spec, part)
);
