/* serving_layer--1.2--1.3.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION serving_layer UPDATE TO '1.3'" to load this file. \quit

--
-- Version 1.3: a refresh in mode 'apply' follows the change.  Its cost was
-- that of comparing the whole serving table with the whole merge; now a
-- refresh leaves what it read for the next one, which then recomputes only
-- the keys whose speed rows changed, as long as the batch layer and the
-- serving table are as they were.  The SQL interface is unchanged.
--

--
-- What the last refresh of a target in mode 'apply' read and left: the
-- serving table and batch table it saw (their storage), the version of the
-- serving table's watch trigger, a hash of the merge, the number and a hash
-- of the batch rows, the rows left in the serving table, and per speed group
-- its key and a hash of its values (speed_state, written by the library:
-- apply_delta.c).  Internal; not dumped: a restored table is compared in
-- full once.
--
CREATE TABLE serving_layer_apply_state (
	target_schema	name NOT NULL,
	target_name		name NOT NULL,
	serving			oid NOT NULL,
	serving_node	oid NOT NULL,
	watch_version	bigint NOT NULL,
	batch			oid NOT NULL,
	batch_node		oid NOT NULL,
	plan_hash		bigint NOT NULL,
	batch_rows		bigint NOT NULL,
	batch_hash		bigint NOT NULL,
	output_rows		bigint NOT NULL,
	speed_groups	bigint NOT NULL,
	speed_state		bytea NOT NULL,
	PRIMARY KEY (target_schema, target_name)
);
-- hashes do not compress: do not try
ALTER TABLE serving_layer_apply_state ALTER COLUMN speed_state SET STORAGE EXTERNAL;
REVOKE ALL ON serving_layer_apply_state FROM PUBLIC;

--
-- Changes of serving tables in mode 'apply' made by anything but a refresh:
-- one row per statement, logged by the trigger below, read (and deleted) by
-- the next refresh, which then compares the whole table.
--
CREATE TABLE serving_layer_apply_dirty (
	serving		oid NOT NULL
);
REVOKE ALL ON serving_layer_apply_dirty FROM PUBLIC;

-- The statement trigger serving_layer_define() puts on a serving table in
-- mode 'apply'.  It runs as the extension's owner, so that whoever may change
-- the table may log the change; on any other table (someone may attach it to
-- one) it logs nothing, so the log only ever holds rows a refresh deletes.
CREATE FUNCTION serving_layer_watch()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF EXISTS (SELECT FROM @extschema@.serving_layer_config AS c
			   WHERE c.target_schema OPERATOR(pg_catalog.=) TG_TABLE_SCHEMA
				 AND c.target_name OPERATOR(pg_catalog.=) TG_TABLE_NAME
				 AND c.mode OPERATOR(pg_catalog.=) 'apply') THEN
		INSERT INTO @extschema@.serving_layer_apply_dirty VALUES (TG_RELID);
	END IF;
	RETURN NULL;
END
$$;
