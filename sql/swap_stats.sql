--
-- swap_stats: the size statistics a swap gives the serving table match its
-- new contents: relpages, reltuples, and the all-visible (and, from
-- PostgreSQL 18 on, all-frozen) page counts of the visibility map, which a
-- frozen multi-insert does not set on every page.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS serving_layer;
CREATE EXTENSION IF NOT EXISTS pg_visibility;
RESET client_min_messages;
CREATE SCHEMA sl_stats;
SET search_path = sl_stats, public;

-- enough rows for many pages, some of them filled by two batches of rows
CREATE TABLE batch (k text, n bigint);
CREATE TABLE speed (k text, n bigint);
INSERT INTO batch SELECT 'key-' || g, g FROM generate_series(1, 100000) g;
INSERT INTO speed SELECT 'key-' || g, 1 FROM generate_series(95001, 105000) g;
SELECT serving_layer_define('sl_stats.serving', 'sl_stats.batch', 'sl_stats.speed');
SELECT status, output_rows FROM serving_layer_refresh('sl_stats.serving');

-- what pg_class says against what the table and its visibility map hold;
-- relallfrozen is read through to_jsonb, as 15 and 17 have no such column
CREATE TEMP VIEW sl_stats_check AS
	SELECT c.relpages = pg_relation_size(c.oid) / current_setting('block_size')::int
			   AS pages_right,
		   c.reltuples = (SELECT count(*) FROM sl_stats.serving) AS tuples_right,
		   c.relallvisible = v.all_visible AS allvisible_right,
		   coalesce((to_jsonb(c) ->> 'relallfrozen')::int = v.all_frozen, true)
			   AS allfrozen_right,
		   v.all_visible > 0 AS some_visible
	FROM pg_class c, pg_visibility_map_summary(c.oid) v
	WHERE c.oid = 'sl_stats.serving'::regclass;
SELECT * FROM sl_stats_check;

-- the same after a second refresh, which swaps the storage again
UPDATE speed SET n = n + 1;
SELECT status, output_rows FROM serving_layer_refresh('sl_stats.serving');
SELECT * FROM sl_stats_check;

SELECT serving_layer_forget('sl_stats.serving');
SET client_min_messages = warning;
DROP SCHEMA sl_stats CASCADE;
DROP EXTENSION pg_visibility;
RESET client_min_messages;
