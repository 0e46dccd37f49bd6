--
-- transactions: a refresh is part of the caller's transaction; undefined
-- targets; forget; refresh of every definition; the history of refreshes;
-- empty layers
--
-- (quiet: the extension may exist already when other tests ran first)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS serving_layer;
RESET client_min_messages;
-- batch layers shrink on purpose here; the half-loaded batch guard has its
-- own test (lambda_guard)
SET serving_layer.min_batch_fraction = 0;
\set VERBOSITY default
\set SHOW_CONTEXT never
CREATE SCHEMA sl_tx;
SET search_path = sl_tx, public;

CREATE TABLE batch (city text, n bigint);
CREATE TABLE speed (city text, n bigint);
INSERT INTO batch VALUES ('oslo', 1), ('rome', 2);
INSERT INTO speed VALUES ('oslo', 10);

-- the first refresh creates the serving table
SELECT serving_layer_define('sl_tx.t_main', 'batch', 'speed');
SELECT * FROM serving_layer_refresh('sl_tx.t_main');
SELECT * FROM t_main ORDER BY city;
CREATE UNIQUE INDEX t_main_city ON t_main (city);

-- what the table and the history are now: saved, not printed
CREATE TABLE saved AS
	SELECT pg_relation_filenode('t_main') AS filenode,
		   (SELECT count(*) FROM serving_layer_history
			WHERE target = 'sl_tx.t_main') AS history_rows;
CREATE VIEW new_history AS
	SELECT count(*) - (SELECT history_rows FROM sl_tx.saved) AS new_history_rows
	FROM serving_layer_history WHERE target = 'sl_tx.t_main';

--
-- Rolled back
--

-- a refresh in a transaction that is rolled back: the new rows are seen
-- inside it, and afterwards the table is exactly as it was, with no
-- history row
INSERT INTO batch VALUES ('lima', 3);
BEGIN;
SELECT * FROM serving_layer_refresh('sl_tx.t_main');
SELECT * FROM t_main ORDER BY city;
ROLLBACK;
SELECT * FROM t_main ORDER BY city;
SELECT pg_relation_filenode('t_main') = filenode AS same_storage FROM saved;
SELECT * FROM new_history;
-- its index is the old one too
SET enable_seqscan = off;
SELECT * FROM t_main WHERE city = 'oslo';
SELECT * FROM t_main WHERE city = 'lima';
RESET enable_seqscan;

-- a refresh rolled back to a savepoint is undone the same way, and the
-- transaction can refresh again
BEGIN;
SAVEPOINT before_refresh;
SELECT * FROM serving_layer_refresh('sl_tx.t_main');
ROLLBACK TO SAVEPOINT before_refresh;
SELECT * FROM t_main ORDER BY city;
SELECT * FROM serving_layer_refresh('sl_tx.t_main');
SELECT * FROM t_main ORDER BY city;
ROLLBACK;
SELECT * FROM t_main ORDER BY city;
SELECT pg_relation_filenode('t_main') = filenode AS same_storage FROM saved;
SELECT * FROM new_history;

-- a serving table created by a refresh that is rolled back does not exist
SELECT serving_layer_define('sl_tx.t_new', 'batch', 'speed');
BEGIN;
SELECT * FROM serving_layer_refresh('sl_tx.t_new');
SELECT count(*) FROM t_new;
ROLLBACK;
SELECT to_regclass('sl_tx.t_new') IS NULL AS not_created;
SELECT count(*) AS history_rows FROM serving_layer_history
WHERE target = 'sl_tx.t_new';
-- and the definition stays
SELECT target FROM serving_layer_definitions WHERE target = 'sl_tx.t_new';
SELECT serving_layer_forget('sl_tx.t_new');

-- a definition made in a transaction that is rolled back is not stored
BEGIN;
SELECT serving_layer_define('sl_tx.t_gone', 'batch', 'speed');
SELECT target FROM serving_layer_definitions WHERE target = 'sl_tx.t_gone';
ROLLBACK;
SELECT target FROM serving_layer_definitions WHERE target = 'sl_tx.t_gone';

--
-- Committed
--

-- two refreshes in one transaction, the layers changing in between; each
-- is seen by the reads that follow it, and both are recorded
BEGIN;
SELECT * FROM serving_layer_refresh('sl_tx.t_main');
SELECT * FROM t_main ORDER BY city;
INSERT INTO speed VALUES ('rome', 100);
SELECT * FROM serving_layer_refresh('sl_tx.t_main');
SELECT * FROM t_main ORDER BY city;
COMMIT;
SELECT * FROM t_main ORDER BY city;
SELECT * FROM new_history;
SET enable_seqscan = off;
SELECT * FROM t_main WHERE city = 'lima';
RESET enable_seqscan;

-- a refresh, then writes and reads of the serving table in the same
-- transaction
BEGIN;
SELECT * FROM serving_layer_refresh('sl_tx.t_main');
UPDATE t_main SET n = n + 1000 WHERE city = 'oslo';
SELECT * FROM t_main ORDER BY city;
COMMIT;
SELECT * FROM t_main ORDER BY city;
-- the next refresh replaces the written row
SELECT * FROM serving_layer_refresh('sl_tx.t_main');
SELECT * FROM t_main ORDER BY city;

--
-- What a transaction cannot do
--

-- a refresh while a cursor of the same transaction reads the serving table:
-- object_in_use (55006), and nothing changes
BEGIN;
DECLARE c CURSOR FOR SELECT * FROM t_main ORDER BY city;
FETCH 1 FROM c;
SELECT * FROM serving_layer_refresh('sl_tx.t_main');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
-- a refresh in a read-only transaction: read_only_sql_transaction (25006),
-- refused before any work
BEGIN READ ONLY;
SELECT * FROM serving_layer_refresh('sl_tx.t_main');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SELECT * FROM t_main ORDER BY city;
-- the first failure is in the history, although its transaction rolled back;
-- the read-only refusal, made before any work, left nothing
-- (a background worker writes the failure once the failing transaction is
-- over: wait for it, at most 30 s)
DO $$
BEGIN
	FOR i IN 1..600 LOOP
		EXIT WHEN (SELECT count(*) FROM serving_layer_history
				   WHERE target = 'sl_tx.t_main' AND status <> 'ok') > 0;
		PERFORM pg_sleep(0.05);
	END LOOP;
END $$;
SELECT status, batch_rows IS NULL AS no_counts, error IS NOT NULL AS has_error,
	   finished_at >= started_at AS ordered
FROM serving_layer_history WHERE target = 'sl_tx.t_main' AND status <> 'ok'
ORDER BY started_at;

--
-- Undefined targets and forget
--

-- refresh of a target without definition: undefined_table (42P01)
SELECT * FROM serving_layer_refresh('sl_tx.nothing');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM serving_layer_refresh('nothing');
\echo :LAST_ERROR_SQLSTATE
-- an existing table without a definition is no different
SELECT * FROM serving_layer_refresh('sl_tx.batch');
\echo :LAST_ERROR_SQLSTATE
-- forget of a target without definition: undefined_table (42P01)
SELECT serving_layer_forget('sl_tx.nothing');
\echo :LAST_ERROR_SQLSTATE
-- a NULL target for forget does nothing (the function is strict)
SELECT serving_layer_forget(NULL);

-- forget removes the definition and keeps the table and its rows
SELECT serving_layer_forget('sl_tx.t_main');
SELECT target FROM serving_layer_definitions WHERE target LIKE 'sl_tx.%';
SELECT * FROM t_main ORDER BY city;
-- after which the target cannot be refreshed (42P01) or forgotten (42P01)
SELECT * FROM serving_layer_refresh('sl_tx.t_main');
\echo :LAST_ERROR_SQLSTATE
SELECT serving_layer_forget('sl_tx.t_main');
\echo :LAST_ERROR_SQLSTATE
-- forget in a transaction that is rolled back keeps the definition
SELECT serving_layer_define('sl_tx.t_main', 'batch', 'speed');
BEGIN;
SELECT serving_layer_forget('sl_tx.t_main');
ROLLBACK;
SELECT target FROM serving_layer_definitions WHERE target LIKE 'sl_tx.%';
SELECT serving_layer_forget('sl_tx.t_main');

--
-- Every definition
--

-- refresh with no argument refreshes every definition, in target order,
-- whatever order they were defined in
SELECT serving_layer_define('sl_tx.t_c', 'batch', 'speed');
SELECT serving_layer_define('sl_tx.t_a', 'batch', 'speed');
SELECT serving_layer_define('sl_tx.t_b', 'speed', 'batch');
SELECT * FROM serving_layer_refresh();
SELECT 'a' AS t, * FROM t_a UNION ALL SELECT 'b', * FROM t_b
UNION ALL SELECT 'c', * FROM t_c ORDER BY 1, 2;
-- the same in a transaction that is rolled back: none of them is refreshed
DELETE FROM speed;
BEGIN;
SELECT * FROM serving_layer_refresh();
ROLLBACK;
SELECT 'a' AS t, * FROM t_a UNION ALL SELECT 'b', * FROM t_b
UNION ALL SELECT 'c', * FROM t_c ORDER BY 1, 2;

--
-- Empty layers
--

-- an empty speed layer: the batch rows
SELECT * FROM serving_layer_refresh('sl_tx.t_a');
SELECT * FROM t_a ORDER BY city;
-- an empty batch layer: the speed rows
INSERT INTO speed VALUES ('bergen', 7);
DELETE FROM batch;
SELECT * FROM serving_layer_refresh('sl_tx.t_a');
SELECT * FROM t_a ORDER BY city;
-- both empty: the serving table is emptied, with zero counts
DELETE FROM speed;
SELECT * FROM serving_layer_refresh('sl_tx.t_a');
SELECT count(*) FROM t_a;
-- an empty serving table created by a first refresh of empty layers
SELECT serving_layer_define('sl_tx.t_empty', 'batch', 'speed');
SELECT * FROM serving_layer_refresh('sl_tx.t_empty');
SELECT count(*) FROM t_empty;
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = 't_empty'::regclass AND attnum > 0 ORDER BY attnum;
-- and refreshed again once rows arrive
INSERT INTO batch VALUES ('oslo', 1);
SELECT * FROM serving_layer_refresh('sl_tx.t_empty');
SELECT * FROM t_empty;

--
-- History
--

-- one row per successful refresh, with its counts, status ok, no error,
-- finished after it started; none for refreshes that were rolled back
SELECT target, status, batch_rows, speed_rows, output_rows,
	   error IS NULL AS no_error, finished_at >= started_at AS ordered
FROM serving_layer_history
WHERE target LIKE 'sl_tx.%' AND status = 'ok'
ORDER BY started_at, target;

-- clean up
SELECT serving_layer_forget(target) FROM serving_layer_definitions
WHERE target LIKE 'sl_tx.%' ORDER BY target;
SET client_min_messages = warning;
DROP SCHEMA sl_tx CASCADE;
RESET client_min_messages;
