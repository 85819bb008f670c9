-- When the failure before the last one happened: counting an attempt returns
-- it, so each attempt is judged against its own predecessor however many run at once.
ALTER TABLE login_failures ADD COLUMN previous_failed_at BIGINT;
