--
-- fast_merge: the C merge (sums, mins and maxes of numeric measures) gives
-- the same rows as the GROUP BY query, on the cases where they could differ:
-- duplicate keys in either layer, NULL keys and measures, composite keys,
-- overflow, type modifiers; and the same on a memory budget too small for
-- its groups, where it spills both layers to temporary files (spill.c).
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS serving_layer;
RESET client_min_messages;
\set VERBOSITY default
\set SHOW_CONTEXT never
CREATE SCHEMA sl_fast;
SET search_path = sl_fast, public;

-- Layers with every kind of key: batch keys 0..1999 once, 2000..2099 three
-- times, NULL twice; speed keys 1500..2599 (some twice) and NULL; composite
-- key (k, g) with NULLs in g; measures of every numeric type, some NULL.
CREATE TABLE b (k integer, g text, n2 smallint, n4 integer, n8 bigint,
				r real, d double precision, x numeric(12,2), lo integer, hi bigint);
CREATE TABLE s (LIKE b);
INSERT INTO b
SELECT i, CASE WHEN i % 7 = 0 THEN NULL ELSE 'g' || (i % 3) END,
	   (i % 100)::smallint, i, i * 1000000000::bigint,
	   (i % 13) / 4.0, i / 3.0, i * 1.25, i % 50, i
FROM generate_series(0, 1999) i;
INSERT INTO b
SELECT 2000 + i % 100, 'dup', 1, 2, 3, 0.5, 0.25, 1.10, i, -i
FROM generate_series(0, 299) i;
INSERT INTO b VALUES (NULL, NULL, 1, 1, 1, 1, 1, 1, 1, 1),
					 (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO s
SELECT 1500 + i % 1100, CASE WHEN i % 7 = 0 THEN NULL ELSE 'g' || (i % 3) END,
	   2, 3, 4, 0.75, 0.5, 2.50, -i, i * 10
FROM generate_series(0, 1399) i;
INSERT INTO s VALUES (NULL, NULL, 5, 5, 5, 5, 5, 5, 5, 5),
					 (2000, 'dup', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);

SELECT serving_layer_define('t_fast', 'b', 's', key => '{k,g}',
	merge => '{"lo": "min", "hi": "max"}');
SELECT serving_layer_define('t_slow', 'b', 's', key => '{k,g}',
	merge => '{"lo": "min", "hi": "max"}');

-- the same definition through the C merge and through GROUP BY
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_fast');
SET serving_layer.fast_merge = off;
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_slow');
RESET serving_layer.fast_merge;

-- identical rows; float sums compared after rounding (addition order may
-- differ in the last bit)
CREATE VIEW cmp_fast AS
	SELECT k, g, n2, n4, n8, round(r::numeric, 3) r, round(d::numeric, 6) d, x, lo, hi
	FROM t_fast;
CREATE VIEW cmp_slow AS
	SELECT k, g, n2, n4, n8, round(r::numeric, 3) r, round(d::numeric, 6) d, x, lo, hi
	FROM t_slow;
SELECT (SELECT count(*) FROM (TABLE cmp_fast EXCEPT ALL TABLE cmp_slow) a) AS only_fast,
	   (SELECT count(*) FROM (TABLE cmp_slow EXCEPT ALL TABLE cmp_fast) b) AS only_slow,
	   (SELECT count(*) FROM t_fast) AS rows,
	   (SELECT count(*) FROM (SELECT DISTINCT k, g FROM t_fast) d) AS distinct_keys;

-- a few rows by hand: a duplicated key with a speed row, the NULL key, a
-- speed-only key, a key whose measures are all NULL in speed
SELECT * FROM t_fast WHERE (k, g) IN ((2000, 'dup'), (2099, 'dup'), (2599, 'g0'))
	OR k IS NULL ORDER BY k, g;

-- The spill: with too little memory for its groups, the C merge
-- partitions both layers into temporary files (spill.c), at 8kB many
-- times over (partitions split again), and finds the duplicates per
-- partition.  Same rows.  That it spilled, rather than ran the GROUP BY,
-- shows in the database's temporary files, which the GROUP BY of these
-- few thousand rows does not need (its work_mem is 4MB).
CREATE FUNCTION temp_files() RETURNS bigint LANGUAGE sql AS
	$$SELECT temp_files FROM pg_stat_database WHERE datname = current_database()$$;
SELECT pg_stat_force_next_flush();
SELECT temp_files() AS temp_files_before \gset
SET serving_layer.fast_merge_memory = '8kB';
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_fast');
SELECT pg_stat_force_next_flush();
SELECT temp_files() > :temp_files_before AS c_merge_spilled;
SELECT (SELECT count(*) FROM (TABLE cmp_fast EXCEPT ALL TABLE cmp_slow) a) AS only_fast,
	   (SELECT count(*) FROM (TABLE cmp_slow EXCEPT ALL TABLE cmp_fast) b) AS only_slow;
-- the GROUP BY on the same budget writes no temporary file
SELECT temp_files() AS temp_files_before \gset
SET serving_layer.fast_merge = off;
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_slow');
RESET serving_layer.fast_merge;
SELECT pg_stat_force_next_flush();
SELECT temp_files() = :temp_files_before AS group_by_did_not_spill;
-- a budget the first pass fits in (the duplicates found once for the whole
-- batch layer) but the speed groups do not
SET serving_layer.fast_merge_memory = '64kB';
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_fast');
SELECT (SELECT count(*) FROM (TABLE cmp_fast EXCEPT ALL TABLE cmp_slow) a) AS only_fast,
	   (SELECT count(*) FROM (TABLE cmp_slow EXCEPT ALL TABLE cmp_fast) b) AS only_slow;
-- a speed layer known (from its reltuples) not to fit goes straight into
-- the partitions, row by row, after the first pass
ANALYZE s;
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_fast');
SELECT (SELECT count(*) FROM (TABLE cmp_fast EXCEPT ALL TABLE cmp_slow) a) AS only_fast,
	   (SELECT count(*) FROM (TABLE cmp_slow EXCEPT ALL TABLE cmp_fast) b) AS only_slow;
RESET serving_layer.fast_merge_memory;

-- The hybrid spill: batch keys 1..30000 (1000 of them twice, the NULL key
-- twice), speed keys 15000..44999 and NULL, key (k, t), both analyzed.  At
-- 2MB the speed layer is known to spill to 8 partitions, of which the first
-- 2 stay in memory (their batch rows merged as they are read), and the batch
-- rows of the others that merge with nothing (keys below 15000, not
-- duplicated) are written at once, without a partition; then the same with
-- the speed layer grown past what its reltuples says, so that the groups
-- kept in memory outgrow their share and are written out after all.
CREATE TABLE hb (k integer, t text, n bigint, x numeric, lo integer);
CREATE TABLE hs (LIKE hb);
INSERT INTO hb SELECT i, 't' || (i % 7), i, i * 0.5, i FROM generate_series(1, 30000) i;
INSERT INTO hb SELECT i, 't' || (i % 7), 1, 1, -i FROM generate_series(1, 3000, 3) i;
INSERT INTO hb VALUES (NULL, NULL, 1, 1, 1), (NULL, NULL, 2, 2, 2);
INSERT INTO hs SELECT 15000 + i % 30000, 't' || ((15000 + i % 30000) % 7), 1, 0.25, i
FROM generate_series(1, 30000) i;
INSERT INTO hs VALUES (NULL, NULL, 5, 5, 5);
ANALYZE hb, hs;
SELECT serving_layer_define('t_hybrid', 'hb', 'hs', key => '{k,t}', merge => '{"lo": "min"}');
SET serving_layer.fast_merge_memory = '2MB';
SELECT output_rows, status FROM serving_layer_refresh('t_hybrid');
CREATE VIEW hybrid_wrong AS
SELECT count(*) AS wrong_rows
FROM (SELECT k, t, sum(n) n, sum(x) x, min(lo) lo
	  FROM (TABLE hb UNION ALL TABLE hs) u GROUP BY k, t) r
	 FULL JOIN t_hybrid h
	 ON coalesce(h.k, -1) = coalesce(r.k, -1) AND coalesce(h.t, '-') = coalesce(r.t, '-')
WHERE h.n IS DISTINCT FROM r.n OR h.x IS DISTINCT FROM r.x OR
	  h.lo IS DISTINCT FROM r.lo OR r.n IS NULL OR h.n IS NULL;
TABLE hybrid_wrong;
INSERT INTO hs SELECT 50000 + i, 'x', 1, 0.25, i FROM generate_series(1, 40000) i;
SELECT output_rows, status FROM serving_layer_refresh('t_hybrid');
TABLE hybrid_wrong;
-- and on a budget where the filter of speed keys is a few bits a key
SET serving_layer.fast_merge_memory = '256kB';
SELECT output_rows, status FROM serving_layer_refresh('t_hybrid');
TABLE hybrid_wrong;
RESET serving_layer.fast_merge_memory;

-- Many duplicate keys: 3000 keys three times each in the batch, so that the
-- duplicate groups of a partition do not fit beside its speed groups and
-- are merged in several rounds, the rows left over kept in a file.
CREATE TABLE bd (k integer, n bigint, x numeric, lo integer);
CREATE TABLE sd (LIKE bd);
INSERT INTO bd SELECT i % 3000, i, i * 0.5, i FROM generate_series(1, 9000) i;
INSERT INTO sd SELECT i, 1, 1, -i FROM generate_series(1500, 4499) i;
SELECT serving_layer_define('t_dups', 'bd', 'sd', key => '{k}', merge => '{"lo": "min"}');
SET serving_layer.fast_merge_memory = '96kB';
SELECT output_rows, status FROM serving_layer_refresh('t_dups');
RESET serving_layer.fast_merge_memory;
SELECT count(*) AS wrong_rows
FROM (SELECT k, sum(n) n, sum(x) x, min(lo) lo
	  FROM (TABLE bd UNION ALL TABLE sd) u GROUP BY k) r
	 FULL JOIN t_dups t USING (k)
WHERE t.n IS DISTINCT FROM r.n OR t.x IS DISTINCT FROM r.x OR t.lo IS DISTINCT FROM r.lo;

-- overflow is the same error on both paths, and the table is unchanged
INSERT INTO s VALUES (1, 'g1', 32767, 2147483647, 9223372036854775807, 0, 0, 9999999999.99, 0, 0);
SELECT * FROM serving_layer_refresh('t_fast');
\echo :LAST_ERROR_SQLSTATE
SET serving_layer.fast_merge = off;
SELECT * FROM serving_layer_refresh('t_fast');
\echo :LAST_ERROR_SQLSTATE
RESET serving_layer.fast_merge;
DELETE FROM s WHERE n2 = 32767;
-- only the smallint overflows now
INSERT INTO s VALUES (1, 'g1', 32767, 0, 0, 0, 0, 0, 0, 0);
SELECT * FROM serving_layer_refresh('t_fast');
\echo :LAST_ERROR_SQLSTATE
DELETE FROM s WHERE n2 = 32767;
-- only the numeric(12,2) overflows its precision
INSERT INTO s VALUES (1, 'g1', 0, 0, 0, 0, 0, 9999999999.99, 0, 0);
SELECT * FROM serving_layer_refresh('t_fast');
\echo :LAST_ERROR_SQLSTATE
DELETE FROM s WHERE x = 9999999999.99;
SELECT (SELECT count(*) FROM (TABLE cmp_fast EXCEPT ALL TABLE cmp_slow) a) AS only_fast_after_errors;

-- real sums overflow as sum(real) does
CREATE TABLE bf (k text, r real);
CREATE TABLE sf (LIKE bf);
INSERT INTO bf VALUES ('a', 3e38);
INSERT INTO sf VALUES ('a', 3e38);
SELECT serving_layer_define('t_real', 'bf', 'sf');
SELECT * FROM serving_layer_refresh('t_real');
\echo :LAST_ERROR_SQLSTATE

SELECT serving_layer_forget(t) FROM unnest(ARRAY['t_fast', 't_slow', 't_real', 't_dups', 't_hybrid']) t;
RESET search_path;
DROP SCHEMA sl_fast CASCADE;
