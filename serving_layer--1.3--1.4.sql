/* serving_layer--1.3--1.4.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION serving_layer UPDATE TO '1.4'" to load this file. \quit

--
-- Version 1.4: a refresh in mode 'apply' knows without reading the batch
-- layer that it has not changed.  Until 1.3 every refresh read the whole
-- batch table to hash it, which cost more than the change it applied when
-- only a few speed keys had moved.  Now the batch table carries a statement
-- trigger that logs which statements changed it, and a refresh whose batch
-- table nobody changed since the last one merges the changed keys with the
-- batch values the last refresh kept.  And the classic layout's half-loaded
-- batch check compares with the last successful refresh of the same schema's
-- serving_layer (the history names every classic refresh "serving_layer").
-- The SQL interface is unchanged.
--

--
-- Targets in mode 'apply' whose batch table changed since their last
-- refresh: per statement that changed it, one row for every such target
-- reading it, logged by the trigger below.  A refresh that reads the batch
-- table deletes its target's rows that it has seen; one that finds none
-- takes the table to be as its last refresh read it.
--
CREATE TABLE serving_layer_batch_dirty (
	target_schema	name NOT NULL,
	target_name		name NOT NULL
);
REVOKE ALL ON serving_layer_batch_dirty FROM PUBLIC;

-- The statement trigger a refresh in mode 'apply' puts on its batch table
-- (apply_watch.c).  It runs as the extension's owner, so that whoever may
-- change the table may log the change; on a table no target in mode
-- 'apply' reads (someone may attach it to one, or a target was forgotten)
-- it logs nothing.
CREATE FUNCTION serving_layer_watch_batch()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	INSERT INTO @extschema@.serving_layer_batch_dirty
		SELECT c.target_schema, c.target_name
		FROM @extschema@.serving_layer_config AS c
		WHERE c.mode OPERATOR(pg_catalog.=) 'apply'
		  AND pg_catalog.to_regclass(c.batch) OPERATOR(pg_catalog.=) TG_RELID;
	RETURN NULL;
END
$$;

--
-- The batch rows of the last successful refresh of the classic layout
-- (no definition: serving_layer from batch_layer and speed_layer found
-- through search_path), per schema of its serving table, for the
-- half-loaded batch check (batch_guard.c).  A schema without a row here
-- falls back to the history, as before 1.4.  Internal; not dumped.
--
CREATE TABLE serving_layer_classic_state (
	target_schema	name PRIMARY KEY,
	last_batch_rows bigint NOT NULL
);
REVOKE ALL ON serving_layer_classic_state FROM PUBLIC;
