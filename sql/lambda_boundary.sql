--
-- lambda_boundary: the time boundary (contract v2).  With a time_column a
-- refresh counts each time once: batch rows at or before the boundary,
-- speed rows after it, rows with a NULL time from both layers.  The
-- boundary is the one set with serving_layer_set_boundary(), else the
-- greatest batch time; it is returned, recorded in history and (when set)
-- shown in serving_layer_definitions.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS serving_layer;
RESET client_min_messages;
CREATE SCHEMA sl_tb;
SET search_path = sl_tb, public;
SET TimeZone = 'UTC';

CREATE TABLE batch (k text, hour timestamptz, n bigint, mx int);
CREATE TABLE speed (k text, hour timestamptz, n bigint, mx int);
-- the batch covers hours 08:00 to 10:00
INSERT INTO batch VALUES
	('a', '2026-01-01 08:00', 1, 1), ('a', '2026-01-01 09:00', 2, 2),
	('a', '2026-01-01 10:00', 4, 4), ('b', '2026-01-01 10:00', 8, 8),
	('a', NULL, 16, 16);
-- the speed layer still holds 09:00 and 10:00 (already in the batch), and
-- 11:00 and 12:00 (after it), and a row with no time
INSERT INTO speed VALUES
	('a', '2026-01-01 09:00', 100, 100), ('a', '2026-01-01 10:00', 200, 200),
	('a', '2026-01-01 11:00', 300, 300), ('b', '2026-01-01 12:00', 400, 400),
	('a', NULL, 500, 500);
SELECT serving_layer_define('b_serving', 'batch', 'speed', key => '{k,hour}',
							merge => '{"mx": "max"}', time_column => 'hour');
SELECT target, time_column, boundary FROM serving_layer_definitions
WHERE target = 'b_serving';

-- the derived boundary: 10:00, the greatest batch time.  Batch rows: all 5;
-- speed rows: 11:00, 12:00 and the NULL one (3)
SELECT * FROM serving_layer_refresh('b_serving');
-- each hour once; the NULL-time rows of both layers are merged
SELECT * FROM b_serving ORDER BY k, hour NULLS FIRST;
SELECT status, batch_rows, speed_rows, boundary FROM serving_layer_history
WHERE target = 'b_serving' ORDER BY started_at DESC LIMIT 1;

-- the same rows by GROUP BY
SET serving_layer.fast_merge = off;
CREATE TEMP TABLE c_merge AS SELECT * FROM b_serving;
SELECT batch_rows, speed_rows, output_rows, boundary
FROM serving_layer_refresh('b_serving');
SELECT count(*) AS differences FROM
	((TABLE b_serving EXCEPT TABLE c_merge) UNION ALL
	 (TABLE c_merge EXCEPT TABLE b_serving)) d;
RESET serving_layer.fast_merge;

-- the batch catches up (11:00) as a new batch job run: the boundary moves,
-- the speed row of 11:00 is no longer taken, 12:00 still is
INSERT INTO batch VALUES ('a', '2026-01-01 11:00', 32, 32);
SELECT batch_rows, speed_rows, output_rows, boundary
FROM serving_layer_refresh('b_serving');
SELECT * FROM b_serving WHERE hour >= '2026-01-01 11:00' ORDER BY k, hour;

--
-- The boundary set by the batch job
--

-- batch rows after the boundary are ignored, speed rows after it taken
SELECT serving_layer_set_boundary('b_serving', '2026-01-01 09:00+00');
SELECT target, boundary FROM serving_layer_definitions WHERE target = 'b_serving';
SELECT batch_rows, speed_rows, output_rows, boundary
FROM serving_layer_refresh('b_serving');
SELECT * FROM b_serving ORDER BY k, hour NULLS FIRST;
-- by GROUP BY too
SET serving_layer.fast_merge = off;
CREATE TEMP TABLE c_merge2 AS SELECT * FROM b_serving;
SELECT batch_rows, speed_rows, output_rows FROM serving_layer_refresh('b_serving');
SELECT count(*) AS differences FROM
	((TABLE b_serving EXCEPT TABLE c_merge2) UNION ALL
	 (TABLE c_merge2 EXCEPT TABLE b_serving)) d;
RESET serving_layer.fast_merge;

-- the value is converted by the type's input function with the caller's
-- settings and kept in a form any session reads back the same
SET TimeZone = 'America/New_York';
SELECT serving_layer_set_boundary('b_serving', '2026-01-01 05:00');
SELECT boundary FROM serving_layer_definitions WHERE target = 'b_serving';
SELECT boundary FROM serving_layer_refresh('b_serving');
SET TimeZone = 'UTC';

-- NULL returns to the derived boundary
SELECT serving_layer_set_boundary('b_serving', NULL);
SELECT boundary FROM serving_layer_definitions WHERE target = 'b_serving';
SELECT boundary FROM serving_layer_refresh('b_serving');

-- redefining with the same time column keeps a boundary that was set;
-- another time column drops it
SELECT serving_layer_set_boundary('b_serving', '2026-01-01 10:00+00');
SELECT serving_layer_define('b_serving', 'batch', 'speed', key => '{k,hour}',
							merge => '{"mx": "max"}', time_column => 'hour');
SELECT boundary FROM serving_layer_definitions WHERE target = 'b_serving';
SELECT serving_layer_define('b_serving', 'batch', 'speed', key => '{k,hour}',
							merge => '{"mx": "max"}');
SELECT time_column, boundary FROM serving_layer_definitions
WHERE target = 'b_serving';
-- without a time column: no boundary, every row of both layers
SELECT batch_rows, speed_rows, boundary FROM serving_layer_refresh('b_serving');

--
-- An empty batch layer: no boundary, every speed row is taken
--
CREATE TABLE e_batch (k text, hour timestamptz, n bigint);
CREATE TABLE e_speed (k text, hour timestamptz, n bigint);
INSERT INTO e_speed VALUES ('a', '2026-01-01 09:00', 1), ('a', NULL, 2);
SELECT serving_layer_define('e_serving', 'e_batch', 'e_speed',
							key => '{k,hour}', time_column => 'hour');
SELECT batch_rows, speed_rows, output_rows, boundary
FROM serving_layer_refresh('e_serving');
-- batch rows whose times are all NULL give no boundary either
INSERT INTO e_batch VALUES ('a', NULL, 10);
SELECT batch_rows, speed_rows, output_rows, boundary
FROM serving_layer_refresh('e_serving');
SELECT * FROM e_serving ORDER BY k, hour NULLS FIRST;

--
-- Other time types: date, timestamp, integer buckets; a 'speed' merge
--
CREATE TABLE d_batch (day date, k int, v int);
CREATE TABLE d_speed (day date, k int, v int);
INSERT INTO d_batch VALUES ('2026-01-01', 1, 1), ('2026-01-02', 1, 2);
INSERT INTO d_speed VALUES ('2026-01-02', 1, 20), ('2026-01-03', 1, 30);
SELECT serving_layer_define('d_serving', 'd_batch', 'd_speed', key => '{day,k}',
							merge => '{"v": "speed"}', time_column => 'day');
SELECT batch_rows, speed_rows, boundary FROM serving_layer_refresh('d_serving');
SELECT * FROM d_serving ORDER BY day;

CREATE TABLE ts_batch (t timestamp, n int);
CREATE TABLE ts_speed (t timestamp, n int);
INSERT INTO ts_batch VALUES ('2026-01-01 10:00', 1);
INSERT INTO ts_speed VALUES ('2026-01-01 10:00', 10), ('2026-01-01 10:30', 20);
SELECT serving_layer_define('ts_serving', 'ts_batch', 'ts_speed',
							time_column => 't');
SELECT batch_rows, speed_rows, boundary FROM serving_layer_refresh('ts_serving');

-- an integer bucket (hours since the epoch), with a speed column of another
-- integer type converted to the batch's
CREATE TABLE i_batch (bucket bigint, k text, n int);
CREATE TABLE i_speed (bucket int, k text, n int);
INSERT INTO i_batch VALUES (100, 'x', 1), (101, 'x', 2);
INSERT INTO i_speed VALUES (101, 'x', 20), (102, 'x', 30), (103, 'y', 40);
SELECT serving_layer_define('i_serving', 'i_batch', 'i_speed',
							key => '{bucket,k}', time_column => 'bucket');
SELECT batch_rows, speed_rows, boundary FROM serving_layer_refresh('i_serving');
SELECT * FROM i_serving ORDER BY bucket, k;
SELECT serving_layer_set_boundary('i_serving', '100');
SELECT batch_rows, speed_rows, boundary FROM serving_layer_refresh('i_serving');
SELECT * FROM i_serving ORDER BY bucket, k;

--
-- Errors at define time; nothing is stored
--
\set VERBOSITY terse
-- not a key column: 22023
SELECT serving_layer_define('bad', 'batch', 'speed', key => '{k}',
							merge => '{"hour": "max"}', time_column => 'hour');
\echo :LAST_ERROR_SQLSTATE
SELECT serving_layer_define('bad', 'batch', 'speed', key => '{k,hour}',
							time_column => 'n');
\echo :LAST_ERROR_SQLSTATE
-- no such column: 42703
SELECT serving_layer_define('bad', 'batch', 'speed', key => '{k,hour}',
							time_column => 'minute');
\echo :LAST_ERROR_SQLSTATE
-- a type without ordering (xid has equality, no btree class): 42883
CREATE TABLE x_batch (x xid, n int);
CREATE TABLE x_speed (x xid, n int);
SELECT serving_layer_define('bad', 'x_batch', 'x_speed', time_column => 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS stored FROM serving_layer_definitions WHERE target = 'bad';

--
-- serving_layer_set_boundary() errors; nothing changes
--
-- no time column: 22023
SELECT serving_layer_set_boundary('b_serving', '2026-01-01');
\echo :LAST_ERROR_SQLSTATE
-- a value the type does not accept: the type's own error (22007)
SELECT serving_layer_set_boundary('d_serving', 'not a day');
\echo :LAST_ERROR_SQLSTATE
SELECT serving_layer_set_boundary('i_serving', '99999999999999999999');
\echo :LAST_ERROR_SQLSTATE
-- no definition: 42P01
SELECT serving_layer_set_boundary('nowhere', '2026-01-01');
\echo :LAST_ERROR_SQLSTATE
SELECT serving_layer_set_boundary(NULL, '2026-01-01');
\echo :LAST_ERROR_SQLSTATE
-- a read-only transaction: 25006
BEGIN TRANSACTION READ ONLY;
SELECT serving_layer_set_boundary('d_serving', '2026-01-01');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SELECT target, boundary FROM serving_layer_definitions
WHERE target IN ('d_serving', 'i_serving') ORDER BY target;
\set VERBOSITY default

--
-- Who may set it: the serving table's owner or the batch table's owner
--
CREATE ROLE regress_tb_batch;
CREATE ROLE regress_tb_other;
GRANT USAGE ON SCHEMA sl_tb TO regress_tb_batch, regress_tb_other;
ALTER TABLE d_batch OWNER TO regress_tb_batch;
SET ROLE regress_tb_batch;
SELECT serving_layer_set_boundary('sl_tb.d_serving', '2026-01-01');
RESET ROLE;
SELECT boundary FROM serving_layer_definitions WHERE target = 'd_serving';
SET ROLE regress_tb_other;
\set VERBOSITY terse
SELECT serving_layer_set_boundary('sl_tb.d_serving', '2026-01-03');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
RESET ROLE;
SELECT boundary FROM serving_layer_definitions WHERE target = 'd_serving';

SELECT serving_layer_forget(target) FROM serving_layer_definitions
WHERE target IN ('b_serving', 'e_serving', 'd_serving', 'ts_serving', 'i_serving');
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA sl_tb CASCADE;
RESET client_min_messages;
DROP ROLE regress_tb_batch, regress_tb_other;
