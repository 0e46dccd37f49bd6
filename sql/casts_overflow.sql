--
-- casts_overflow: speed values converted to the batch column's type as an
-- assignment (INSERT) converts them, conversions that do not exist refused
-- at define time, and errors during a refresh (overflow, a value too long)
-- leaving the serving table exactly as it was.
--
-- Every expected error is followed by \echo of its SQLSTATE.
--
-- (quiet: the extension may exist already when other tests ran first)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS serving_layer;
RESET client_min_messages;
CREATE SCHEMA casts_overflow;
SET search_path = casts_overflow, public;
\set VERBOSITY default
\set SHOW_CONTEXT never

--------------------------------------------------------------------------
-- Assignment casts of speed values
--------------------------------------------------------------------------

-- integer speed values into a bigint batch column: the sum goes beyond
-- the integer range without error.
CREATE TABLE b_wide (k text, m bigint);
CREATE TABLE s_wide (k text, m integer);
INSERT INTO b_wide VALUES ('a', 3000000000);
INSERT INTO s_wide VALUES ('a', 2147483647), ('b', 5);
SELECT serving_layer_define('t_wide', 'b_wide', 's_wide');
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_wide');
SELECT k, m, pg_typeof(m) FROM t_wide ORDER BY k;

-- numeric speed values into an integer batch column: each speed value is
-- rounded as an INSERT rounds it (half away from zero), then merged.
--   a: 10 + round(2.5) + round(2.5) = 10 + 3 + 3 = 16 (not 15)
--   b: round(1.4) = 1      c: round(-2.5) = -3
--   d: max(round(0.5), batch 0) = 1
CREATE TABLE b_round (k text, m integer, hi integer);
CREATE TABLE s_round (k text, m numeric, hi numeric);
INSERT INTO b_round VALUES ('a', 10, NULL), ('d', NULL, 0);
INSERT INTO s_round VALUES ('a', 2.5, NULL), ('a', 2.5, NULL),
	('b', 1.4, NULL), ('c', -2.5, NULL), ('d', NULL, 0.5);
SELECT serving_layer_define('t_round', 'b_round', 's_round',
							merge => '{"hi": "max"}');
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_round');
SELECT * FROM t_round ORDER BY k;

-- An integer speed key into a text batch key: assignment to a string type
-- is allowed, so 42 becomes '42' and merges with the batch key '42'.
CREATE TABLE b_tkey (k text, m integer);
CREATE TABLE s_tkey (k integer, m integer);
INSERT INTO b_tkey VALUES ('42', 1);
INSERT INTO s_tkey VALUES (42, 2), (7, 3);
SELECT serving_layer_define('t_tkey', 'b_tkey', 's_tkey');
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_tkey');
SELECT * FROM t_tkey ORDER BY k;

-- A text speed key into a varchar(5) batch key: values that fit, and one
-- whose only excess is trailing spaces (an INSERT drops those: 'abcde '
-- becomes 'abcde' and merges with the batch key 'abcde').
CREATE TABLE b_short (k varchar(5), m integer);
CREATE TABLE s_short (k text, m integer);
INSERT INTO b_short VALUES ('abcde', 1);
INSERT INTO s_short VALUES ('abcde ', 2), ('xy', 3);
SELECT serving_layer_define('t_short', 'b_short', 's_short');
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_short');
SELECT k, length(k), m FROM t_short ORDER BY k;

-- A speed key too long for varchar(5): an error 22001, as an INSERT would
-- raise, not a silent truncation; the serving table is unchanged.
INSERT INTO s_short VALUES ('abcdefgh', 4);
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_short');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT k, length(k), m FROM t_short ORDER BY k;
-- (for comparison, what an INSERT says)
INSERT INTO b_short VALUES ('abcdefgh'::text, 4);
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- The same through a domain: a batch key of a domain over varchar(3).  An
-- INSERT applies the base type's length as an assignment (22001); a
-- refresh must too, not truncate 'abcd' to 'abc' and merge it with the
-- batch key 'abc'.  The serving table is unchanged.
CREATE DOMAIN code3 AS varchar(3);
CREATE TABLE b_code (k code3, m integer);
CREATE TABLE s_code (k text, m integer);
INSERT INTO b_code VALUES ('abc', 1);
INSERT INTO s_code VALUES ('ab', 2);
SELECT serving_layer_define('t_code', 'b_code', 's_code');
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_code');
SELECT * FROM t_code ORDER BY k;
INSERT INTO s_code VALUES ('abcd', 4);
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_code');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM t_code ORDER BY k;
-- (for comparison, what an INSERT says)
INSERT INTO b_code VALUES ('abcd'::text, 4);
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- The same through an array: a text[] speed key into a varchar(3)[] batch
-- key: 22001 for an element too long, as an INSERT would raise.
CREATE TABLE b_arr (k varchar(3)[], m integer);
CREATE TABLE s_arr (k text[], m integer);
INSERT INTO b_arr VALUES ('{abc}', 1);
INSERT INTO s_arr VALUES ('{ab,abc}', 2);
SELECT serving_layer_define('t_arr', 'b_arr', 's_arr');
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_arr');
SELECT * FROM t_arr ORDER BY k;
INSERT INTO s_arr VALUES ('{abcd}', 4);
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_arr');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM t_arr ORDER BY k;
-- (for comparison, what an INSERT says)
INSERT INTO b_arr VALUES ('{abcd}'::text[], 4);
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- A speed value out of the batch column's range (bigint into integer):
-- 22003 during the refresh, as an INSERT would raise; the serving table,
-- which did not exist, still does not.
CREATE TABLE b_narrow (k text, m integer);
CREATE TABLE s_narrow (k text, m bigint);
INSERT INTO s_narrow VALUES ('a', 3000000000);
SELECT serving_layer_define('t_narrow', 'b_narrow', 's_narrow');
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_narrow');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT to_regclass('t_narrow') IS NULL AS still_missing;

--------------------------------------------------------------------------
-- Speed columns that cannot be assigned: errors at define time
--------------------------------------------------------------------------

CREATE TABLE b_int (k text, m integer);

-- jsonb into integer: no cast at all: 42804.
CREATE TABLE s_jsonb (k text, m jsonb);
SELECT serving_layer_define('t_bad_cast', 'b_int', 's_jsonb');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- text into integer: the cast is explicit only: 42804.
CREATE TABLE s_text (k text, m text);
SELECT serving_layer_define('t_bad_cast', 'b_int', 's_text');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- text into a date key: explicit only too: 42804.
CREATE TABLE b_date (k date, m integer);
CREATE TABLE s_date (k text, m integer);
SELECT serving_layer_define('t_bad_cast', 'b_date', 's_date');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- Also when the speed column is named explicitly: 42804.
CREATE TABLE s_named (k text, good integer, bad jsonb);
SELECT serving_layer_define('t_bad_cast', 'b_int', 's_named',
							speed_columns => '{k,bad}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT count(*) FROM serving_layer_definitions WHERE target = 't_bad_cast';

--------------------------------------------------------------------------
-- Overflow during a refresh leaves the serving table as it was
--------------------------------------------------------------------------

-- A first refresh fills t_over; it then gets an index and a comment.
CREATE TABLE b_over (k text, m integer);
CREATE TABLE s_over (LIKE b_over);
INSERT INTO b_over VALUES ('a', 2147483000), ('b', 1);
INSERT INTO s_over VALUES ('a', 600), ('c', 2);
SELECT serving_layer_define('t_over', 'b_over', 's_over');
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_over');
CREATE UNIQUE INDEX t_over_k ON t_over (k);
COMMENT ON TABLE t_over IS 'serving table';
SELECT 't_over'::regclass::oid AS over_oid,
	   't_over_k'::regclass::oid AS over_index_oid \gset
CREATE TABLE before_over AS SELECT * FROM t_over;
SELECT * FROM t_over ORDER BY k;

-- The sum of integer measures beyond 2^31-1 (2147483000 + 600 + 48):
-- 22003.
INSERT INTO s_over VALUES ('a', 48), ('d', 9);
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_over');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- The serving table is exactly as it was: same contents (no row missing,
-- none added), same table (OID), same index, still valid and used.
SELECT count(*) AS differences FROM (
	(SELECT * FROM t_over EXCEPT ALL SELECT * FROM before_over)
	UNION ALL
	(SELECT * FROM before_over EXCEPT ALL SELECT * FROM t_over)
) d;
SELECT * FROM t_over ORDER BY k;
SELECT 't_over'::regclass::oid = :over_oid AS same_table,
	   obj_description('t_over'::regclass, 'pg_class') AS comment;
SELECT indexrelid = :over_index_oid AS same_index, indisvalid, indisready
FROM pg_index WHERE indrelid = 't_over'::regclass;
SET enable_seqscan = off;
SELECT k, m FROM t_over WHERE k = 'b';
RESET enable_seqscan;

-- Once the overflowing row is gone, the refresh works on the same table.
DELETE FROM s_over WHERE m = 48;
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_over');
SELECT * FROM t_over ORDER BY k;
SELECT 't_over'::regclass::oid = :over_oid AS same_table;

-- bigint measures: the sum beyond 2^63-1 is 22003 too.
CREATE TABLE b_over8 (k text, m bigint);
CREATE TABLE s_over8 (LIKE b_over8);
INSERT INTO b_over8 VALUES ('a', 9223372036854775807);
INSERT INTO s_over8 VALUES ('a', 1);
SELECT serving_layer_define('t_over8', 'b_over8', 's_over8');
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_over8');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- smallint measures: the sum beyond 32767 is 22003 as well.
CREATE TABLE b_over2 (k text, m smallint);
CREATE TABLE s_over2 (LIKE b_over2);
INSERT INTO b_over2 VALUES ('a', 32767);
INSERT INTO s_over2 VALUES ('a', 1);
SELECT serving_layer_define('t_over2', 'b_over2', 's_over2');
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_over2');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- real measures: a sum beyond the range of real is 22003.
CREATE TABLE b_over4 (k text, m real);
CREATE TABLE s_over4 (LIKE b_over4);
INSERT INTO b_over4 VALUES ('a', 3e38);
INSERT INTO s_over4 VALUES ('a', 3e38);
SELECT serving_layer_define('t_over4', 'b_over4', 's_over4');
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_over4');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- Any other error while building: a sum that breaks the CHECK of the
-- batch column's domain (23514), as an INSERT would; the serving table
-- keeps its previous contents.
CREATE DOMAIN small_count AS integer CHECK (VALUE < 100);
CREATE TABLE b_dom (k text, m small_count);
CREATE TABLE s_dom (k text, m integer);
INSERT INTO b_dom VALUES ('a', 60);
SELECT serving_layer_define('t_dom', 'b_dom', 's_dom');
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_dom');
INSERT INTO s_dom VALUES ('a', 50);
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_dom');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM t_dom ORDER BY k;

-- A numeric(5,2) measure: 999.98 + 0.01 fits; 999.99 + 0.01 = 1000.00
-- does not fit its precision: 22003, the serving table unchanged.
CREATE TABLE b_prec (k text, m numeric(5,2));
CREATE TABLE s_prec (LIKE b_prec);
INSERT INTO b_prec VALUES ('a', 999.98);
INSERT INTO s_prec VALUES ('a', 0.01);
SELECT serving_layer_define('t_prec', 'b_prec', 's_prec');
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_prec');
SELECT * FROM t_prec ORDER BY k;
UPDATE b_prec SET m = 999.99;
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_prec');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM t_prec ORDER BY k;

--------------------------------------------------------------------------
-- Clean up: forget this file's definitions, drop its schema.
--------------------------------------------------------------------------
SELECT count(serving_layer_forget(target)) AS forgotten
FROM serving_layer_definitions
WHERE (SELECT relnamespace FROM pg_class WHERE oid = to_regclass(batch))
	= 'casts_overflow'::regnamespace;
SELECT count(*) FROM serving_layer_definitions
WHERE (SELECT relnamespace FROM pg_class WHERE oid = to_regclass(batch))
	= 'casts_overflow'::regnamespace;
SET client_min_messages = warning;
DROP SCHEMA casts_overflow CASCADE;
RESET client_min_messages;
