--
-- fast_merge: the C merge (sums, mins and maxes of numeric measures) gives
-- the same rows as the GROUP BY query, on the cases where they could differ:
-- duplicate keys in either layer, NULL keys and measures, composite keys,
-- overflow, type modifiers, and the fallback when its memory is exceeded.
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

-- the fallback: with too little memory for the C merge the GROUP BY runs,
-- same rows
SET serving_layer.fast_merge_memory = '64kB';
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_fast');
RESET serving_layer.fast_merge_memory;
SELECT (SELECT count(*) FROM (TABLE cmp_fast EXCEPT ALL TABLE cmp_slow) a) AS only_fast,
	   (SELECT count(*) FROM (TABLE cmp_slow EXCEPT ALL TABLE cmp_fast) b) AS only_slow;

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

SELECT serving_layer_forget(t) FROM unnest(ARRAY['t_fast', 't_slow', 't_real']) t;
RESET search_path;
DROP SCHEMA sl_fast CASCADE;
