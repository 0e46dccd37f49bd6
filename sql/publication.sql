--
-- publication: a 'swap' refresh of a serving table that logical replication
-- publishes is refused before any work (0A000, with a hint naming mode
-- 'apply'), whichever way the publication names it: FOR TABLE, FOR TABLES
-- IN SCHEMA, FOR ALL TABLES; the table and its storage stay as they were
--
-- (quiet: the extension may exist already when other tests ran first)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS serving_layer;
RESET client_min_messages;
-- CREATE PUBLICATION warns when wal_level is not logical: not our concern
SET client_min_messages = error;
\set VERBOSITY default
\set SHOW_CONTEXT never
CREATE SCHEMA sl_pub;
CREATE SCHEMA sl_pub_other;
SET search_path = sl_pub, public;

CREATE TABLE batch (city text, n bigint);
CREATE TABLE speed (city text, n bigint);
INSERT INTO batch VALUES ('oslo', 1), ('rome', 2);
INSERT INTO speed VALUES ('oslo', 10);
SELECT serving_layer_define('sl_pub.serving', 'batch', 'speed');
SELECT target, output_rows, status FROM serving_layer_refresh('sl_pub.serving');
INSERT INTO speed VALUES ('lima', 5);

-- what a refused refresh must leave: the rows and the storage
CREATE VIEW unchanged AS
	SELECT (SELECT pg_catalog.string_agg(city || '=' || n, ',' ORDER BY city)
			FROM sl_pub.serving) AS contents,
		   pg_relation_filenode('sl_pub.serving') AS filenode;
CREATE TABLE before AS SELECT * FROM unchanged;
CREATE VIEW same AS
	SELECT u.contents = b.contents AS same_rows,
		   u.filenode = b.filenode AS same_storage
	FROM unchanged u, before b;

-- FOR TABLE
CREATE PUBLICATION sl_pub_table FOR TABLE serving;
SELECT target, output_rows, status FROM serving_layer_refresh('sl_pub.serving');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM same;
DROP PUBLICATION sl_pub_table;

-- FOR TABLE naming another table only: not published, the swap runs
CREATE TABLE sl_pub_other.t (a int);
CREATE PUBLICATION sl_pub_elsewhere FOR TABLE sl_pub_other.t;
BEGIN;
SELECT target, output_rows, status FROM serving_layer_refresh('sl_pub.serving');
ROLLBACK;
DROP PUBLICATION sl_pub_elsewhere;

-- FOR TABLES IN SCHEMA (of the serving table's schema)
CREATE PUBLICATION sl_pub_schema FOR TABLES IN SCHEMA sl_pub;
SELECT target, output_rows, status FROM serving_layer_refresh('sl_pub.serving');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM same;
-- also a serving table that the refresh would create in that schema
SELECT serving_layer_define('sl_pub.created', 'batch', 'speed');
SELECT target, output_rows, status FROM serving_layer_refresh('sl_pub.created');
\echo :LAST_ERROR_SQLSTATE
SELECT to_regclass('sl_pub.created') IS NULL AS not_created;
DROP PUBLICATION sl_pub_schema;

-- FOR TABLES IN SCHEMA of another schema: not published
CREATE PUBLICATION sl_pub_other_schema FOR TABLES IN SCHEMA sl_pub_other;
BEGIN;
SELECT target, output_rows, status FROM serving_layer_refresh('sl_pub.serving');
ROLLBACK;
DROP PUBLICATION sl_pub_other_schema;

-- FOR ALL TABLES: the existing table and one not created yet
CREATE PUBLICATION sl_pub_all FOR ALL TABLES;
SELECT target, output_rows, status FROM serving_layer_refresh('sl_pub.serving');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM same;
SELECT target, output_rows, status FROM serving_layer_refresh('sl_pub.created');
\echo :LAST_ERROR_SQLSTATE
SELECT to_regclass('sl_pub.created') IS NULL AS not_created;
DROP PUBLICATION sl_pub_all;

-- every refused refresh left a failed history row with the SQLSTATE
-- (failures are written by a background worker once the failing
-- transaction is over: wait for them, at most 30 s)
DO $$
BEGIN
	FOR i IN 1..600 LOOP
		EXIT WHEN (SELECT count(*) FROM serving_layer_history
				   WHERE target IN ('sl_pub.serving', 'sl_pub.created') AND status = 'failed') >= 5;
		PERFORM pg_sleep(0.05);
	END LOOP;
END $$;
SELECT target, status, error FROM serving_layer_history
WHERE target IN ('sl_pub.serving', 'sl_pub.created') AND status = 'failed'
ORDER BY started_at;

-- with no publication left, the swap runs again
SELECT target, output_rows, status FROM serving_layer_refresh('sl_pub.serving');
SELECT * FROM serving ORDER BY city;

-- mode 'apply' refreshes a published table, as row changes; without a
-- replica identity PostgreSQL cannot publish its UPDATEs and DELETEs, which
-- is refused before any work (55000), the table unchanged
SELECT serving_layer_define('sl_pub.serving', 'batch', 'speed', mode => 'apply');
CREATE PUBLICATION sl_pub_apply FOR TABLE serving;
INSERT INTO speed VALUES ('rome', 1);
SELECT target, output_rows, status, changed_rows FROM serving_layer_refresh('sl_pub.serving');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM serving ORDER BY city;
ALTER TABLE serving REPLICA IDENTITY FULL;
SELECT target, output_rows, status, changed_rows FROM serving_layer_refresh('sl_pub.serving');
SELECT * FROM serving ORDER BY city;
DROP PUBLICATION sl_pub_apply;

SELECT serving_layer_forget('sl_pub.serving');
SELECT serving_layer_forget('sl_pub.created');
DROP SCHEMA sl_pub CASCADE;
DROP SCHEMA sl_pub_other CASCADE;
