# test/lib/ServingLayerCrash.pm
#
# Helpers shared by the TAP tests that crash, stop or cancel a refresh
# (test/t/010_crash_during_build.pl, 020_crash_around_swap.pl,
# 030_immediate_stop.pl, 040_cancel.pl).
#
# The layout: a batch table of 200,000 keys (k int, note text; a few notes are
# ~10 kB of incompressible text, so the serving table has TOAST data), a
# speed layer that is a view over three rows, and a serving table with three
# indexes, one of them over the TOASTed column (md5(note)).  The measure v is merged by sl_slow_sum, a sum whose final
# function can be told to sleep, and the speed view can be told to sleep per
# row, so that a refresh can be caught in the middle of its build:
#
#   SET sl_test.sleep_at = N      the N-th group the merge outputs sleeps
#                                 (about N-1 rows are in the new heap then)
#   SET sl_test.scan_sleep = S    each speed row sleeps S seconds (the merge
#                                 query is still reading its input)
#   SET sl_test.sleep_secs = S    how long the sleep_at sleep is
#   SET sl_test.index_sleep_at = K  building the serving table's third
#                                 index (on sl_index_gate(k)) sleeps at key K
#
# Settings that are not set cost nothing, so other sessions refresh normally.
#
# "Old" contents: every batch v = 1.  After sl_setup() the batch table holds
# the "new" contents: v = 2 and 10,000 more keys.  sl_state() fingerprints
# the serving table (count, sum, md5 of every row); sl_reference() computes
# the same fingerprint from the batch and speed tables with plain SQL.

package ServingLayerCrash;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

our @EXPORT = qw(
  sl_node sl_setup sl_state sl_reference sl_catalog sl_check_after
  sl_amcheck sl_orphan_files sl_report_orphans sl_start_refresh sl_wait_for
  sl_pid_of sl_finish_killed sl_wait_for_restart sl_waits_for_swap
);

# The fingerprint of a relation with columns k, note, v.
sub fingerprint_sql
{
	my ($from) = @_;
	return qq{SELECT count(*) || '|' || coalesce(sum(v), 0) || '|' ||
		coalesce(md5(string_agg(k || ':' || md5(note) || ':' || v, ',' ORDER BY k, note)), '-')
		FROM $from};
}

# sl_node(name, wal_level => 'minimal' | 'replica')
# A started node that restarts after a backend crash, with amcheck and
# serving_layer created in database postgres.
sub sl_node
{
	my ($name, %opts) = @_;
	my $wal_level = $opts{wal_level} // 'replica';
	my $node = PostgreSQL::Test::Cluster->new($name);

	$node->init;
	$node->append_conf(
		'postgresql.conf', qq{
restart_after_crash = on
wal_level = $wal_level
max_wal_senders = 0
autovacuum = off
shared_preload_libraries = ''
});
	$node->start;
	$node->safe_psql('postgres',
		'CREATE EXTENSION amcheck; CREATE EXTENSION serving_layer;');
	return $node;
}

# sl_setup(node, [rows => N])
# Create the layout (N batch keys, 200,000 by default), refresh it once (the
# old contents), index the serving table, then change the batch table to the
# new contents (N / 20 more keys).  Returns the fingerprints (old, new).
sub sl_setup
{
	my ($node, %opts) = @_;
	my $rows = $opts{rows} // 200000;
	my $more = $rows + $rows / 20;

	my $sql = q{
CREATE SEQUENCE sl_calls;
CREATE FUNCTION sl_slow_final(s bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	sleep_at text := current_setting('sl_test.sleep_at', true);
BEGIN
	IF sleep_at <> '' THEN
		IF nextval('public.sl_calls') = sleep_at::bigint THEN
			PERFORM pg_sleep(coalesce(nullif(current_setting('sl_test.sleep_secs', true), ''), '300')::float8);
		END IF;
	END IF;
	RETURN s;
END $$;
CREATE AGGREGATE sl_slow_sum(bigint) (
	SFUNC = int8pl, STYPE = bigint, FINALFUNC = sl_slow_final);
CREATE FUNCTION sl_scan_gate() RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
	secs text := current_setting('sl_test.scan_sleep', true);
BEGIN
	IF secs <> '' THEN
		PERFORM pg_sleep(secs::float8);
	END IF;
	RETURN true;
END $$;
CREATE FUNCTION sl_index_gate(k int) RETURNS int
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	IF current_setting('sl_test.index_sleep_at', true) = k::text THEN
		PERFORM pg_sleep(300);
	END IF;
	RETURN k;
END $$;

CREATE TABLE sl_batch (k int, note text, v bigint);
INSERT INTO sl_batch
	SELECT g, CASE WHEN g <= 10
				   THEN (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 300) i)
				   ELSE 'n' || g END, 1
	FROM generate_series(1, __ROWS__) g;
CREATE TABLE sl_speed_rows (k int, note text, v bigint);
INSERT INTO sl_speed_rows
	SELECT k, note, 10 FROM sl_batch WHERE k IN (1, 11, 12);
CREATE VIEW sl_speed AS
	SELECT k, note, v FROM sl_speed_rows WHERE sl_scan_gate();

SELECT serving_layer_define('sl_serving', 'sl_batch', 'sl_speed',
	key => '{k,note}', merge => '{"v": "public.sl_slow_sum"}');
SELECT status FROM serving_layer_refresh('sl_serving');
CREATE INDEX sl_serving_k ON sl_serving (k);
CREATE UNIQUE INDEX sl_serving_k_note ON sl_serving (k, md5(note));
CREATE INDEX sl_serving_gate ON sl_serving ((sl_index_gate(k)));
};
	$sql =~ s/__ROWS__/$rows/g;
	$node->safe_psql('postgres', $sql);
	my $old = sl_state($node);
	is($old, sl_reference($node), 'setup: the first refresh gives the reference contents');

	$node->safe_psql(
		'postgres', qq{
UPDATE sl_batch SET v = 2;
INSERT INTO sl_batch SELECT g, 'n' || g, 2 FROM generate_series($rows + 1, $more) g;
VACUUM ANALYZE sl_batch;
CHECKPOINT;
});
	my $new = sl_reference($node);
	isnt($old, $new, 'setup: the old and the new contents differ');
	return ($old, $new);
}

# The fingerprint of the serving table.
sub sl_state
{
	my ($node) = @_;
	return $node->safe_psql('postgres', fingerprint_sql('sl_serving'));
}

# The fingerprint of what a refresh must produce.
sub sl_reference
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		fingerprint_sql(
			q{(SELECT k, note, sum(v)::bigint AS v
			   FROM (SELECT k, note, v FROM sl_batch
					 UNION ALL SELECT k, note, v FROM sl_speed_rows) u
			   GROUP BY k, note) r}));
}

# Every pg_class row, by OID, name, schema and storage: a refresh that did
# not commit must leave this exactly as it was.
sub sl_catalog
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		q{SELECT string_agg(oid || ' ' || relname || ' ' || relnamespace || ' ' || relfilenode, E'\n' ORDER BY oid)
		  FROM pg_class});
}

# sl_check_after(node, label, expected_state, catalog_before)
# What must hold after a refresh was interrupted (or committed) and the
# server came back: the serving table holds exactly expected_state; amcheck
# finds nothing in its heap, TOAST table and indexes; no relation is left
# over from the refresh (pg_class as in catalog_before, when given, and no
# pg_temp_% relation in the serving table's schema); the definition is still
# there; no refresh lock and no lock on the serving table is left; the next
# refresh succeeds and gives the new contents (reference), and amcheck is
# clean after it too.
sub sl_check_after
{
	my ($node, $label, $expected, $catalog_before) = @_;

	is(sl_state($node), $expected, "$label: serving table contents complete and as expected");
	sl_amcheck($node, $label);
	if (defined $catalog_before)
	{
		is(sl_catalog($node), $catalog_before,
			"$label: pg_class exactly as before the refresh (no stray relation)");
	}
	is( $node->safe_psql(
			'postgres', q{SELECT count(*) FROM pg_class
			  WHERE relname LIKE 'pg\_temp\_%' AND relnamespace = 'public'::regnamespace}),
		'0',
		"$label: no pg_temp_% relation in the serving table's schema");
	is( $node->safe_psql(
			'postgres', q{SELECT count(*) FROM pg_class c
			  WHERE c.relnamespace = 'pg_toast'::regnamespace
				AND NOT EXISTS (SELECT FROM pg_class o WHERE o.reltoastrelid = c.oid)
				AND c.relkind = 't'}),
		'0',
		"$label: no TOAST table without its owner");
	is( $node->safe_psql(
			'postgres', q{SELECT count(*) FROM serving_layer_definitions WHERE target = 'sl_serving'}),
		'1',
		"$label: the definition still exists");
	is( $node->safe_psql(
			'postgres', q{SELECT count(*) FROM pg_locks
			  WHERE (locktype = 'advisory' AND objsubid = 21324)
				 OR relation = 'sl_serving'::regclass}),
		'0',
		"$label: no refresh lock and no lock on the serving table left");

	my $ref = sl_reference($node);
	is( $node->safe_psql(
			'postgres', q{SELECT status || ' ' || output_rows FROM serving_layer_refresh('sl_serving')}),
		'ok ' . (split /\|/, $ref)[0],
		"$label: the next refresh succeeds");
	is(sl_state($node), $ref, "$label: the next refresh gives the new contents");
	sl_amcheck($node, "$label, after the next refresh");
	return;
}

# amcheck on the serving table: heap (with TOAST), every index of the
# serving table and of its TOAST table, with heapallindexed.
sub sl_amcheck
{
	my ($node, $label) = @_;
	my ($ret, $out, $err) = $node->psql(
		'postgres', q{
SELECT count(*) FROM verify_heapam('sl_serving', check_toast => true);
SELECT count(*) FROM verify_heapam((SELECT reltoastrelid FROM pg_class WHERE oid = 'sl_serving'::regclass));
SELECT count(bt_index_parent_check(index => i.indexrelid, heapallindexed => true))
FROM pg_index i
WHERE i.indrelid IN ('sl_serving'::regclass,
					 (SELECT reltoastrelid FROM pg_class WHERE oid = 'sl_serving'::regclass));
});
	is($ret, 0, "$label: amcheck ran");
	is($err, '', "$label: amcheck reports no error");
	is($out, "0\n0\n4", "$label: verify_heapam reports nothing; 4 indexes checked");
	return;
}

# Files of the database directory that belong to no relation of pg_class
# (segments and forks folded onto their relfilenode): "name size" lines.
sub sl_orphan_files
{
	my ($node) = @_;
	return $node->safe_psql(
		'postgres', q{
SELECT string_agg(f || ' ' || (pg_stat_file(d || '/' || f)).size, E'\n' ORDER BY f)
FROM (SELECT 'base/' || oid AS d FROM pg_database WHERE datname = current_database()) db,
	 pg_ls_dir(db.d) AS f
WHERE f ~ '^[0-9]+(_[a-z]+)?(\.[0-9]+)?$'
  AND substring(f FROM '^([0-9]+)')::oid NOT IN
	  (SELECT pg_relation_filenode(c.oid) FROM pg_class c
	   WHERE pg_relation_filenode(c.oid) IS NOT NULL)});
}

# Report (not assert) orphan files that were not there before.
sub sl_report_orphans
{
	my ($node, $label, $before) = @_;
	my %old = map { (split / /)[0] => 1 } split /\n/, ($before // '');
	my @new = grep { !$old{ (split / /)[0] } } split /\n/, sl_orphan_files($node);
	if (@new)
	{
		diag("$label: orphan files left by PostgreSQL (relation files of a transaction that never finished): "
			  . join(', ', @new));
	}
	else
	{
		note("$label: no orphan file");
	}
	return scalar @new;
}

# sl_start_refresh(node, settings_sql, [refresh_sql])
# A background psql session that applies the settings, then starts the
# refresh (or refresh_sql) without waiting for it.  Returns (session, pid).
sub sl_start_refresh
{
	my ($node, $settings, $sql) = @_;
	$sql //= q{SELECT status FROM serving_layer_refresh('sl_serving');};
	my $bg = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $bg->query_safe('SELECT pg_backend_pid()');
	$bg->query_safe($settings) if $settings;
	$bg->query_until(qr/refresh-started/, "\\echo refresh-started\n$sql\n");
	return ($bg, $pid);
}

# Wait until the query returns 't' (at most the default timeout).
sub sl_wait_for
{
	my ($node, $query, $what) = @_;
	ok($node->poll_query_until('postgres', $query), "waited for $what")
	  or die "gave up waiting for $what";
	return;
}

# A query that is true while the backend pid is in the swap phase: either
# queued for the serving table's ACCESS EXCLUSIVE lock (one attempt) or
# sleeping between two attempts.
sub sl_waits_for_swap
{
	my ($pid) = @_;
	return qq{SELECT EXISTS (SELECT FROM pg_locks
				WHERE pid = $pid AND relation = 'sl_serving'::regclass
				  AND mode = 'AccessExclusiveLock' AND NOT granted)
			  OR EXISTS (SELECT FROM pg_stat_activity
				WHERE pid = $pid AND wait_event_type = 'Extension')};
}

# The PID of the backend running a refresh of sl_serving, once it sleeps.
sub sl_pid_of
{
	my ($node, $wait_event) = @_;
	return $node->safe_psql('postgres',
		qq{SELECT pid FROM pg_stat_activity WHERE wait_event = '$wait_event' AND query LIKE '%serving_layer_refresh%'});
}

# Collect a background psql whose backend was killed: psql has lost its
# connection and exited; do not feed it \q.
sub sl_finish_killed
{
	my ($bg) = @_;
	eval {
		$bg->{run}->pump_nb();
		$bg->{run}->finish;
	};
	return $bg->{stderr};
}

# After SIGKILL of a backend: wait for the postmaster to reinitialize and to
# accept connections again.  The postmaster names the process "server
# process" up to PostgreSQL 17 and by its type ("client backend") from 18 on.
sub sl_wait_for_restart
{
	my ($node, $offset, $pid) = @_;
	$node->wait_for_log(
		qr/(?:server process|client backend) \(PID $pid\) was terminated by signal 9.*all server processes terminated; reinitializing.*database system is ready to accept connections/s,
		$offset);
	ok($node->poll_query_until('postgres', 'SELECT true'), 'server restarted after the crash');
	return;
}

1;
