--
-- identity: an existing serving table keeps its identity across refreshes
-- (OID, owner, grants, comments, indexes, constraints, dependent views), and
-- only a plain table with the batch table's columns can be one
--
-- (quiet: the extension may exist already when other tests ran first)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS serving_layer;
RESET client_min_messages;
\set VERBOSITY default
\set SHOW_CONTEXT never
CREATE SCHEMA sl_id;
SET search_path = sl_id, public;
-- amcheck, in our schema unless some other test installed it already
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS amcheck SCHEMA sl_id;
RESET client_min_messages;

CREATE ROLE sl_test_id_owner;
CREATE ROLE sl_test_id_reader;
CREATE ROLE sl_test_id_col;
GRANT USAGE ON SCHEMA sl_id TO sl_test_id_owner, sl_test_id_reader,
	sl_test_id_col;

CREATE TABLE batch (city text, n bigint);
CREATE TABLE speed (city text, n bigint);
INSERT INTO batch VALUES ('oslo', 1), ('rome', 2);
INSERT INTO speed VALUES ('oslo', 10);
GRANT SELECT ON batch, speed TO sl_test_id_owner;

-- the serving table, made by hand with everything that must survive
CREATE TABLE serving (city text, n bigint);
ALTER TABLE serving OWNER TO sl_test_id_owner;
ALTER TABLE serving ADD CONSTRAINT serving_pkey PRIMARY KEY (city);
CREATE UNIQUE INDEX serving_upper ON serving (upper(city));
CREATE INDEX serving_big ON serving (n) WHERE n > 100;
CREATE INDEX serving_lower ON serving (lower(city));
COMMENT ON TABLE serving IS 'merged counts per city';
COMMENT ON COLUMN serving.n IS 'the count';
COMMENT ON INDEX serving_lower IS 'case-insensitive lookups';
GRANT SELECT ON serving TO sl_test_id_reader;
GRANT SELECT (city) ON serving TO sl_test_id_col;
INSERT INTO serving VALUES ('old', 5), ('older', 500);
CREATE VIEW v1 AS SELECT city, n FROM serving WHERE n > 0;
CREATE VIEW v2 AS SELECT count(*) AS cities, sum(n) AS total FROM v1;
CREATE MATERIALIZED VIEW mv AS SELECT city, n FROM serving;

-- what the serving table is before any refresh: saved, not printed
CREATE TABLE saved AS
	SELECT c.oid, c.relowner, c.relacl, c.relfilenode, c.reltoastrelid,
		   array(SELECT indexrelid FROM pg_index WHERE indrelid = c.oid
				 ORDER BY indexrelid) AS indexes,
		   array(SELECT pg_relation_filenode(indexrelid) FROM pg_index
				 WHERE indrelid = c.oid ORDER BY indexrelid) AS index_files,
		   array(SELECT oid FROM pg_constraint WHERE conrelid = c.oid
				 ORDER BY oid) AS constraints
	FROM pg_class c WHERE c.oid = 'serving'::regclass;
CREATE VIEW identity AS
	SELECT c.oid = s.oid AS same_oid,
		   c.relowner = s.relowner AS same_owner,
		   c.relacl = s.relacl AS same_acl,
		   c.reltoastrelid::regclass::text = 'pg_toast.pg_toast_' || c.oid AS toast_named,
		   c.relfilenode <> s.relfilenode AS new_storage,
		   array(SELECT indexrelid FROM pg_index WHERE indrelid = c.oid
				 ORDER BY indexrelid) = s.indexes AS same_indexes,
		   NOT array(SELECT pg_relation_filenode(indexrelid) FROM pg_index
					 WHERE indrelid = c.oid ORDER BY indexrelid)
			 && s.index_files AS new_index_storage,
		   array(SELECT oid FROM pg_constraint WHERE conrelid = c.oid
				 ORDER BY oid) = s.constraints AS same_constraints
	FROM pg_class c, saved s WHERE c.oid = 'sl_id.serving'::regclass;

SELECT serving_layer_define('sl_id.serving', 'batch', 'speed');
SELECT * FROM serving_layer_refresh('sl_id.serving');

-- same OID, owner, grants, TOAST table, indexes and constraints; new storage
-- for the table and every index
SELECT * FROM identity;
-- the TOAST table the swap handed over is not marked as a rewrite's (its
-- pg_class.relrewrite reset, as after CLUSTER): logical decoding skips the
-- rows of relations so marked
SELECT t.relrewrite = 0 AS toast_not_rewrite
FROM pg_class c JOIN pg_class t ON t.oid = c.reltoastrelid
WHERE c.oid = 'sl_id.serving'::regclass;
SELECT * FROM serving ORDER BY city;

-- the owner is still the owner
SELECT tableowner FROM pg_tables
WHERE schemaname = 'sl_id' AND tablename = 'serving';

-- comments on the table, a column and an index survive
SELECT obj_description('serving'::regclass, 'pg_class') AS table_comment,
	   col_description('serving'::regclass, 2) AS column_comment,
	   obj_description('serving_lower'::regclass, 'pg_class') AS index_comment;

-- grants survive: a role granted SELECT still reads the table
SELECT has_table_privilege('sl_test_id_reader', 'serving', 'SELECT') AS can_select,
	   has_table_privilege('sl_test_id_reader', 'serving', 'INSERT') AS can_insert;
SET ROLE sl_test_id_reader;
SELECT city, n FROM serving ORDER BY city;
RESET ROLE;

-- column-level grants survive: city readable, n not (42501)
SELECT has_column_privilege('sl_test_id_col', 'serving', 'city', 'SELECT') AS city,
	   has_column_privilege('sl_test_id_col', 'serving', 'n', 'SELECT') AS n;
SET ROLE sl_test_id_col;
SELECT city FROM serving ORDER BY city;
SELECT n FROM serving;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- indexes keep their names and definitions, and the constraint its index
-- (NOT NULL constraints, rows of pg_constraint from PostgreSQL 18 on, are
-- left out so that every major shows the same)
SELECT indexname, indexdef FROM pg_indexes
WHERE schemaname = 'sl_id' AND tablename = 'serving' ORDER BY indexname;
SELECT conname, contype, conindid::regclass AS index
FROM pg_constraint WHERE conrelid = 'serving'::regclass AND contype <> 'n'
ORDER BY conname;
SELECT indexrelid::regclass AS index, indisvalid, indisready, indislive
FROM pg_index WHERE indrelid = 'serving'::regclass
ORDER BY indexrelid::regclass::text;

-- the indexes are used and find the new rows
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SET enable_indexonlyscan = off;
EXPLAIN (COSTS OFF) SELECT * FROM serving WHERE city = 'oslo';
SELECT * FROM serving WHERE city = 'oslo';
EXPLAIN (COSTS OFF) SELECT * FROM serving WHERE lower(city) = 'rome';
SELECT * FROM serving WHERE lower(city) = 'rome';
EXPLAIN (COSTS OFF) SELECT * FROM serving WHERE upper(city) = 'OSLO';
SELECT * FROM serving WHERE upper(city) = 'OSLO';
-- the old rows are in no index
SELECT * FROM serving WHERE city = 'old';
SELECT * FROM serving WHERE lower(city) = 'older';
RESET enable_seqscan;
RESET enable_bitmapscan;
RESET enable_indexonlyscan;

-- the indexes and the heap are valid: every heap row is in every index
SELECT indexrelid::regclass AS index, bt_index_check(indexrelid, true)
FROM pg_index WHERE indrelid = 'serving'::regclass
ORDER BY indexrelid::regclass::text;
SELECT count(*) AS corruptions FROM verify_heapam('serving');

-- the primary key still enforces uniqueness (23505)
INSERT INTO serving VALUES ('oslo', 99);
\echo :LAST_ERROR_SQLSTATE
-- and a row written after the refresh is found through the indexes
INSERT INTO serving VALUES ('extra', 150);
SET enable_seqscan = off;
SELECT * FROM serving WHERE n > 100 ORDER BY n;
RESET enable_seqscan;

-- dependent views and a view on the view show the new rows
SELECT * FROM v1 ORDER BY city;
SELECT * FROM v2;
-- a materialized view on the serving table refreshes from the new rows
SELECT * FROM mv ORDER BY city;
REFRESH MATERIALIZED VIEW mv;
SELECT * FROM mv ORDER BY city;

-- a second refresh with changed layers: still the same table, the row
-- written by hand is gone, the partial index holds the big count
INSERT INTO batch VALUES ('lima', 300);
SELECT * FROM serving_layer_refresh('sl_id.serving');
SELECT same_oid, same_owner, same_acl, same_indexes, same_constraints
FROM identity;
SELECT * FROM v1 ORDER BY city;
SELECT * FROM v2;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SET enable_indexonlyscan = off;
EXPLAIN (COSTS OFF) SELECT * FROM serving WHERE n > 100;
SELECT * FROM serving WHERE n > 100;
RESET enable_seqscan;
RESET enable_bitmapscan;
RESET enable_indexonlyscan;
SELECT indexrelid::regclass AS index, bt_index_check(indexrelid, true)
FROM pg_index WHERE indrelid = 'serving'::regclass
ORDER BY indexrelid::regclass::text;
SELECT count(*) AS corruptions FROM verify_heapam('serving');
REFRESH MATERIALIZED VIEW mv;
SELECT * FROM mv ORDER BY city;

--
-- Constraints of the serving table hold for the new rows
--

-- a primary key column cannot receive a NULL key: not_null_violation
-- (23502), the serving table unchanged
INSERT INTO batch VALUES (NULL, 7);
\set VERBOSITY terse
SELECT * FROM serving_layer_refresh('sl_id.serving');
\set VERBOSITY default
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM serving ORDER BY city;
DELETE FROM batch WHERE city IS NULL;
-- a CHECK constraint is enforced: check_violation (23514), table unchanged
ALTER TABLE serving ADD CONSTRAINT serving_n_small CHECK (n < 1000);
INSERT INTO speed VALUES ('rome', 5000);
\set VERBOSITY terse
SELECT * FROM serving_layer_refresh('sl_id.serving');
\set VERBOSITY default
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM serving ORDER BY city;
DELETE FROM speed WHERE city = 'rome';
ALTER TABLE serving DROP CONSTRAINT serving_n_small;
-- a unique index on a measure rejects two keys with the same value:
-- unique_violation (23505), table unchanged
INSERT INTO batch VALUES ('bergen', 2);
CREATE UNIQUE INDEX serving_n_unique ON serving (n);
\set VERBOSITY terse
SELECT * FROM serving_layer_refresh('sl_id.serving');
\set VERBOSITY default
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM serving ORDER BY city;
DROP INDEX serving_n_unique;
DELETE FROM batch WHERE city = 'bergen';
-- a refresh cannot keep foreign keys valid, in either direction:
-- feature_not_supported (0A000), as TRUNCATE refuses a referenced table
CREATE TABLE fk_child (city text REFERENCES serving);
SELECT * FROM serving_layer_refresh('sl_id.serving');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM serving ORDER BY city;
DROP TABLE fk_child;
CREATE TABLE fk_parent (city text PRIMARY KEY);
CREATE TABLE fk_serving (city text REFERENCES fk_parent, n bigint);
SELECT serving_layer_define('sl_id.fk_serving', 'batch', 'speed');
\echo :LAST_ERROR_SQLSTATE

--
-- Persistence and storage options
--

-- an unlogged serving table with a fillfactor stays unlogged, keeps its
-- options, and refreshes
CREATE UNLOGGED TABLE ul_serving (city text, n bigint) WITH (fillfactor = 50);
CREATE INDEX ul_serving_n ON ul_serving (n);
SELECT serving_layer_define('sl_id.ul_serving', 'batch', 'speed');
SELECT * FROM serving_layer_refresh('sl_id.ul_serving');
SELECT * FROM serving_layer_refresh('sl_id.ul_serving');
SELECT relpersistence, reloptions FROM pg_class
WHERE oid = 'ul_serving'::regclass;
SELECT relpersistence FROM pg_class WHERE oid = 'ul_serving_n'::regclass;
SELECT * FROM ul_serving ORDER BY city;
SELECT bt_index_check('ul_serving_n', true);

--
-- TOAST: large values, refreshed twice
--

-- keys and a measure of 100,000 characters that do not compress away
CREATE TABLE big_batch (k text, doc text);
CREATE TABLE big_speed (k text, doc text);
INSERT INTO big_batch
	SELECT string_agg(md5(g || ':' || i), '' ORDER BY i),
		   string_agg(md5(i || ':' || g), '' ORDER BY i)
	FROM generate_series(1, 3) g, generate_series(1, 3125) i GROUP BY g;
INSERT INTO big_speed
	SELECT string_agg(md5(g || ':' || i), '' ORDER BY i),
		   string_agg(md5('speed' || i), '' ORDER BY i)
	FROM generate_series(3, 4) g, generate_series(1, 3125) i GROUP BY g;
SELECT serving_layer_define('sl_id.big', 'big_batch', 'big_speed',
							key => '{k}', merge => '{"doc": "speed"}');
SELECT * FROM serving_layer_refresh('sl_id.big');
CREATE VIEW big_contents AS
	SELECT length(b.k) AS k_length, left(md5(b.k), 12) AS k_md5,
		   length(b.doc) AS doc_length,
		   coalesce(s.doc = b.doc, false) AS doc_from_speed,
		   coalesce(bb.doc = b.doc, false) AS doc_from_batch
	FROM sl_id.big b
	LEFT JOIN sl_id.big_speed s ON s.k = b.k
	LEFT JOIN sl_id.big_batch bb ON bb.k = b.k
	ORDER BY k_md5;
SELECT * FROM big_contents;
-- the values live in the TOAST table
SELECT reltoastrelid::regclass AS big_toast FROM pg_class
WHERE oid = 'big'::regclass \gset
SELECT count(*) AS big_chunks FROM :big_toast \gset
SELECT :big_chunks > 0 AS toasted;
-- a second refresh reads back the same values, and the TOAST table holds
-- the chunks of the new rows only
SELECT * FROM serving_layer_refresh('sl_id.big');
SELECT * FROM big_contents;
SELECT count(*) = :big_chunks AS same_chunks FROM :big_toast;
SELECT count(*) AS corruptions FROM verify_heapam('big', check_toast => true);
-- and a third with one key more
INSERT INTO big_batch SELECT repeat('y', 100000), repeat('z', 100000);
SELECT * FROM serving_layer_refresh('sl_id.big');
SELECT * FROM big_contents;
SELECT count(*) AS corruptions FROM verify_heapam('big', check_toast => true);

--
-- Dropped columns
--

-- a column dropped from the batch, speed and serving tables before the
-- definition
CREATE TABLE dc_batch (city text, extra int, n bigint);
CREATE TABLE dc_speed (city text, extra int, n bigint);
CREATE TABLE dc_serving (city text, extra int, n bigint);
INSERT INTO dc_batch VALUES ('oslo', 1, 1), ('rome', 2, 2);
INSERT INTO dc_speed VALUES ('oslo', 3, 10);
ALTER TABLE dc_batch DROP COLUMN extra;
ALTER TABLE dc_speed DROP COLUMN extra;
ALTER TABLE dc_serving DROP COLUMN extra;
SELECT serving_layer_define('sl_id.dc_serving', 'dc_batch', 'dc_speed');
SELECT * FROM serving_layer_refresh('sl_id.dc_serving');
SELECT * FROM serving_layer_refresh('sl_id.dc_serving');
SELECT * FROM dc_serving ORDER BY city;
SELECT count(*) AS corruptions FROM verify_heapam('dc_serving');
-- a serving table with a dropped column the batch table never had, at
-- another position
CREATE TABLE dc_serving2 (pad int, city text, n bigint);
ALTER TABLE dc_serving2 DROP COLUMN pad;
SELECT serving_layer_define('sl_id.dc_serving2', 'batch', 'speed');
SELECT * FROM serving_layer_refresh('sl_id.dc_serving2');
SELECT * FROM dc_serving2 ORDER BY city;
-- a column added to a serving table after its definition: the refresh fails
-- with datatype_mismatch (42804) and the table is unchanged; once dropped,
-- the refresh works again
ALTER TABLE dc_serving2 ADD COLUMN note text;
SELECT * FROM serving_layer_refresh('sl_id.dc_serving2');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM dc_serving2 ORDER BY city;
ALTER TABLE dc_serving2 DROP COLUMN note;
INSERT INTO speed VALUES ('rome', 1);
SELECT * FROM serving_layer_refresh('sl_id.dc_serving2');
SELECT * FROM dc_serving2 ORDER BY city;
DELETE FROM speed WHERE city = 'rome';

--
-- What cannot be a serving table
--

-- columns that differ from the batch table: datatype_mismatch (42804)
CREATE TABLE bad_type (city text, n integer);
SELECT serving_layer_define('sl_id.bad_type', 'batch', 'speed');
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE bad_name (town text, n bigint);
SELECT serving_layer_define('sl_id.bad_name', 'batch', 'speed');
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE bad_order (n bigint, city text);
SELECT serving_layer_define('sl_id.bad_order', 'batch', 'speed');
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE bad_fewer (city text);
SELECT serving_layer_define('sl_id.bad_fewer', 'batch', 'speed');
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE bad_more (city text, n bigint, extra int);
SELECT serving_layer_define('sl_id.bad_more', 'batch', 'speed');
\echo :LAST_ERROR_SQLSTATE
-- a view, a partitioned table, a materialized view: wrong_object_type (42809)
CREATE VIEW v_target AS SELECT city, n FROM batch;
SELECT serving_layer_define('sl_id.v_target', 'batch', 'speed');
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE part_target (city text, n bigint) PARTITION BY LIST (city);
SELECT serving_layer_define('sl_id.part_target', 'batch', 'speed');
\echo :LAST_ERROR_SQLSTATE
CREATE MATERIALIZED VIEW mv_target AS SELECT city, n FROM batch;
SELECT serving_layer_define('sl_id.mv_target', 'batch', 'speed');
\echo :LAST_ERROR_SQLSTATE
-- a view created in place of a defined target after its definition: the
-- refresh fails with 42809 and the view is untouched
SELECT serving_layer_define('sl_id.later', 'batch', 'speed');
CREATE VIEW later AS SELECT city, n FROM speed;
SELECT * FROM serving_layer_refresh('sl_id.later');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM later;
-- the batch or speed table itself: invalid_parameter_value (22023)
SELECT serving_layer_define('sl_id.batch', 'batch', 'speed');
\echo :LAST_ERROR_SQLSTATE
SELECT serving_layer_define('sl_id.speed', 'batch', 'speed');
\echo :LAST_ERROR_SQLSTATE
-- none of these was stored
SELECT target FROM serving_layer_definitions
WHERE target LIKE 'sl_id.%' ORDER BY target;

-- clean up
SELECT serving_layer_forget(target) FROM serving_layer_definitions
WHERE target LIKE 'sl_id.%' ORDER BY target;
SET client_min_messages = warning;
DROP SCHEMA sl_id CASCADE;
RESET client_min_messages;
DROP ROLE sl_test_id_owner, sl_test_id_reader, sl_test_id_col;
