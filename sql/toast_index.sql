--
-- toast_index: a serving table whose indexes need values stored out of line
-- (TOAST) refreshes, and its indexes are right afterwards.
-- (/tmp/team/bugs/concurrency.md #3: the indexes are built on the new heap
-- before the swap, while its TOAST pointers still name the old TOAST table.)
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS serving_layer;
CREATE EXTENSION IF NOT EXISTS amcheck;
RESET client_min_messages;
\set VERBOSITY default
\set SHOW_CONTEXT never
CREATE SCHEMA sl_toast;
SET search_path = sl_toast, public;

-- notes of 9,600 incompressible characters are stored out of line
CREATE TABLE batch (k int, note text, v bigint);
CREATE TABLE speed (k int, note text, v bigint);
INSERT INTO batch
SELECT g, (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 300) i), 1
FROM generate_series(1, 3) g;
INSERT INTO batch VALUES (4, 'short', 1);
SELECT serving_layer_define('sl_toast.serving', 'sl_toast.batch', 'sl_toast.speed',
							key => '{k,note}');
SELECT status, output_rows FROM serving_layer_refresh('sl_toast.serving');

-- an expression index over the TOASTed column, and a partial index whose
-- predicate reads it
CREATE INDEX serving_md5 ON serving (md5(note));
CREATE INDEX serving_long ON serving (k) WHERE length(note) > 100;

-- the next refresh builds both indexes on the new contents
UPDATE batch SET v = 2;
INSERT INTO speed SELECT k, note, 10 FROM batch WHERE k = 1;
SELECT status, output_rows FROM serving_layer_refresh('sl_toast.serving');
SELECT k, length(note), md5(note) = md5((SELECT string_agg(md5(k::text || i::text), '') FROM generate_series(1, 300) i)) AS same_note, v
FROM serving ORDER BY k;

-- the indexes find every row (read through them only)
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT k FROM serving WHERE md5(note) = md5('short');
SELECT count(*) FROM serving WHERE md5(note) IS NOT NULL;
SELECT count(*) FROM serving WHERE length(note) > 100 AND k > 0;
RESET enable_seqscan;
RESET enable_bitmapscan;
SELECT bt_index_check('serving_md5', true), bt_index_check('serving_long', true);
SELECT count(*) AS corrupt FROM verify_heapam('serving', check_toast => true);

--
-- Clean up
--
SELECT serving_layer_forget('sl_toast.serving');
SET client_min_messages = warning;
DROP SCHEMA sl_toast CASCADE;
DROP EXTENSION amcheck;
RESET client_min_messages;
