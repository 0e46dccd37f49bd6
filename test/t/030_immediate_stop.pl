# test/t/030_immediate_stop.pl
#
# An immediate shutdown (pg_ctl stop -m immediate: no checkpoint, every
# shared buffer lost, crash recovery at the next start) of a server
#   1. in the middle of a refresh (about 100,000 of 210,000 rows in the new
#      heap) -> after restart the serving table holds its complete old
#      contents and pg_class is exactly as before;
#   2. right after a refresh committed -> the complete new contents.
# In both cases amcheck finds nothing, no stray relation or lock is left, the
# definition exists and the next refresh works.
#   3. right after a refresh in mode 'apply' committed -> its changes are
#      there, the state it left for the next refresh is gone (the table is
#      unlogged: crash recovery empties it), and the next refresh compares
#      in full, gives the merge and leaves the state again, from which the
#      one after follows the change.
# Run with wal_level = minimal (where the new storage is not WAL-logged but
# synced at commit) and replica.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ServingLayerCrash;

foreach my $wal_level ('minimal', 'replica')
{
	my $node = sl_node("stop_$wal_level", wal_level => $wal_level);
	my ($old, $new) = sl_setup($node);

	# 1. Immediate stop during the build.
	my $label = "wal_level=$wal_level, stopped during the build";
	my $catalog = sl_catalog($node);
	my $files = sl_orphan_files($node);
	my ($bg, $pid) = sl_start_refresh($node,
		q{SET sl_test.sleep_at = 100000; SELECT setval('sl_calls', 1, false);});
	sl_wait_for($node,
		qq{SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $pid AND wait_event = 'PgSleep')},
		"$label: the refresh to be in the middle of its fill");
	$node->stop('immediate');
	sl_finish_killed($bg);
	$node->start;
	sl_report_orphans($node, $label, $files);
	sl_check_after($node, $label, $old, $catalog);

	# 2. Immediate stop right after a committed refresh.
	$label = "wal_level=$wal_level, stopped right after the commit";
	$node->safe_psql('postgres', 'UPDATE sl_batch SET v = v * 3 WHERE k % 3 = 0; CHECKPOINT;');
	my $expected = sl_reference($node);
	isnt(sl_state($node), $expected, "$label: the refresh will change the contents");
	$files = sl_orphan_files($node);
	is( $node->safe_psql('postgres', q{SELECT status FROM serving_layer_refresh('sl_serving')}),
		'ok', "$label: the refresh committed");
	$node->stop('immediate');
	$node->start;
	sl_report_orphans($node, $label, $files);
	sl_check_after($node, $label, $expected, undef);

	# 3. Immediate stop right after a committed refresh in mode 'apply'.
	$label = "wal_level=$wal_level, stopped right after an 'apply' refresh";
	$node->safe_psql(
		'postgres', q{
CREATE TABLE sl_apply_batch (k int, v bigint);
INSERT INTO sl_apply_batch SELECT g, g FROM generate_series(1, 1000) g;
CREATE TABLE sl_apply_speed (k int, v bigint);
INSERT INTO sl_apply_speed SELECT g, 1 FROM generate_series(1, 1000, 10) g;
SELECT serving_layer_define('sl_applied', 'sl_apply_batch', 'sl_apply_speed',
	key => '{k}', mode => 'apply');
SELECT status FROM serving_layer_refresh('sl_applied');
CREATE UNIQUE INDEX ON sl_applied (k);
SELECT status FROM serving_layer_refresh('sl_applied');
UPDATE sl_apply_speed SET v = v + 1 WHERE k < 500;
});
	my $applied_ref = q{SELECT string_agg(k || ':' || v, ',' ORDER BY k) FROM
		(SELECT k, sum(v) AS v FROM (SELECT * FROM sl_apply_batch
			UNION ALL SELECT * FROM sl_apply_speed) u GROUP BY k) r};
	my $applied_now = q{SELECT string_agg(k || ':' || v, ',' ORDER BY k) FROM sl_applied};
	# a refresh in verbose mode: its status, changed rows and what it said
	my $verbose_refresh = sub {
		my ($out, $err) = ('', '');
		$node->psql(
			'postgres', q{SET serving_layer."verbose" = on;
				SELECT status, changed_rows FROM serving_layer_refresh('sl_applied')},
			stdout => \$out, stderr => \$err, on_error_die => 1);
		return ($out, $err);
	};
	my ($out, $err) = $verbose_refresh->();
	is($out, 'ok|50', "$label: the refresh changed the 50 rows");
	like($err, qr/delta:/, "$label: ... following the change");
	is($node->safe_psql('postgres', 'SELECT count(*) FROM serving_layer_apply_state'),
		'1', "$label: ... and left its state");
	my $applied_expected = $node->safe_psql('postgres', $applied_ref);
	$node->stop('immediate');
	$node->start;
	is($node->safe_psql('postgres', $applied_now), $applied_expected,
		"$label: its changes survived");
	is($node->safe_psql('postgres', 'SELECT count(*) FROM serving_layer_apply_state'),
		'0', "$label: its state did not (unlogged)");
	$node->safe_psql('postgres', 'UPDATE sl_apply_speed SET v = v + 1 WHERE k > 500');
	($out, $err) = $verbose_refresh->();
	is($out, 'ok|50', "$label: the next refresh changed the 50 rows");
	unlike($err, qr/delta:/, "$label: ... comparing in full");
	is($node->safe_psql('postgres', $applied_now),
		$node->safe_psql('postgres', $applied_ref), "$label: ... to the merge");
	$node->safe_psql('postgres', 'UPDATE sl_apply_speed SET v = v + 1 WHERE k = 1');
	($out, $err) = $verbose_refresh->();
	is($out, 'ok|1', "$label: the one after changed one row");
	like($err, qr/delta:/, "$label: ... following the change again");
	is($node->safe_psql('postgres', $applied_now),
		$node->safe_psql('postgres', $applied_ref), "$label: ... to the merge");

	$node->stop;
}

done_testing();
