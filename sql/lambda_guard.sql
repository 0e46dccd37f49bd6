--
-- lambda_guard: a half-loaded batch layer never replaces the serving table
-- (contract v2).  A refresh whose batch layer has fewer than
-- serving_layer.min_batch_fraction (default 0.5) times the batch rows of the
-- target's last successful refresh fails before any change with 55000,
-- naming both counts, and is recorded in history; 0 disables the check.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS serving_layer;
RESET client_min_messages;
CREATE SCHEMA sl_guard;
SET search_path = sl_guard, public;

LOAD 'serving_layer';
SHOW serving_layer.min_batch_fraction;

-- Failures are written to serving_layer_history by a background worker once
-- the failing transaction is over: wait_failed waits for them, at most
-- 30 s, until n failed refreshes of targets LIKE pattern, started at or
-- after since, are there.
CREATE PROCEDURE wait_failed(pattern text, n int,
							 since timestamptz DEFAULT '-infinity')
LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1..600 LOOP
		EXIT WHEN (SELECT count(*) FROM serving_layer_history h
				   WHERE h.target LIKE pattern AND h.status = 'failed'
				   AND h.started_at >= since) >= n;
		PERFORM pg_sleep(0.05);
	END LOOP;
END $$;

CREATE TABLE batch (k int, n bigint);
CREATE TABLE speed (k int, n bigint);
INSERT INTO batch SELECT g, 1 FROM generate_series(1, 10) g;
INSERT INTO speed VALUES (1, 100);
SELECT serving_layer_define('g_serving', 'batch', 'speed', key => '{k}');
-- the first refresh has nothing to compare with
SELECT batch_rows, output_rows, status FROM serving_layer_refresh('g_serving');

-- Spark's truncate=true: the table is emptied, then refilled in other
-- transactions; a refresh in between finds 4 of the 10 rows
TRUNCATE batch;
INSERT INTO batch SELECT g, 2 FROM generate_series(1, 4) g;
SELECT * FROM serving_layer_refresh('g_serving');
\echo :LAST_ERROR_SQLSTATE
-- nothing changed, and the failure is in history
SELECT count(*) AS rows, sum(n) AS total FROM g_serving;
CALL wait_failed('g\_serving', 1);
SELECT status, error FROM serving_layer_history
WHERE target = 'g_serving' ORDER BY started_at DESC LIMIT 1;

-- exactly half is not fewer than half: accepted
INSERT INTO batch VALUES (5, 2);
SELECT batch_rows, output_rows, status FROM serving_layer_refresh('g_serving');
-- the last successful refresh is now the one to compare with: 2 of 5 fail
DELETE FROM batch WHERE k > 2;
\set VERBOSITY terse
SELECT * FROM serving_layer_refresh('g_serving');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default

-- 0 disables the check: the batch layer really is that small now
SET serving_layer.min_batch_fraction = 0;
SELECT batch_rows, output_rows, status FROM serving_layer_refresh('g_serving');
RESET serving_layer.min_batch_fraction;

-- an empty batch layer after rows: refused
TRUNCATE batch;
\set VERBOSITY terse
SELECT * FROM serving_layer_refresh('g_serving');
\echo :LAST_ERROR_SQLSTATE

-- a stricter fraction: 8 of the last 10 rows is too few for 0.9, enough
-- for the default
INSERT INTO batch SELECT g, 3 FROM generate_series(1, 10) g;
SELECT batch_rows, status FROM serving_layer_refresh('g_serving');
DELETE FROM batch WHERE k > 8;
SET serving_layer.min_batch_fraction = 0.9;
SELECT * FROM serving_layer_refresh('g_serving');
\echo :LAST_ERROR_SQLSTATE
RESET serving_layer.min_batch_fraction;
SELECT batch_rows, status FROM serving_layer_refresh('g_serving');

-- the setting is a fraction between 0 and 1
SET serving_layer.min_batch_fraction = 1.5;
\echo :LAST_ERROR_SQLSTATE
SET serving_layer.min_batch_fraction = -0.1;
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default

-- in a refresh of every target, the refused one fails the whole call and
-- nothing is swapped in
CREATE TABLE batch2 (k int, n bigint);
INSERT INTO batch2 SELECT g, 1 FROM generate_series(1, 4) g;
SELECT serving_layer_define('g_serving2', 'batch2', 'speed', key => '{k}');
SELECT status FROM serving_layer_refresh('g_serving2');
DELETE FROM batch2 WHERE k > 1;
INSERT INTO speed VALUES (2, 1000);
\set VERBOSITY terse
SELECT * FROM serving_layer_refresh();
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
SELECT sum(n) AS serving_total FROM g_serving;
SELECT sum(n) AS serving2_total FROM g_serving2;

-- the history shows which refreshes were refused
CALL wait_failed('g\_serving%', 6);
SELECT target, status, batch_rows, left(error, 5) AS sqlstate
FROM serving_layer_history WHERE target LIKE 'g\_serving%'
ORDER BY started_at, target;

-- mode 'apply' changes the serving table while it merges, so it counts the
-- batch rows it will take before it merges: with a boundary set at 8, the
-- rows at or before it (8 of 10), then 3 of them
CREATE TABLE batch3 (t int, k int, n bigint);
CREATE TABLE speed3 (t int, k int, n bigint);
INSERT INTO batch3 SELECT g, g, 1 FROM generate_series(1, 10) g;
INSERT INTO speed3 VALUES (2, 2, 100), (11, 11, 100);
SELECT serving_layer_define('g_apply', 'batch3', 'speed3', key => '{t,k}',
							time_column => 't', mode => 'apply');
SELECT serving_layer_set_boundary('g_apply', '8');
SELECT batch_rows, output_rows, status, boundary
FROM serving_layer_refresh('g_apply');
DELETE FROM batch3 WHERE t BETWEEN 4 AND 8;
SELECT * FROM serving_layer_refresh('g_apply');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS rows, sum(n) AS total FROM g_apply;
SET serving_layer.min_batch_fraction = 0;
SELECT batch_rows, output_rows, status, changed_rows
FROM serving_layer_refresh('g_apply');
RESET serving_layer.min_batch_fraction;
SELECT count(*) AS rows, sum(n) AS total FROM g_apply;

SELECT serving_layer_forget(target) FROM serving_layer_definitions
WHERE target IN ('g_serving', 'g_serving2', 'g_apply');

--
-- The classic layout (no definition at all: serving_layer from batch_layer
-- and speed_layer, see classic_layout) has no catalog row to keep the batch
-- rows of its last successful refresh in: the guard finds them in
-- serving_layer_history.
--
SELECT count(*) AS definitions FROM serving_layer_definitions;
CREATE TABLE batch_layer (location text, count_id bigint,
						  sum_followers_count bigint, sum_favorite_count bigint,
						  sum_retweet_count bigint);
CREATE TABLE speed_layer (location text, "count(id)" bigint,
						  "sum(followers_count)" bigint,
						  "sum(favorite_count)" bigint,
						  "sum(retweet_count)" bigint);
INSERT INTO batch_layer SELECT 'city ' || g, 1, 10, 1, 1
FROM generate_series(1, 10) g;
INSERT INTO speed_layer VALUES ('city 1', 1, 1, 1, 1);
-- a full batch: accepted (whatever an earlier test's classic refresh left
-- in history, 10 rows are not fewer than half of it)
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh();
SELECT count(*) AS rows, sum(count_id) AS total FROM serving_layer;
-- the batch job truncates and has refilled 4 of the 10 rows: refused,
-- naming both counts
TRUNCATE batch_layer;
INSERT INTO batch_layer SELECT 'city ' || g, 2, 20, 2, 2
FROM generate_series(1, 4) g;
SELECT clock_timestamp() AS t0 \gset
SELECT * FROM serving_layer_refresh();
\echo :LAST_ERROR_SQLSTATE
-- the serving table is unchanged
SELECT count(*) AS rows, sum(count_id) AS total FROM serving_layer;
-- and the failure is in history
CALL wait_failed('serving\_layer', 1, :'t0');
SELECT target, status, batch_rows, error FROM serving_layer_history
WHERE target = 'serving_layer' AND started_at >= :'t0'
ORDER BY started_at;
-- 0 disables the check: the 4 rows go through
SET serving_layer.min_batch_fraction = 0;
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh();
RESET serving_layer.min_batch_fraction;
SELECT count(*) AS rows, sum(count_id) AS total FROM serving_layer;
DROP TABLE batch_layer, speed_layer, serving_layer;

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA sl_guard CASCADE;
RESET client_min_messages;
