# test/t/020_crash_around_swap.pl
#
# A refreshing backend killed (SIGKILL: the postmaster restarts every
# backend and runs crash recovery) around the swap of a 200,000-row serving
# table with three indexes and TOAST data:
#   a. right before the swap: the refresh has built the new contents and
#      waits for the swap lock, because another session holds the table
#      open -> the old contents;
#   b. right after the swap, before the commit: the refresh ran inside
#      BEGIN; ...; SELECT pg_sleep(300); and holds the swapped table -> the
#      old contents, since the commit never happened;
#   c. right after COMMIT -> the new contents (every shared buffer of the
#      new contents is lost with the crash: they must come back from WAL, or,
#      with wal_level = minimal, from the files synced at commit).
# After each crash: the contents are complete, amcheck finds nothing, no
# stray relation or lock is left, the definition exists and the next
# refresh works.  Cases a and b also check that pg_class is exactly as it
# was.  Run with wal_level = minimal (a, b, c) and replica (b, c).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ServingLayerCrash;

# Change the batch table so that the next refresh has new contents.
my $round = 0;

sub change_batch
{
	my ($node) = @_;
	$round++;
	$node->safe_psql('postgres',
		"UPDATE sl_batch SET v = v + 1 WHERE k % 5 = $round % 5; CHECKPOINT;");
	return;
}

sub kill_and_wait
{
	my ($node, $pid, @sessions) = @_;
	my $offset = -s $node->logfile;
	kill 'KILL', $pid;
	sl_finish_killed($_) foreach @sessions;
	sl_wait_for_restart($node, $offset, $pid);
	return;
}

# a. Killed while waiting for the swap lock.
sub case_before_swap
{
	my ($node, $label) = @_;
	change_batch($node);
	my $before = sl_state($node);
	my $catalog = sl_catalog($node);
	my $files = sl_orphan_files($node);

	my $holder = $node->background_psql('postgres');
	$holder->query_safe('BEGIN; SELECT count(*) FROM sl_serving;');

	my ($bg, $pid) = sl_start_refresh($node, '');
	sl_wait_for($node,
		sl_waits_for_swap($pid),
		"$label: the refresh to wait for the swap lock");
	is(sl_state($node), $before, "$label: meanwhile, readers see the old contents");

	# Meanwhile, plain readers are held up by at most one attempt to take
	# the swap lock (serving_layer.swap_lock_timeout, 100 ms by default):
	# 30 reads, each in its own transaction, over about 1.5 s.
	my $slowest = $node->safe_psql(
		'postgres', q{
CREATE TEMP TABLE read_times (ms float8);
DO $$
DECLARE
	t0 timestamptz;
BEGIN
	FOR i IN 1 .. 30 LOOP
		t0 := clock_timestamp();
		PERFORM count(*) FROM sl_serving;
		INSERT INTO read_times VALUES (1000 * extract(epoch FROM clock_timestamp() - t0));
		COMMIT;
		PERFORM pg_sleep(0.05);
	END LOOP;
END $$;
SELECT round(max(ms)) FROM read_times;});
	note("$label: the slowest of 30 reads took $slowest ms");
	cmp_ok($slowest, '<', 1000,
		"$label: no reader waited for the refresh (slowest read under 1 s)");
	ok( $node->poll_query_until('postgres',
			"SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $pid AND state = 'active')"),
		"$label: the refresh is still waiting after the reads");

	kill_and_wait($node, $pid, $bg, $holder);
	sl_report_orphans($node, $label, $files);
	sl_check_after($node, $label, $before, $catalog);
	return;
}

# b. Killed after the swap, before the commit.
sub case_after_swap
{
	my ($node, $label) = @_;
	change_batch($node);
	my $before = sl_state($node);
	my $catalog = sl_catalog($node);
	my $files = sl_orphan_files($node);

	my ($bg, $pid) = sl_start_refresh($node, '',
		q{BEGIN; SELECT status FROM serving_layer_refresh('sl_serving'); SELECT pg_sleep(300);});
	sl_wait_for($node,
		qq{SELECT EXISTS (SELECT FROM pg_stat_activity
			WHERE pid = $pid AND wait_event = 'PgSleep' AND query LIKE '%pg_sleep(300)%')},
		"$label: the refresh to be swapped and not committed");
	is( $node->safe_psql(
			'postgres', qq{SELECT count(*) FROM pg_locks
			  WHERE pid = $pid AND relation = 'sl_serving'::regclass
				AND mode = 'AccessExclusiveLock' AND granted}),
		'1',
		"$label: the refresher holds the swapped serving table");

	kill_and_wait($node, $pid, $bg);
	sl_report_orphans($node, $label, $files);
	sl_check_after($node, $label, $before, $catalog);
	return;
}

# c. Killed right after COMMIT.
sub case_after_commit
{
	my ($node, $label) = @_;
	change_batch($node);
	my $expected = sl_reference($node);
	isnt(sl_state($node), $expected, "$label: the refresh will change the contents");
	my $files = sl_orphan_files($node);

	my $bg = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $bg->query_safe('SELECT pg_backend_pid()');
	is( $bg->query_safe(
			q{BEGIN; SELECT status FROM serving_layer_refresh('sl_serving'); COMMIT;}),
		'ok', "$label: the refresh committed");

	kill_and_wait($node, $pid, $bg);
	sl_report_orphans($node, $label, $files);
	sl_check_after($node, $label, $expected, undef);
	return;
}

foreach my $wal_level ('minimal', 'replica')
{
	my $node = sl_node("swap_$wal_level", wal_level => $wal_level);
	sl_setup($node);
	case_before_swap($node, "wal_level=$wal_level, killed waiting for the swap lock")
	  if $wal_level eq 'minimal';
	case_after_swap($node, "wal_level=$wal_level, killed after the swap, before the commit");
	case_after_commit($node, "wal_level=$wal_level, killed right after the commit");
	$node->stop;
}

done_testing();
