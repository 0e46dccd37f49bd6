/* serving_layer--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION serving_layer" to load this file. \quit

--
-- The definition catalog.  One row per serving table.  It is an extension
-- configuration table, so pg_dump keeps the definitions; batch and speed are
-- regclass, so they follow renames and are dumped by name.  Users read it
-- through the serving_layer_definitions view and change it only through
-- serving_layer_define() and serving_layer_forget(), which check ownership.
--
CREATE TABLE serving_layer_config (
	target			text NOT NULL,		-- the target as shown to users
	target_schema	name NOT NULL,		-- where the serving table lives
	target_name		name NOT NULL,
	batch			regclass NOT NULL,
	speed			regclass NOT NULL,
	key				text[] NOT NULL,	-- key columns, batch names
	merge			jsonb NOT NULL,		-- measure -> effective merge
	speed_columns	text[] NOT NULL,	-- speed names in batch column order
	definer			regrole NOT NULL,	-- who defined it (owns it until the table exists)
	PRIMARY KEY (target_schema, target_name)
);
SELECT pg_catalog.pg_extension_config_dump('serving_layer_config', '');
REVOKE ALL ON serving_layer_config FROM PUBLIC;
GRANT SELECT ON serving_layer_config TO PUBLIC;

CREATE VIEW serving_layer_definitions AS
	SELECT target, batch, speed, key, merge, speed_columns
	FROM serving_layer_config;
REVOKE ALL ON serving_layer_definitions FROM PUBLIC;
GRANT SELECT ON serving_layer_definitions TO PUBLIC;

--
-- One row per refresh of a target.
--
CREATE TABLE serving_layer_history (
	target		text NOT NULL,
	started_at	timestamptz NOT NULL,
	finished_at	timestamptz NOT NULL,
	status		text NOT NULL
		CHECK (status IN ('ok', 'failed', 'skipped')),
	batch_rows	bigint,
	speed_rows	bigint,
	output_rows bigint,
	error		text,
	CHECK ((status = 'failed') = (error IS NOT NULL))
);
CREATE INDEX serving_layer_history_started_at
	ON serving_layer_history (started_at);
REVOKE ALL ON serving_layer_history FROM PUBLIC;
GRANT SELECT ON serving_layer_history TO PUBLIC;

--
-- The merge used for "speed" and "batch": the value of the key's single row
-- in the winning layer.  Internal; the refresh calls it qualified with this
-- extension's schema.
--
CREATE FUNCTION serving_layer_pick_transfn(internal, anyelement, boolean,
										   boolean, text)
RETURNS internal
AS 'MODULE_PATHNAME', 'serving_layer_pick_transfn'
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;

CREATE FUNCTION serving_layer_pick_finalfn(internal, anyelement, boolean,
										   boolean, text)
RETURNS anyelement
AS 'MODULE_PATHNAME', 'serving_layer_pick_finalfn'
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;

CREATE AGGREGATE serving_layer_pick(anyelement, boolean, boolean, text) (
	SFUNC = serving_layer_pick_transfn,
	STYPE = internal,
	FINALFUNC = serving_layer_pick_finalfn,
	FINALFUNC_EXTRA
);

--
-- Apply a type modifier as an assignment does (an error, not truncation,
-- for a too-long string); the refresh uses it to convert speed values.
--
CREATE FUNCTION serving_layer_typmod(anyelement, integer)
RETURNS anyelement
AS 'MODULE_PATHNAME', 'serving_layer_typmod'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

--
-- The SQL interface (README.md, "Reference").
--
CREATE FUNCTION serving_layer_define(
	target text,
	batch regclass,
	speed regclass,
	key text[] DEFAULT NULL,
	merge jsonb DEFAULT NULL,
	speed_columns text[] DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'serving_layer_define'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION serving_layer_refresh(
	target text DEFAULT NULL)
RETURNS TABLE (
	target text,
	batch_rows bigint,
	speed_rows bigint,
	output_rows bigint,
	status text)
AS 'MODULE_PATHNAME', 'serving_layer_refresh'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION serving_layer_forget(target text)
RETURNS void
AS 'MODULE_PATHNAME', 'serving_layer_forget'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
