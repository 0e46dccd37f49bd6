--
-- lambda_names: the layers are bound by name (contract v2).  A definition
-- stores the batch and speed tables by their schema-qualified names and
-- every refresh finds them again: a batch job that replaces its table (dbt's
-- table materialization, Spark's JDBC overwrite) leaves the definition
-- working.  A layer missing under its name, or whose columns no longer fit,
-- fails that refresh (42P01, 42703, 42804), recorded in history, with the
-- serving table unchanged.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS serving_layer;
RESET client_min_messages;
CREATE SCHEMA sl_names;
CREATE SCHEMA "Odd; Schema";
SET search_path = sl_names, public;

CREATE TABLE batch (city text, n bigint);
CREATE TABLE speed (city text, n bigint);
INSERT INTO batch VALUES ('oslo', 1), ('rome', 2);
INSERT INTO speed VALUES ('oslo', 10);
SELECT serving_layer_define('n_serving', 'batch', 'speed');
CREATE TABLE "Odd; Schema"."Batch ""1""" (city text, n bigint);
INSERT INTO "Odd; Schema"."Batch ""1""" VALUES ('lima', 5);
SELECT serving_layer_define('odd', '"Odd; Schema"."Batch ""1"""', 'speed');
-- the names, schema-qualified and quoted, as text
SELECT target, batch, speed, pg_typeof(batch) AS type
FROM serving_layer_definitions ORDER BY target;
SELECT target, status FROM serving_layer_refresh() ORDER BY target;
SELECT * FROM n_serving ORDER BY city;
CREATE TEMP TABLE keep AS SELECT 'n_serving'::regclass::oid AS serving_oid;

--
-- dbt's table materialization: build x__dbt_tmp, rename x to x__dbt_backup,
-- rename the new table to x, drop the backup with CASCADE
--
CREATE TABLE batch__dbt_tmp AS
	SELECT * FROM (VALUES ('oslo', 100::bigint), ('rome', 200), ('kyiv', 300))
	AS v(city, n);
ALTER TABLE batch RENAME TO batch__dbt_backup;
ALTER TABLE batch__dbt_tmp RENAME TO batch;
-- a refresh between the rename and the drop reads the new table
SELECT batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('n_serving');
SELECT * FROM n_serving ORDER BY city;
DROP TABLE batch__dbt_backup CASCADE;
SELECT batch_rows, output_rows, status FROM serving_layer_refresh('n_serving');
-- the serving table kept its identity
SELECT 'n_serving'::regclass::oid = serving_oid AS same_table FROM keep;

--
-- Spark's JDBC overwrite: drop and create
--
DROP TABLE batch;
CREATE TABLE batch (city text, n bigint);
INSERT INTO batch VALUES ('oslo', 7), ('paris', 8);
SELECT batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('n_serving');
SELECT * FROM n_serving ORDER BY city;
-- the speed layer may be replaced the same way
DROP TABLE speed CASCADE;
CREATE TABLE speed (city text, n bigint);
INSERT INTO speed VALUES ('paris', 1);
SELECT batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('n_serving');
SELECT * FROM n_serving ORDER BY city;

--
-- A layer missing under its name: 42P01, recorded, the table unchanged
--
ALTER TABLE batch RENAME TO batch_elsewhere;
\set VERBOSITY terse
SELECT * FROM serving_layer_refresh('n_serving');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
SELECT * FROM n_serving ORDER BY city;
-- (failures are written by a background worker once the failing
-- transaction is over: wait for them, at most 30 s)
DO $$
BEGIN
	FOR i IN 1..600 LOOP
		EXIT WHEN (SELECT count(*) FROM serving_layer_history
				   WHERE target = 'n_serving' AND status = 'failed') >= 1;
		PERFORM pg_sleep(0.05);
	END LOOP;
END $$;
SELECT status, error FROM serving_layer_history
WHERE target = 'n_serving' ORDER BY started_at DESC LIMIT 1;
-- the message names the layer, the detail the stored name
SELECT * FROM serving_layer_refresh('n_serving');
ALTER TABLE batch_elsewhere RENAME TO batch;

--
-- A replacement whose columns no longer fit
--
-- a key column missing: 42703
ALTER TABLE batch RENAME TO batch_good;
CREATE TABLE batch (town text, n bigint);
\set VERBOSITY terse
SELECT * FROM serving_layer_refresh('n_serving');
\echo :LAST_ERROR_SQLSTATE
DROP TABLE batch;
-- one column more than the definition matched: 42804
CREATE TABLE batch (city text, n bigint, extra int);
SELECT * FROM serving_layer_refresh('n_serving');
\echo :LAST_ERROR_SQLSTATE
DROP TABLE batch;
-- a speed column that cannot be assigned to the batch type: 42804
ALTER TABLE batch_good RENAME TO batch;
ALTER TABLE speed RENAME TO speed_good;
CREATE TABLE speed (city text, n point);
SELECT * FROM serving_layer_refresh('n_serving');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
DROP TABLE speed;
ALTER TABLE speed_good RENAME TO speed;
-- every failure was recorded, and the serving table is as it was
-- (failures are written by a background worker once the failing
-- transaction is over: wait for them, at most 30 s)
DO $$
BEGIN
	FOR i IN 1..600 LOOP
		EXIT WHEN (SELECT count(*) FROM serving_layer_history
				   WHERE target = 'n_serving' AND status = 'failed') >= 5;
		PERFORM pg_sleep(0.05);
	END LOOP;
END $$;
SELECT status, left(error, 5) AS sqlstate FROM serving_layer_history
WHERE target = 'n_serving' AND status = 'failed' ORDER BY started_at;
SELECT * FROM n_serving ORDER BY city;
-- and with the right tables back, the refresh works again
SELECT status FROM serving_layer_refresh('n_serving');

--
-- A view as a layer is bound by name too
--
CREATE VIEW batch_v AS SELECT city, n FROM batch;
SELECT serving_layer_define('from_view', 'batch_v', 'speed');
CREATE OR REPLACE VIEW batch_v AS SELECT city, n * 2 AS n FROM batch;
SELECT status FROM serving_layer_refresh('from_view');
SELECT * FROM from_view ORDER BY city;
DROP VIEW batch_v;
CREATE VIEW batch_v AS SELECT 'new'::text AS city, 1::bigint AS n;
SELECT status FROM serving_layer_refresh('from_view');
SELECT * FROM from_view ORDER BY city;

-- the stored names are schema-qualified: a table of the same name earlier
-- on search_path is not picked up
CREATE SCHEMA sl_names_decoy;
CREATE TABLE sl_names_decoy.batch (city text, n bigint);
INSERT INTO sl_names_decoy.batch VALUES ('decoy', 999);
SET search_path = sl_names_decoy, sl_names, public;
SELECT status FROM serving_layer_refresh('sl_names.n_serving');
SELECT count(*) AS decoy_rows FROM sl_names.n_serving WHERE city = 'decoy';
SET search_path = sl_names, public;

SELECT serving_layer_forget(target) FROM serving_layer_definitions
WHERE target IN ('n_serving', 'odd', 'from_view');
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA sl_names, sl_names_decoy, "Odd; Schema" CASCADE;
RESET client_min_messages;
