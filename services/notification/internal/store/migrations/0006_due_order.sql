-- The sender takes due emails in the order (next_attempt, queued_at): first-time sends (due at 0)
-- oldest first, then retries by the time they fell due. One index answers the range on
-- next_attempt and the order together, so taking an email reads only the rows it returns;
-- with (status, next_attempt) and (status, queued_at) apart, SQLite's planner took the first and
-- sorted every pending email per take, so a backlog slowed the sender that had to clear it.
DROP INDEX notifications_due;
DROP INDEX notifications_pending;
CREATE INDEX notifications_pending ON notifications (status, next_attempt, queued_at);
