-- No NOTIFY at commit. PostgreSQL serializes the commits of all transactions that notify, in
-- the whole cluster, behind one lock held through the commit's WAL flush: with the trigger, 8
-- sessions committing an outbox row each made 3.1-3.3k commits/s on a server with fsync on,
-- 6.2-6.4k without it. A transaction's own relay is woken in process after its commit; a relay
-- that finds another replica publishing tries again shortly (see outbox.Exclusive).
DROP TRIGGER IF EXISTS outbox_notify ON outbox;
DROP FUNCTION IF EXISTS choreo_outbox_notify();
