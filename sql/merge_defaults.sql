--
-- merge_defaults: what serving_layer_define() fills in when key, merge or
-- speed_columns is NULL, and the errors of each of those arguments.
--
-- Every expected error is followed by \echo of its SQLSTATE.
--
-- (quiet: the extension may exist already when other tests ran first)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS serving_layer;
RESET client_min_messages;
CREATE SCHEMA merge_defaults;
SET search_path = merge_defaults, public;
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE DOMAIN amount AS numeric(12,2);
CREATE DOMAIN counter AS integer;
CREATE DOMAIN label AS text;

--------------------------------------------------------------------------
-- Default key
--------------------------------------------------------------------------

-- Every type of the contract's numeric list (smallint, integer, bigint,
-- numeric, real, double precision) and domains over them are measures;
-- every other column (text, date, a domain over text, boolean) is a key.
CREATE TABLE b_types (
	city	text,
	day		date,
	lbl		label,
	flag	boolean,
	s		smallint,
	i		integer,
	g		bigint,
	n		numeric,
	r		real,
	d		double precision,
	a		amount,
	c		counter
);
CREATE TABLE s_types (LIKE b_types);
SELECT serving_layer_define('t_types', 'b_types', 's_types');
SELECT key, merge, speed_columns
FROM serving_layer_definitions WHERE target = 't_types';

-- The default merge is sum for every numeric measure, over batch and speed
-- values of a key (each type keeps its batch type in the serving table).
INSERT INTO b_types VALUES
	('Oslo', '2024-01-01', 'x', true, 1, 10, 100, 1.5, 0.5, 0.25, 1.10, 7),
	('Rome', '2024-01-01', 'y', false, 2, 20, 200, 2.5, 1.5, 1.25, 2.20, 8);
INSERT INTO s_types VALUES
	('Oslo', '2024-01-01', 'x', true, 3, 30, 300, 3.5, 2.5, 2.25, 3.30, 9),
	('Oslo', '2024-01-01', 'x', true, 4, 40, 400, 4.5, 3.5, 3.25, 4.40, 10);
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_types');
SELECT * FROM t_types ORDER BY city;

-- Types outside the contract's list are keys even when they hold numbers
-- (money, an array of integers).
CREATE TABLE b_other (price money, ids integer[], m integer);
SELECT serving_layer_define('t_other', 'b_other', 'b_other');
SELECT key, merge FROM serving_layer_definitions WHERE target = 't_other';

-- A batch table with only numeric columns (one of them a domain over
-- numeric) has no key column: 22023.
CREATE TABLE b_numbers (m integer, a amount);
SELECT serving_layer_define('t_numbers', 'b_numbers', 'b_numbers');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

--------------------------------------------------------------------------
-- Default merge
--------------------------------------------------------------------------

CREATE TABLE b_note (k text, m integer, note text);
CREATE TABLE s_note (LIKE b_note);

-- With an explicit key, a non-numeric column that is neither key nor named
-- in merge has no default merge: 42804 at define time.
SELECT serving_layer_define('t_note', 'b_note', 's_note', key => '{k}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- Naming its merge makes it a measure; the measure merge does not name
-- (m) still gets sum.
SELECT serving_layer_define('t_note', 'b_note', 's_note', key => '{k}',
							merge => '{"note": "max"}');
SELECT key, merge, speed_columns
FROM serving_layer_definitions WHERE target = 't_note';
INSERT INTO b_note VALUES ('a', 1, 'x'), ('a', 2, 'y');
INSERT INTO s_note VALUES ('a', 4, 'z');
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_note');
SELECT * FROM t_note ORDER BY k, note;

-- An empty merge object means every default; redefining replaces the
-- definition, and the next refresh of the same serving table uses it
-- (note is now a key).
SELECT serving_layer_define('t_note', 'b_note', 's_note', merge => '{}');
SELECT key, merge, speed_columns
FROM serving_layer_definitions WHERE target = 't_note';
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_note');
SELECT * FROM t_note ORDER BY k, note;

--------------------------------------------------------------------------
-- Default speed_columns
--------------------------------------------------------------------------

CREATE TABLE b_kab (k text, a integer, b integer);

-- By name: every batch column exists in the speed table, in another order
-- and with extra columns, which are ignored.
CREATE TABLE s_byname (b integer, extra integer, k text, a integer,
					   more text);
SELECT serving_layer_define('t_byname', 'b_kab', 's_byname');
SELECT speed_columns FROM serving_layer_definitions
WHERE target = 't_byname';
INSERT INTO b_kab VALUES ('p', 1, 10);
INSERT INTO s_byname VALUES (20, 999, 'p', 2, 'ignored');
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_byname');
SELECT * FROM t_byname ORDER BY k;

-- By position: the names differ and both tables have three columns.
CREATE TABLE s_bypos (loc text, "count(a)" integer, "sum(b)" integer);
SELECT serving_layer_define('t_bypos', 'b_kab', 's_bypos');
SELECT speed_columns FROM serving_layer_definitions
WHERE target = 't_bypos';
INSERT INTO s_bypos VALUES ('p', 3, 30), ('q', 4, 40);
SELECT target, batch_rows, speed_rows, output_rows, status
FROM serving_layer_refresh('t_bypos');
SELECT * FROM t_bypos ORDER BY k;

-- By position even when some names match: "a" is missing, so name matching
-- does not apply, and position pairs batch a with speed b, batch b with
-- speed c.
CREATE TABLE s_partial (k text, b integer, c integer);
SELECT serving_layer_define('t_partial', 'b_kab', 's_partial');
SELECT speed_columns FROM serving_layer_definitions
WHERE target = 't_partial';

-- By position ignores dropped columns of the speed table.
CREATE TABLE s_dropped (x text, gone integer, y integer, z integer);
ALTER TABLE s_dropped DROP COLUMN gone;
SELECT serving_layer_define('t_dropped', 'b_kab', 's_dropped');
SELECT speed_columns FROM serving_layer_definitions
WHERE target = 't_dropped';

-- Neither: a batch column is missing and the column counts differ: 42703.
CREATE TABLE s_neither (loc text, a integer);
SELECT serving_layer_define('t_neither', 'b_kab', 's_neither');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CREATE TABLE s_neither4 (loc text, a integer, b integer, extra integer);
SELECT serving_layer_define('t_neither', 'b_kab', 's_neither4');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT count(*) FROM serving_layer_definitions WHERE target = 't_neither';

--------------------------------------------------------------------------
-- Explicit speed_columns
--------------------------------------------------------------------------

-- Listed in batch column order, they override name matching.
SELECT serving_layer_define('t_explicit', 'b_kab', 's_byname',
							speed_columns => '{k,b,a}');
SELECT speed_columns FROM serving_layer_definitions
WHERE target = 't_explicit';

-- Wrong length (fewer or more names than batch columns): 22023.
SELECT serving_layer_define('t_bad_sc', 'b_kab', 's_byname',
							speed_columns => '{k,a}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT serving_layer_define('t_bad_sc', 'b_kab', 's_byname',
							speed_columns => '{k,a,b,extra}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT serving_layer_define('t_bad_sc', 'b_kab', 's_byname',
							speed_columns => '{}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- A name the speed table does not have: 42703.
SELECT serving_layer_define('t_bad_sc', 'b_kab', 's_byname',
							speed_columns => '{k,a,nosuch}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- Names are case-sensitive, as quoted identifiers: "K" is not k: 42703.
SELECT serving_layer_define('t_bad_sc', 'b_kab', 's_byname',
							speed_columns => '{K,a,b}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- A NULL element: 22023.
SELECT serving_layer_define('t_bad_sc', 'b_kab', 's_byname',
							speed_columns => '{k,NULL,b}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT count(*) FROM serving_layer_definitions WHERE target = 't_bad_sc';

--------------------------------------------------------------------------
-- Explicit key
--------------------------------------------------------------------------

-- A numeric column may be a key when named; the rest are summed.
SELECT serving_layer_define('t_key', 'b_kab', 's_byname', key => '{k,a}');
SELECT key, merge FROM serving_layer_definitions WHERE target = 't_key';

-- A key column the batch table does not have: 42703.
SELECT serving_layer_define('t_bad_key', 'b_kab', 's_byname',
							key => '{k,nosuch}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- Key names are exact (case-sensitive): "K" is not k: 42703.
SELECT serving_layer_define('t_bad_key', 'b_kab', 's_byname', key => '{K}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- The same key column twice: 22023.
SELECT serving_layer_define('t_bad_key', 'b_kab', 's_byname',
							key => '{k,a,k}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- An empty key array: no key column at all, 22023.
SELECT serving_layer_define('t_bad_key', 'b_kab', 's_byname', key => '{}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- A NULL element: 22023.
SELECT serving_layer_define('t_bad_key', 'b_kab', 's_byname',
							key => '{k,NULL}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT count(*) FROM serving_layer_definitions WHERE target = 't_bad_key';

--------------------------------------------------------------------------
-- Errors in merge
--------------------------------------------------------------------------

-- A column the batch table does not have: 42703.
SELECT serving_layer_define('t_bad_merge', 'b_kab', 's_byname',
							merge => '{"nosuch": "sum"}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- Column names in merge are exact too: "A" is not a: 42703.
SELECT serving_layer_define('t_bad_merge', 'b_kab', 's_byname',
							merge => '{"A": "sum"}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- A key column (here a default key) cannot have a merge: 22023.
SELECT serving_layer_define('t_bad_merge', 'b_kab', 's_byname',
							merge => '{"k": "max"}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- An explicit key column cannot have a merge either: 22023.
SELECT serving_layer_define('t_bad_merge', 'b_kab', 's_byname',
							key => '{k,a}', merge => '{"a": "sum"}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- A merge value that is not a string (number, null, array, object): 22023.
SELECT serving_layer_define('t_bad_merge', 'b_kab', 's_byname',
							merge => '{"a": 1}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT serving_layer_define('t_bad_merge', 'b_kab', 's_byname',
							merge => '{"a": null}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT serving_layer_define('t_bad_merge', 'b_kab', 's_byname',
							merge => '{"a": ["sum"]}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT serving_layer_define('t_bad_merge', 'b_kab', 's_byname',
							merge => '{"a": {"kind": "sum"}}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- A merge that is not a JSON object (array, string, number): 22023.
SELECT serving_layer_define('t_bad_merge', 'b_kab', 's_byname',
							merge => '["sum"]');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT serving_layer_define('t_bad_merge', 'b_kab', 's_byname',
							merge => '"sum"');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT serving_layer_define('t_bad_merge', 'b_kab', 's_byname',
							merge => '1');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT count(*) FROM serving_layer_definitions WHERE target = 't_bad_merge';

--------------------------------------------------------------------------
-- The effective definition, and redefining
--------------------------------------------------------------------------

-- serving_layer_definitions shows the effective key, the merge of every
-- measure (named or defaulted) and the speed columns in batch column order,
-- whatever order the speed table has.
CREATE TABLE b_eff (m1 integer, k1 text, m2 bigint, k2 date, m3 numeric);
CREATE TABLE s_eff (m3 numeric, k2 date, m2 bigint, k1 text, m1 integer);
SELECT serving_layer_define('t_eff', 'b_eff', 's_eff',
							merge => '{"m2": "max"}');
SELECT target, batch, speed, key, merge, speed_columns
FROM serving_layer_definitions WHERE target = 't_eff';

-- Defining the same target again replaces its definition (still one row).
SELECT serving_layer_define('t_eff', 'b_eff', 's_eff', key => '{k1}',
							merge => '{"k2": "min", "m1": "min"}',
							speed_columns => '{m1,k1,m2,k2,m3}');
SELECT target, batch, speed, key, merge, speed_columns
FROM serving_layer_definitions WHERE target = 't_eff';

-- A failed redefinition leaves the previous definition in place.
SELECT serving_layer_define('t_eff', 'b_eff', 's_eff', key => '{nosuch}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT target, batch, speed, key, merge, speed_columns
FROM serving_layer_definitions WHERE target = 't_eff';

-- Every definition of this file, in target order.
SELECT target, key FROM serving_layer_definitions
WHERE (SELECT relnamespace FROM pg_class WHERE oid = to_regclass(batch))
	= 'merge_defaults'::regnamespace
ORDER BY target;

-- Forget them all; the serving tables stay until the schema goes.
SELECT count(serving_layer_forget(target)) AS forgotten
FROM serving_layer_definitions
WHERE (SELECT relnamespace FROM pg_class WHERE oid = to_regclass(batch))
	= 'merge_defaults'::regnamespace;
SELECT count(*) FROM serving_layer_definitions
WHERE (SELECT relnamespace FROM pg_class WHERE oid = to_regclass(batch))
	= 'merge_defaults'::regnamespace;
SET client_min_messages = warning;
DROP SCHEMA merge_defaults CASCADE;
RESET client_min_messages;
