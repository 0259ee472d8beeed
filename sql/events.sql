-- sql/events.sql: the read side of the event outbox: poll_events, ack_events, prune_events, consumers,
-- drop_consumer, day partitions, the operators' views, the relay, the settings and the privileges.
-- Events are inserted directly here (the ledger's operations write them the same way). Errors show their
-- SQLSTATE through try().
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS ducto CASCADE;
CREATE EXTENSION ducto;
RESET client_min_messages;
\pset null '(null)'

CREATE OR REPLACE FUNCTION try(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  result text;
BEGIN
  EXECUTE sql INTO result;
  RETURN result;
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- ---- settings ---------------------------------------------------------------------------------------
SHOW ducto.notify;
SHOW ducto.notify_channel;
SHOW ducto.max_event_retention;
SHOW ducto.event_retention;
SHOW ducto.notify_interval;
SHOW ducto.expiry_interval;
SHOW ducto.prune_interval;
SELECT try($$SET ducto.notify = 'sometimes'$$);
SELECT try($$SET ducto.notify_channel = ''$$);
SELECT try($$SET ducto.notify_channel = '$$ || repeat('c', 64) || $$'$$);
SELECT try($$SET ducto.no_such_setting = 1$$);
SET ducto.notify = worker;
SHOW ducto.notify;
SET ducto.notify = off;
SHOW ducto.notify;
RESET ducto.notify;
-- Per role, as the issue asks.
CREATE ROLE regress_events_role;
ALTER ROLE regress_events_role SET ducto.notify = worker;
SELECT rolconfig FROM pg_roles WHERE rolname = 'regress_events_role';

-- ---- an empty outbox --------------------------------------------------------------------------------
SELECT count(*) AS events FROM ducto.poll_events('empty');
-- The first poll created the consumer, at the start of the outbox.
SELECT consumer, acked_id, delivered_id, pending_events FROM ducto.consumers();
SELECT ducto.ack_events('empty', 0) AS acknowledged;

-- ---- poll and ack -----------------------------------------------------------------------------------
INSERT INTO ducto.events (type, user_id, amount, balance_after, data)
VALUES ('credits.added', 'alice', 100, 100, '{"source": "purchase"}'),
       ('credits.deducted', 'alice', -10, 90, '{}'),
       ('credits.added', 'bob', 5, 5, '{}'),
       ('credits.refunded', 'alice', 10, 100, '{"reason": "demo"}'),
       ('credits.deducted', 'bob', -5, 0, '{}');
SELECT id, type, user_id, amount, balance_after, data FROM ducto.poll_events('worker_a', 3);
-- A poll does not move the durable cursor: the same events again.
SELECT id FROM ducto.poll_events('worker_a', 3);
-- Nothing past what was delivered can be acknowledged.
SELECT try($$SELECT ducto.ack_events('worker_a', 4)$$);
SELECT try($$SELECT ducto.ack_events('worker_a', 999)$$);
SELECT ducto.ack_events('worker_a', 2) AS acknowledged;
SELECT id FROM ducto.poll_events('worker_a', 2);
SELECT ducto.ack_events('worker_a', 4) AS acknowledged;
-- Acknowledging again, or an older event, changes nothing.
SELECT ducto.ack_events('worker_a', 4) AS acknowledged;
SELECT ducto.ack_events('worker_a', 1) AS acknowledged;
SELECT id FROM ducto.poll_events('worker_a');
SELECT ducto.ack_events('worker_a', 5) AS acknowledged;
SELECT count(*) AS events FROM ducto.poll_events('worker_a');
-- A consumer that was never given event 5 cannot acknowledge it.
SELECT try($$SELECT ducto.ack_events('empty', 5)$$);

-- ---- types filter -----------------------------------------------------------------------------------
SELECT id, type FROM ducto.poll_events('refunds', 100, ARRAY['credits.refunded']);
SELECT id, type FROM ducto.poll_events('adds', 100, ARRAY['credits.added', 'credits.no_such_type']);
SELECT count(*) AS events FROM ducto.poll_events('nothing', 100, '{}');
-- A filtered consumer acknowledges up to what it was given, skipping the other types.
SELECT ducto.ack_events('refunds', 4) AS acknowledged;
SELECT count(*) AS events FROM ducto.poll_events('refunds', 100, ARRAY['credits.refunded']);

-- ---- commit visibility within one session -----------------------------------------------------------
-- The poller's own uncommitted events are not delivered: its transaction is still running.
BEGIN;
INSERT INTO ducto.events (type, user_id) VALUES ('credits.added', 'carol');
SELECT count(*) AS events FROM ducto.poll_events('worker_a');
ROLLBACK;
SELECT count(*) AS events FROM ducto.poll_events('worker_a');
-- A rolled-back event leaves a hole in the ids, not an event.
INSERT INTO ducto.events (type, user_id) VALUES ('credits.added', 'carol');
SELECT id, user_id FROM ducto.poll_events('worker_a');
SELECT ducto.ack_events('worker_a', 7) AS acknowledged;

-- ---- argument errors --------------------------------------------------------------------------------
SELECT try($$SELECT count(*) FROM ducto.poll_events(NULL)$$);
SELECT try($$SELECT count(*) FROM ducto.poll_events('')$$);
SELECT try($$SELECT count(*) FROM ducto.poll_events(repeat('x', 256))$$);
SELECT try($$SELECT count(*) FROM ducto.poll_events(E'tab\there')$$);
SELECT try($$SELECT count(*) FROM ducto.poll_events('worker_a', NULL)$$);
SELECT try($$SELECT count(*) FROM ducto.poll_events('worker_a', 0)$$);
SELECT try($$SELECT count(*) FROM ducto.poll_events('worker_a', 10001)$$);
SELECT try($$SELECT count(*) FROM ducto.poll_events('worker_a', 10000)$$);
SELECT try($$SELECT ducto.ack_events(NULL, 1)$$);
SELECT try($$SELECT ducto.ack_events('worker_a', NULL)$$);
SELECT try($$SELECT ducto.ack_events('no_such_consumer', 1)$$);
SELECT try($$SELECT ducto.prune_events(NULL)$$);
SELECT try($$SELECT ducto.prune_events('-1 day')$$);
SELECT try($$SELECT ducto.create_event_partitions(-1)$$);
SELECT try($$SELECT ducto.create_event_partitions(61)$$);
SELECT try($$SELECT ducto.create_event_partitions(NULL)$$);
SELECT try($$SELECT ducto.drop_consumer(NULL)$$);

-- ---- consumers, views -------------------------------------------------------------------------------
SELECT consumer, acked_id, delivered_id, pending_events, oldest_pending_at IS NOT NULL AS has_pending,
       delivered_at IS NOT NULL AS delivered, acked_at IS NOT NULL AS acked
FROM ducto.consumers();
SELECT consumer, pending_events FROM ducto.consumer_lag ORDER BY consumer;
SELECT events, unacknowledged, consumers, partitions FROM ducto.outbox_backlog;
SELECT ducto.drop_consumer('nothing') AS dropped, ducto.drop_consumer('nothing') AS dropped_again;

-- ---- pruning ----------------------------------------------------------------------------------------
-- Nothing is older than a week, and the slowest consumers have acknowledged nothing.
SELECT ducto.prune_events() AS pruned;
SELECT ducto.prune_events('0') AS pruned;
-- Once the lagging consumers are gone, what worker_a acknowledged (1-7) goes; newer events stay.
SELECT ducto.drop_consumer('empty'), ducto.drop_consumer('adds'), ducto.drop_consumer('refunds');
INSERT INTO ducto.events (type, user_id) VALUES ('credits.added', 'dave');
SELECT ducto.prune_events('0') AS pruned;
SELECT id, user_id FROM ducto.events ORDER BY id;
-- keep: younger events stay even when acknowledged.
SELECT id FROM ducto.poll_events('worker_a');
SELECT ducto.ack_events('worker_a', 8) AS acknowledged;
SELECT ducto.prune_events('1 hour') AS pruned;
-- Older than keep but not acknowledged: kept, until ducto.max_event_retention (30 days by default).
INSERT INTO ducto.events (type, user_id, created_at)
VALUES ('credits.added', 'old', now() - interval '10 days'),
       ('credits.added', 'ancient', now() - interval '40 days');
SELECT ducto.prune_events('7 days') AS pruned;
SELECT user_id FROM ducto.events ORDER BY id;
SELECT try($$SET ducto.max_event_retention = '30min'$$);
SET ducto.max_event_retention = '5 d';
SELECT ducto.prune_events('7 days') AS pruned;
SELECT user_id FROM ducto.events ORDER BY id;
RESET ducto.max_event_retention;

-- ---- day partitions ---------------------------------------------------------------------------------
-- Today is in the default partition already (rows above), so only the days after it are created.
SELECT ducto.create_event_partitions(2) AS created;
SELECT ducto.create_event_partitions(2) AS created_again;
SELECT count(*) AS day_partitions FROM pg_inherits
WHERE inhparent = 'ducto.events'::regclass AND inhrelid::regclass::text ~ '^ducto\.events_p[0-9]{8}$';
-- A past day's partition (10 days ago: older than keep, younger than the maximum retention) goes
-- whole, but only once every consumer acknowledged it.
SELECT 'ducto.events_p' || to_char(d, 'YYYYMMDD') AS old_day,
       to_char(d, 'YYYY-MM-DD') || ' 00:00:00+00' AS old_from, to_char(d + 1, 'YYYY-MM-DD') || ' 00:00:00+00' AS old_to,
       to_char(d, 'YYYY-MM-DD') || ' 12:00:00+00' AS old_noon
FROM (SELECT (now() AT TIME ZONE 'UTC')::date - 10 AS d) AS day \gset
CREATE TABLE :old_day PARTITION OF ducto.events FOR VALUES FROM (:'old_from') TO (:'old_to');
INSERT INTO ducto.events (type, user_id, created_at)
VALUES ('credits.added', 'past', :'old_noon'), ('credits.deducted', 'past', :'old_noon');
SELECT ducto.prune_events() AS pruned;
SELECT to_regclass(:'old_day') IS NOT NULL AS partition_kept;
SELECT id, user_id FROM ducto.poll_events('worker_a');
SELECT ducto.ack_events('worker_a', 12) AS acknowledged;
SELECT ducto.prune_events() AS pruned;
SELECT to_regclass(:'old_day') IS NOT NULL AS partition_kept;
SELECT id, user_id FROM ducto.events ORDER BY id;

-- ---- relay (worker mode's NOTIFY) -------------------------------------------------------------------
SELECT ducto.relay_events() > 0 AS relayed;
SELECT ducto.relay_events() AS relayed_again;
INSERT INTO ducto.events (type, user_id) VALUES ('credits.added', 'erin');
SET ducto.notify = off;
SELECT ducto.relay_events() AS relayed_when_off;
RESET ducto.notify;
SELECT ducto.relay_events() AS relayed;

-- ---- privileges -------------------------------------------------------------------------------------
-- Nothing for PUBLIC; one GRANT per function lets a role poll and ack without any table right.
CREATE ROLE regress_events_app;
SET ROLE regress_events_app;
SELECT try($$SELECT count(*) FROM ducto.poll_events('app')$$);
SELECT try($$SELECT count(*) FROM ducto.events$$);
SELECT try($$SELECT count(*) FROM ducto.consumer_lag$$);
SELECT try($$SELECT ducto.prune_events()$$);
RESET ROLE;
GRANT EXECUTE ON FUNCTION ducto.poll_events(text, integer, text[]), ducto.ack_events(text, bigint)
    TO regress_events_app;
SET ROLE regress_events_app;
SELECT id, user_id FROM ducto.poll_events('app', 1);
SELECT ducto.ack_events('app', 8) AS acknowledged;
SELECT try($$INSERT INTO ducto.events (type) VALUES ('forged')$$);
RESET ROLE;
SELECT p.proname, p.oid::regprocedure AS signature
FROM pg_proc AS p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS a
WHERE p.pronamespace = 'ducto'::regnamespace AND a.grantee = 0 AND a.privilege_type = 'EXECUTE'
  AND p.proname IN ('poll_events', 'ack_events', 'prune_events', 'create_event_partitions', 'relay_events',
                    'consumers', 'drop_consumer', 'run_maintenance');

-- ---- run_maintenance --------------------------------------------------------------------------------
CALL ducto.run_maintenance();
-- It commits between its steps, so not inside a transaction block.
BEGIN;
CALL ducto.run_maintenance();
ROLLBACK;

DROP OWNED BY regress_events_app;
DROP ROLE regress_events_app;
DROP ROLE regress_events_role;
-- The session survives every error above.
SELECT 1 AS still_alive;
