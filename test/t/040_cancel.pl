# test/t/040_cancel.pl
#
# pg_cancel_backend() and statement_timeout interrupt a refresh in each of
# its phases:
#   - while the merge query reads its input (the speed view sleeps),
#   - while the new heap is filled (the merge sleeps at the 1,000th group),
#   - while the serving table's indexes are built on the new heap (the third
#     index's expression sleeps),
#   - while the refresh waits for the swap lock (another session holds the
#     serving table).
# Each time: the refresh fails with query_canceled (57014) and the context
# 'refresh of serving table "sl_serving"' (and, in the build phases, the
# function that was sleeping, which proves where it was interrupted); the
# serving table is unchanged; pg_class is exactly as before; no lock is
# left; amcheck is clean; and the same session is usable afterwards: it
# reads the serving table, then refreshes it successfully.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use ServingLayerCrash;

my $node = sl_node('cancel');
sl_setup($node, rows => 50000);

# How long a whole refresh takes here: statement_timeout must let the
# refresh reach the phase to interrupt first.
my $t0 = time;
is($node->safe_psql('postgres', q{SELECT status FROM serving_layer_refresh('sl_serving')}),
	'ok', 'a refresh without sleeps');
my $refresh_secs = time - $t0;
my $timeout_ms = int(1000 * (1 + 3 * $refresh_secs));
note("a refresh takes $refresh_secs s; statement_timeout = $timeout_ms ms");

my @phases = (
	[ 'reading its input', q{SET sl_test.scan_sleep = 300;}, 'sl_scan_gate', 'PgSleep' ],
	[
		'filling the new heap',
		q{SET sl_test.sleep_at = 1000; SELECT setval('sl_calls', 1, false);},
		'sl_slow_final', 'PgSleep'
	],
	[ 'building the indexes', q{SET sl_test.index_sleep_at = 1000;}, 'sl_index_gate', 'PgSleep' ],
	[ 'waiting for the swap lock', '', undef, 'lock' ],
);

my $round = 0;
foreach my $how ('pg_cancel_backend', 'statement_timeout')
{
	foreach my $phase (@phases)
	{
		my ($what, $settings, $function, $wait) = @$phase;
		my $label = "$how while $what";

		# New batch contents, so that the interrupted refresh would change
		# the serving table.
		$round++;
		$node->safe_psql('postgres', "UPDATE sl_batch SET v = v + 1 WHERE k % 4 = $round % 4;");
		my $before = sl_state($node);
		my $reference = sl_reference($node);
		isnt($before, $reference, "$label: the refresh would change the contents");
		my $catalog = sl_catalog($node);

		my $holder;
		if ($wait eq 'lock')
		{
			$holder = $node->background_psql('postgres');
			$holder->query_safe('BEGIN; SELECT count(*) FROM sl_serving;');
		}

		$settings .= " SET statement_timeout = $timeout_ms;" if $how eq 'statement_timeout';
		my ($bg, $pid) = sl_start_refresh($node, "\\set VERBOSITY verbose\n$settings");

		if ($wait eq 'lock')
		{
			sl_wait_for($node,
				sl_waits_for_swap($pid),
				"$label: the refresh to wait for the swap lock");
		}
		else
		{
			sl_wait_for($node,
				qq{SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $pid AND wait_event = '$wait')},
				"$label: the refresh to be $what");
		}
		is(sl_state($node), $before, "$label: meanwhile, readers see the old contents");

		if ($how eq 'pg_cancel_backend')
		{
			is($node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)"),
				't', "$label: cancel sent");
		}

		# The same session: the refresh ends with an error, then the session
		# reads the serving table.
		my ($out, $err) = $bg->query('SELECT count(*) FROM sl_serving');
		my $stderr = $bg->{stderr};
		$bg->{stderr} = '';
		my $message = $how eq 'statement_timeout'
		  ? 'canceling statement due to statement timeout'
		  : 'canceling statement due to user request';
		like($stderr, qr/ERROR:  57014: \Q$message\E/, "$label: query_canceled");
		like($stderr, qr/CONTEXT:.*refresh of serving table "sl_serving"/s,
			"$label: the error names the serving table");
		like($stderr, qr/CONTEXT:.*\Q$function\E/s, "$label: interrupted in $function")
		  if defined $function;
		is($out, (split /\|/, $before)[0], "$label: the session reads the serving table afterwards");

		$holder->quit if defined $holder;

		is(sl_state($node), $before, "$label: serving table unchanged");
		is(sl_catalog($node), $catalog, "$label: pg_class exactly as before (no stray relation)");
		is( $node->safe_psql(
				'postgres', qq{SELECT count(*) FROM pg_locks
				  WHERE pid = $pid OR (locktype = 'advisory' AND objsubid = 21324)}),
			'0',
			"$label: no lock left");
		sl_amcheck($node, $label);

		# The same session refreshes successfully.
		$bg->query_safe('RESET statement_timeout; RESET sl_test.scan_sleep; RESET sl_test.sleep_at; RESET sl_test.index_sleep_at;');
		is($bg->query_safe(q{SELECT status FROM serving_layer_refresh('sl_serving')}),
			'ok', "$label: the same session then refreshes");
		is(sl_state($node), $reference, "$label: with the new contents");
		$bg->quit;
	}
}

$node->stop;
done_testing();
