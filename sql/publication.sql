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

-- Under a publication of every table (a CDC tool's FOR ALL TABLES) the
-- extension's own tables keep working: the state of mode 'apply' and the
-- two change logs are unlogged and so in no publication, the definitions
-- and the classic layout's state have primary keys, and the history has
-- REPLICA IDENTITY FULL, so PostgreSQL accepts the DELETEs the functions
-- run on them (until 1.4 define and forget failed with 55000)
CREATE PUBLICATION sl_pub_every FOR ALL TABLES;
SELECT c.relname, c.relpersistence, c.relreplident,
	EXISTS (SELECT FROM pg_publication_tables t
			WHERE t.pubname = 'sl_pub_every' AND t.tablename = c.relname) AS published
FROM pg_class c JOIN pg_depend d ON d.objid = c.oid
WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'serving_layer')
	AND d.classid = 'pg_class'::regclass AND c.relkind = 'r'
ORDER BY c.relname COLLATE "C";
-- (the layers, published too, need an identity for their own UPDATEs)
ALTER TABLE batch REPLICA IDENTITY FULL;
-- the first refresh creates the table: only INSERTs, no identity needed;
-- the next one needs it
SELECT serving_layer_define('sl_pub.applied', 'batch', 'speed', mode => 'apply');
SELECT target, output_rows, status, changed_rows FROM serving_layer_refresh('sl_pub.applied');
SELECT target, output_rows, status, changed_rows FROM serving_layer_refresh('sl_pub.applied');
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE applied ADD PRIMARY KEY (city);
SELECT target, output_rows, status, changed_rows FROM serving_layer_refresh('sl_pub.applied');
-- a batch change (logged for the target, deleted by the refresh), a change
-- of the serving table by hand (logged, the next refresh compares in full)
UPDATE batch SET n = n + 1 WHERE city = 'rome';
UPDATE applied SET n = 0 WHERE city = 'oslo';
SELECT target, output_rows, status, changed_rows FROM serving_layer_refresh('sl_pub.applied');
SELECT * FROM applied ORDER BY city;
-- defined again, forgotten, the history pruned
SELECT serving_layer_define('sl_pub.applied', 'batch', 'speed', mode => 'apply');
SELECT target, output_rows, status, changed_rows FROM serving_layer_refresh('sl_pub.applied');
SELECT serving_layer_forget('sl_pub.applied');
-- the refresh refused for want of a replica identity left a failed row,
-- written once its transaction was over: wait for it (at most 30 s), so
-- that the prune below finds it
DO $$
BEGIN
	FOR i IN 1..600 LOOP
		EXIT WHEN EXISTS (SELECT FROM serving_layer_history
						  WHERE target = 'sl_pub.applied' AND status = 'failed');
		PERFORM pg_sleep(0.05);
	END LOOP;
END $$;
SELECT count(*) FROM serving_layer_history
WHERE target = 'sl_pub.applied' AND status = 'failed';
SELECT serving_layer_prune_history('0 seconds') >= 0 AS pruned;
SELECT count(*) FROM serving_layer_history WHERE target = 'sl_pub.applied';
DROP PUBLICATION sl_pub_every;

DROP SCHEMA sl_pub CASCADE;
DROP SCHEMA sl_pub_other CASCADE;
