-- The sender takes due emails oldest first (status = 'pending' ORDER BY queued_at): without this
-- index every take sorted all pending emails, once per email when the sender takes one at a time.
CREATE INDEX notifications_due ON notifications (status, queued_at);
