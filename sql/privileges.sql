--
-- privileges: who may define, refresh, change and forget a serving table,
-- and who may touch the extension's own tables.
--
-- (quiet: the extension may exist already when other tests ran first)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS serving_layer;
RESET client_min_messages;
\set VERBOSITY default
\set SHOW_CONTEXT never
CREATE SCHEMA sl_priv;
CREATE SCHEMA sl_priv_new;		-- where serving tables do not exist yet
SET search_path = sl_priv, public;

-- roles: the owner of the serving table, a member of it, a reader with
-- SELECT on everything, a role with nothing, a role with CREATE on
-- sl_priv_new, and a role with SELECT on the batch table only
CREATE ROLE sl_test_owner;
CREATE ROLE sl_test_member IN ROLE sl_test_owner;
CREATE ROLE sl_test_reader;
CREATE ROLE sl_test_nobody;
CREATE ROLE sl_test_creator;
CREATE ROLE sl_test_halfway;
GRANT USAGE ON SCHEMA sl_priv, sl_priv_new TO sl_test_owner, sl_test_reader,
	sl_test_nobody, sl_test_creator, sl_test_halfway;
GRANT CREATE ON SCHEMA sl_priv_new TO sl_test_creator;

CREATE TABLE batch (city text, n bigint);
CREATE TABLE speed (city text, n bigint);
INSERT INTO batch VALUES ('oslo', 1), ('rome', 2);
INSERT INTO speed VALUES ('oslo', 10);
GRANT SELECT ON batch, speed TO sl_test_owner, sl_test_reader, sl_test_creator;
GRANT SELECT ON batch TO sl_test_halfway;

-- the serving table exists and belongs to sl_test_owner
CREATE TABLE serving (city text, n bigint);
ALTER TABLE serving OWNER TO sl_test_owner;
GRANT SELECT ON serving TO sl_test_reader;
INSERT INTO serving VALUES ('old', 0);

-- what is stored, and the serving table's storage, to show "nothing changed"
CREATE VIEW defs AS
	SELECT target, batch, speed, key, merge FROM serving_layer_definitions
	WHERE target LIKE 'sl_priv%' ORDER BY target;
CREATE TABLE saved AS
	SELECT pg_relation_filenode('serving') AS filenode;
GRANT SELECT ON defs, saved TO PUBLIC;

--
-- Defining
--

-- define without SELECT on the batch table: 42501, nothing stored
SET ROLE sl_test_nobody;
SELECT serving_layer_define('sl_priv_new.t_nobody', 'batch', 'speed');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT * FROM defs;

-- define with SELECT on the batch table but not on the speed table: 42501
SET ROLE sl_test_halfway;
SELECT serving_layer_define('sl_priv_new.t_halfway', 'batch', 'speed');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT * FROM defs;

-- define an existing serving table the role can read but does not own: 42501
SET ROLE sl_test_reader;
SELECT serving_layer_define('sl_priv.serving', 'batch', 'speed');
\echo :LAST_ERROR_SQLSTATE
-- define a new serving table in a schema without CREATE on it: 42501
SELECT serving_layer_define('sl_priv_new.t_reader', 'batch', 'speed');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT * FROM defs;

-- the owner of the serving table may define it
SET ROLE sl_test_owner;
SELECT serving_layer_define('sl_priv.serving', 'batch', 'speed');
RESET ROLE;
SELECT * FROM defs;

--
-- Refreshing an existing serving table
--

-- refresh without SELECT on the layers: 42501, serving table untouched
SET ROLE sl_test_nobody;
SELECT * FROM serving_layer_refresh('sl_priv.serving');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT * FROM serving ORDER BY city;
SELECT pg_relation_filenode('serving') = filenode AS same_storage FROM saved;

-- refresh with SELECT on batch, speed and serving table, not the owner: 42501
SET ROLE sl_test_reader;
SELECT * FROM serving_layer_refresh('sl_priv.serving');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT * FROM serving ORDER BY city;
SELECT pg_relation_filenode('serving') = filenode AS same_storage FROM saved;

-- a member of the owning role may refresh
SET ROLE sl_test_member;
SELECT * FROM serving_layer_refresh('sl_priv.serving');
RESET ROLE;
SELECT * FROM serving ORDER BY city;

-- the owner may refresh
SET ROLE sl_test_owner;
SELECT * FROM serving_layer_refresh('sl_priv.serving');
RESET ROLE;

--
-- Changing and forgetting a definition whose serving table exists
--

-- a role that does not own the serving table cannot change its definition
SET ROLE sl_test_reader;
SELECT serving_layer_define('sl_priv.serving', 'batch', 'speed',
							merge => '{"n": "max"}');
\echo :LAST_ERROR_SQLSTATE
-- nor forget it
SELECT serving_layer_forget('sl_priv.serving');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT * FROM defs;

-- a member of the owning role may change it
SET ROLE sl_test_member;
SELECT serving_layer_define('sl_priv.serving', 'batch', 'speed',
							merge => '{"n": "max"}');
RESET ROLE;
SELECT * FROM defs;

--
-- Serving tables that do not exist yet
--

-- defined by the superuser, refreshed by a role without CREATE on the
-- schema: 42501, no table created
SELECT serving_layer_define('sl_priv_new.by_super', 'batch', 'speed');
SET ROLE sl_test_reader;
SELECT * FROM serving_layer_refresh('sl_priv_new.by_super');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT to_regclass('sl_priv_new.by_super') IS NULL AS not_created;

-- with CREATE on the schema, the first refresh creates the table, owned by
-- the caller
SET ROLE sl_test_creator;
SELECT * FROM serving_layer_refresh('sl_priv_new.by_super');
SELECT * FROM sl_priv_new.by_super ORDER BY city;
RESET ROLE;
SELECT schemaname, tablename, tableowner FROM pg_tables
WHERE schemaname = 'sl_priv_new' ORDER BY tablename;

-- while a table does not exist, only the role that defined it may change or
-- forget its definition
SET ROLE sl_test_creator;
SELECT serving_layer_define('sl_priv_new.pending', 'batch', 'speed');
RESET ROLE;
GRANT CREATE ON SCHEMA sl_priv_new TO sl_test_reader;
SET ROLE sl_test_reader;
SELECT serving_layer_define('sl_priv_new.pending', 'batch', 'speed',
							merge => '{"n": "min"}');
\echo :LAST_ERROR_SQLSTATE
SELECT serving_layer_forget('sl_priv_new.pending');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
REVOKE CREATE ON SCHEMA sl_priv_new FROM sl_test_reader;
SELECT * FROM defs;
-- the role that defined it may change and forget it
SET ROLE sl_test_creator;
SELECT serving_layer_define('sl_priv_new.pending', 'batch', 'speed',
							merge => '{"n": "min"}');
SELECT * FROM defs;
SELECT serving_layer_forget('sl_priv_new.pending');
RESET ROLE;
SELECT * FROM defs;

-- column privileges count: SELECT on every column of the speed table the
-- merge uses is enough, SELECT on some of them is not (42501)
GRANT CREATE ON SCHEMA sl_priv_new TO sl_test_halfway;
GRANT SELECT (city) ON speed TO sl_test_halfway;
SET ROLE sl_test_halfway;
SELECT serving_layer_define('sl_priv_new.by_columns', 'batch', 'speed');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
GRANT SELECT (n) ON speed TO sl_test_halfway;
SET ROLE sl_test_halfway;
SELECT serving_layer_define('sl_priv_new.by_columns', 'batch', 'speed');
SELECT * FROM serving_layer_refresh('sl_priv_new.by_columns');
SELECT * FROM sl_priv_new.by_columns ORDER BY city;
SELECT serving_layer_forget('sl_priv_new.by_columns');
RESET ROLE;

--
-- The extension's tables
--

-- an unprivileged role can read the definitions and the history
SET ROLE sl_test_nobody;
SELECT target, key FROM serving_layer_definitions
WHERE target LIKE 'sl_priv%' ORDER BY target;
SELECT target, status, batch_rows, speed_rows, output_rows
FROM serving_layer_history WHERE target LIKE 'sl_priv%' AND status = 'ok'
ORDER BY target, started_at;
-- it cannot write the catalog: 42501 for INSERT, UPDATE and DELETE
INSERT INTO serving_layer_config (target, target_schema, target_name, batch,
	speed, key, merge, speed_columns, definer)
	VALUES ('x', 'sl_priv', 'x', 'batch', 'speed', '{city}', '{"n": "sum"}',
			'{city,n}', 'sl_test_nobody');
\echo :LAST_ERROR_SQLSTATE
UPDATE serving_layer_config SET merge = '{"n": "min"}';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM serving_layer_config;
\echo :LAST_ERROR_SQLSTATE
-- nor the history
INSERT INTO serving_layer_history (target, started_at, finished_at, status)
	VALUES ('sl_priv.serving', now(), now(), 'ok');
\echo :LAST_ERROR_SQLSTATE
UPDATE serving_layer_history SET status = 'skipped';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM serving_layer_history;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

--
-- A superuser refreshing a table owned by another role
--

-- an aggregate that records current_user each time it starts a group
CREATE TABLE who_ran (who name);
GRANT INSERT ON who_ran TO sl_test_owner;
CREATE FUNCTION who_sum_step(state bigint, v bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
	IF state IS NULL THEN
		INSERT INTO sl_priv.who_ran VALUES (current_user);
	END IF;
	RETURN coalesce(state, 0) + coalesce(v, 0);
END $$;
CREATE AGGREGATE who_sum(bigint) (SFUNC = who_sum_step, STYPE = bigint);
SET ROLE sl_test_owner;
SELECT serving_layer_define('sl_priv.serving', 'batch', 'speed',
							merge => '{"n": "who_sum"}');
RESET ROLE;
SELECT * FROM defs;
-- the merge runs as the table's owner, not as the superuser who refreshes
SELECT current_user;
SELECT * FROM serving_layer_refresh('sl_priv.serving');
SELECT who, count(*) FROM who_ran GROUP BY who ORDER BY who;
SELECT * FROM serving ORDER BY city;
-- so a superuser refreshing a table whose owner lost SELECT on a layer is
-- refused with the owner's privileges (as REFRESH MATERIALIZED VIEW is),
-- and the serving table is untouched
REVOKE SELECT ON speed FROM sl_test_owner;
SELECT * FROM serving_layer_refresh('sl_priv.serving');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM serving ORDER BY city;
GRANT SELECT ON speed TO sl_test_owner;

-- a definition planted by an unprivileged role, for a serving table that
-- does not exist yet, with a merge aggregate of its own that tries to make
-- its role a superuser: the superuser refreshing every definition (twice,
-- as a nightly job would) never runs that code as the superuser. Whether
-- the refresh refuses (42501) or runs it with the definer's rights is not
-- shown; what matters is who ran it and that the role is still not a
-- superuser.
CREATE ROLE sl_test_mallory;
CREATE SCHEMA sl_priv_mallory AUTHORIZATION sl_test_mallory;
SET ROLE sl_test_mallory;
CREATE TABLE sl_priv_mallory.batch (city text, n bigint);
CREATE TABLE sl_priv_mallory.speed (city text, n bigint);
CREATE TABLE sl_priv_mallory.who_ran (who name);
INSERT INTO sl_priv_mallory.batch VALUES ('x', 1);
CREATE FUNCTION sl_priv_mallory.step(bigint, bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO sl_priv_mallory.who_ran VALUES (current_user);
	IF (SELECT rolsuper FROM pg_catalog.pg_roles
		WHERE rolname = current_user) THEN
		EXECUTE 'ALTER ROLE sl_test_mallory SUPERUSER';
	END IF;
	RETURN coalesce($1, 0) + coalesce($2, 0);
END $$;
CREATE AGGREGATE sl_priv_mallory.agg(bigint) (SFUNC = sl_priv_mallory.step,
											  STYPE = bigint);
SELECT serving_layer_define('sl_priv_mallory.planted', 'sl_priv_mallory.batch',
							'sl_priv_mallory.speed',
							merge => '{"n": "sl_priv_mallory.agg"}');
RESET ROLE;
DO $$
BEGIN
	FOR i IN 1..2 LOOP
		BEGIN
			PERFORM * FROM serving_layer_refresh('sl_priv_mallory.planted');
		EXCEPTION WHEN insufficient_privilege THEN
			NULL;
		END;
	END LOOP;
END $$;
SELECT rolsuper FROM pg_roles WHERE rolname = 'sl_test_mallory';
SELECT count(*) AS ran_as_superuser FROM sl_priv_mallory.who_ran
WHERE who = current_user;
ALTER ROLE sl_test_mallory NOSUPERUSER;

-- the history of successful refreshes
SELECT target, status, batch_rows, speed_rows, output_rows, error
FROM serving_layer_history
WHERE (target LIKE 'sl_priv.%' OR target LIKE 'sl_priv_new.%') AND status = 'ok'
ORDER BY target, started_at;

--
-- Clean up
--
SELECT serving_layer_forget(target) FROM serving_layer_definitions
WHERE target LIKE 'sl_priv%' ORDER BY target;
SET client_min_messages = warning;
DROP SCHEMA sl_priv, sl_priv_new, sl_priv_mallory CASCADE;
RESET client_min_messages;
DROP ROLE sl_test_owner, sl_test_member, sl_test_reader, sl_test_nobody,
	sl_test_creator, sl_test_halfway, sl_test_mallory;
