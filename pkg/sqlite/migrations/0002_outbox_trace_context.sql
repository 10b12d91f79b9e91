-- The W3C trace context (traceparent, tracestate) of the transaction that wrote an outbox row:
-- the relay makes it the parent of the record's producer span, so a trace continues through
-- the outbox. NULL when tracing was off.
ALTER TABLE outbox ADD COLUMN traceparent TEXT;
ALTER TABLE outbox ADD COLUMN tracestate TEXT;
