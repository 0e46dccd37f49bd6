--
-- search_path: a hostile search_path cannot redirect what a refresh reads or
-- calls
--
-- (quiet: the extension may exist already when other tests ran first)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS serving_layer;
RESET client_min_messages;
\set VERBOSITY default
\set SHOW_CONTEXT never
CREATE SCHEMA sl_sp;
CREATE SCHEMA evil;
SET search_path = sl_sp, public;

-- every rogue object writes here when it runs, and returns wrong values
CREATE TABLE rogue_log (what text);

-- the layers: keys city and region, measures n, amount, total and label;
-- the speed layer's types differ, so its values are converted
CREATE TABLE sales (city text, region varchar(10), n bigint, amount numeric,
					total integer, label varchar(20));
CREATE TABLE sales_speed (city text, region text, n integer, amount integer,
						  total bigint, label text);
INSERT INTO sales VALUES
	('oslo', 'north', 1, 1.5, 10, 'b-oslo'),
	('oslo', 'north', 2, 2.5, 20, 'b-oslo'),
	('rome', 'south', 5, 7, 30, 'b-rome'),
	(NULL, 'east', 1, 1, 1, 'b-null');
INSERT INTO sales_speed VALUES
	('oslo', 'north', 10, 3, 5, 's-oslo'),
	('lima', 'west', 4, 4, 40, 's-lima');

-- an aggregate of our own, to be named bare in a definition
CREATE FUNCTION my_agg_step(numeric, numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE STRICT
AS 'SELECT pg_catalog.numeric_larger($1, $2)';
CREATE AGGREGATE my_agg(numeric) (SFUNC = my_agg_step, STYPE = numeric);

--
-- The hostile schema: rogue objects named like everything a refresh could
-- read or call
--
CREATE FUNCTION evil.log(what text) RETURNS void LANGUAGE sql
AS 'INSERT INTO sl_sp.rogue_log VALUES (what)';
-- aggregates: sum, min, max, count(*) and the extension's own pick
CREATE FUNCTION evil.step_bigint(bigint, bigint) RETURNS bigint
LANGUAGE sql AS $$SELECT evil.log('sum(bigint)'); SELECT -999::bigint$$;
CREATE FUNCTION evil.step_numeric(numeric, numeric) RETURNS numeric
LANGUAGE sql AS $$SELECT evil.log('numeric aggregate'); SELECT -999::numeric$$;
CREATE FUNCTION evil.step_int(integer, integer) RETURNS integer
LANGUAGE sql AS $$SELECT evil.log('integer aggregate'); SELECT -999$$;
CREATE FUNCTION evil.step_varchar(varchar, varchar) RETURNS varchar
LANGUAGE sql AS $$SELECT evil.log('varchar aggregate'); SELECT 'rogue'::varchar$$;
CREATE FUNCTION evil.step_count(bigint) RETURNS bigint
LANGUAGE sql AS $$SELECT evil.log('count(*)'); SELECT -999::bigint$$;
CREATE AGGREGATE evil.sum(bigint) (SFUNC = evil.step_bigint, STYPE = bigint);
CREATE AGGREGATE evil.sum(numeric) (SFUNC = evil.step_numeric, STYPE = numeric);
CREATE AGGREGATE evil.max(numeric) (SFUNC = evil.step_numeric, STYPE = numeric);
CREATE AGGREGATE evil.min(integer) (SFUNC = evil.step_int, STYPE = integer);
CREATE AGGREGATE evil.max(varchar) (SFUNC = evil.step_varchar, STYPE = varchar);
CREATE AGGREGATE evil.count(*) (SFUNC = evil.step_count, STYPE = bigint,
								INITCOND = '0');
CREATE AGGREGATE evil.count(bigint) (SFUNC = evil.step_bigint, STYPE = bigint);
CREATE AGGREGATE evil.my_agg(numeric) (SFUNC = evil.step_numeric,
									   STYPE = numeric);
CREATE FUNCTION evil.pick_step(anyelement, anyelement, boolean, boolean, text)
RETURNS anyelement LANGUAGE plpgsql AS $$
BEGIN
	PERFORM evil.log('serving_layer_pick');
	RETURN $2;
END $$;
CREATE AGGREGATE evil.serving_layer_pick(anyelement, boolean, boolean, text)
	(SFUNC = evil.pick_step, STYPE = anyelement);
-- equality operators for text, varchar and name (varchar has none of its
-- own in pg_catalog, so this one is an exact match even behind pg_catalog)
CREATE FUNCTION evil.eq_text(text, text) RETURNS boolean
LANGUAGE sql AS $$SELECT evil.log('= text'); SELECT true$$;
CREATE FUNCTION evil.eq_varchar(varchar, varchar) RETURNS boolean
LANGUAGE sql AS $$SELECT evil.log('= varchar'); SELECT true$$;
CREATE FUNCTION evil.eq_name(name, name) RETURNS boolean
LANGUAGE sql AS $$SELECT evil.log('= name'); SELECT true$$;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text,
						FUNCTION = evil.eq_text);
CREATE OPERATOR evil.= (LEFTARG = varchar, RIGHTARG = varchar,
						FUNCTION = evil.eq_varchar);
CREATE OPERATOR evil.= (LEFTARG = name, RIGHTARG = name,
						FUNCTION = evil.eq_name);
-- functions named like the casts the speed values need
CREATE FUNCTION evil.int8(integer) RETURNS bigint
LANGUAGE sql AS $$SELECT evil.log('int8(integer)'); SELECT -999::bigint$$;
CREATE FUNCTION evil.numeric(integer) RETURNS numeric
LANGUAGE sql AS $$SELECT evil.log('numeric(integer)'); SELECT -999::numeric$$;
CREATE FUNCTION evil.int4(bigint) RETURNS integer
LANGUAGE sql AS $$SELECT evil.log('int4(bigint)'); SELECT -999$$;
CREATE FUNCTION evil."varchar"(text) RETURNS varchar
LANGUAGE sql AS $$SELECT evil.log('varchar(text)'); SELECT 'rogue'::varchar$$;
CREATE FUNCTION evil."varchar"(varchar, integer, boolean) RETURNS varchar
LANGUAGE sql AS $$SELECT evil.log('varchar(varchar,int,bool)'); SELECT 'rogue'::varchar$$;
-- tables named like the layers and like the extension's own tables
CREATE TABLE evil.sales (LIKE sl_sp.sales);
CREATE TABLE evil.sales_speed (LIKE sl_sp.sales_speed);
INSERT INTO evil.sales VALUES ('evil', 'evil', 666, 666, 666, 'evil');
INSERT INTO evil.sales_speed VALUES ('evil', 'evil', 666, 666, 666, 'evil');
CREATE TABLE evil.serving_layer_config (LIKE public.serving_layer_config);
CREATE TABLE evil.serving_layer_history (LIKE public.serving_layer_history);
INSERT INTO evil.serving_layer_config VALUES
	('sl_sp.serving', 'sl_sp', 'serving', 'evil.sales', 'evil.sales_speed',
	 '{city,region}', '{"n": "sum", "amount": "sum", "total": "sum", "label": "max"}',
	 '{city,region,n,amount,total,label}', 'postgres'),
	('sl_sp.by_my_agg', 'sl_sp', 'by_my_agg', 'evil.sales', 'evil.sales_speed',
	 '{city,region}', '{"n": "sum", "amount": "sum", "total": "sum", "label": "max"}',
	 '{city,region,n,amount,total,label}', 'postgres');

--
-- Define with a clean search_path and refresh: the reference contents
--
SELECT serving_layer_define('sl_sp.serving', 'sales', 'sales_speed',
							key => '{city,region}',
							merge => '{"amount": "max", "total": "min", "label": "speed"}');
SELECT serving_layer_define('sl_sp.by_my_agg', 'sales', 'sales_speed',
							key => '{city,region}',
							merge => '{"amount": "my_agg", "label": "max"}');
-- my_agg was resolved through the search_path of this moment and is stored
-- qualified; sum, min and max are pg_catalog's and shown bare
SELECT target, key, merge FROM serving_layer_definitions
WHERE target LIKE 'sl_sp.%' ORDER BY target;
SELECT * FROM serving_layer_refresh('sl_sp.serving');
SELECT * FROM serving_layer_refresh('sl_sp.by_my_agg');
SELECT * FROM serving ORDER BY city, region;
SELECT * FROM by_my_agg ORDER BY city, region;
CREATE TABLE reference AS SELECT * FROM serving;
CREATE TABLE reference_agg AS SELECT * FROM by_my_agg;
-- the rogue objects are visible to ordinary queries under the hostile path
SET search_path = evil, public;
SELECT count(*) AS evil_sales FROM sales WHERE city = 'evil';
SET search_path = evil, pg_catalog, public;
SELECT 'a'::varchar = 'b'::varchar AS rogue_equal;
SELECT max(label) AS rogue_max FROM sl_sp.sales;
SET search_path = sl_sp, public;
SELECT what FROM rogue_log ORDER BY what;
TRUNCATE rogue_log;

-- after each refresh, compare the contents with the reference and count the
-- rogue calls: same rows as with the clean path, nothing rogue ran (the
-- checks themselves run under the clean search_path)
CREATE VIEW sl_sp.check_same AS
	SELECT (SELECT count(*) FROM (SELECT * FROM sl_sp.serving
								  EXCEPT ALL SELECT * FROM sl_sp.reference) d)
		 + (SELECT count(*) FROM (SELECT * FROM sl_sp.reference
								  EXCEPT ALL SELECT * FROM sl_sp.serving) d)
		   AS serving_differences,
		   (SELECT count(*) FROM (SELECT * FROM sl_sp.by_my_agg
								  EXCEPT ALL SELECT * FROM sl_sp.reference_agg) d)
		 + (SELECT count(*) FROM (SELECT * FROM sl_sp.reference_agg
								  EXCEPT ALL SELECT * FROM sl_sp.by_my_agg) d)
		   AS by_my_agg_differences,
		   (SELECT count(*) FROM sl_sp.rogue_log) AS rogue_calls,
		   (SELECT count(*) FROM evil.serving_layer_history) AS evil_history;
SELECT * FROM check_same;

--
-- Refresh under hostile search_paths
--

-- evil first, pg_catalog implicitly before it
SET search_path = evil, public;
SELECT * FROM public.serving_layer_refresh('sl_sp.serving');
SELECT * FROM public.serving_layer_refresh('sl_sp.by_my_agg');
SET search_path = sl_sp, public;
SELECT * FROM check_same;

-- evil even before pg_catalog
SET search_path = evil, pg_catalog, public;
SELECT * FROM public.serving_layer_refresh('sl_sp.serving');
SELECT * FROM public.serving_layer_refresh('sl_sp.by_my_agg');
SET search_path = sl_sp, public;
SELECT * FROM check_same;

-- only evil and pg_catalog: the extension's schema is not on the path
SET search_path = evil, pg_catalog;
SELECT * FROM public.serving_layer_refresh('sl_sp.serving');
SELECT * FROM public.serving_layer_refresh('sl_sp.by_my_agg');
SET search_path = sl_sp, public;
SELECT * FROM check_same;

-- an empty search_path
SET search_path = '';
SELECT * FROM public.serving_layer_refresh('sl_sp.serving');
SET search_path = sl_sp, public;
SELECT * FROM check_same;

--
-- pg_temp shadowing
--

-- temp tables named like the batch and speed tables, found first by
-- unqualified names, are not read
SET search_path = sl_sp, public;
CREATE TEMP TABLE sales (LIKE sl_sp.sales);
CREATE TEMP TABLE sales_speed (LIKE sl_sp.sales_speed);
INSERT INTO sales VALUES ('temp', 'temp', 777, 777, 777, 'temp');
INSERT INTO sales_speed VALUES ('temp', 'temp', 777, 777, 777, 'temp');
SELECT count(*) AS temp_sales FROM sales WHERE city = 'temp';
SELECT * FROM serving_layer_refresh('sl_sp.serving');
SELECT * FROM check_same;
-- also with pg_temp named first, ahead of evil
SET search_path = pg_temp, evil, pg_catalog, public;
SELECT * FROM public.serving_layer_refresh('sl_sp.serving');
SELECT * FROM public.serving_layer_refresh('sl_sp.by_my_agg');
SET search_path = sl_sp, public;
SELECT * FROM check_same;
-- a temp table named like the serving table: the qualified target is
-- still refreshed, and the temp table is untouched
SET search_path = sl_sp, public;
CREATE TEMP TABLE serving (LIKE sl_sp.serving);
INSERT INTO pg_temp.serving VALUES ('temp', 'temp', 0, 0, 0, 'temp');
SELECT * FROM serving_layer_refresh('sl_sp.serving');
SELECT * FROM check_same;
SELECT city FROM pg_temp.serving;
-- an unqualified target means what any unqualified table name means: here
-- the temp table, which has no definition (42P01)
SELECT * FROM serving_layer_refresh('serving');
\echo :LAST_ERROR_SQLSTATE
DROP TABLE pg_temp.sales, pg_temp.sales_speed, pg_temp.serving;

--
-- Names resolved at define time
--

-- a bare aggregate name is resolved through the search_path of the moment
-- it is defined: defined with evil first it is evil's, and says so
SET search_path = evil, sl_sp, public;
SELECT public.serving_layer_define('sl_sp.by_my_agg', 'sl_sp.sales',
								   'sl_sp.sales_speed', key => '{city,region}',
								   merge => '{"amount": "my_agg", "label": "max"}');
SET search_path = sl_sp, public;
SELECT target, merge FROM serving_layer_definitions
WHERE target = 'sl_sp.by_my_agg';
-- defined again with the clean path it is sl_sp's, and a refresh with evil
-- first still calls sl_sp.my_agg
SET search_path = sl_sp, public;
SELECT serving_layer_define('sl_sp.by_my_agg', 'sales', 'sales_speed',
							key => '{city,region}',
							merge => '{"amount": "my_agg", "label": "max"}');
SELECT target, merge FROM serving_layer_definitions
WHERE target = 'sl_sp.by_my_agg';
SET search_path = evil, sl_sp, pg_catalog, public;
SELECT * FROM public.serving_layer_refresh('sl_sp.by_my_agg');
SET search_path = sl_sp, public;
SELECT * FROM check_same;
-- sum, min and max named under a hostile search_path at define time are
-- still pg_catalog's (they are the contract's merges, not lookups)
SET search_path = evil, pg_catalog, public;
SELECT public.serving_layer_define('sl_sp.serving', 'sl_sp.sales',
								   'sl_sp.sales_speed', key => '{city,region}',
								   merge => '{"n": "sum", "amount": "max", "total": "min", "label": "speed"}');
SET search_path = sl_sp, public;
SELECT target, merge FROM serving_layer_definitions
WHERE target = 'sl_sp.serving';
SELECT * FROM check_same;
-- the layers were named unqualified under a clean path and are stored by
-- their schema-qualified names, as sl_sp's tables
SELECT target, batch, speed
FROM serving_layer_definitions WHERE target LIKE 'sl_sp.%' ORDER BY target;

-- the rogue log is empty, and the rogue history table too
SELECT * FROM rogue_log;
SELECT count(*) FROM evil.serving_layer_history;

-- clean up
SELECT serving_layer_forget(target) FROM serving_layer_definitions
WHERE target LIKE 'sl_sp.%' ORDER BY target;
SET client_min_messages = warning;
DROP SCHEMA sl_sp, evil CASCADE;
RESET client_min_messages;
