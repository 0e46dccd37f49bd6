--
-- large_alloc: the merge at a size where its working memory takes the
-- large allocations of large_alloc.c (the group tables' arenas grown to
-- blocks of 4MB and 8MB, marked for transparent huge pages), with
-- serving_layer.transparent_huge_pages on (the default) and off: the same
-- rows as a GROUP BY of the layers either way, in mode 'swap' and in mode
-- 'apply' (which follows the change and saves a state of several MB).
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS serving_layer;
RESET client_min_messages;
\set VERBOSITY default
\set SHOW_CONTEXT never
CREATE SCHEMA sl_large;
SET search_path = sl_large, public;

-- 300k batch keys; 150k speed keys, 120k of them on batch keys: about 15MB
-- of speed groups, more than the 1MB, 2MB and 4MB blocks of the arena
CREATE TABLE b (k text, n bigint, m numeric);
CREATE TABLE s (k text, n bigint, m numeric);
INSERT INTO b SELECT 'key-' || i, i, i * 0.5 FROM generate_series(1, 300000) i;
INSERT INTO s SELECT 'key-' || (i * 2 + 60000), 1, 0.25 FROM generate_series(1, 150000) i;
SELECT serving_layer_define('large_swap', 'b', 's', mode => 'swap');
SELECT serving_layer_define('large_apply', 'b', 's', mode => 'apply');
-- on by default (the setting exists once a call has loaded the library)
SHOW serving_layer.transparent_huge_pages;

-- the merge as GROUP BY, to compare with
CREATE VIEW expected AS
	SELECT k, sum(n) AS n, sum(m) AS m
	FROM (SELECT * FROM b UNION ALL SELECT * FROM s) l GROUP BY k;
CREATE FUNCTION differ(serving regclass) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	d bigint;
BEGIN
	EXECUTE format('SELECT (SELECT count(*) FROM (SELECT * FROM %1$s EXCEPT ALL SELECT * FROM expected) a)
		+ (SELECT count(*) FROM (SELECT * FROM expected EXCEPT ALL SELECT * FROM %1$s) b)', serving)
		INTO d;
	RETURN d;
END $$;

-- on: the first refreshes (the apply one compares in full and saves its
-- state), then a change the apply one follows
SELECT target, status, output_rows FROM serving_layer_refresh() ORDER BY target;
SELECT differ('large_swap') AS swap_differs, differ('large_apply') AS apply_differs;
UPDATE s SET n = n + 1 WHERE k LIKE '%4';
INSERT INTO s SELECT 'new-' || i, 3, 1.5 FROM generate_series(1, 20000) i;
SELECT target, status, output_rows, changed_rows
FROM serving_layer_refresh() ORDER BY target;
SELECT differ('large_swap') AS swap_differs, differ('large_apply') AS apply_differs;

-- off: the same again
SET serving_layer.transparent_huge_pages = off;
UPDATE s SET n = n + 1 WHERE k LIKE '%6';
DELETE FROM s WHERE k LIKE 'new-%1';
SELECT target, status, output_rows, changed_rows
FROM serving_layer_refresh() ORDER BY target;
SELECT differ('large_swap') AS swap_differs, differ('large_apply') AS apply_differs;
RESET serving_layer.transparent_huge_pages;

SET client_min_messages = warning;
SELECT serving_layer_forget('large_swap'), serving_layer_forget('large_apply');
DROP SCHEMA sl_large CASCADE;
RESET client_min_messages;
