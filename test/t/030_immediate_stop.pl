# test/t/030_immediate_stop.pl
#
# An immediate shutdown (pg_ctl stop -m immediate: no checkpoint, every
# shared buffer lost, crash recovery at the next start) of a server
#   1. in the middle of a refresh (about 100,000 of 210,000 rows in the new
#      heap) -> after restart the serving table holds its complete old
#      contents and pg_class is exactly as before;
#   2. right after a refresh committed -> the complete new contents.
# In both cases amcheck finds nothing, no stray relation or lock is left, the
# definition exists and the next refresh works.  Run with wal_level =
# minimal (where the new storage is not WAL-logged but synced at commit) and
# replica.

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

	$node->stop;
}

done_testing();
