/* serving_layer--1.1--1.2.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION serving_layer UPDATE TO '1.2'" to load this file. \quit

--
-- Version 1.2 (contract version 2) fits the pipelines a serving layer lives
-- among:
--	 - the layers are bound by name: batch jobs that replace their table (dbt's
--	   table materialization, Spark's JDBC overwrite) leave the definition
--	   working, so batch and speed become schema-qualified, quoted names;
--	 - a time boundary (time_column, serving_layer_set_boundary) so that no
--	   time is counted in both layers;
--	 - a live view showing batch + speed as of now;
--	 - refresh modes 'swap' (version 1's storage swap) and 'apply' (the
--	   differences applied as row changes);
--	 - the boundary and the number of changed rows in the result and history.
--

--
-- Definitions: the layers by name.  A layer whose table was dropped while the
-- definition stored its OID keeps the OID as its name; the next refresh then
-- reports it as missing, as 1.1 did.
--
DROP VIEW serving_layer_definitions;

ALTER TABLE serving_layer_config
	ADD COLUMN batch_name text,
	ADD COLUMN speed_name text;
UPDATE serving_layer_config AS c
	SET batch_name = pg_catalog.format('%I.%I', n.nspname, r.relname)
	FROM pg_catalog.pg_class AS r
		JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) r.relnamespace
	WHERE r.oid OPERATOR(pg_catalog.=) c.batch;
UPDATE serving_layer_config AS c
	SET speed_name = pg_catalog.format('%I.%I', n.nspname, r.relname)
	FROM pg_catalog.pg_class AS r
		JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) r.relnamespace
	WHERE r.oid OPERATOR(pg_catalog.=) c.speed;
UPDATE serving_layer_config
	SET batch_name = (batch::pg_catalog.oid)::pg_catalog.text
	WHERE batch_name IS NULL;
UPDATE serving_layer_config
	SET speed_name = (speed::pg_catalog.oid)::pg_catalog.text
	WHERE speed_name IS NULL;
ALTER TABLE serving_layer_config
	DROP COLUMN batch,
	DROP COLUMN speed;
ALTER TABLE serving_layer_config RENAME COLUMN batch_name TO batch;
ALTER TABLE serving_layer_config RENAME COLUMN speed_name TO speed;
ALTER TABLE serving_layer_config
	ALTER COLUMN batch SET NOT NULL,
	ALTER COLUMN speed SET NOT NULL;

--
-- The time boundary, the live view and the mode.  boundary is the one set
-- with serving_layer_set_boundary() (NULL: derived at each refresh);
-- last_boundary is the boundary the last successful refresh used, which the
-- live view reads; live_view_schema and live_view_name say where the live
-- view is, live_view how the user named it.  last_batch_rows is the batch
-- rows of the last successful refresh, which the half-loaded batch check
-- compares with (taken from the history for definitions made before 1.2).
--
ALTER TABLE serving_layer_config
	ADD COLUMN time_column text,
	ADD COLUMN boundary text,
	ADD COLUMN live_view text,
	ADD COLUMN live_view_schema name,
	ADD COLUMN live_view_name name,
	ADD COLUMN mode text NOT NULL DEFAULT 'swap'
		CHECK (mode IN ('swap', 'apply')),
	ADD COLUMN last_boundary text,
	ADD COLUMN last_batch_rows bigint,
	ADD CHECK (boundary IS NULL OR time_column IS NOT NULL),
	ADD CHECK ((live_view IS NULL) = (live_view_name IS NULL)),
	ADD CHECK (live_view IS NULL OR time_column IS NOT NULL);

UPDATE serving_layer_config AS c
	SET last_batch_rows = (
		SELECT h.batch_rows FROM serving_layer_history AS h
		WHERE h.target OPERATOR(pg_catalog.=) c.target
			AND h.status OPERATOR(pg_catalog.=) 'ok'
		ORDER BY h.finished_at DESC LIMIT 1);

CREATE VIEW serving_layer_definitions AS
	SELECT target, batch, speed, key, merge, speed_columns,
		time_column, boundary, live_view, mode
	FROM serving_layer_config;
REVOKE ALL ON serving_layer_definitions FROM PUBLIC;
GRANT SELECT ON serving_layer_definitions TO PUBLIC;

--
-- History: the boundary used and, in mode 'apply', the rows changed.  The
-- index serves the half-loaded batch check, which reads the target's last
-- successful refresh.
--
ALTER TABLE serving_layer_history
	ADD COLUMN boundary text,
	ADD COLUMN changed_rows bigint;
CREATE INDEX serving_layer_history_target
	ON serving_layer_history (target, finished_at);

--
-- The SQL interface, version 2.
--
DROP FUNCTION serving_layer_define(text, regclass, regclass, text[], jsonb,
								   text[]);
CREATE FUNCTION serving_layer_define(
	target text,
	batch regclass,
	speed regclass,
	key text[] DEFAULT NULL,
	merge jsonb DEFAULT NULL,
	speed_columns text[] DEFAULT NULL,
	time_column text DEFAULT NULL,
	live_view text DEFAULT NULL,
	mode text DEFAULT 'swap')
RETURNS void
AS 'MODULE_PATHNAME', 'serving_layer_define'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE;

DROP FUNCTION serving_layer_refresh(text);
CREATE FUNCTION serving_layer_refresh(
	target text DEFAULT NULL)
RETURNS TABLE (
	target text,
	batch_rows bigint,
	speed_rows bigint,
	output_rows bigint,
	status text,
	boundary text,
	changed_rows bigint)
AS 'MODULE_PATHNAME', 'serving_layer_refresh'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION serving_layer_set_boundary(target text, boundary text)
RETURNS void
AS 'MODULE_PATHNAME', 'serving_layer_set_boundary'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE;

--
-- The speed part of a live view: the speed layer's rows after the boundary
-- of the target's last refresh, merged by key.  Live views call it; it
-- checks that the caller may read the live view, then reads the speed layer
-- by name as the serving table's owner.  Internal.
--
CREATE FUNCTION serving_layer_live_speed(target_schema name, target_name name)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'serving_layer_live_speed'
LANGUAGE C STRICT STABLE PARALLEL UNSAFE;
