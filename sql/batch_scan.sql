--
-- batch_scan: the C merge reads a plain batch table straight from its heap
-- and copies the rows it leaves unchanged as stored tuples.  It must see
-- exactly what "SELECT ... FROM batch" sees: rows of inheritance children,
-- only the rows row-level security lets the serving table's owner see,
-- columns added after a row was stored (with their defaults), and values
-- stored out of line must end up in the serving table's own TOAST table.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS serving_layer;
RESET client_min_messages;
\set VERBOSITY default
\set SHOW_CONTEXT never
CREATE SCHEMA sl_scan;
SET search_path = sl_scan, public;

-- inheritance: the child's rows are batch rows
CREATE TABLE b_parent (k text, n bigint);
CREATE TABLE b_child () INHERITS (b_parent);
CREATE TABLE s_inh (k text, n bigint);
INSERT INTO b_parent VALUES ('a', 1), ('b', 2);
INSERT INTO b_child VALUES ('b', 20), ('c', 30);
INSERT INTO s_inh VALUES ('c', 300), ('d', 4);
SELECT serving_layer_define('t_inh', 'b_parent', 's_inh');
SELECT output_rows, status FROM serving_layer_refresh('t_inh');
SELECT * FROM t_inh ORDER BY k;

-- columns added after rows were stored: stored tuples lack them, and the
-- new heap could not fill them in, so those rows are formed again
CREATE TABLE b_add (k text, n bigint);
CREATE TABLE s_add (k text, n bigint, m integer, note text);
INSERT INTO b_add VALUES ('a', 1), ('b', 2), ('c', 3);
ALTER TABLE b_add ADD COLUMN m integer NOT NULL DEFAULT 7;
ALTER TABLE b_add ADD COLUMN note text DEFAULT 'added';
INSERT INTO b_add VALUES ('d', 4, 8, 'new');
INSERT INTO s_add VALUES ('c', 30, 1, 'x');
SELECT serving_layer_define('t_add', 'b_add', 's_add', key => '{k,note}');
SELECT output_rows, status FROM serving_layer_refresh('t_add');
SELECT * FROM t_add ORDER BY k, note;

-- values stored out of line are moved into the serving table's TOAST
-- table: emptying the batch table does not lose them
CREATE TABLE b_toast (k text, n bigint, body text);
CREATE TABLE s_toast (LIKE b_toast);
ALTER TABLE b_toast ALTER COLUMN body SET STORAGE EXTERNAL;
INSERT INTO b_toast SELECT 'k' || i, i, repeat(md5(i::text), 300)
FROM generate_series(1, 20) i;
INSERT INTO s_toast VALUES ('k1', 100, repeat(md5('1'), 300));
SELECT serving_layer_define('t_toast', 'b_toast', 's_toast', key => '{k,body}');
SELECT output_rows, status FROM serving_layer_refresh('t_toast');
TRUNCATE b_toast;
SELECT count(*), sum(n), sum(length(body)), bool_and(body = repeat(md5(substr(k, 2)), 300))
FROM t_toast;

-- row-level security: a role that owns the serving table and is subject to
-- the batch table's policy gets only the rows the policy shows it, in C
-- and by GROUP BY alike
CREATE ROLE sl_scan_owner;
GRANT USAGE, CREATE ON SCHEMA sl_scan TO sl_scan_owner;
CREATE TABLE b_rls (k text, n bigint);
CREATE TABLE s_rls (k text, n bigint);
INSERT INTO b_rls VALUES ('public', 1), ('secret', 2), ('both', 3);
INSERT INTO s_rls VALUES ('both', 30), ('secret', 20);
ALTER TABLE b_rls ENABLE ROW LEVEL SECURITY;
CREATE POLICY no_secrets ON b_rls TO sl_scan_owner USING (k <> 'secret');
GRANT SELECT ON b_rls, s_rls TO sl_scan_owner;
SET ROLE sl_scan_owner;
SELECT count(*) AS rows_the_owner_sees FROM b_rls;
SELECT serving_layer_define('t_rls', 'b_rls', 's_rls');
SELECT serving_layer_define('t_rls_slow', 'b_rls', 's_rls');
SELECT output_rows, status FROM serving_layer_refresh('t_rls');
SET serving_layer.fast_merge = off;
SELECT output_rows, status FROM serving_layer_refresh('t_rls_slow');
RESET serving_layer.fast_merge;
SELECT * FROM t_rls ORDER BY k;
SELECT (SELECT count(*) FROM (TABLE t_rls EXCEPT TABLE t_rls_slow) x) AS differ;
RESET ROLE;

SET client_min_messages = warning;
SELECT serving_layer_forget(t)
FROM unnest(ARRAY['t_inh', 't_add', 't_toast', 't_rls', 't_rls_slow']) t;
RESET search_path;
DROP SCHEMA sl_scan CASCADE;
DROP ROLE sl_scan_owner;
