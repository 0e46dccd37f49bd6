--
-- keys_nulls: which rows a refresh produces -- one per distinct key found
-- in batch or speed, NULL a key value like any other, composite keys
-- compared column by column, empty layers -- and the columns of the
-- serving table it creates.
--
-- (quiet: the extension may exist already when other tests ran first)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS serving_layer;
RESET client_min_messages;
-- batch layers shrink on purpose here; the half-loaded batch guard has its
-- own test (lambda_guard)
SET serving_layer.min_batch_fraction = 0;
CREATE SCHEMA keys_nulls;
SET search_path = keys_nulls, public;
\set VERBOSITY default
\set SHOW_CONTEXT never

--------------------------------------------------------------------------
-- One key column
--------------------------------------------------------------------------

-- NULL keys of batch and speed merge into one row, as in GROUP BY; the
-- empty string is a different key from NULL; duplicate keys inside batch
-- (d) and inside speed (d, NULL) are merged; a speed-only key (s) is added
-- and a batch-only key (b) kept.
--   NULL: 1 + 10 + 100 = 111   '': 1000   b: 2   d: 1+2+3+4 = 10   s: 5
CREATE TABLE b_one (k text, m integer);
CREATE TABLE s_one (LIKE b_one);
INSERT INTO b_one VALUES (NULL, 1), ('b', 2), ('d', 1), ('d', 2);
INSERT INTO s_one VALUES (NULL, 10), (NULL, 100), ('', 1000), ('d', 3),
	('d', 4), ('s', 5);
SELECT serving_layer_define('t_one', 'b_one', 's_one');
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_one');
SELECT k, k IS NULL AS k_is_null, m FROM t_one ORDER BY k NULLS FIRST;

--------------------------------------------------------------------------
-- Composite keys
--------------------------------------------------------------------------

-- Keys compare column by column: (NULL,'x'), ('x',NULL) and (NULL,NULL)
-- are three keys, each merged with its own kind only; ('a','bc') and
-- ('ab','c') are two keys although they concatenate alike; the key may
-- include a numeric column when it is named in key.
--   (NULL,x,1): 1+16 = 17      (x,NULL,1): 2+32 = 34
--   (NULL,NULL,1): 4+64+128 = 196   (NULL,NULL,NULL): 512 (speed only)
--   (x,x,1): 8 (batch only)    (x,y,1): 256 (speed only)
--   (a,bc,1): 1024   (ab,c,1): 2048
CREATE TABLE b_comp (k1 text, k2 text, k3 integer, m bigint);
CREATE TABLE s_comp (LIKE b_comp);
INSERT INTO b_comp VALUES
	(NULL, 'x', 1, 1), ('x', NULL, 1, 2), (NULL, NULL, 1, 4), ('x', 'x', 1, 8),
	('a', 'bc', 1, 1024);
INSERT INTO s_comp VALUES
	(NULL, 'x', 1, 16), ('x', NULL, 1, 32), (NULL, NULL, 1, 64),
	(NULL, NULL, 1, 128), ('x', 'y', 1, 256), (NULL, NULL, NULL, 512),
	('ab', 'c', 1, 2048);
SELECT serving_layer_define('t_comp', 'b_comp', 's_comp',
							key => '{k1,k2,k3}');
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_comp');
SELECT k1, k2, k3, m FROM t_comp
ORDER BY k1 NULLS FIRST, k2 NULLS FIRST, k3 NULLS FIRST;

-- Exactly one row per distinct key: as many rows as distinct keys in the
-- serving table, and as many as distinct keys in batch and speed together.
SELECT (SELECT count(*) FROM t_comp) AS serving_rows,
	   (SELECT count(DISTINCT ROW(k1, k2, k3)) FROM t_comp) AS serving_keys,
	   (SELECT count(*) FROM (SELECT DISTINCT k1, k2, k3 FROM b_comp
							  UNION
							  SELECT k1, k2, k3 FROM s_comp) u) AS input_keys;

-- Every key of the inputs is in the serving table (compared as GROUP BY
-- compares, NULLs equal), and nothing else.
SELECT count(*) AS missing_or_extra FROM (
	(SELECT k1, k2, k3 FROM b_comp UNION SELECT k1, k2, k3 FROM s_comp)
	EXCEPT ALL
	SELECT k1, k2, k3 FROM t_comp
) d;
SELECT count(*) AS extra FROM (
	SELECT k1, k2, k3 FROM t_comp
	EXCEPT ALL
	(SELECT k1, k2, k3 FROM b_comp UNION SELECT k1, k2, k3 FROM s_comp)
) d;

--------------------------------------------------------------------------
-- Empty layers
--------------------------------------------------------------------------

-- An empty speed layer: the serving table is the batch layer merged by key.
TRUNCATE s_one;
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_one');
SELECT k, k IS NULL AS k_is_null, m FROM t_one ORDER BY k NULLS FIRST;

-- An empty batch layer: the serving table is the speed layer merged by key.
TRUNCATE b_one;
INSERT INTO s_one VALUES (NULL, 7), ('s', 5), ('s', 6);
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_one');
SELECT k, k IS NULL AS k_is_null, m FROM t_one ORDER BY k NULLS FIRST;

-- Both empty: the serving table is emptied (it still exists).
TRUNCATE s_one;
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_one');
SELECT count(*) FROM t_one;

-- Both empty for a serving table that does not exist yet: it is created,
-- empty.
CREATE TABLE b_void (k text, m integer);
CREATE TABLE s_void (LIKE b_void);
SELECT serving_layer_define('t_void', 'b_void', 's_void');
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_void');
SELECT count(*) FROM t_void;

--------------------------------------------------------------------------
-- Columns of the serving table
--------------------------------------------------------------------------

-- A serving table created by a refresh has the batch table's live columns
-- in its order, with its names and types (type modifiers, domains,
-- arrays and collations included), whatever the speed table's columns are.
CREATE DOMAIN code AS varchar(3);
CREATE TABLE b_cols (
	"Region Name"	varchar(20) COLLATE "C",
	gone			integer,
	day				date,
	tags			text[],
	c				code,
	amount			numeric(8,2),
	ratio			real,
	n				bigint
);
ALTER TABLE b_cols DROP COLUMN gone;
CREATE TABLE s_cols (
	r		text,
	d		date,
	t		text[],
	c		text,
	a		numeric,
	ratio	double precision,
	n		integer
);
INSERT INTO b_cols VALUES ('North', '2024-01-01', '{a}', 'x', 1.25, 0.5, 1);
INSERT INTO s_cols VALUES ('North', '2024-01-01', '{a}', 'x', 2.5, 0.25, 2),
	('South', '2024-01-02', NULL, 'y', 3.125, 1, 3);
SELECT serving_layer_define('t_cols', 'b_cols', 's_cols');
SELECT key, merge, speed_columns FROM serving_layer_definitions
WHERE target = 't_cols';
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_cols');
SELECT row_number() OVER (ORDER BY a.attnum) AS position, a.attname,
	   format_type(a.atttypid, a.atttypmod) AS type, co.collname
FROM pg_attribute a LEFT JOIN pg_collation co ON co.oid = a.attcollation
WHERE a.attrelid = 't_cols'::regclass AND a.attnum > 0
	AND NOT a.attisdropped
ORDER BY a.attnum;
-- ... exactly as in the batch table (no difference either way).
WITH cols AS (
	SELECT a.attrelid, row_number() OVER (PARTITION BY a.attrelid
										  ORDER BY a.attnum) AS position,
		   a.attname, format_type(a.atttypid, a.atttypmod) AS type,
		   a.attcollation
	FROM pg_attribute a
	WHERE a.attrelid IN ('t_cols'::regclass, 'b_cols'::regclass)
		AND a.attnum > 0 AND NOT a.attisdropped
)
SELECT count(*) AS differences FROM (
	(SELECT position, attname, type, attcollation FROM cols
	 WHERE attrelid = 't_cols'::regclass
	 EXCEPT
	 SELECT position, attname, type, attcollation FROM cols
	 WHERE attrelid = 'b_cols'::regclass)
	UNION ALL
	(SELECT position, attname, type, attcollation FROM cols
	 WHERE attrelid = 'b_cols'::regclass
	 EXCEPT
	 SELECT position, attname, type, attcollation FROM cols
	 WHERE attrelid = 't_cols'::regclass)
) d;
-- The values, converted to the batch types (numeric(8,2) rounds 3.125 to
-- 3.13 as an INSERT would; real keeps its type).
SELECT * FROM t_cols ORDER BY "Region Name";

--------------------------------------------------------------------------
-- Clean up: forget this file's definitions, drop its schema.
--------------------------------------------------------------------------
SELECT count(serving_layer_forget(target)) AS forgotten
FROM serving_layer_definitions
WHERE (SELECT relnamespace FROM pg_class WHERE oid = to_regclass(batch))
	= 'keys_nulls'::regnamespace;
SELECT count(*) FROM serving_layer_definitions
WHERE (SELECT relnamespace FROM pg_class WHERE oid = to_regclass(batch))
	= 'keys_nulls'::regnamespace;
SET client_min_messages = warning;
DROP SCHEMA keys_nulls CASCADE;
RESET client_min_messages;
