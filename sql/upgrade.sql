--
-- upgrade: the extension created at version 1.0 and updated to 1.1, 1.2,
-- 1.3, 1.4 and 1.5 keeps its definitions and history, gains
-- serving_layer_prune_history() (1.1), the interface of version 2 (1.2),
-- the state of mode 'apply' (1.3), the watch of its batch tables (1.4) and
-- an unlogged state (1.5), and ends up with exactly the objects of a fresh
-- install.  Definitions made under 1.1 refresh under 1.5.  The test ends
-- with the extension dropped and created again at the default version, so
-- later tests find it as usual.
--
\set VERBOSITY default
\set SHOW_CONTEXT never

-- what the extension is made of: its member functions with their
-- signatures, properties and whether PUBLIC may execute them, and its member
-- relations with their columns, PUBLIC's privileges, whether pg_dump
-- dumps their rows and whether they are WAL-logged (temporary views on the
-- catalogs only: they survive the extension being dropped)
CREATE TEMP VIEW sl_functions AS
	SELECT p.proname AS function,
		pg_get_function_arguments(p.oid) AS arguments,
		pg_get_function_result(p.oid) AS result,
		p.prokind AS kind, p.provolatile AS vol, p.proisstrict AS strict,
		p.proparallel AS par, p.prosecdef AS secdef,
		has_function_privilege('public', p.oid, 'EXECUTE') AS public_exec
	FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
	JOIN pg_extension e ON e.oid = d.refobjid
	WHERE d.classid = 'pg_proc'::regclass
		AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
		AND e.extname = 'serving_layer';
CREATE TEMP VIEW sl_relations AS
	SELECT c.relname AS relation, c.relkind AS kind,
		(SELECT string_agg(a.attname || ' ' ||
						   format_type(a.atttypid, a.atttypmod) ||
						   CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
						   ', ' ORDER BY a.attnum)
		 FROM pg_attribute a
		 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)
			AS columns,
		(SELECT string_agg(x.privilege_type, ',' ORDER BY x.privilege_type)
		 FROM aclexplode(c.relacl) x WHERE x.grantee = 0) AS public_privs,
		c.oid = ANY (e.extconfig) AS dumped,
		c.relpersistence AS persistence
	FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
	JOIN pg_extension e ON e.oid = d.refobjid
	WHERE d.classid = 'pg_class'::regclass
		AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
		AND e.extname = 'serving_layer';
-- every other kind of member (there is none besides functions and relations;
-- an index or a type would show here).  The types made implicitly with a
-- relation or type (a relation's rowtype, an array type) are members too
-- from PostgreSQL 17 on and are left out, so every major shows the same.
CREATE TEMP VIEW sl_other_members AS
	SELECT pg_describe_object(d.classid, d.objid, d.objsubid) AS object
	FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
	WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
		AND e.extname = 'serving_layer'
		AND d.classid NOT IN ('pg_proc'::regclass, 'pg_class'::regclass)
		AND NOT EXISTS (SELECT FROM pg_type t
						WHERE d.classid = 'pg_type'::regclass
							AND t.oid OPERATOR(pg_catalog.=) d.objid
							AND (t.typrelid OPERATOR(pg_catalog.<>) 0
								 OR EXISTS (SELECT FROM pg_type el
											WHERE el.typarray OPERATOR(pg_catalog.=) t.oid)));

--
-- Version 1.0
--

-- start from version 1.0 (NOTICEs hidden: what an earlier test left behind
-- may cascade)
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS serving_layer CASCADE;
RESET client_min_messages;
CREATE EXTENSION serving_layer VERSION '1.0';
SELECT extname, extversion, extrelocatable, extnamespace::regnamespace
FROM pg_extension WHERE extname = 'serving_layer';

-- the objects of 1.0
SELECT function, arguments, result, kind, vol, strict, par, secdef, public_exec
FROM sl_functions ORDER BY function COLLATE "C";
SELECT * FROM sl_relations ORDER BY relation COLLATE "C";
SELECT * FROM sl_other_members ORDER BY object COLLATE "C";

-- 1.0 has no prune function
SELECT to_regprocedure('serving_layer_prune_history(interval)') IS NULL AS no_prune;

-- the update paths the installed scripts offer
SELECT * FROM pg_extension_update_paths('serving_layer') ORDER BY 1, 2;

-- this library works with the objects of version 1.5: under 1.0 its
-- functions refuse at once (55000) and change nothing
CREATE SCHEMA sl_upgrade;
CREATE TABLE sl_upgrade.batch (city text, n bigint, amount numeric);
CREATE TABLE sl_upgrade.speed (city text, n integer, amount numeric);
INSERT INTO sl_upgrade.batch VALUES ('oslo', 1, 10), ('rome', 2, 20);
INSERT INTO sl_upgrade.speed VALUES ('oslo', 5, 1), ('kyiv', 1, 3);
\set VERBOSITY terse
SELECT serving_layer_define('sl_upgrade.serving', 'sl_upgrade.batch', 'sl_upgrade.speed');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM serving_layer_refresh();
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
SELECT count(*) AS definitions FROM serving_layer_config;

--
-- Update to 1.1
--

-- the update walks serving_layer--1.0--1.1.sql
ALTER EXTENSION serving_layer UPDATE TO '1.1';
SELECT extname, extversion, extrelocatable, extnamespace::regnamespace
FROM pg_extension WHERE extname = 'serving_layer';

-- what changed: the new function, nothing else
SELECT function, arguments, result, kind, vol, strict, par, secdef, public_exec
FROM sl_functions ORDER BY function COLLATE "C";
SELECT * FROM sl_relations ORDER BY relation COLLATE "C";
SELECT * FROM sl_other_members ORDER BY object COLLATE "C";

-- definitions and history as the functions of 1.0 and 1.1 wrote them (the
-- layers as regclass): one with the defaults, one with everything explicit
-- and a quoted target, and one whose batch table was dropped afterwards,
-- which left its OID behind
INSERT INTO serving_layer_config (target, target_schema, target_name, batch,
	speed, key, merge, speed_columns, definer)
VALUES ('sl_upgrade.serving', 'sl_upgrade', 'serving', 'sl_upgrade.batch',
		'sl_upgrade.speed', '{city}', '{"n": "sum", "amount": "sum"}',
		'{city,n,amount}', current_user::regrole),
	   ('sl_upgrade."Latest"', 'sl_upgrade', 'Latest', 'sl_upgrade.batch',
		'sl_upgrade.speed', '{city}', '{"n": "sum", "amount": "speed"}',
		'{city,n,amount}', current_user::regrole);
CREATE TABLE sl_upgrade.gone (city text, n bigint);
INSERT INTO serving_layer_config (target, target_schema, target_name, batch,
	speed, key, merge, speed_columns, definer)
VALUES ('sl_upgrade.orphan', 'sl_upgrade', 'orphan', 'sl_upgrade.gone',
		'sl_upgrade.speed', '{city}', '{"n": "sum"}', '{city,n}',
		current_user::regrole);
SELECT 'sl_upgrade.gone'::regclass::oid AS gone_oid \gset
DROP TABLE sl_upgrade.gone;
INSERT INTO serving_layer_history (target, started_at, finished_at, status,
	batch_rows, speed_rows, output_rows)
VALUES ('sl_upgrade.serving', now() - interval '1 day',
		now() - interval '1 day', 'ok', 2, 2, 3);
SELECT target, batch::oid > 0 AS has_batch, speed, key, merge, speed_columns
FROM serving_layer_definitions ORDER BY target COLLATE "C";

--
-- Update to 1.2
--

-- the update walks serving_layer--1.1--1.2.sql
ALTER EXTENSION serving_layer UPDATE TO '1.2';
SELECT extname, extversion, extrelocatable, extnamespace::regnamespace
FROM pg_extension WHERE extname = 'serving_layer';

-- what changed: define takes time_column, live_view and mode; refresh
-- returns the boundary and the changed rows; serving_layer_set_boundary()
-- and the live view's speed part are new; the layers are stored as text,
-- with the time column, boundaries, live view and mode beside them; history
-- records the boundary and changed rows
SELECT function, arguments, result, kind, vol, strict, par, secdef, public_exec
FROM sl_functions ORDER BY function COLLATE "C";
SELECT * FROM sl_relations ORDER BY relation COLLATE "C";
SELECT * FROM sl_other_members ORDER BY object COLLATE "C";

-- this library works with the objects of version 1.5: under 1.2 its
-- functions refuse at once (55000)
\set VERBOSITY terse
SELECT serving_layer_forget('sl_upgrade.serving');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default

--
-- Update to 1.3
--

-- the update walks serving_layer--1.2--1.3.sql
ALTER EXTENSION serving_layer UPDATE TO '1.3';
SELECT extname, extversion, extrelocatable, extnamespace::regnamespace
FROM pg_extension WHERE extname = 'serving_layer';

-- what changed: mode 'apply' keeps a state per target and a log of other
-- changes of its serving tables, which the watch trigger's function writes;
-- nothing else
SELECT function, arguments, result, kind, vol, strict, par, secdef, public_exec
FROM sl_functions WHERE function = 'serving_layer_watch';
SELECT * FROM sl_relations WHERE relation LIKE 'serving_layer_apply%'
ORDER BY relation COLLATE "C";

-- this library works with the objects of version 1.5: under 1.3 its
-- functions refuse at once (55000)
\set VERBOSITY terse
SELECT serving_layer_forget('sl_upgrade.serving');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default

--
-- Update to 1.4
--

-- the update walks serving_layer--1.3--1.4.sql
ALTER EXTENSION serving_layer UPDATE TO '1.4';
SELECT extname, extversion, extrelocatable, extnamespace::regnamespace
FROM pg_extension WHERE extname = 'serving_layer';

-- what changed: mode 'apply' puts a watch trigger on batch tables too, whose
-- function logs their changes per target, and the classic layout's batch
-- rows are kept per schema; nothing else
SELECT function, arguments, result, kind, vol, strict, par, secdef, public_exec
FROM sl_functions WHERE function = 'serving_layer_watch_batch';
SELECT * FROM sl_relations
WHERE relation IN ('serving_layer_batch_dirty', 'serving_layer_classic_state')
ORDER BY relation COLLATE "C";

-- this library works with the objects of version 1.5: under 1.4 its
-- functions refuse at once (55000)
\set VERBOSITY terse
SELECT serving_layer_forget('sl_upgrade.serving');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default

--
-- Update to 1.5
--

-- the update walks serving_layer--1.4--1.5.sql
ALTER EXTENSION serving_layer UPDATE TO '1.5';
SELECT extname, extversion, extrelocatable, extnamespace::regnamespace
FROM pg_extension WHERE extname = 'serving_layer';

-- what changed: the state of mode 'apply' and the two change logs are
-- unlogged (u); the definitions, the history and the classic layout's
-- state are logged (p)
SELECT relation, persistence FROM sl_relations ORDER BY relation COLLATE "C";

-- the definitions made under 1.1 show their layers by name; the orphan
-- keeps the OID it had as its name
SELECT target, batch, speed, key, merge, speed_columns, time_column,
	boundary, live_view, mode
FROM serving_layer_definitions
WHERE target <> 'sl_upgrade.orphan' ORDER BY target COLLATE "C";
SELECT batch = :'gone_oid' AS orphan_keeps_oid
FROM serving_layer_definitions WHERE target = 'sl_upgrade.orphan';
-- the history is kept; the new columns are NULL
SELECT target, status, batch_rows, speed_rows, output_rows, boundary,
	changed_rows
FROM serving_layer_history ORDER BY target COLLATE "C";

-- the definitions made under 1.1 refresh; the orphan's layer is missing
-- (42P01) and the refresh of both others is unchanged by it
SELECT * FROM serving_layer_refresh('sl_upgrade.serving');
SELECT * FROM serving_layer_refresh('sl_upgrade."Latest"');
SELECT * FROM sl_upgrade.serving ORDER BY city;
SELECT * FROM sl_upgrade."Latest" ORDER BY city;
DO $$
BEGIN
	PERFORM serving_layer_refresh('sl_upgrade.orphan');
EXCEPTION WHEN undefined_table THEN
	RAISE NOTICE 'the orphan''s refresh failed with 42P01';
END
$$;
-- (the failure is written by a background worker once the transaction is
-- over: wait for it, at most 30 s, so the counts below do not race it)
DO $$
BEGIN
	FOR i IN 1..600 LOOP
		EXIT WHEN (SELECT count(*) FROM serving_layer_history
				   WHERE target = 'sl_upgrade.orphan' AND status = 'failed') >= 1;
		PERFORM pg_sleep(0.05);
	END LOOP;
END $$;
SELECT status, left(error, 5) AS sqlstate FROM serving_layer_history
WHERE target = 'sl_upgrade.orphan';
SELECT serving_layer_forget('sl_upgrade.orphan');

-- they are bound by name now: a batch table replaced the way dbt does it
-- is read by the next refresh
CREATE TABLE sl_upgrade.batch__dbt_tmp (city text, n bigint, amount numeric);
INSERT INTO sl_upgrade.batch__dbt_tmp VALUES ('oslo', 100, 1), ('rome', 200, 2);
ALTER TABLE sl_upgrade.batch RENAME TO batch__dbt_backup;
ALTER TABLE sl_upgrade.batch__dbt_tmp RENAME TO batch;
DROP TABLE sl_upgrade.batch__dbt_backup CASCADE;
SELECT * FROM serving_layer_refresh() ORDER BY target COLLATE "C";
SELECT * FROM sl_upgrade.serving ORDER BY city;

-- a target in mode 'apply' whose serving table has a unique index on the
-- key leaves its state in the unlogged table (two speed groups), and a
-- change of one speed row then changes one serving row
SELECT serving_layer_define('sl_upgrade.applied', 'sl_upgrade.batch',
	'sl_upgrade.speed', mode => 'apply');
SELECT status, changed_rows FROM serving_layer_refresh('sl_upgrade.applied');
CREATE UNIQUE INDEX ON sl_upgrade.applied (city);
SELECT status, changed_rows FROM serving_layer_refresh('sl_upgrade.applied');
SELECT target_name, speed_groups FROM serving_layer_apply_state;
UPDATE sl_upgrade.speed SET n = n + 1 WHERE city = 'kyiv';
SELECT status, changed_rows FROM serving_layer_refresh('sl_upgrade.applied');
SELECT * FROM sl_upgrade.applied ORDER BY city;
SELECT serving_layer_forget('sl_upgrade.applied');
DROP TABLE sl_upgrade.applied;
-- (its history goes too: the counts below are of the other targets)
DELETE FROM serving_layer_history WHERE target = 'sl_upgrade.applied';

--
-- serving_layer_prune_history()
--

-- PUBLIC may not run it: an ordinary role gets 42501 and nothing is deleted
CREATE ROLE sl_test_upgrade;
SET ROLE sl_test_upgrade;
SELECT serving_layer_prune_history('0 seconds');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT count(*) FROM serving_layer_history;

-- with the default (30 days) nothing is old enough
SELECT serving_layer_prune_history();
SELECT count(*) FROM serving_layer_history;

-- '0 seconds': the rows of refreshes finished before this transaction
-- started go and are counted; the row of a refresh finished in this very
-- transaction is not older than now() (its start) and stays
BEGIN;
SELECT status FROM serving_layer_refresh('sl_upgrade.serving');
SELECT serving_layer_prune_history('0 seconds');
SELECT count(*) FROM serving_layer_history;
COMMIT;

-- in a later transaction it is old enough too
SELECT serving_layer_prune_history('0 seconds');
SELECT count(*) FROM serving_layer_history;

-- an empty history: nothing to delete
SELECT serving_layer_prune_history('0 seconds');

-- a refresh after pruning is recorded as usual
SELECT status FROM serving_layer_refresh('sl_upgrade."Latest"');
SELECT target, status, batch_rows, speed_rows, output_rows, error
FROM serving_layer_history;

-- the extension's owner may let a role prune
GRANT EXECUTE ON FUNCTION serving_layer_prune_history(interval) TO sl_test_upgrade;
SET ROLE sl_test_upgrade;
SELECT serving_layer_prune_history('0 seconds');
RESET ROLE;
SELECT count(*) FROM serving_layer_history;

--
-- The updated extension is the same as a fresh install of 1.5
--
CREATE TEMP TABLE updated_functions AS SELECT * FROM sl_functions;
CREATE TEMP TABLE updated_relations AS SELECT * FROM sl_relations;
DROP EXTENSION serving_layer CASCADE;
CREATE EXTENSION serving_layer VERSION '1.5';
-- differences either way: none
(SELECT 'only updated' AS side, * FROM updated_functions
 EXCEPT SELECT 'only updated', * FROM sl_functions)
UNION ALL
(SELECT 'only fresh', * FROM sl_functions
 EXCEPT SELECT 'only fresh', * FROM updated_functions);
(SELECT 'only updated' AS side, * FROM updated_relations
 EXCEPT SELECT 'only updated', * FROM sl_relations)
UNION ALL
(SELECT 'only fresh', * FROM sl_relations
 EXCEPT SELECT 'only fresh', * FROM updated_relations);

--
-- Leave the extension as later tests expect it: at the default version
--
DROP EXTENSION serving_layer CASCADE;
CREATE EXTENSION serving_layer;
SELECT e.extversion = a.default_version AS at_default_version
FROM pg_extension e JOIN pg_available_extensions a ON a.name = e.extname
WHERE e.extname = 'serving_layer';

DROP SCHEMA sl_upgrade CASCADE;
DROP ROLE sl_test_upgrade;
DROP VIEW sl_functions, sl_relations, sl_other_members;
DROP TABLE updated_functions, updated_relations;
