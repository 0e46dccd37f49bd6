--
-- merge_kinds: what each merge computes -- sum, min, max, "speed", "batch"
-- and aggregates named in merge (built-in, user-defined, from another
-- extension) -- and the errors of a merge that is not a usable aggregate.
--
-- Every expected error is followed by \echo of its SQLSTATE.
--
-- (quiet: the extensions may exist already when other tests ran first)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS serving_layer;
RESET client_min_messages;
CREATE SCHEMA merge_kinds;
SET search_path = merge_kinds, public;
\set VERBOSITY default
\set SHOW_CONTEXT never

--------------------------------------------------------------------------
-- sum, min and max
--------------------------------------------------------------------------

-- Over the union of batch and speed values of a key: duplicates in either
-- layer merged, NULLs ignored, all NULL gives NULL.
--   a: batch (1,5,5) (2,3,9), speed (10,1,2)     -> 13, 1, 9
--   b: batch (NULL) (4,4,4), speed (NULL)         -> 4, 4, 4
--   c: speed only (7,7,7) (NULL)                  -> 7, 7, 7
--   z: NULL everywhere                            -> NULL
CREATE TABLE b_agg (k text, total integer, lo integer, hi integer);
CREATE TABLE s_agg (LIKE b_agg);
INSERT INTO b_agg VALUES
	('a', 1, 5, 5), ('a', 2, 3, 9),
	('b', NULL, NULL, NULL), ('b', 4, 4, 4),
	('z', NULL, NULL, NULL);
INSERT INTO s_agg VALUES
	('a', 10, 1, 2),
	('b', NULL, NULL, NULL),
	('c', 7, 7, 7), ('c', NULL, NULL, NULL),
	('z', NULL, NULL, NULL);
SELECT serving_layer_define('t_agg', 'b_agg', 's_agg',
							merge => '{"total": "sum", "lo": "min", "hi": "max"}');
SELECT merge FROM serving_layer_definitions WHERE target = 't_agg';
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_agg');
SELECT * FROM t_agg ORDER BY k;

-- min and max work on any type with an ordering, e.g. text and date.
CREATE TABLE b_minmax (k integer, first_seen date, last_word text);
CREATE TABLE s_minmax (LIKE b_minmax);
INSERT INTO b_minmax VALUES (1, '2024-03-01', 'pear'), (2, NULL, NULL);
INSERT INTO s_minmax VALUES (1, '2024-02-01', 'apple'), (1, NULL, 'zebra');
SELECT serving_layer_define('t_minmax', 'b_minmax', 's_minmax', key => '{k}',
							merge => '{"first_seen": "min", "last_word": "max"}');
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_minmax');
SELECT * FROM t_minmax ORDER BY k;

--------------------------------------------------------------------------
-- "speed" and "batch"
--------------------------------------------------------------------------

-- "speed": the speed value where the key has a speed row, else the batch
-- value.  "batch": the batch value where the key has a batch row, else the
-- speed value.  A NULL in the winning layer wins over a value in the other.
--   a: batch (1,1),    speed (10,10)   -> sp 10, bt 1
--   b: batch (2,2),    no speed row    -> sp 2,  bt 2
--   c: no batch row,   speed (30,30)   -> sp 30, bt 30
--   n: batch (3,NULL), speed (NULL,33) -> sp NULL (speed NULL wins),
--                                         bt NULL (batch NULL wins)
CREATE TABLE b_pick (k text, sp integer, bt integer);
CREATE TABLE s_pick (LIKE b_pick);
INSERT INTO b_pick VALUES ('a', 1, 1), ('b', 2, 2), ('n', 3, NULL);
INSERT INTO s_pick VALUES ('a', 10, 10), ('c', 30, 30), ('n', NULL, 33);
SELECT serving_layer_define('t_pick', 'b_pick', 's_pick',
							merge => '{"sp": "speed", "bt": "batch"}');
SELECT merge FROM serving_layer_definitions WHERE target = 't_pick';
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_pick');
SELECT * FROM t_pick ORDER BY k;

-- "speed" and "batch" work on measures of any type (here text and a
-- text[]), not only numeric ones.
CREATE TABLE b_pick_any (id integer, name text, tags text[]);
CREATE TABLE s_pick_any (LIKE b_pick_any);
INSERT INTO b_pick_any VALUES (1, 'old', '{x}'), (2, 'kept', '{y}');
INSERT INTO s_pick_any VALUES (1, 'new', '{z}');
SELECT serving_layer_define('t_pick_any', 'b_pick_any', 's_pick_any',
							key => '{id}',
							merge => '{"name": "speed", "tags": "batch"}');
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_pick_any');
SELECT * FROM t_pick_any ORDER BY id;

-- Two speed rows for key a, which has a speed row, so speed wins for the
-- "speed" merge of sp: 21000, and the serving table is unchanged.
INSERT INTO s_pick VALUES ('a', 11, 11);
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_pick');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM t_pick ORDER BY k;

-- The same duplicate is fine for a "batch" merge: key a has a batch row,
-- so the speed layer loses and its rows are not used.
SELECT serving_layer_define('t_pick_b', 'b_pick', 's_pick',
							merge => '{"sp": "batch", "bt": "batch"}');
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_pick_b');
SELECT * FROM t_pick_b ORDER BY k;

-- But for a key with no batch row, speed wins under "batch" too: two speed
-- rows of key c are an error, and t_pick_b is unchanged.
INSERT INTO s_pick VALUES ('c', 31, 31);
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_pick_b');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM t_pick_b ORDER BY k;
DELETE FROM s_pick WHERE (k, sp) IN (('a', 11), ('c', 31));

-- Two batch rows of key b: under "batch", batch wins for b: 21000.
INSERT INTO b_pick VALUES ('b', 20, 20);
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_pick_b');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- Under "speed", key b has no speed row, so batch wins for it: 21000 too.
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_pick');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- Once b has a speed row, the batch layer loses for b under "speed" and its
-- two rows are fine: sp comes from speed; bt ("batch") still sees two
-- batch rows of b, so that definition is changed to "speed" for bt too.
INSERT INTO s_pick VALUES ('b', 200, 200);
SELECT serving_layer_define('t_pick', 'b_pick', 's_pick',
							merge => '{"sp": "speed", "bt": "speed"}');
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_pick');
SELECT * FROM t_pick ORDER BY k;

--------------------------------------------------------------------------
-- Aggregates named in merge
--------------------------------------------------------------------------

-- A user-defined aggregate in this schema: the product of the values.
CREATE AGGREGATE product(numeric) (SFUNC = numeric_mul, STYPE = numeric);
-- A polymorphic one: the largest value, for any type.
CREATE FUNCTION larger(anyelement, anyelement) RETURNS anyelement
	LANGUAGE sql IMMUTABLE AS 'SELECT greatest($1, $2)';
CREATE AGGREGATE biggest(anyelement) (SFUNC = larger, STYPE = anyelement);

-- Built-in one-argument aggregates by name (bool_or, every, bit_or, avg),
-- user-defined ones by bare name and schema-qualified, and a
-- schema-qualified built-in.  avg returns numeric, assigned to integer as
-- an INSERT would (rounded).  Key b has only NULLs: NULL everywhere.
CREATE TABLE b_named (
	k		text,
	any_on	boolean,
	all_on	boolean,
	bits	integer,
	prod	numeric,
	prod_q	numeric,
	big		date,
	top		integer,
	mean	integer
);
CREATE TABLE s_named (LIKE b_named);
INSERT INTO b_named VALUES
	('a', false, true, 1, 2, 2, '2024-01-05', 3, 1),
	('b', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO s_named VALUES
	('a', true, true, 4, 3, 3, '2024-01-09', 7, 2),
	('a', false, false, 2, 5, 5, NULL, 5, NULL),
	('b', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
SELECT serving_layer_define('t_named', 'b_named', 's_named', key => '{k}',
							merge => '{"any_on": "bool_or", "all_on": "every",
									   "bits": "bit_or",
									   "prod": "product",
									   "prod_q": "merge_kinds.product",
									   "big": "biggest",
									   "top": "pg_catalog.max",
									   "mean": "avg"}');
-- The effective merge names the aggregates: built-ins unqualified, the
-- others with their schema.
SELECT jsonb_pretty(merge) FROM serving_layer_definitions
WHERE target = 't_named';
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_named');
SELECT * FROM t_named ORDER BY k;

-- A merge is resolved when defined: a refresh under another search_path
-- still calls merge_kinds.product.
SET search_path = public;
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('merge_kinds.t_named');
SET search_path = merge_kinds, public;
SELECT k, prod, prod_q FROM t_named ORDER BY k;

CREATE TABLE b_bad (k text, m integer, note text);
CREATE TABLE s_bad (LIKE b_bad);

-- An unknown merge: 42883.
SELECT serving_layer_define('t_bad', 'b_bad', 's_bad', key => '{k}',
							merge => '{"m": "nosuch", "note": "max"}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- An aggregate that has no one-argument form for the column's type: sum
-- of text, string_agg (two arguments): 42883.
SELECT serving_layer_define('t_bad', 'b_bad', 's_bad', key => '{k}',
							merge => '{"note": "sum"}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT serving_layer_define('t_bad', 'b_bad', 's_bad', key => '{k}',
							merge => '{"note": "string_agg"}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- A schema-qualified name in the wrong schema: 42883.
SELECT serving_layer_define('t_bad', 'b_bad', 's_bad', key => '{k}',
							merge => '{"m": "public.product", "note": "max"}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- An ordered-set aggregate (mode() WITHIN GROUP): 42883.
SELECT serving_layer_define('t_bad', 'b_bad', 's_bad', key => '{k}',
							merge => '{"m": "mode", "note": "max"}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- A function that is not an aggregate: 42883.
SELECT serving_layer_define('t_bad', 'b_bad', 's_bad', key => '{k}',
							merge => '{"m": "abs", "note": "max"}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT serving_layer_define('t_bad', 'b_bad', 's_bad', key => '{k}',
							merge => '{"m": "max", "note": "upper"}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- An aggregate whose result cannot be assigned to the column's type
-- (array_agg gives integer[] for an integer column): 42804.
SELECT serving_layer_define('t_bad', 'b_bad', 's_bad', key => '{k}',
							merge => '{"m": "array_agg", "note": "max"}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT count(*) FROM serving_layer_definitions WHERE target = 't_bad';

--------------------------------------------------------------------------
-- hll_union_agg from the hll extension
--------------------------------------------------------------------------

-- Batch and speed hold HyperLogLog sketches of distinct users per key;
-- merging them with hll_union_agg gives the sketch of the union.
--   a: batch users 1..40, speed users 21..60 and 55..70  -> 70 distinct
--   b: batch users 1..10 only                            -> 10
--   c: speed users 100..104 only                         -> 5
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS hll;
RESET client_min_messages;
CREATE TABLE b_hll (k text, users hll);
CREATE TABLE s_hll (LIKE b_hll);
INSERT INTO b_hll
	SELECT 'a', hll_add_agg(hll_hash_integer(i)) FROM generate_series(1, 40) i
	UNION ALL
	SELECT 'b', hll_add_agg(hll_hash_integer(i)) FROM generate_series(1, 10) i;
INSERT INTO s_hll
	SELECT 'a', hll_add_agg(hll_hash_integer(i)) FROM generate_series(21, 60) i
	UNION ALL
	SELECT 'a', hll_add_agg(hll_hash_integer(i)) FROM generate_series(55, 70) i
	UNION ALL
	SELECT 'c', hll_add_agg(hll_hash_integer(i)) FROM generate_series(100, 104) i;
SELECT serving_layer_define('t_hll', 'b_hll', 's_hll', key => '{k}',
							merge => '{"users": "hll_union_agg"}');
-- (the schema of hll depends on where it was installed first)
SELECT merge->>'users' LIKE '%.hll_union_agg' AS qualified_hll_union_agg
FROM serving_layer_definitions WHERE target = 't_hll';
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_hll');
SELECT k, hll_cardinality(users) AS distinct_users FROM t_hll ORDER BY k;

-- Without a merge, an hll column is not numeric, so it would be a key
-- column; hll has no equality operator to group on (as GROUP BY would
-- say): 42883.
SELECT serving_layer_define('t_hll_default', 'b_hll', 's_hll');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT key, merge FROM serving_layer_definitions
WHERE target = 't_hll_default';

--------------------------------------------------------------------------
-- Clean up: forget this file's definitions, drop its schema.
--------------------------------------------------------------------------
SELECT count(serving_layer_forget(target)) AS forgotten
FROM serving_layer_definitions
WHERE (SELECT relnamespace FROM pg_class WHERE oid = to_regclass(batch))
	= 'merge_kinds'::regnamespace;
SELECT count(*) FROM serving_layer_definitions
WHERE (SELECT relnamespace FROM pg_class WHERE oid = to_regclass(batch))
	= 'merge_kinds'::regnamespace;
SET client_min_messages = warning;
DROP SCHEMA merge_kinds CASCADE;
RESET client_min_messages;
