--
-- apply_batch_watch: a refresh in mode 'apply' that follows the change does
-- not read the batch layer when the batch table's watch trigger logged no
-- change since the last refresh; it merges the changed keys with the batch
-- parts the last refresh kept, or, for a key new to the speed layer, with
-- its serving row.  Every way the batch table can change without the log
-- knowing (the trigger disabled, dropped, made too late, the table replaced,
-- changed by a refresh of another target) sends it back to reading the
-- batch layer.  Either way the rows are those of a swap refresh of the same
-- layers, which a twin target in mode 'swap' computes beside it.
--
-- Which way a refresh went is read from the tables' scans in the current
-- transaction (pg_stat_xact_user_tables): the whole comparison scans the
-- serving table; following the change reads the batch table or not, and
-- finds the changed keys' serving rows in the index
-- (serving_layer.apply_find_rows = index, set here) or, in the rounds that
-- set it to scan, by a scan of the serving table.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS serving_layer;
RESET client_min_messages;

CREATE SCHEMA bw;
SET search_path = bw, public;
SET serving_layer.apply_find_rows = index;
CREATE TABLE b (k text, k2 numeric, v bigint, n numeric, m int, f float8);
CREATE TABLE s (k text, k2 numeric, v bigint, n numeric, m int, f float8);
INSERT INTO b SELECT 'k' || (g % 2000), g % 2, g, g / 7.0, g % 11, g / 3.0
	FROM generate_series(1, 4000) g;		-- two batch rows per key
INSERT INTO b VALUES (NULL, 1, 5, 1.5, 2, 0.5), ('k1', NULL, 7, NULL, NULL, NULL);
-- keys with two images of one value: the batch writes 1.0, the speed 1.00
INSERT INTO b VALUES ('img', 1.0, 1, 1, 1, 1);
INSERT INTO s SELECT 'k' || (g % 2300), g % 2, 1, 0.5, g % 13, g / 5.0
	FROM generate_series(1900, 2300) g;
INSERT INTO s VALUES ('img', 1.00, 2, 2, 2, 2);
-- a key whose batch rows sum beyond bigint, brought back by its speed row
INSERT INTO b VALUES ('big', 0, 9000000000000000000, 1, 1, 1),
	('big', 0, 9000000000000000000, 1, 1, 1);
INSERT INTO s VALUES ('big', 0, -9000000000000000000, 1, 1, 1);
SELECT serving_layer_define('bw.srv', 'bw.b', 'bw.s', key => '{k,k2}',
	merge => '{"m": "max", "f": "min"}', mode => 'apply');
SELECT serving_layer_define('bw.ref', 'bw.b', 'bw.s', key => '{k,k2}',
	merge => '{"m": "max", "f": "min"}', mode => 'swap');
-- define put the watch trigger on the batch table, enabled ALWAYS
SELECT tgname, tgenabled, tgrelid::regclass FROM pg_trigger
WHERE tgname LIKE 'serving_layer%' ORDER BY tgrelid::regclass::text, tgname;
SELECT target, output_rows FROM serving_layer_refresh() ORDER BY target;
-- the table the first refresh in mode 'apply' made keeps room for updates
-- on its pages (HOT); the one made in mode 'swap' does not
SELECT relname, reloptions FROM pg_class WHERE oid IN ('srv'::regclass, 'ref'::regclass)
ORDER BY relname;
-- serving_layer.apply_fillfactor sets the room a table made in mode 'apply'
-- keeps (50 for a batch layer rewritten in full); a table that exists keeps
-- its own, and the setting takes only what a fillfactor can be
SET serving_layer.apply_fillfactor = 50;
SELECT serving_layer_define('bw.srv50', 'bw.b', 'bw.s', key => '{k,k2}',
	merge => '{"m": "max", "f": "min"}', mode => 'apply');
SELECT output_rows FROM serving_layer_refresh('bw.srv50');
SELECT count(*) FROM (SELECT * FROM srv50 EXCEPT ALL SELECT * FROM srv) d;
SET serving_layer.apply_fillfactor = 70;
SELECT output_rows FROM serving_layer_refresh('bw.srv50');
SELECT relname, reloptions FROM pg_class WHERE oid = 'srv50'::regclass;
SELECT serving_layer_forget('bw.srv50');
DROP TABLE srv50;
\set VERBOSITY sqlstate
SET serving_layer.apply_fillfactor = 9;
SET serving_layer.apply_fillfactor = 101;
\set VERBOSITY default
RESET serving_layer.apply_fillfactor;
SHOW serving_layer.apply_fillfactor;
CREATE UNIQUE INDEX srv_key ON srv (k, k2);
SELECT serving_layer_define('bw.srv', 'bw.b', 'bw.s', key => '{k,k2}',
	merge => '{"m": "max", "f": "min"}', mode => 'apply');

-- One refresh of both targets: how srv's went ('full': the whole
-- comparison; 'read': following the change, the batch layer read;
-- 'unread': following the change without reading it), its changed rows,
-- and the rows in which the two targets differ.
CREATE FUNCTION refresh_both(OUT how text, OUT changed bigint, OUT differ bigint)
LANGUAGE plpgsql AS $$
DECLARE
	srv0 bigint;
	b0 bigint;
BEGIN
	-- (the view counts what this backend has not reported yet, earlier
	-- transactions included: compare with the counts before the refresh)
	srv0 := coalesce((SELECT seq_scan FROM pg_stat_xact_user_tables
					  WHERE relid = 'bw.srv'::regclass), 0);
	b0 := coalesce((SELECT seq_scan FROM pg_stat_xact_user_tables
					WHERE relid = 'bw.b'::regclass), 0);
	SELECT changed_rows INTO changed FROM serving_layer_refresh('bw.srv');
	-- (finding the rows by a scan, following the change scans srv too)
	how := CASE
		WHEN current_setting('serving_layer.apply_find_rows') <> 'scan'
			AND coalesce((SELECT seq_scan FROM pg_stat_xact_user_tables
						  WHERE relid = 'bw.srv'::regclass), 0) > srv0 THEN 'full'
		WHEN coalesce((SELECT seq_scan FROM pg_stat_xact_user_tables
					   WHERE relid = 'bw.b'::regclass), 0) > b0 THEN 'read'
		ELSE 'unread' END;
	PERFORM serving_layer_refresh('bw.ref');
	SELECT count(*) INTO differ FROM (
		(SELECT * FROM bw.srv EXCEPT ALL SELECT * FROM bw.ref)
		UNION ALL
		(SELECT * FROM bw.ref EXCEPT ALL SELECT * FROM bw.srv)) d;
	-- the same images too, not only equal values
	differ := differ + (SELECT count(*) FROM bw.srv JOIN bw.ref
						ON srv.k = ref.k AND srv.k2 = ref.k2
						WHERE srv.k2::text <> ref.k2::text);
END
$$;

-- the first refresh of the new definition compares in full; the next ones
-- do not read the batch layer (nothing logged a change)
SELECT * FROM refresh_both();
SELECT * FROM refresh_both();
SELECT count(*) AS logged FROM serving_layer_batch_dirty;

-- speed rows changed (keys with and without batch rows), deleted (a key of
-- the speed layer only, one of both), inserted (new keys, a NULL key, keys
-- of the batch only, the key of two images): all without the batch layer
UPDATE s SET v = v + 1 WHERE k IN ('k1950', 'k2100');
DELETE FROM s WHERE k IN ('k2200', 'k1960');
INSERT INTO s VALUES ('new', 0, 1, 1, 1, 1), (NULL, 1, 1, 1, 1, 1),
	('k5', 1, 100, 1, 99, -1), ('k6', NULL, 1, NULL, NULL, NULL),
	('k1', NULL, 3, 3, 3, 3);
SELECT * FROM refresh_both();
UPDATE s SET v = v + 1 WHERE k IN ('img', 'big');
SELECT * FROM refresh_both();
SELECT k, k2::text, v FROM srv WHERE k IN ('img', 'big') ORDER BY k;
-- every speed row of a key gone: its serving row keeps the batch values
DELETE FROM s WHERE k IN ('k5', 'k6', 'img');
SELECT * FROM refresh_both();
SELECT k, k2::text, v FROM srv WHERE k IN ('k5', 'img') ORDER BY k;

-- the batch table changed: logged for the target, read, the log consumed
UPDATE b SET v = v + 1 WHERE k = 'k20';
SELECT target_schema, target_name FROM serving_layer_batch_dirty;
SELECT * FROM refresh_both();
SELECT count(*) AS logged FROM serving_layer_batch_dirty;
SELECT * FROM refresh_both();
-- a batch row rewritten with the same values: read, found unchanged
UPDATE b SET v = v WHERE k = 'k21';
UPDATE s SET v = v + 1 WHERE k = 'k1999';
SELECT * FROM refresh_both();
SELECT * FROM refresh_both();
-- TRUNCATE and reload in one transaction: new storage, read in full
BEGIN;
CREATE TEMP TABLE b_copy AS SELECT * FROM b;
TRUNCATE b;
INSERT INTO b SELECT * FROM b_copy;
COMMIT;
SELECT * FROM refresh_both();
SELECT * FROM refresh_both();
-- a change rolled back logs nothing
BEGIN;
DELETE FROM b WHERE k = 'k30';
ROLLBACK;
SELECT count(*) AS logged FROM serving_layer_batch_dirty;
SELECT * FROM refresh_both();

-- the trigger disabled: changes are not logged, so the batch layer is read
-- until it is enabled again, and once more after (its version changed)
ALTER TABLE b DISABLE TRIGGER serving_layer_watch_batch;
UPDATE b SET v = v + 1 WHERE k = 'k40';
SELECT count(*) AS logged FROM serving_layer_batch_dirty;
SELECT * FROM refresh_both();
UPDATE b SET v = v + 1 WHERE k = 'k41';
SELECT * FROM refresh_both();
ALTER TABLE b ENABLE ALWAYS TRIGGER serving_layer_watch_batch;
SELECT * FROM refresh_both();
SELECT * FROM refresh_both();
-- ENABLE (not ALWAYS): not fired under session_replication_role = replica,
-- so not trusted
ALTER TABLE b ENABLE TRIGGER serving_layer_watch_batch;
SELECT * FROM refresh_both();
SELECT * FROM refresh_both();
SELECT tgenabled FROM pg_trigger WHERE tgname = 'serving_layer_watch_batch';

-- the trigger dropped: the refresh reads, puts the trigger back, and only
-- the refresh after the next one trusts it (changes committed while it was
-- missing were not logged)
DROP TRIGGER serving_layer_watch_batch ON b;
UPDATE b SET v = v + 1 WHERE k = 'k42';
SELECT * FROM refresh_both();
SELECT tgenabled FROM pg_trigger WHERE tgname = 'serving_layer_watch_batch';
UPDATE s SET v = v + 1 WHERE k = 'k2001';
SELECT * FROM refresh_both();
SELECT * FROM refresh_both();

-- the batch table replaced the way dbt does it: the new table is read in
-- full and gets the trigger
CREATE TABLE b__dbt_tmp (LIKE b);
INSERT INTO b__dbt_tmp SELECT k, k2, v + 1, n, m, f FROM b;
ALTER TABLE b RENAME TO b__dbt_backup;
ALTER TABLE b__dbt_tmp RENAME TO b;
DROP TABLE b__dbt_backup;
SELECT * FROM refresh_both();
SELECT tgenabled FROM pg_trigger WHERE tgname = 'serving_layer_watch_batch'
	AND tgrelid = 'b'::regclass;
SELECT * FROM refresh_both();
SELECT * FROM refresh_both();

-- a refresh rolled back leaves the state of the one before
BEGIN;
UPDATE s SET v = v + 5 WHERE k = 'k2002';
SELECT * FROM refresh_both();
ROLLBACK;
UPDATE s SET v = v + 7 WHERE k = 'k2003';
SELECT * FROM refresh_both();

-- a second target in mode 'apply' on the same batch table: each consumes
-- only its own log rows
SELECT serving_layer_define('bw.srv2', 'bw.b', 'bw.s', key => '{k,k2}',
	merge => '{"m": "max", "f": "min"}', mode => 'apply');
SELECT count(*) FROM serving_layer_refresh('bw.srv2');
CREATE UNIQUE INDEX ON srv2 (k, k2);
SELECT count(*) FROM serving_layer_refresh('bw.srv2');
UPDATE b SET v = v + 1 WHERE k = 'k50';
SELECT target_name FROM serving_layer_batch_dirty ORDER BY 1;
SELECT * FROM refresh_both();
SELECT target_name FROM serving_layer_batch_dirty ORDER BY 1;
SELECT count(*) FROM serving_layer_refresh('bw.srv2');
SELECT count(*) AS differ FROM (
	(SELECT * FROM srv2 EXCEPT ALL SELECT * FROM ref)
	UNION ALL (SELECT * FROM ref EXCEPT ALL SELECT * FROM srv2)) d;

-- a target in mode 'apply' that always compares in full (no unique index on
-- its key) reads the batch layer every time, and consumes its log rows too
SELECT serving_layer_define('bw.noidx', 'bw.b', 'bw.s', key => '{k,k2}',
	merge => '{"m": "max", "f": "min"}', mode => 'apply');
SELECT count(*) FROM serving_layer_refresh('bw.noidx');
UPDATE b SET v = v + 1 WHERE k = 'k51';
SELECT target_name FROM serving_layer_batch_dirty ORDER BY 1;
SELECT count(*) FROM serving_layer_refresh('bw.noidx');
SELECT target_name FROM serving_layer_batch_dirty ORDER BY 1;
SELECT serving_layer_forget('bw.noidx');
SELECT count(*) FROM serving_layer_refresh('bw.srv2');
SELECT count(*) FROM serving_layer_refresh('bw.srv');
SELECT count(*) AS logged FROM serving_layer_batch_dirty;

-- a serving table that is another target's batch table: the refresh that
-- changes its rows in place logs the change for the other target
CREATE TABLE s3 (LIKE s);
INSERT INTO s3 VALUES ('k7', 0, 1000, 1, 1, 1);
SELECT serving_layer_define('bw.srv3', 'bw.srv', 'bw.s3', key => '{k,k2}',
	merge => '{"m": "max", "f": "min"}', mode => 'apply');
SELECT serving_layer_define('bw.ref3', 'bw.srv', 'bw.s3', key => '{k,k2}',
	merge => '{"m": "max", "f": "min"}', mode => 'swap');
SELECT count(*) FROM serving_layer_refresh('bw.srv3');
CREATE UNIQUE INDEX ON srv3 (k, k2);
SELECT count(*) FROM serving_layer_refresh('bw.srv3');
SELECT count(*) FROM serving_layer_refresh('bw.srv3');
UPDATE s SET v = v + 1 WHERE k = 'k2004';
SELECT * FROM refresh_both();
SELECT target_name FROM serving_layer_batch_dirty ORDER BY 1;
SELECT changed_rows FROM serving_layer_refresh('bw.srv3');
SELECT count(*) FROM serving_layer_refresh('bw.ref3');
SELECT count(*) AS differ FROM (
	(SELECT * FROM srv3 EXCEPT ALL SELECT * FROM ref3)
	UNION ALL (SELECT * FROM ref3 EXCEPT ALL SELECT * FROM srv3)) d;
SELECT serving_layer_forget('bw.srv3');
SELECT serving_layer_forget('bw.ref3');
-- forget dropped the trigger on srv, which no other target reads
SELECT count(*) FROM pg_trigger WHERE tgname = 'serving_layer_watch_batch'
	AND tgrelid = 'srv'::regclass;

-- Rounds of random changes: speed rows updated, deleted and inserted every
-- round, the batch layer every fifth, the serving table every seventh.
CREATE FUNCTION random_rounds(rounds int, OUT unread int, OUT read int,
							  OUT compared int, OUT mismatches bigint)
LANGUAGE plpgsql AS $$
DECLARE
	r record;
BEGIN
	unread := 0; read := 0; compared := 0; mismatches := 0;
	FOR i IN 1 .. rounds LOOP
		UPDATE bw.s SET v = v + 1, m = (random() * 20)::int
			WHERE random() < 0.02;
		-- (not the speed row that keeps 'big' within bigint)
		DELETE FROM bw.s WHERE random() < 0.01 AND k IS DISTINCT FROM 'big';
		INSERT INTO bw.s SELECT 'k' || (random() * 2500)::int,
			(random() * 2)::int, 1, 0.25, (random() * 20)::int, random()
			FROM generate_series(1, 5);
		IF i % 5 = 0 THEN
			UPDATE bw.b SET n = n + 1 WHERE random() < 0.001;
		END IF;
		IF i % 7 = 0 THEN
			DELETE FROM bw.srv WHERE random() < 0.001;
		END IF;
		SELECT * INTO r FROM refresh_both();
		CASE r.how
			WHEN 'unread' THEN unread := unread + 1;
			WHEN 'read' THEN read := read + 1;
			ELSE compared := compared + 1;
		END CASE;
		mismatches := mismatches + r.differ;
	END LOOP;
END
$$;
SELECT setseed(0.5);
SELECT unread > 0 AS unread, compared > 0 AS compared, mismatches
FROM random_rounds(30);
-- the same with the changed keys' serving rows found by a scan of the table
-- (a refresh that compares in full then counts as one that read the batch)
SET serving_layer.apply_find_rows = scan;
SELECT setseed(0.125);
SELECT unread > 0 AS unread, read > 0 AS read, compared, mismatches
FROM random_rounds(30);
SET serving_layer.apply_find_rows = index;

-- a role without TRIGGER privilege on the batch table: no trigger, every
-- refresh reads the batch layer, the rows are still right
CREATE ROLE regress_bw_owner;
CREATE TABLE ob (k text, v bigint);
CREATE TABLE os (k text, v bigint);
INSERT INTO ob VALUES ('a', 1), ('b', 2);
INSERT INTO os VALUES ('b', 10);
GRANT SELECT ON ob, os TO regress_bw_owner;
GRANT USAGE, CREATE ON SCHEMA bw TO regress_bw_owner;
SET ROLE regress_bw_owner;
SELECT serving_layer_define('bw.osrv', 'bw.ob', 'bw.os', mode => 'apply');
SELECT count(*) FROM serving_layer_refresh('bw.osrv');
CREATE UNIQUE INDEX ON osrv (k);
SELECT serving_layer_define('bw.osrv', 'bw.ob', 'bw.os', mode => 'apply');
SELECT count(*) FROM serving_layer_refresh('bw.osrv');
RESET ROLE;
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'ob'::regclass;
UPDATE os SET v = 11;
SET ROLE regress_bw_owner;
SELECT coalesce((SELECT seq_scan FROM pg_stat_xact_user_tables
				 WHERE relid = 'bw.ob'::regclass), 0) AS scans0 \gset
SELECT changed_rows FROM serving_layer_refresh('bw.osrv');
SELECT seq_scan - :scans0 AS batch_scans FROM pg_stat_xact_user_tables
WHERE relid = 'bw.ob'::regclass;
SELECT * FROM osrv ORDER BY k;
SELECT serving_layer_forget('bw.osrv');
RESET ROLE;

-- a partitioned batch table: statements on a partition do not fire the
-- parent's statement triggers, so it gets none and is always read
CREATE TABLE pb (k text, v bigint) PARTITION BY LIST (k);
CREATE TABLE pb1 PARTITION OF pb FOR VALUES IN ('a');
CREATE TABLE pb2 PARTITION OF pb DEFAULT;
INSERT INTO pb VALUES ('a', 1), ('b', 2);
SELECT serving_layer_define('bw.psrv', 'bw.pb', 'bw.os', mode => 'apply');
SELECT count(*) AS triggers FROM pg_trigger
WHERE tgrelid IN ('pb'::regclass, 'pb1'::regclass, 'pb2'::regclass);
SELECT count(*) FROM serving_layer_refresh('bw.psrv');
CREATE UNIQUE INDEX ON psrv (k);
SELECT count(*) FROM serving_layer_refresh('bw.psrv');
UPDATE pb1 SET v = 100;
SELECT changed_rows FROM serving_layer_refresh('bw.psrv');
SELECT * FROM psrv ORDER BY k;
SELECT serving_layer_forget('bw.psrv');

-- a merge the C merge does not do never follows the change: its batch
-- table gets no trigger
CREATE TABLE nb (k text, v bigint);
CREATE TABLE ns (k text, v bigint);
SELECT serving_layer_define('bw.nsrv', 'bw.nb', 'bw.ns', merge => '{"v": "speed"}',
	mode => 'apply');
SELECT count(*) FROM serving_layer_refresh('bw.nsrv');
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'nb'::regclass;
SELECT serving_layer_forget('bw.nsrv');

-- hostile names: the trigger and the log follow the table
CREATE SCHEMA "we""ird";
CREATE TABLE "we""ird"."b;x" (k text, v bigint);
CREATE TABLE "we""ird"."s'x" (k text, v bigint);
INSERT INTO "we""ird"."b;x" VALUES ('a', 1), ('b', 2);
INSERT INTO "we""ird"."s'x" VALUES ('b', 10), ('c', 20);
SELECT serving_layer_define('"we""ird"."Tab le"', '"we""ird"."b;x"',
	'"we""ird"."s''x"', mode => 'apply');
SELECT changed_rows FROM serving_layer_refresh('"we""ird"."Tab le"');
CREATE UNIQUE INDEX ON "we""ird"."Tab le" (k);
SELECT serving_layer_define('"we""ird"."Tab le"', '"we""ird"."b;x"',
	'"we""ird"."s''x"', mode => 'apply');
SELECT changed_rows FROM serving_layer_refresh('"we""ird"."Tab le"');
UPDATE "we""ird"."b;x" SET v = 5 WHERE k = 'a';
SELECT target_schema, target_name FROM serving_layer_batch_dirty;
SELECT changed_rows FROM serving_layer_refresh('"we""ird"."Tab le"');
SELECT count(*) AS logged FROM serving_layer_batch_dirty;
SELECT * FROM "we""ird"."Tab le" ORDER BY k;
SELECT serving_layer_forget('"we""ird"."Tab le"');
SELECT count(*) AS triggers FROM pg_trigger
WHERE tgrelid = '"we""ird"."b;x"'::regclass;
SET client_min_messages = warning;
DROP SCHEMA "we""ird" CASCADE;
RESET client_min_messages;

-- attached to a table no target in mode 'apply' reads, the function logs
-- nothing
CREATE TABLE other (x int);
CREATE TRIGGER w AFTER INSERT ON other FOR EACH STATEMENT
	EXECUTE FUNCTION serving_layer_watch_batch();
INSERT INTO other VALUES (1);
SELECT count(*) AS logged FROM serving_layer_batch_dirty;

-- forget drops the trigger once no target in mode 'apply' reads the table
SELECT serving_layer_forget('bw.srv');
SELECT count(*) AS triggers FROM pg_trigger
WHERE tgname = 'serving_layer_watch_batch' AND tgrelid = 'b'::regclass;
SELECT serving_layer_forget('bw.srv2');
SELECT count(*) AS triggers FROM pg_trigger
WHERE tgname = 'serving_layer_watch_batch' AND tgrelid = 'b'::regclass;

SET client_min_messages = warning;
SELECT serving_layer_forget('bw.ref');
DROP SCHEMA bw CASCADE;
DROP ROLE regress_bw_owner;
RESET client_min_messages;
RESET search_path;
