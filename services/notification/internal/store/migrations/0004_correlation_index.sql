-- GET /effects looks emails up by the operation that caused them.
CREATE INDEX notifications_correlation ON notifications (correlation_id);
