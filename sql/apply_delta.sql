--
-- apply_delta: mode 'apply' following the change.  A refresh whose batch
-- layer and serving table are as the last refresh left them recomputes only
-- the keys whose speed rows changed, and finds their serving rows through
-- the unique index on the key: it does not scan the serving table.  Any
-- other change (the batch layer, the serving table by hand, its trigger,
-- its index, the definition) sends it back to the whole comparison.  Either
-- way the rows are those of a swap refresh of the same layers, which a twin
-- target in mode 'swap' computes beside it.
--
-- Which way a refresh went is read from the serving table's scans in the
-- current transaction (pg_stat_xact_user_tables): the whole comparison
-- scans it once, following the change does not when it looks the changed
-- keys up in the index, which serving_layer.apply_find_rows = index makes
-- it do here; the end of the file follows the change finding the rows by a
-- scan of the table instead (as it does by itself when many keys changed).
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS serving_layer;
RESET client_min_messages;

CREATE SCHEMA dl;
SET search_path = dl, public;
SET serving_layer.apply_find_rows = index;
CREATE TABLE b (k text, k2 int, v bigint, n numeric, m int, f float8);
CREATE TABLE s (k text, k2 int, v bigint, n numeric, m int, f float8);
SELECT setseed(0.25);
INSERT INTO b SELECT 'k' || (g % 3000), g % 3, g, g / 7.0, g % 11, g / 3.0
	FROM generate_series(1, 6000) g;		-- two batch rows per key
INSERT INTO b VALUES (NULL, 1, 5, 1.5, 2, 0.5), ('k1', NULL, 7, NULL, NULL, NULL);
INSERT INTO s SELECT 'k' || (g % 3300), g % 3, 1, 0.5, g % 13, g / 5.0
	FROM generate_series(2800, 3300) g;
SELECT serving_layer_define('dl.srv', 'dl.b', 'dl.s', key => '{k,k2}',
	merge => '{"m": "max", "f": "min"}', mode => 'apply');
SELECT serving_layer_define('dl.ref', 'dl.b', 'dl.s', key => '{k,k2}',
	merge => '{"m": "max", "f": "min"}', mode => 'swap');
SELECT target, output_rows FROM serving_layer_refresh() ORDER BY target;
CREATE UNIQUE INDEX srv_key ON srv (k, k2);
-- define again: the table gets its watch trigger, now that it exists
SELECT serving_layer_define('dl.srv', 'dl.b', 'dl.s', key => '{k,k2}',
	merge => '{"m": "max", "f": "min"}', mode => 'apply');
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'srv'::regclass;

-- One refresh of both targets; how srv's went, and whether the two agree.
CREATE FUNCTION refresh_both(OUT how text, OUT changed bigint, OUT differ bigint)
LANGUAGE plpgsql AS $$
DECLARE
	scans0 bigint;
BEGIN
	-- (the view counts what this backend has not reported yet, earlier
	-- transactions included: compare with the count before the refresh)
	scans0 := coalesce((SELECT seq_scan FROM pg_stat_xact_user_tables
						WHERE relid = 'dl.srv'::regclass), 0);
	SELECT changed_rows INTO changed FROM serving_layer_refresh('dl.srv');
	PERFORM serving_layer_refresh('dl.ref');
	how := CASE WHEN coalesce((SELECT seq_scan FROM pg_stat_xact_user_tables
							   WHERE relid = 'dl.srv'::regclass), 0) > scans0
		THEN 'full' ELSE 'delta' END;
	SELECT count(*) INTO differ FROM (
		(SELECT * FROM dl.srv EXCEPT ALL SELECT * FROM dl.ref)
		UNION ALL
		(SELECT * FROM dl.ref EXCEPT ALL SELECT * FROM dl.srv)) d;
END
$$;

-- the first refresh of the new definition compares in full, the next
-- follows the change (nothing changed)
SELECT * FROM refresh_both();
SELECT * FROM refresh_both();

-- speed rows changed, deleted (a key of the speed layer only, and one of
-- both), inserted (new keys, a NULL key, a key of the batch only)
UPDATE s SET v = v + 1 WHERE k IN ('k2900', 'k3100');
DELETE FROM s WHERE k IN ('k3200', 'k2950');
INSERT INTO s VALUES ('new', 0, 1, 1, 1, 1), (NULL, 1, 1, 1, 1, 1),
	('k5', 2, 100, 1, 99, -1), ('k6', NULL, 1, NULL, NULL, NULL);
SELECT * FROM refresh_both();
-- every speed row of a key gone: its serving row keeps the batch values
DELETE FROM s WHERE k = 'k5';
SELECT * FROM refresh_both();

-- the serving table changed by hand: the whole comparison puts it right,
-- then the next refresh follows the change again
UPDATE srv SET v = -1 WHERE k = 'k10';
DELETE FROM srv WHERE k = 'k11';
INSERT INTO srv VALUES ('junk', 0, 0, 0, 0, 0);
SELECT count(*) AS logged FROM serving_layer_apply_dirty
WHERE serving = 'srv'::regclass;
SELECT * FROM refresh_both();
SELECT count(*) AS logged FROM serving_layer_apply_dirty
WHERE serving = 'srv'::regclass;
SELECT * FROM refresh_both();
-- ... also when the change was made in the refresh's own transaction
BEGIN;
DELETE FROM srv WHERE k = 'k12';
SELECT * FROM refresh_both();
COMMIT;
-- ... and by TRUNCATE
TRUNCATE srv;
SELECT * FROM refresh_both();
SELECT * FROM refresh_both();

-- the batch layer changed in place, or reloaded
UPDATE b SET v = v + 1 WHERE k = 'k20';
SELECT * FROM refresh_both();
BEGIN;
CREATE TEMP TABLE b_copy AS SELECT * FROM b;
TRUNCATE b;
INSERT INTO b SELECT * FROM b_copy;
COMMIT;
SELECT * FROM refresh_both();
-- a batch row rewritten with the same values is no change
UPDATE b SET v = v WHERE k = 'k21';
UPDATE s SET v = v + 1 WHERE k = 'k2999';
SELECT * FROM refresh_both();

-- a refresh rolled back leaves the state of the one before
BEGIN;
UPDATE s SET v = v + 5 WHERE k = 'k3000';
SELECT * FROM refresh_both();
ROLLBACK;
UPDATE s SET v = v + 7 WHERE k = 'k3001';
SELECT * FROM refresh_both();

-- the watch trigger disabled, enabled in another mode, or dropped: the
-- whole comparison, until define puts it back
ALTER TABLE srv DISABLE TRIGGER serving_layer_watch;
DELETE FROM srv WHERE k = 'k13';
SELECT * FROM refresh_both();
ALTER TABLE srv ENABLE TRIGGER serving_layer_watch;
SELECT * FROM refresh_both();
SELECT * FROM refresh_both();
SELECT serving_layer_define('dl.srv', 'dl.b', 'dl.s', key => '{k,k2}',
	merge => '{"m": "max", "f": "min"}', mode => 'apply');
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'srv'::regclass;
SELECT * FROM refresh_both();
DELETE FROM srv WHERE k = 'k14';
SELECT * FROM refresh_both();
SELECT * FROM refresh_both();

-- without a unique index on the key, or on a small fast_merge_memory: the
-- whole comparison
DROP INDEX srv_key;
CREATE INDEX srv_nonunique ON srv (k, k2);
UPDATE s SET v = v + 1 WHERE k = 'k3002';
SELECT * FROM refresh_both();
DROP INDEX srv_nonunique;
CREATE UNIQUE INDEX srv_key ON srv (k2, k);	-- the key in another order
SELECT * FROM refresh_both();
SELECT * FROM refresh_both();
SET serving_layer.fast_merge_memory = '8kB';
UPDATE s SET v = v + 1 WHERE k = 'k3003';
SELECT * FROM refresh_both();
RESET serving_layer.fast_merge_memory;
SELECT * FROM refresh_both();
SELECT * FROM refresh_both();

-- Rounds of random changes: speed rows updated, deleted and inserted every
-- round, the batch layer every fifth, the serving table every seventh.
CREATE FUNCTION random_rounds(rounds int, OUT followed int, OUT compared int,
							  OUT mismatches bigint, OUT changed bigint)
LANGUAGE plpgsql AS $$
DECLARE
	r record;
BEGIN
	followed := 0; compared := 0; mismatches := 0; changed := 0;
	FOR i IN 1 .. rounds LOOP
		UPDATE dl.s SET v = v + 1, m = (random() * 20)::int
			WHERE random() < 0.02;
		DELETE FROM dl.s WHERE random() < 0.01;
		INSERT INTO dl.s SELECT 'k' || (random() * 3500)::int,
			(random() * 3)::int, 1, 0.25, (random() * 20)::int, random()
			FROM generate_series(1, 5);
		IF i % 5 = 0 THEN
			UPDATE dl.b SET n = n + 1 WHERE random() < 0.001;
		END IF;
		IF i % 7 = 0 THEN
			DELETE FROM dl.srv WHERE random() < 0.001;
		END IF;
		SELECT * INTO r FROM refresh_both();
		IF r.how = 'delta' THEN
			followed := followed + 1;
		ELSE
			compared := compared + 1;
		END IF;
		mismatches := mismatches + r.differ;
		changed := changed + r.changed;
	END LOOP;
END
$$;
SELECT followed, compared, mismatches, changed > 0 AS changed FROM random_rounds(40);

-- The changed keys' serving rows found by one scan of the table rather than
-- a lookup each.  One refresh of srv: the scans of srv and of its index, the
-- scans of the batch table (following the change reads it only when its
-- watch trigger logged a change), the rows changed, and then the rows in
-- which srv and ref differ.
CREATE FUNCTION found_by(OUT srv_scans bigint, OUT srv_lookups boolean,
						 OUT batch_scans bigint, OUT changed bigint,
						 OUT differ bigint)
LANGUAGE plpgsql AS $$
DECLARE
	s0 bigint;
	i0 bigint;
	b0 bigint;
BEGIN
	s0 := coalesce((SELECT seq_scan FROM pg_stat_xact_user_tables
					WHERE relid = 'dl.srv'::regclass), 0);
	i0 := coalesce((SELECT idx_scan FROM pg_stat_xact_user_tables
					WHERE relid = 'dl.srv'::regclass), 0);
	b0 := coalesce((SELECT seq_scan FROM pg_stat_xact_user_tables
					WHERE relid = 'dl.b'::regclass), 0);
	SELECT changed_rows INTO changed FROM serving_layer_refresh('dl.srv');
	srv_scans := coalesce((SELECT seq_scan FROM pg_stat_xact_user_tables
						   WHERE relid = 'dl.srv'::regclass), 0) - s0;
	srv_lookups := coalesce((SELECT idx_scan FROM pg_stat_xact_user_tables
							 WHERE relid = 'dl.srv'::regclass), 0) > i0;
	batch_scans := coalesce((SELECT seq_scan FROM pg_stat_xact_user_tables
							 WHERE relid = 'dl.b'::regclass), 0) - b0;
	PERFORM serving_layer_refresh('dl.ref');
	SELECT count(*) INTO differ FROM (
		(SELECT * FROM dl.srv EXCEPT ALL SELECT * FROM dl.ref)
		UNION ALL
		(SELECT * FROM dl.ref EXCEPT ALL SELECT * FROM dl.srv)) d;
END
$$;
SELECT * FROM found_by();			-- nothing changed: the state is current
-- forced: every speed key's row changes, found by the scan
SET serving_layer.apply_find_rows = scan;
UPDATE s SET v = v + 1;
SELECT * FROM found_by();
-- forced the other way, no scan: the rows are where the scan's refresh
-- left them, and the state says where (apply_tids.c): fetched there, not
-- looked up in the index
SET serving_layer.apply_find_rows = index;
UPDATE s SET v = v + 1;
SELECT * FROM found_by();
-- auto: one key changed of 3,300 is looked up; every speed key (a sixth of
-- the table) is fetched where the last refresh left its row, neither
-- scanned nor looked up; 200 keys new to both layers, whose rows no refresh
-- has placed, cost less scanned than looked up (then they go again, their
-- rows deleted where they were inserted)
RESET serving_layer.apply_find_rows;
UPDATE s SET v = v + 1 WHERE k = 'k3004';
SELECT * FROM found_by();
UPDATE s SET v = v + 1;
SELECT * FROM found_by();
INSERT INTO s SELECT 'auto' || g, 0, g, 1, 1, 1 FROM generate_series(1, 200) g;
SELECT * FROM found_by();
DELETE FROM s WHERE k LIKE 'auto%';
SELECT * FROM found_by();
SELECT count(*) AS auto_rows FROM srv WHERE k LIKE 'auto%';
-- keys new to both layers (inserted), batch keys with NULL key parts
-- (updated: the scan finds their rows), then the new keys gone again
-- (deleted)
SET serving_layer.apply_find_rows = scan;
INSERT INTO s VALUES ('znew', 0, 3, 1, 1, 1), ('znew', 1, 1, 1, 1, 1),
	(NULL, 1, 1, 1, 1, 1), ('k1', NULL, 2, 2, 2, 2);
SELECT * FROM found_by();
SELECT * FROM srv WHERE k = 'znew' OR k IS NULL OR k2 IS NULL ORDER BY k, k2;
DELETE FROM s WHERE k = 'znew';
SELECT * FROM found_by();
SELECT count(*) AS znew_rows FROM srv WHERE k = 'znew';
-- random rounds with the rows found by the scan (every refresh scans srv,
-- so how a refresh went is not told here)
SELECT setseed(0.75);
SELECT mismatches, changed > 0 AS changed FROM random_rounds(20);
SET serving_layer.apply_find_rows = index;

-- hostile names: the trigger, the state and the log follow the table
CREATE SCHEMA "we""ird";
CREATE TABLE "we""ird"."Tab le" (k text, v bigint);
CREATE UNIQUE INDEX ON "we""ird"."Tab le" (k);
CREATE TABLE "we""ird"."b;x" (k text, v bigint);
CREATE TABLE "we""ird"."s'x" (k text, v bigint);
INSERT INTO "we""ird"."b;x" VALUES ('a', 1), ('b', 2);
INSERT INTO "we""ird"."s'x" VALUES ('b', 10), ('c', 20);
SELECT serving_layer_define('"we""ird"."Tab le"', '"we""ird"."b;x"',
	'"we""ird"."s''x"', mode => 'apply');
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = '"we""ird"."Tab le"'::regclass;
SELECT changed_rows FROM serving_layer_refresh('"we""ird"."Tab le"');
UPDATE "we""ird"."s'x" SET v = 11 WHERE k = 'b';
-- (both counts in one transaction: the per-transaction view also shows
-- counts of earlier transactions that are not flushed yet, at most once a
-- second, which a flush between two transactions would take away)
BEGIN;
SELECT coalesce((SELECT seq_scan FROM pg_stat_xact_user_tables
				 WHERE relid = '"we""ird"."Tab le"'::regclass), 0) AS scans0 \gset
SELECT changed_rows FROM serving_layer_refresh('"we""ird"."Tab le"');
SELECT seq_scan - :scans0 AS serving_scans FROM pg_stat_xact_user_tables
WHERE relid = '"we""ird"."Tab le"'::regclass;
COMMIT;
DELETE FROM "we""ird"."Tab le" WHERE k = 'a';
SELECT count(*) AS logged FROM serving_layer_apply_dirty
WHERE serving = '"we""ird"."Tab le"'::regclass;
SELECT changed_rows FROM serving_layer_refresh('"we""ird"."Tab le"');
SELECT * FROM "we""ird"."Tab le" ORDER BY k;
SELECT serving_layer_forget('"we""ird"."Tab le"');
SET client_min_messages = warning;
DROP SCHEMA "we""ird" CASCADE;
RESET client_min_messages;

-- One refresh of a target in mode 'apply' and of its twin in mode 'swap':
-- the serving table's scans and index lookups during the first, the rows
-- it changed, and how many rows the two tables differ by.
CREATE FUNCTION refresh_twins(srv text, ref text, OUT serving_scans bigint,
							  OUT lookups bigint, OUT changed bigint,
							  OUT differ bigint)
LANGUAGE plpgsql AS $$
DECLARE
	s0 bigint;
	i0 bigint;
BEGIN
	s0 := coalesce((SELECT seq_scan FROM pg_stat_xact_user_tables
					WHERE relid = srv::regclass), 0);
	i0 := coalesce((SELECT idx_scan FROM pg_stat_xact_user_tables
					WHERE relid = srv::regclass), 0);
	SELECT changed_rows INTO changed FROM serving_layer_refresh(srv);
	serving_scans := coalesce((SELECT seq_scan FROM pg_stat_xact_user_tables
							   WHERE relid = srv::regclass), 0) - s0;
	lookups := coalesce((SELECT idx_scan FROM pg_stat_xact_user_tables
						 WHERE relid = srv::regclass), 0) - i0;
	PERFORM serving_layer_refresh(ref);
	EXECUTE format('SELECT count(*) FROM ((SELECT * FROM %1$s EXCEPT ALL SELECT * FROM %2$s)'
				   ' UNION ALL (SELECT * FROM %2$s EXCEPT ALL SELECT * FROM %1$s)) d',
				   srv::regclass, ref::regclass) INTO differ;
END
$$;

-- integer sums as the state keeps the batch parts (sum_serialize() in
-- apply_delta_state.c): NULL, zero, negative, around the edges of its
-- 7-bit groups, the ends of bigint, and past them (the batch part's
-- 128-bit accumulator, back in range once merged with the speed rows);
-- every key changes in the speed layer, so that every part is read back
CREATE TABLE sb (k text, v bigint);
CREATE TABLE ss (k text, v bigint);
INSERT INTO sb VALUES ('null', NULL), ('zero', 0), ('m1', -1), ('p63', 63),
	('p64', 64), ('m64', -64), ('m65', -65), ('p8192', 8192),
	('max', 9223372036854775807), ('min', -9223372036854775808),
	('past', 9223372036854775807), ('past', 9223372036854775807),
	('under', -9223372036854775808), ('under', -9223372036854775808);
INSERT INTO ss SELECT DISTINCT k, 0 FROM sb WHERE k NOT IN ('past', 'under');
INSERT INTO ss VALUES ('past', -9223372036854775807),
	('under', 9223372036854775807), ('under', 1);
SELECT serving_layer_define('dl.srv2', 'dl.sb', 'dl.ss', mode => 'apply');
SELECT serving_layer_define('dl.ref2', 'dl.sb', 'dl.ss', mode => 'swap');
SELECT target, output_rows FROM serving_layer_refresh() WHERE target LIKE '%2'
ORDER BY target;
CREATE UNIQUE INDEX ON srv2 (k);
SELECT serving_layer_define('dl.srv2', 'dl.sb', 'dl.ss', mode => 'apply');
SELECT changed_rows FROM serving_layer_refresh('dl.srv2');
UPDATE ss SET v = v + 1 WHERE k IN ('min', 'under') AND v < 100;
UPDATE ss SET v = v - 1 WHERE k NOT IN ('min', 'under');
SELECT * FROM refresh_twins('dl.srv2', 'dl.ref2');
UPDATE ss SET v = v + 1 WHERE k NOT IN ('min', 'under');
SELECT * FROM refresh_twins('dl.srv2', 'dl.ref2');
SELECT * FROM srv2 ORDER BY k;
SELECT serving_layer_forget('dl.srv2');
SELECT serving_layer_forget('dl.ref2');

-- rows fetched where the last refresh left them (apply_tids.c), looked up
-- in the index when the state does not know where (a key the whole
-- comparison inserted) or the place no longer holds the key's row: here a
-- BEFORE trigger kept the refresh from updating one row, so its place is
-- not where that update would have put it
CREATE TABLE tb (k text, v bigint);
CREATE TABLE ts (k text, v bigint);
INSERT INTO tb SELECT 'k' || g, g FROM generate_series(1, 200) g;
INSERT INTO ts SELECT 'k' || g, 1 FROM generate_series(1, 200, 10) g;
SELECT serving_layer_define('dl.tsrv', 'dl.tb', 'dl.ts', mode => 'apply');
SELECT serving_layer_define('dl.tref', 'dl.tb', 'dl.ts', mode => 'swap');
SELECT count(*) FROM serving_layer_refresh() WHERE target LIKE 'dl.t%';
CREATE UNIQUE INDEX ON tsrv (k);
INSERT INTO ts VALUES ('new1', 1);
UPDATE ts SET v = v + 1;
-- defined again: the next refresh compares in full (and updates 20 rows)
SELECT serving_layer_define('dl.tsrv', 'dl.tb', 'dl.ts', mode => 'apply');
SELECT changed_rows FROM serving_layer_refresh('dl.tsrv');
-- the whole comparison noted the places of the rows it saw, not of the
-- one it inserted: 1 lookup
UPDATE ts SET v = v + 1;
SELECT * FROM refresh_twins('dl.tsrv', 'dl.tref');
-- then every changed row is where the last refresh put it
UPDATE ts SET v = v + 1;
SELECT * FROM refresh_twins('dl.tsrv', 'dl.tref');
CREATE FUNCTION keep_k1() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RETURN CASE WHEN NEW.k = 'k1' THEN NULL ELSE NEW END;
END
$$;
CREATE TRIGGER keep_k1 BEFORE UPDATE ON tsrv FOR EACH ROW
	EXECUTE FUNCTION keep_k1();
UPDATE ts SET v = v + 1;
SELECT * FROM refresh_twins('dl.tsrv', 'dl.tref');		-- k1's row kept as it was: it differs
DROP TRIGGER keep_k1 ON tsrv;
UPDATE ts SET v = v + 1;
SELECT * FROM refresh_twins('dl.tsrv', 'dl.tref');		-- k1 found again and put right
SELECT * FROM tsrv WHERE k IN ('k1', 'k11') ORDER BY k;
-- a place is only where to look first: swapped between the first two
-- entries of the state (apply_delta_state.c's layout: a 9-byte header,
-- then per entry its length, little-endian here, with its top bit set when
-- the place follows the two hashes; every key here changed, so every entry
-- has one), each names the other key's row, which is not taken for it;
-- both keys are looked up in the index
CREATE FUNCTION swap_places() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	s bytea;
	p int := 9;
	starts int[] := '{}';
	a bytea;
BEGIN
	SELECT speed_state INTO s FROM serving_layer_apply_state
	WHERE target_schema = 'dl' AND target_name = 'tsrv';
	WHILE p < length(s) LOOP
		starts := starts || p;
		p := p + get_byte(s, p) + (get_byte(s, p + 1) << 8) +
			(get_byte(s, p + 2) << 16) + ((get_byte(s, p + 3) & 127) << 24);
	END LOOP;
	a := substring(s FROM starts[1] + 21 FOR 6);
	s := overlay(s PLACING substring(s FROM starts[2] + 21 FOR 6)
				 FROM starts[1] + 21 FOR 6);
	s := overlay(s PLACING a FROM starts[2] + 21 FOR 6);
	UPDATE serving_layer_apply_state SET speed_state = s
	WHERE target_schema = 'dl' AND target_name = 'tsrv';
END
$$;
SELECT swap_places();
UPDATE ts SET v = v + 1;
SELECT * FROM refresh_twins('dl.tsrv', 'dl.tref');
-- a state whose bytes do not hold together (its first entry's length runs
-- past its end) is an error, data_corrupted, that says what to do, and the
-- table stays as it was
UPDATE serving_layer_apply_state
SET speed_state = overlay(speed_state PLACING '\xffffff7f'::bytea FROM 10 FOR 4)
WHERE target_schema = 'dl' AND target_name = 'tsrv';
UPDATE ts SET v = v + 1;
DO $$
BEGIN
	PERFORM serving_layer_refresh('dl.tsrv');
EXCEPTION WHEN data_corrupted THEN
	RAISE NOTICE 'data_corrupted: %', SQLERRM;
END
$$;
SELECT * FROM tsrv WHERE k IN ('k1', 'k11') ORDER BY k;
SELECT serving_layer_define('dl.tsrv', 'dl.tb', 'dl.ts', mode => 'apply');
SELECT * FROM refresh_twins('dl.tsrv', 'dl.tref');
SELECT serving_layer_forget('dl.tsrv');
SELECT serving_layer_forget('dl.tref');

-- attached to another table, the watch function logs nothing
CREATE TABLE other (x int);
CREATE TRIGGER w AFTER INSERT ON other FOR EACH STATEMENT
	EXECUTE FUNCTION serving_layer_watch();
INSERT INTO other VALUES (1);
SELECT count(*) FROM serving_layer_apply_dirty WHERE serving = 'other'::regclass;

-- forget drops the trigger and the state
SELECT serving_layer_forget('dl.srv');
SELECT count(*) FROM pg_trigger WHERE tgrelid = 'srv'::regclass;
SELECT count(*) FROM serving_layer_apply_state WHERE target_schema = 'dl';

SET client_min_messages = warning;
SELECT serving_layer_forget('dl.ref');
DROP SCHEMA dl CASCADE;
RESET client_min_messages;
RESET search_path;
