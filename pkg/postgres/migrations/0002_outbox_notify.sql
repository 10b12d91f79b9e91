-- Wake the relays when outbox records commit: NOTIFY is delivered at commit, so a relay reads
-- records as soon as they are visible, and polling is only the safety net. The payload is the
-- schema, so relays of services sharing a database can tell whose outbox it is.
CREATE FUNCTION choreo_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('choreo_outbox', current_schema());
    RETURN NULL;
END
$$;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION choreo_outbox_notify();
