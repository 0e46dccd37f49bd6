--
-- classic_layout: serving_layer_refresh() with no definition at all
-- refreshes the original design's layout -- serving_layer from batch_layer
-- and speed_layer, found through search_path, speed columns named like
-- "count(id)" matched by position -- and gets right what the original
-- UPDATE/INSERT ... NOT IN script got wrong (NULL locations, duplicate
-- speed rows, NULL measures).
--
-- This file needs the database to have no definition: every test file
-- forgets its definitions before it ends.
--
-- Every expected error is followed by \echo of its SQLSTATE.
--
-- (quiet: the extension may exist already when other tests ran first)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS serving_layer;
RESET client_min_messages;
-- batch layers shrink on purpose here; the half-loaded batch guard has its
-- own test (lambda_guard)
SET serving_layer.min_batch_fraction = 0;
CREATE SCHEMA classic_layout;
SET search_path = classic_layout, public;
\set VERBOSITY default
\set SHOW_CONTEXT never

-- No definition exists (otherwise a bare refresh would refresh those).
SELECT count(*) AS definitions FROM serving_layer_definitions;

-- The refresh runs as an ordinary role that owns the layers and may
-- create tables in the schema.
CREATE ROLE regress_classic_layout;
GRANT USAGE, CREATE ON SCHEMA classic_layout TO regress_classic_layout;
SET ROLE regress_classic_layout;

--------------------------------------------------------------------------
-- Missing layers
--------------------------------------------------------------------------

-- No batch_layer in search_path: 42P01.
SELECT * FROM serving_layer_refresh();
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- A batch_layer but no speed_layer: 42P01.
CREATE TABLE batch_layer (
	location			text,
	count_id			bigint,
	sum_followers_count	bigint,
	sum_favorite_count	bigint,
	sum_retweet_count	bigint
);
SELECT * FROM serving_layer_refresh();
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- Neither error created a serving table.
SELECT to_regclass('serving_layer') IS NULL AS no_serving_table;

--------------------------------------------------------------------------
-- The first refresh
--------------------------------------------------------------------------

CREATE TABLE speed_layer (
	location				text,
	"count(id)"				bigint,
	"sum(followers_count)"	bigint,
	"sum(favorite_count)"	bigint,
	"sum(retweet_count)"	bigint
);
INSERT INTO batch_layer VALUES
	('Berlin', 10, 100, 20, 5),
	('Paris', 5, 50, 10, NULL),
	(NULL, 3, 30, 3, 3);
-- Berlin twice in speed (the original UPDATE ... FROM added only one of
-- them), a NULL location (never matched by "=", and its NULL made
-- "NOT IN" drop every new location), Tokyo new and twice, a NULL measure
-- on both sides of Paris's sums (NULL + 2 gave NULL).
INSERT INTO speed_layer VALUES
	('Berlin', 1, 10, 2, 1),
	('Berlin', 2, 20, 4, 2),
	(NULL, 1, 1, 1, 1),
	('Tokyo', 4, 40, 8, 4),
	('Tokyo', 1, 10, 1, 1),
	('Paris', 1, NULL, NULL, 2);

-- With no definition, a bare refresh builds serving_layer from the
-- classic layout; it does not exist yet, so it is created.
SELECT * FROM serving_layer_refresh();

-- One row per location, NULL included:
--   Berlin: 10+1+2, 100+10+20, 20+2+4, 5+1+2
--   Paris:  5+1, 50, 10, 2         Tokyo: 4+1, 40+10, 8+1, 4+1
--   NULL:   3+1, 30+1, 3+1, 3+1
SELECT * FROM serving_layer ORDER BY location NULLS FIRST;

-- It was created in the first schema of search_path, owned by the caller,
-- with batch_layer's columns, names and types in order.
SELECT n.nspname, pg_get_userbyid(c.relowner) AS owner,
	   pg_get_userbyid(c.relowner) = current_user AS owned_by_caller
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = 'serving_layer'::regclass;
SELECT a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) AS type
FROM pg_attribute a
WHERE a.attrelid = 'serving_layer'::regclass AND a.attnum > 0
	AND NOT a.attisdropped
ORDER BY a.attnum;

-- The classic refresh leaves no definition behind.
SELECT count(*) AS definitions FROM serving_layer_definitions;

--------------------------------------------------------------------------
-- A second refresh
--------------------------------------------------------------------------

-- New speed rows for Paris and a new location; the batch layer unchanged.
-- The same table (OID) gets the new contents.
SELECT 'serving_layer'::regclass::oid AS serving_oid \gset
INSERT INTO speed_layer VALUES ('Paris', 1, 5, 5, 5), ('Lima', 1, 1, 1, 1);
SELECT * FROM serving_layer_refresh();
SELECT * FROM serving_layer ORDER BY location NULLS FIRST;
SELECT 'serving_layer'::regclass::oid = :serving_oid AS same_table;

--------------------------------------------------------------------------
-- search_path decides which layout
--------------------------------------------------------------------------

-- With another schema first in search_path that has its own layout
-- (batch_layer, speed_layer and serving_layer), the bare refresh reads
-- and writes that schema's tables, and leaves this schema's serving_layer
-- alone.
RESET ROLE;
CREATE SCHEMA classic_layout_other;
GRANT USAGE, CREATE ON SCHEMA classic_layout_other TO regress_classic_layout;
SET ROLE regress_classic_layout;
SET search_path = classic_layout_other, classic_layout, public;
CREATE TABLE classic_layout_other.batch_layer
	(LIKE classic_layout.batch_layer);
CREATE TABLE classic_layout_other.speed_layer
	(LIKE classic_layout.speed_layer);
CREATE TABLE classic_layout_other.serving_layer
	(LIKE classic_layout.batch_layer);
INSERT INTO classic_layout_other.batch_layer VALUES ('Oslo', 1, 1, 1, 1);
INSERT INTO classic_layout_other.speed_layer VALUES ('Oslo', 1, 1, 1, 1);
SELECT * FROM serving_layer_refresh();
SELECT * FROM classic_layout_other.serving_layer ORDER BY location;
SELECT count(*) FROM classic_layout.serving_layer;

-- The half-loaded batch check compares with the last successful refresh of
-- the same schema's serving_layer (the history names both "serving_layer"):
-- 100 batch rows here, then the 3 of classic_layout are not refused; a
-- batch here cut to 10 of its 100 rows is (55000).
SET serving_layer.min_batch_fraction = 0.5;
INSERT INTO classic_layout_other.batch_layer
	SELECT 'Town ' || g, 1, 1, 1, 1 FROM generate_series(2, 100) g;
SELECT target, batch_rows, status FROM serving_layer_refresh();
SET search_path = classic_layout, public;
SELECT target, batch_rows, status FROM serving_layer_refresh();
SET search_path = classic_layout_other, classic_layout, public;
DELETE FROM classic_layout_other.batch_layer WHERE location > 'Town 17';
\set VERBOSITY terse
SELECT target, batch_rows, status FROM serving_layer_refresh();
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\set VERBOSITY default
SET serving_layer.min_batch_fraction = 0;
SET search_path = classic_layout, public;

--------------------------------------------------------------------------
-- Clean up (this file made no definition).
--------------------------------------------------------------------------
RESET ROLE;
SELECT count(*) AS definitions FROM serving_layer_definitions;
SET client_min_messages = warning;
DROP SCHEMA classic_layout_other CASCADE;
DROP SCHEMA classic_layout CASCADE;
RESET client_min_messages;
DROP ROLE regress_classic_layout;
