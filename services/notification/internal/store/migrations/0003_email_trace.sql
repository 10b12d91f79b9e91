-- What a queued email needs to be observed when it is sent: the trace context of the handler
-- that queued it (W3C traceparent and tracestate; NULL when tracing was off), which becomes the
-- parent of the delivery's span, and when its chain began (unix milliseconds), for the chain
-- latency measured at the email's delivery.
ALTER TABLE notifications ADD COLUMN traceparent TEXT;
ALTER TABLE notifications ADD COLUMN tracestate TEXT;
ALTER TABLE notifications ADD COLUMN chain_time BIGINT;
