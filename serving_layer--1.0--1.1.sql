/* serving_layer--1.0--1.1.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION serving_layer UPDATE TO '1.1'" to load this file. \quit

--
-- Version 1.1 records failed refreshes in serving_layer_history (from C, no
-- new objects) and adds a way to prune the history.
--
-- serving_layer_prune_history(older_than) deletes the history rows of
-- refreshes that finished longer ago than older_than and returns how many
-- it deleted.  It runs as the extension's owner, so a role granted EXECUTE
-- can prune without being able to write the history otherwise.
--
CREATE FUNCTION serving_layer_prune_history(
	older_than interval DEFAULT '30 days')
RETURNS bigint
LANGUAGE sql VOLATILE STRICT SECURITY DEFINER PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
	WITH gone AS (
		DELETE FROM @extschema@.serving_layer_history
		WHERE finished_at OPERATOR(pg_catalog.<)
			(pg_catalog.now() OPERATOR(pg_catalog.-) older_than)
		RETURNING 1)
	SELECT pg_catalog.count(*) FROM gone
$$;
REVOKE ALL ON FUNCTION serving_layer_prune_history(interval) FROM PUBLIC;
