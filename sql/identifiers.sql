--
-- identifiers: names of every shape work and cannot change the SQL that runs
--
-- (quiet: the extension may exist already when other tests ran first)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS serving_layer;
RESET client_min_messages;
\set VERBOSITY default
\set SHOW_CONTEXT never
CREATE SCHEMA sl_ident;
CREATE SCHEMA "Sales";
CREATE SCHEMA "Schéma; 日本 ""q""";
SET search_path = sl_ident, public;

-- a table that injected SQL would drop
CREATE TABLE victim (x int);
INSERT INTO victim VALUES (1);

-- batch and speed tables whose names and column names need quoting: quotes,
-- spaces, semicolons, upper case, non-ASCII, a name that looks like SQL and
-- a column named like an expression
CREATE TABLE "Batch; Table" (
	"City Name" text,
	"é" text,
	"日本" text,
	"x""; DROP TABLE victim; --" text,
	"count(id)" bigint,
	"Total ""Sum""" numeric
);
CREATE TABLE "speed ""layer"" 日本" (
	"City Name" text,
	"é" text,
	"日本" text,
	"x""; DROP TABLE victim; --" text,
	"count(id)" bigint,
	"Total ""Sum""" numeric
);
INSERT INTO "Batch; Table" VALUES
	('Oslo', 'a', '東京', 'k1', 1, 1.5),
	('Oslo', 'a', '東京', 'k1', 2, 0.5),
	('São Paulo', 'b', '大阪', 'k2', 5, 10);
INSERT INTO "speed ""layer"" 日本" VALUES
	('Oslo', 'a', '東京', 'k1', 10, 7),
	('Zürich', 'c', '京都', 'k3', 3, 3);

-- define a schema-qualified, quoted target; the merge names a quoted column
SELECT serving_layer_define('"Sales"."by city"', '"Batch; Table"',
							'"speed ""layer"" 日本"',
							merge => '{"Total \"Sum\"": "max"}');
-- an unqualified target whose name looks like SQL, in the current schema
SELECT serving_layer_define('"x""; DROP TABLE victim; --"', '"Batch; Table"',
							'"speed ""layer"" 日本"');
-- a target in a schema whose name has a semicolon, non-ASCII and quotes,
-- with the key and speed columns named explicitly
SELECT serving_layer_define('"Schéma; 日本 ""q"""."Täble; 1"',
							'"Batch; Table"', '"speed ""layer"" 日本"',
							key => '{City Name,日本,é,"x\"; DROP TABLE victim; --"}',
							speed_columns => '{City Name,é,日本,"x\"; DROP TABLE victim; --",count(id),"Total \"Sum\""}');
-- an aggregate whose schema and name need quoting, named in the merge
CREATE FUNCTION "Schéma; 日本 ""q"""."larger; --"(bigint, bigint)
RETURNS bigint LANGUAGE sql IMMUTABLE STRICT
AS 'SELECT pg_catalog.int8larger($1, $2)';
CREATE AGGREGATE "Schéma; 日本 ""q"""."My Max; --"(bigint) (
	SFUNC = "Schéma; 日本 ""q"""."larger; --", STYPE = bigint);
SELECT serving_layer_define('"Schéma; 日本 ""q"""."by agg"', '"Batch; Table"',
							'"speed ""layer"" 日本"',
							merge => $j${"count(id)": "\"Schéma; 日本 \"\"q\"\"\".\"My Max; --\""}$j$);
-- a target longer than NAMEDATALEN is truncated like any identifier, at a
-- character boundary (30 three-byte characters become 21)
SELECT serving_layer_define(repeat('日', 30), '"Batch; Table"',
							'"speed ""layer"" 日本"');
-- a plain lower-case target, qualified at define time
SELECT serving_layer_define('sl_ident.plain', '"Batch; Table"',
							'"speed ""layer"" 日本"');

-- the definitions show the targets normalized: quoted where needed,
-- qualified only where the user qualified them
SELECT target, batch, speed, key, merge, speed_columns
FROM serving_layer_definitions
WHERE to_regclass(batch) = '"Batch; Table"'::regclass ORDER BY target COLLATE "C";

-- refresh each one; the result shows the target as defined
SELECT * FROM serving_layer_refresh('"Sales"."by city"');
SELECT * FROM serving_layer_refresh('"x""; DROP TABLE victim; --"');
SELECT * FROM serving_layer_refresh('"Schéma; 日本 ""q"""."Täble; 1"');
SELECT * FROM serving_layer_refresh('sl_ident.plain');
SELECT * FROM serving_layer_refresh('"Schéma; 日本 ""q"""."by agg"');
SELECT target = format('%I', repeat('日', 21)) AS truncated, batch_rows,
	   speed_rows, output_rows, status
FROM serving_layer_refresh(repeat('日', 30));

-- the serving tables were created with the right names in the right schemas
SELECT schemaname, tablename FROM pg_tables
WHERE schemaname IN ('sl_ident', 'Sales', 'Schéma; 日本 "q"')
ORDER BY schemaname COLLATE "C", tablename COLLATE "C";
-- with the batch table's columns, names and types
SELECT attname, format_type(atttypid, atttypmod) AS type
FROM pg_attribute WHERE attrelid = '"Sales"."by city"'::regclass
AND attnum > 0 ORDER BY attnum;
-- and the merged rows
SELECT * FROM "Sales"."by city" ORDER BY 1, 2, 3, 4;
SELECT * FROM "x""; DROP TABLE victim; --" ORDER BY 1, 2, 3, 4;
SELECT * FROM "Schéma; 日本 ""q"""."Täble; 1" ORDER BY 1, 2, 3, 4;
SELECT * FROM "Schéma; 日本 ""q"""."by agg" ORDER BY 1, 2, 3, 4;
SELECT count(*) FROM sl_ident.日日日日日日日日日日日日日日日日日日日日日;

-- the victim is still there
SELECT * FROM victim;

-- the same target spelled differently finds the same definition: quoted
-- and unquoted lower case, qualified and unqualified
SELECT target, output_rows FROM serving_layer_refresh('plain');
SELECT target, output_rows FROM serving_layer_refresh('"plain"');
SELECT target, output_rows FROM serving_layer_refresh('PLAIN');
SELECT target, output_rows FROM serving_layer_refresh('SL_IDENT."plain"');
SELECT target, output_rows FROM serving_layer_refresh(' sl_ident . plain ');
-- an unqualified target defined unqualified, refreshed qualified
SELECT target, output_rows
FROM serving_layer_refresh('sl_ident."x""; DROP TABLE victim; --"');
-- a quoted upper-case schema found through search_path
SET search_path = "Sales", sl_ident, public;
SELECT target, output_rows FROM serving_layer_refresh('"by city"');
SET search_path = sl_ident, public;
-- a different case is a different name when quoted: no definition (42P01)
SELECT * FROM serving_layer_refresh('"Sales"."By City"');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM serving_layer_refresh('sales."by city"');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM serving_layer_refresh('"PLAIN"');
\echo :LAST_ERROR_SQLSTATE

-- the long target by its full name, and by the truncated one
SELECT target = format('%I', repeat('日', 21)) AS truncated, output_rows
FROM serving_layer_refresh(repeat('日', 30));
SELECT target = format('%I', repeat('日', 21)) AS truncated, output_rows
FROM serving_layer_refresh('sl_ident.' || repeat('日', 21));
-- defining the same target spelled differently replaces its definition,
-- which now shows the target as last spelled
SELECT serving_layer_define('PLAIN', '"Batch; Table"', '"speed ""layer"" 日本"',
							merge => '{"count(id)": "max"}');
SELECT target, merge FROM serving_layer_definitions
WHERE target LIKE '%plain%' ORDER BY target;
SELECT target, output_rows FROM serving_layer_refresh('sl_ident.plain');
SELECT "count(id)" FROM plain ORDER BY 1;
-- still one definition per target, and the victim is still there
SELECT count(*) FROM serving_layer_definitions
WHERE to_regclass(batch) = '"Batch; Table"'::regclass;
SELECT * FROM victim;

-- invalid target name syntax: invalid_name (42602)
SELECT serving_layer_define('"unterminated', '"Batch; Table"',
							'"speed ""layer"" 日本"');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM serving_layer_refresh('"unterminated');
\echo :LAST_ERROR_SQLSTATE
SELECT serving_layer_forget('"unterminated');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM serving_layer_refresh('');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM serving_layer_refresh('a..b');
\echo :LAST_ERROR_SQLSTATE
-- key, merge and speed column names that try to inject SQL are names:
-- undefined_column (42703); a merge that tries it names no aggregate:
-- undefined_function (42883)
SELECT serving_layer_define('sl_ident.inject', '"Batch; Table"',
							'"speed ""layer"" 日本"',
							key => ARRAY['"City Name") FROM victim; DROP TABLE victim; --']);
\echo :LAST_ERROR_SQLSTATE
SELECT serving_layer_define('sl_ident.inject', '"Batch; Table"',
							'"speed ""layer"" 日本"',
							merge => '{"count(id)": "sum\"(x); DROP TABLE victim; --"}');
\echo :LAST_ERROR_SQLSTATE
SELECT serving_layer_define('sl_ident.inject', '"Batch; Table"',
							'"speed ""layer"" 日本"',
							merge => '{"count(id)": "pg_catalog.sum(\"count(id)\") FROM victim; --"}');
\echo :LAST_ERROR_SQLSTATE
SELECT serving_layer_define('sl_ident.inject', '"Batch; Table"',
							'"speed ""layer"" 日本"',
							speed_columns => ARRAY['City Name', 'é', '日本',
								'x"; DROP TABLE victim; --', 'count(id)',
								'1 FROM victim; DROP TABLE victim; --']);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM serving_layer_definitions WHERE target = 'sl_ident.inject';
-- a target that tries to append SQL is one (invalid) name, not SQL
SELECT * FROM serving_layer_refresh('plain; DROP TABLE victim');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM victim;

-- clean up
SELECT serving_layer_forget(target) FROM serving_layer_definitions
WHERE to_regclass(batch) = '"Batch; Table"'::regclass ORDER BY target;
SET client_min_messages = warning;
DROP SCHEMA sl_ident, "Sales", "Schéma; 日本 ""q""" CASCADE;
RESET client_min_messages;
