--
-- retire: what a refresh does with the serving table's old storage
--
-- After the swap the old storage is dropped at once (below 64MB; larger
-- ones are retired and dropped after the commit, see test/t/045_retire.pl),
-- and retired heaps that earlier refreshes left behind are dropped too.
-- Only relations the extension retired itself are dropped: a user's table
-- that merely has a retired heap's name stays.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS serving_layer;
RESET client_min_messages;
CREATE SCHEMA sl_retire;
SET search_path = sl_retire, public;
CREATE TABLE batch (city text, n bigint);
CREATE TABLE speed (LIKE batch);
INSERT INTO batch VALUES ('oslo', 1), ('lima', 2);
SELECT serving_layer_define('sl_retire.serving', 'batch', 'speed');
SELECT status FROM serving_layer_refresh('sl_retire.serving');

-- a user's table named as a retired heap of this serving table would be
CREATE VIEW look_alike AS
	SELECT 'pg_temp_' || 'sl_retire.serving'::regclass::oid || '_retired_1' AS name;
DO $$
BEGIN
	EXECUTE format('CREATE TABLE sl_retire.%I (keep int)', (SELECT name FROM look_alike));
	EXECUTE format('INSERT INTO sl_retire.%I VALUES (1)', (SELECT name FROM look_alike));
END $$;
SELECT status FROM serving_layer_refresh('sl_retire.serving');
SELECT status FROM serving_layer_refresh('sl_retire.serving');
-- it is still there, with its row
SELECT (xpath('/row/n/text()',
			  query_to_xml(format('SELECT count(*) AS n FROM sl_retire.%I', name),
						   false, true, '')))[1]::text AS look_alike_rows
FROM look_alike;
-- and nothing else is left beside the serving table
SELECT count(*) AS other_relations FROM pg_class
WHERE relnamespace = 'sl_retire'::regnamespace
  AND relname NOT IN ('batch', 'speed', 'serving', 'look_alike')
  AND relname <> (SELECT name FROM look_alike);
SELECT * FROM serving ORDER BY city;

SELECT serving_layer_forget('sl_retire.serving');
SET client_min_messages = warning;
DROP SCHEMA sl_retire CASCADE;
RESET client_min_messages;
