--
-- fast_merge_text: text keys in the C merge, which hashes and compares text
-- of a deterministic collation as bytes.  It must still agree with the
-- GROUP BY: keys stored compressed or out of line in one layer and plain in
-- the other are the same key; varchar keys; a nondeterministic collation
-- (case-insensitive) groups 'ABC' with 'abc'; and enough keys that the set
-- of batch key hashes, which keeps 32 bits of each, sees some collisions.
-- Each case also on a budget of 8kB, where the C merge spills to temporary
-- files (spill.c); the case-insensitive keys, with the NULL key and keys
-- duplicated in either layer, also with a deterministic collation, both
-- shown to have spilled.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS serving_layer;
RESET client_min_messages;
\set VERBOSITY default
\set SHOW_CONTEXT never
CREATE SCHEMA sl_fast_text;
SET search_path = sl_fast_text, public;

-- keys: 'k-1' .. 'k-200000' once, a thousand of them twice more; 50 long
-- keys (compressible, so stored compressed in the batch) and 50 longer
-- random-looking ones (stored out of line), which the speed layer repeats
-- stored out of line and uncompressed (STORAGE EXTERNAL)
CREATE TABLE b (k text, v bigint, lo integer);
CREATE TABLE s (k text, v bigint, lo integer);
ALTER TABLE s ALTER COLUMN k SET STORAGE EXTERNAL;
INSERT INTO b SELECT 'k-' || i, i, i % 1000 FROM generate_series(1, 200000) i;
INSERT INTO b SELECT 'k-' || (i % 1000 + 1), 1, -i FROM generate_series(1, 2000) i;
INSERT INTO b SELECT repeat('long-' || i, 2000), i, i FROM generate_series(1, 50) i;
INSERT INTO b SELECT string_agg(md5(i::text || j::text), '') , i, i
	FROM generate_series(1, 50) i, generate_series(1, 200) j GROUP BY i;
INSERT INTO b VALUES (NULL, 7, 7), ('', 1, 1);
INSERT INTO s SELECT 'k-' || (i * 3), 10, -5 FROM generate_series(1, 70000) i;
INSERT INTO s SELECT 'new-' || i, 1, 1 FROM generate_series(1, 1000) i;
INSERT INTO s SELECT repeat('long-' || i, 2000), 100, 0 FROM generate_series(1, 50) i;
INSERT INTO s SELECT string_agg(md5(i::text || j::text), ''), 100, 0
	FROM generate_series(1, 50, 2) i, generate_series(1, 200) j GROUP BY i;
INSERT INTO s VALUES (NULL, 1, 1), ('', 2, 2);

-- how the long keys are stored: in the batch 50 compressed, 50 not; in the
-- speed layer none compressed
SELECT 'b' AS layer, count(*) AS long_keys,
	   count(*) FILTER (WHERE pg_column_size(k) < octet_length(k)) AS compressed
FROM b WHERE octet_length(k) > 2000
UNION ALL
SELECT 's', count(*), count(*) FILTER (WHERE pg_column_size(k) < octet_length(k))
FROM s WHERE octet_length(k) > 2000
ORDER BY layer;

SELECT serving_layer_define('t_fast', 'b', 's', key => '{k}',
	merge => '{"lo": "min"}');
SELECT serving_layer_define('t_slow', 'b', 's', key => '{k}',
	merge => '{"lo": "min"}');
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_fast');
SET serving_layer.fast_merge = off;
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_slow');
RESET serving_layer.fast_merge;

SELECT (SELECT count(*) FROM (TABLE t_fast EXCEPT ALL TABLE t_slow) a) AS only_fast,
	   (SELECT count(*) FROM (TABLE t_slow EXCEPT ALL TABLE t_fast) b) AS only_slow,
	   (SELECT count(*) FROM t_fast) AS rows,
	   (SELECT count(DISTINCT k) FROM t_fast) AS distinct_keys;
-- spilled: the same rows
SET serving_layer.fast_merge_memory = '8kB';
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_fast');
RESET serving_layer.fast_merge_memory;
SELECT (SELECT count(*) FROM (TABLE t_fast EXCEPT ALL TABLE t_slow) a) AS only_fast,
	   (SELECT count(*) FROM (TABLE t_slow EXCEPT ALL TABLE t_fast) b) AS only_slow;
-- and with the speed layer known to spill: its rows, keys stored out of
-- line and compressed included, straight into the partitions
ANALYZE s;
SET serving_layer.fast_merge_memory = '1MB';
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_fast');
RESET serving_layer.fast_merge_memory;
SELECT (SELECT count(*) FROM (TABLE t_fast EXCEPT ALL TABLE t_slow) a) AS only_fast,
	   (SELECT count(*) FROM (TABLE t_slow EXCEPT ALL TABLE t_fast) b) AS only_slow;
-- by hand: a key of the batch three times and of speed once, a long key in
-- both layers, the NULL key and the empty key
SELECT k, v, lo FROM t_fast WHERE k IN ('k-3', 'k-999', 'k-1001')
	OR k IS NULL OR k = '' ORDER BY k;
SELECT left(k, 12), v, lo FROM t_fast WHERE k = repeat('long-7', 2000);

-- varchar keys
CREATE TABLE bv (k varchar(20), v integer);
CREATE TABLE sv (k varchar(20), v integer);
INSERT INTO bv SELECT 'v' || (i % 500), 1 FROM generate_series(1, 1000) i;
INSERT INTO sv SELECT 'v' || i, 10 FROM generate_series(250, 749) i;
SELECT serving_layer_define('t_varchar', 'bv', 'sv', key => '{k}');
SELECT output_rows, status FROM serving_layer_refresh('t_varchar');
SELECT v, count(*) FROM t_varchar GROUP BY v ORDER BY v;
SET serving_layer.fast_merge_memory = '8kB';
SELECT output_rows, status FROM serving_layer_refresh('t_varchar');
RESET serving_layer.fast_merge_memory;
SELECT v, count(*) FROM t_varchar GROUP BY v ORDER BY v;

-- a nondeterministic collation (ICU, which Debian's PostgreSQL has): 'ABC'
-- and 'abc' are one key, as GROUP BY has it; the bytes cannot decide, so
-- the type's own functions do
CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TABLE bc (k text COLLATE ci, v integer);
CREATE TABLE sc (k text COLLATE ci, v integer);
INSERT INTO bc VALUES ('ABC', 1), ('abc', 2), ('Xyz', 4);
INSERT INTO sc VALUES ('aBc', 8), ('xyZ', 16), ('new', 32);
SELECT serving_layer_define('t_ci', 'bc', 'sc', key => '{k}');
SELECT output_rows, status FROM serving_layer_refresh('t_ci');
SELECT lower(k) AS k, v FROM t_ci ORDER BY 1;
-- spilled, with enough keys to split the partitions: 'K-n' in the batch,
-- 'k-n' in the speed layer, one key each; the NULL key in both layers;
-- 'NEW', which makes 'new' a key the speed layer holds twice.  That the C
-- merge spilled, rather than left the merge to the GROUP BY, shows in the
-- database's temporary files, which the GROUP BY of these few thousand
-- rows does not write (its work_mem is 4MB)
INSERT INTO bc SELECT 'K-' || i, 1 FROM generate_series(1, 3000) i;
INSERT INTO sc SELECT 'k-' || i, 2 FROM generate_series(1, 3000, 2) i;
INSERT INTO bc VALUES (NULL, 64);
INSERT INTO sc VALUES (NULL, 128), ('NEW', 256);
CREATE FUNCTION temp_files() RETURNS bigint LANGUAGE sql AS
	$$SELECT temp_files FROM pg_stat_database WHERE datname = current_database()$$;
SELECT pg_stat_force_next_flush();
SELECT temp_files() AS temp_files_before \gset
SET serving_layer.fast_merge_memory = '8kB';
SELECT output_rows, status FROM serving_layer_refresh('t_ci');
RESET serving_layer.fast_merge_memory;
SELECT pg_stat_force_next_flush();
SELECT temp_files() > :temp_files_before AS c_merge_spilled;
SELECT lower(k) AS k, v FROM t_ci
WHERE k IS NULL OR lower(k) COLLATE "C" NOT LIKE 'k-%' ORDER BY 1;
SELECT v, count(*) FROM t_ci WHERE lower(k) COLLATE "C" LIKE 'k-%' GROUP BY v ORDER BY v;
-- and all of it as the GROUP BY has it, under the same collation
CREATE VIEW ci_ref AS
	SELECT k, sum(v)::integer AS v FROM (TABLE bc UNION ALL TABLE sc) u GROUP BY k;
SELECT (SELECT count(*) FROM (TABLE t_ci EXCEPT ALL TABLE ci_ref) a) AS only_refresh,
	   (SELECT count(*) FROM (TABLE ci_ref EXCEPT ALL TABLE t_ci) b) AS only_group_by;
-- the same rows with a deterministic collation, spilled: 'ABC' and 'abc'
-- are two keys, hashed and compared as bytes
CREATE TABLE bt (k text COLLATE "C", v integer);
CREATE TABLE st (LIKE bt);
INSERT INTO bt SELECT k, v FROM bc;
INSERT INTO st SELECT k, v FROM sc;
SELECT serving_layer_define('t_cs', 'bt', 'st', key => '{k}');
SELECT pg_stat_force_next_flush();
SELECT temp_files() AS temp_files_before \gset
SET serving_layer.fast_merge_memory = '8kB';
SELECT output_rows, status FROM serving_layer_refresh('t_cs');
RESET serving_layer.fast_merge_memory;
SELECT pg_stat_force_next_flush();
SELECT temp_files() > :temp_files_before AS c_merge_spilled;
SELECT k, v FROM t_cs WHERE k IS NULL OR k NOT LIKE '_-%' ORDER BY k;
CREATE VIEW cs_ref AS
	SELECT k, sum(v)::integer AS v FROM (TABLE bt UNION ALL TABLE st) u GROUP BY k;
SELECT (SELECT count(*) FROM (TABLE t_cs EXCEPT ALL TABLE cs_ref) a) AS only_refresh,
	   (SELECT count(*) FROM (TABLE cs_ref EXCEPT ALL TABLE t_cs) b) AS only_group_by,
	   (SELECT count(*) FROM t_cs) AS rows;

SELECT serving_layer_forget(t)
FROM unnest(ARRAY['t_fast', 't_slow', 't_varchar', 't_ci', 't_cs']) t;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA sl_fast_text CASCADE;
