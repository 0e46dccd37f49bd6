# test/t/010_crash_during_build.pl
#
# A backend killed (SIGKILL, so the postmaster restarts every backend and
# runs crash recovery) while a refresh of a 200,000-row serving table with
# three indexes and TOAST data is building the new contents:
#   1. while the merge query reads its input (the speed view sleeps);
#   2. while the new heap is being filled (the merge sleeps at the
#      100,000th group: about 100,000 rows are in the new heap);
#   3. while the serving table's indexes are built on the new heap (the
#      third index's expression sleeps).
# After each crash: the serving table holds its complete old contents,
# amcheck finds nothing, pg_class is exactly as before (no stray relation),
# the definition exists, no lock is left, and the next refresh succeeds with
# the new contents.  Files of the never-committed new heap that PostgreSQL
# leaves on disk are reported, not asserted.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ServingLayerCrash;

my $node = sl_node('crash_build');
my ($old, $new) = sl_setup($node);

my @cases = (
	[
		'killed while the merge query reads its input',
		q{SET sl_test.scan_sleep = 300;}
	],
	[
		'killed while the new heap is filled',
		q{SET sl_test.sleep_at = 100000; SELECT setval('sl_calls', 1, false);}
	],
	[
		'killed while the indexes are built on the new heap',
		q{SET sl_test.index_sleep_at = 150000;}
	],
);

my $round = 0;
foreach my $case (@cases)
{
	my ($label, $settings) = @$case;

	# From the second round on, the last check refreshed the serving table:
	# change the batch table so that the refresh to kill has new contents.
	if ($round++ > 0)
	{
		$node->safe_psql('postgres',
			"UPDATE sl_batch SET v = v + 1 WHERE k % 7 = $round; CHECKPOINT;");
	}
	my $before = sl_state($node);
	isnt($before, sl_reference($node), "$label: the refresh would change the contents");
	my $catalog = sl_catalog($node);
	my $files = sl_orphan_files($node);

	my ($bg, $pid) = sl_start_refresh($node, $settings);
	sl_wait_for($node,
		qq{SELECT EXISTS (SELECT FROM pg_stat_activity
			WHERE query LIKE '%serving_layer_refresh(%' AND wait_event = 'PgSleep')},
		"the refresh to sleep ($label)");
	is(sl_pid_of($node, 'PgSleep'), $pid,
		"$label: pg_stat_activity shows the refreshing backend");
	is(sl_state($node), $before, "$label: meanwhile, readers see the old contents");

	my $offset = -s $node->logfile;
	kill 'KILL', $pid;
	sl_finish_killed($bg);
	sl_wait_for_restart($node, $offset, $pid);

	sl_report_orphans($node, $label, $files);
	sl_check_after($node, $label, $before, $catalog);
}

$node->stop;
done_testing();
