--
-- definers: whose rights a refresh uses, and targets that cannot be defined
-- because a definition outlives them (temporary tables).
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS serving_layer;
RESET client_min_messages;
\set VERBOSITY default
\set SHOW_CONTEXT never
CREATE ROLE sl_test_planter;
CREATE ROLE sl_test_bob;
CREATE SCHEMA sl_def;
GRANT ALL ON SCHEMA sl_def TO sl_test_planter, sl_test_bob;
SET search_path = sl_def, public;

-- a definition made before its table exists, on a name another role then
-- creates: the refresh must not replace that role's rows (42501), because
-- the definer does not have the privileges of the table's owner
SET ROLE sl_test_planter;
CREATE TABLE sl_def.mb (city text, n bigint);
CREATE TABLE sl_def.ms (city text, n bigint);
INSERT INTO sl_def.mb VALUES ('planted', 666);
GRANT SELECT ON sl_def.mb, sl_def.ms TO PUBLIC;
SELECT serving_layer_define('sl_def.report', 'sl_def.mb', 'sl_def.ms');
RESET ROLE;
SET ROLE sl_test_bob;
CREATE TABLE sl_def.report (city text, n bigint);
INSERT INTO sl_def.report VALUES ('bob''s row', 1);
SELECT * FROM serving_layer_refresh('sl_def.report');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM sl_def.report;
RESET ROLE;
-- a superuser's refresh is refused the same way
SELECT * FROM serving_layer_refresh('sl_def.report');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM sl_def.report;
DROP TABLE sl_def.report;

-- a superuser refreshing a definition an ordinary role made, whose table
-- does not exist yet: the table is created as the definer, so the build
-- never runs the definer's code with the superuser's rights
SELECT * FROM serving_layer_refresh('sl_def.report');
SELECT tableowner FROM pg_tables WHERE schemaname = 'sl_def' AND tablename = 'report';
SELECT * FROM sl_def.report;
-- and the next refresh, by the definer, works
SET ROLE sl_test_planter;
SELECT target, status FROM serving_layer_refresh('sl_def.report');
RESET ROLE;

-- temporary serving tables cannot be defined (0A000), nor temporary layers
CREATE TEMP TABLE tmp_serving (city text, n bigint);
SELECT serving_layer_define('tmp_serving', 'sl_def.mb', 'sl_def.ms');
\echo :LAST_ERROR_SQLSTATE
SELECT serving_layer_define('pg_temp.other', 'sl_def.mb', 'sl_def.ms');
\echo :LAST_ERROR_SQLSTATE
CREATE TEMP TABLE tmp_batch (city text, n bigint);
SELECT serving_layer_define('sl_def.from_temp', 'tmp_batch', 'sl_def.ms');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS stored FROM serving_layer_definitions
WHERE target IN ('tmp_serving', 'pg_temp.other', 'sl_def.from_temp');
-- a refresh of a name that resolves to a temporary table finds no definition
SELECT * FROM serving_layer_refresh('tmp_serving');
\echo :LAST_ERROR_SQLSTATE

-- refresh in a read-only transaction: 25006 before anything is built
BEGIN TRANSACTION READ ONLY;
SELECT * FROM serving_layer_refresh('sl_def.report');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;

-- code a definition names runs with search_path pinned to pg_catalog: an
-- aggregate whose SQL-language step uses an unqualified +, refreshed under
-- a search_path that puts a rogue + before pg_catalog, still adds
CREATE SCHEMA sl_evil;
CREATE FUNCTION sl_evil.rogue_plus(bigint, bigint) RETURNS bigint
	LANGUAGE sql AS 'SELECT 666::bigint';
CREATE OPERATOR sl_evil.+ (FUNCTION = sl_evil.rogue_plus,
						   LEFTARG = bigint, RIGHTARG = bigint);
CREATE FUNCTION sl_def.step(bigint, bigint) RETURNS bigint
	LANGUAGE sql AS 'SELECT coalesce($1, 0) + coalesce($2, 0)';
CREATE AGGREGATE sl_def.total(bigint) (SFUNC = sl_def.step, STYPE = bigint);
CREATE TABLE sl_def.tb (city text, n bigint);
CREATE TABLE sl_def.ts (city text, n bigint);
INSERT INTO sl_def.tb VALUES ('a', 1), ('a', 2);
INSERT INTO sl_def.ts VALUES ('a', 4);
SELECT serving_layer_define('sl_def.totals', 'sl_def.tb', 'sl_def.ts',
							merge => '{"n": "sl_def.total"}');
SET search_path = sl_evil, pg_catalog, sl_def, public;
SELECT target, status FROM serving_layer_refresh('sl_def.totals');
SELECT * FROM sl_def.totals;
SET search_path = sl_def, public;
SELECT serving_layer_forget('sl_def.totals');
DROP SCHEMA sl_evil CASCADE;

SELECT serving_layer_forget('sl_def.report');
RESET search_path;
DROP SCHEMA sl_def CASCADE;
DROP ROLE sl_test_planter;
DROP ROLE sl_test_bob;
