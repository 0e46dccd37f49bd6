--
-- lambda_live_view: the live view (contract v2) shows what a refresh run
-- now would produce: the serving table's rows at or before the boundary of
-- its last refresh (and its NULL-time rows), plus the speed layer's rows
-- after that boundary merged as a refresh merges them, read at query time.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS serving_layer;
RESET client_min_messages;
CREATE SCHEMA sl_live;
SET search_path = sl_live, public;

CREATE ROLE regress_live_owner;
CREATE ROLE regress_live_reader;
GRANT USAGE, CREATE ON SCHEMA sl_live TO regress_live_owner;
GRANT USAGE ON SCHEMA sl_live TO regress_live_reader;

SET ROLE regress_live_owner;
CREATE TABLE batch (k text, hour int, n bigint, top int);
CREATE TABLE speed (k text, hour int, n bigint, top int);
INSERT INTO batch VALUES ('a', 1, 1, 1), ('a', 2, 2, 2), ('b', 2, 4, 4),
	('a', NULL, 8, 8);
INSERT INTO speed VALUES ('a', 2, 100, 100), ('a', 3, 200, 200),
	('a', 3, 1, 300), ('c', 4, 400, 400), ('a', NULL, 500, 500);

-- a live view needs a time column: 22023
\set VERBOSITY terse
SELECT serving_layer_define('v_serving', 'batch', 'speed', key => '{k,hour}',
							live_view => 'live');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default

-- the serving table does not exist yet: define records the view, the first
-- refresh creates it
SELECT serving_layer_define('v_serving', 'batch', 'speed', key => '{k,hour}',
							merge => '{"top": "max"}', time_column => 'hour',
							live_view => 'live');
SELECT target, time_column, live_view FROM serving_layer_definitions;
SELECT to_regclass('live') IS NULL AS no_view_yet;
SELECT batch_rows, speed_rows, output_rows, boundary
FROM serving_layer_refresh('v_serving');
SELECT c.relkind, pg_get_userbyid(c.relowner) AS owner
FROM pg_class c WHERE c.oid = 'live'::regclass;

-- right after a refresh the view shows the serving table
SELECT * FROM live ORDER BY k, hour NULLS FIRST;
SELECT count(*) AS differences FROM
	((TABLE live EXCEPT ALL TABLE v_serving) UNION ALL
	 (TABLE v_serving EXCEPT ALL TABLE live)) d;

-- new speed rows after the boundary show at once, merged by key; speed
-- rows at or before it (late data) and NULL-time ones do not
INSERT INTO speed VALUES ('c', 4, 1, 1), ('d', 5, 7, 7), ('a', 2, 9999, 9999),
	('a', NULL, 9999, 9999);
SELECT * FROM live ORDER BY k, hour NULLS FIRST;
-- an upsert of the speed layer (what Kafka Connect sends) shows at once
UPDATE speed SET n = 50 WHERE k = 'd';
SELECT * FROM live WHERE k = 'd';

-- the view is what a refresh now produces, for the keys after the boundary
-- and before it
CREATE TEMP TABLE before_refresh AS SELECT * FROM live;
SELECT status FROM serving_layer_refresh('v_serving');
SELECT count(*) AS differences FROM
	((SELECT * FROM before_refresh WHERE hour IS NOT NULL EXCEPT ALL
	  SELECT * FROM v_serving WHERE hour IS NOT NULL) UNION ALL
	 (SELECT * FROM v_serving WHERE hour IS NOT NULL EXCEPT ALL
	  SELECT * FROM before_refresh WHERE hour IS NOT NULL)) d;
-- the rows with a NULL time are the serving table's until a refresh merges
-- the speed layer's into them
SELECT (SELECT n FROM before_refresh WHERE hour IS NULL) AS live_null_time,
	   (SELECT n FROM v_serving WHERE hour IS NULL) AS refreshed_null_time;

-- the batch job catches up: a refresh moves the boundary, and the view
-- follows it in the same commit
INSERT INTO batch VALUES ('a', 3, 1000, 1000);
BEGIN;
SELECT boundary FROM serving_layer_refresh('v_serving');
SELECT * FROM live WHERE hour >= 3 ORDER BY k, hour;
COMMIT;

--
-- Readers need SELECT on the view only
--
GRANT SELECT ON live TO regress_live_reader;
SET ROLE regress_live_reader;
SELECT count(*) AS reader_rows FROM live;
\set VERBOSITY terse
SELECT count(*) FROM v_serving;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM speed;
\echo :LAST_ERROR_SQLSTATE
-- nor can the speed part be read around the view by one who may not read it
RESET ROLE;
CREATE ROLE regress_live_stranger;
SET ROLE regress_live_stranger;
SELECT * FROM serving_layer_live_speed('sl_live', 'v_serving')
	AS l(k text, hour int, n bigint, top int);
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
RESET ROLE;
SET ROLE regress_live_owner;

-- redefining keeps the view and its grants
SELECT serving_layer_define('v_serving', 'batch', 'speed', key => '{k,hour}',
							merge => '{"top": "max"}', time_column => 'hour',
							live_view => 'live');
SELECT has_table_privilege('regress_live_reader', 'live', 'SELECT')
	AS reader_keeps_select;

--
-- A filter on key columns uses the serving table's index, and the speed
-- part never reads the batch layer
--
CREATE INDEX serving_k ON v_serving (k);
INSERT INTO batch SELECT 'k' || g, 1, g, g FROM generate_series(1, 2000) g;
SELECT status FROM serving_layer_refresh('v_serving');
ANALYZE v_serving;
CREATE TEMP TABLE plan_lines (line text);
DO $$
DECLARE
	l text;
BEGIN
	FOR l IN EXECUTE 'EXPLAIN (COSTS OFF) SELECT * FROM sl_live.live WHERE k = ''k42'''
	LOOP
		INSERT INTO plan_lines VALUES (l);
	END LOOP;
END
$$;
SELECT bool_or(line ~ 'Index.*serving_k') AS uses_serving_index,
	   bool_or(line ~ 'Seq Scan on v_serving') AS scans_serving,
	   bool_or(line ~ 'batch') AS reads_batch
FROM plan_lines;
SELECT * FROM live WHERE k = 'k42';

-- the view depends on neither layer: both jobs may drop and recreate their
-- tables without CASCADE, and the view reads the new speed table at once
SELECT count(*) AS layer_dependencies
FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
WHERE r.ev_class = 'live'::regclass
	AND d.refobjid IN ('batch'::regclass, 'speed'::regclass);
DROP TABLE speed;
\set VERBOSITY terse
SELECT count(*) FROM live;
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
CREATE TABLE speed (k text, hour int, n bigint, top int);
INSERT INTO speed VALUES ('z', 99, 1, 1);
SELECT * FROM live WHERE hour = 99;
ALTER TABLE batch RENAME TO batch_old;
CREATE TABLE batch AS SELECT * FROM batch_old;
DROP TABLE batch_old;
SELECT count(*) > 0 AS still_reads FROM live;

-- forget drops the view; the serving table stays
SELECT serving_layer_forget('v_serving');
SELECT to_regclass('live') IS NULL AS view_dropped,
	   to_regclass('v_serving') IS NOT NULL AS table_stays;

-- define creates the view at once when the serving table exists
SELECT serving_layer_define('v_serving', 'batch', 'speed', key => '{k,hour}',
							merge => '{"top": "max"}', time_column => 'hour',
							live_view => 'sl_live."Live View"');
SELECT live_view FROM serving_layer_definitions WHERE target = 'v_serving';
SELECT count(*) > 0 AS has_rows FROM "Live View";
-- a definition that names another view drops the old one
SELECT serving_layer_define('v_serving', 'batch', 'speed', key => '{k,hour}',
							merge => '{"top": "max"}', time_column => 'hour',
							live_view => 'live2');
SELECT to_regclass('"Live View"') IS NULL AS old_view_dropped,
	   to_regclass('live2') IS NOT NULL AS new_view;
-- a live view cannot be the serving table or a layer
\set VERBOSITY terse
SELECT serving_layer_define('v_serving', 'batch', 'speed', key => '{k,hour}',
							time_column => 'hour', live_view => 'v_serving');
\echo :LAST_ERROR_SQLSTATE
SELECT serving_layer_define('v_serving', 'batch', 'speed', key => '{k,hour}',
							time_column => 'hour', live_view => 'speed');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
SELECT serving_layer_forget('v_serving');

DROP TABLE before_refresh, plan_lines;
RESET ROLE;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA sl_live CASCADE;
RESET client_min_messages;
DROP ROLE regress_live_owner, regress_live_reader, regress_live_stranger;
