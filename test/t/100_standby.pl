# test/t/100_standby.pl
#
# A streaming standby (hot standby) and both refresh modes:
#  - after refreshes in mode 'swap' and in mode 'apply' the standby's serving
#    tables equal the primary's (a digest of their rows), and amcheck's
#    bt_index_check and verify_heapam find nothing wrong on the standby;
#  - while a 20 s query on the standby reads the serving table, other
#    standby readers of that table never wait for a lock during an 'apply'
#    refresh (it takes no lock that the standby replays: the standby's
#    log_lock_waits, at a deadlock_timeout of 100 ms, logs no wait) and
#    none takes 1 s; during a 'swap' refresh they wait behind the replayed
#    ACCESS EXCLUSIVE lock (logged), for up to max_standby_streaming_delay
#    (printed; then measured again with that setting at 1 s);
#  - serving_layer_refresh() on the standby fails at once with 25006;
#  - promoted, the standby refreshes in mode 'apply': the state the
#    primary left is not there (unlogged), so the first refresh compares in
#    full and the next follows the change.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep clock_gettime CLOCK_MONOTONIC);
use ServingLayerReplication;

# durations by the monotonic clock, which a step of the wall clock leaves alone
sub now { return clock_gettime(CLOCK_MONOTONIC); }

my $primary = sl_primary('primary', 1);

$primary->safe_psql('postgres', q{
	CREATE EXTENSION serving_layer;
	CREATE EXTENSION amcheck;}
	. sl_layers_sql(100000, 5000) . q{
	SELECT serving_layer_define('s_swap', 'batch', 'speed', mode => 'swap');
	SELECT serving_layer_define('s_apply', 'batch', 'speed', mode => 'apply');
	SELECT count(*) FROM serving_layer_refresh();
	CREATE UNIQUE INDEX ON s_swap (location);
	CREATE UNIQUE INDEX ON s_apply (location);
	CREATE INDEX ON s_apply (n);
});

$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->append_conf('postgresql.conf', qq{
max_standby_streaming_delay = 30s
log_lock_waits = on
deadlock_timeout = 100ms
log_recovery_conflict_waits = on
});
$standby->start;

# the standby equals the primary and amcheck is clean there
sub check_standby
{
	my ($label) = @_;

	$primary->wait_for_catchup($standby, 'replay');
	for my $t ('s_swap', 's_apply')
	{
		my $sql = sl_digest_sql($t);

		is($standby->safe_psql('postgres', $sql), $primary->safe_psql('postgres', $sql),
			"$label: $t on the standby equals the primary");
		is($standby->safe_psql('postgres', qq{
			SELECT count(bt_index_check(indexrelid, true))
			FROM pg_index WHERE indrelid = '$t'::regclass}),
			$t eq 's_apply' ? '2' : '1', "$label: bt_index_check of the indexes of $t on the standby");
		is($standby->safe_psql('postgres', "SELECT count(*) FROM verify_heapam('$t')"),
			'0', "$label: verify_heapam of $t on the standby finds nothing");
	}
	is($primary->safe_psql('postgres', sl_digest_sql('s_apply')),
		$primary->safe_psql('postgres', sl_digest_sql('s_swap')),
		"$label: both modes made the same rows");
}

check_standby('first refresh');

# changes of every kind: a key changed in the batch, a key gone, a new key,
# duplicates resolved, speed rows changed
$primary->safe_psql('postgres', q{
	UPDATE batch SET n = n + 1 WHERE location IN ('city-1', 'city-2');
	DELETE FROM batch WHERE location = 'city-3';
	DELETE FROM batch WHERE location = 'dup' AND n = 2;
	INSERT INTO batch VALUES ('brand-new', 1, 1);
	UPDATE speed SET n = n + 10 WHERE location LIKE 'new-1%';
	DELETE FROM speed WHERE location = 'new-2';
});
my $res = $primary->safe_psql('postgres', q{
	SELECT target, status, changed_rows FROM serving_layer_refresh() ORDER BY target});
is($res, "s_apply|ok|1117\ns_swap|ok|", 'apply changed exactly the rows that differ');
check_standby('second refresh');

# a refresh in which nothing changed changes nothing in mode 'apply'
$res = $primary->safe_psql('postgres',
	q{SELECT changed_rows FROM serving_layer_refresh('s_apply')});
is($res, '0', 'an unchanged refresh changes no row');

# Readers of the standby while a 20 s query holds the table there and the
# primary refreshes it: the longest wait of a reader, in seconds, and the
# lock waits of readers the standby logged meanwhile (log_lock_waits).
sub standby_reader_wait
{
	my ($table) = @_;
	my $log_offset = -s $standby->logfile;
	my $long = $standby->background_psql('postgres');

	$long->query_until(qr/started/, qq{\\echo started
SELECT pg_sleep(20) FROM $table LIMIT 1;
});
	usleep(500_000);
	$primary->safe_psql('postgres', qq{
		UPDATE speed SET m = m + 1 WHERE location = 'city-10';
		SELECT count(*) FROM serving_layer_refresh('$table');
	});
	my $target_lsn = $primary->lsn('insert');
	my $worst = 0;
	my $deadline = now() + 40;
	my $replayed_at;

	# probe until the refresh has been replayed, and one second more
	while (now() < $deadline)
	{
		my $t0 = now();
		$standby->safe_psql('postgres',
			"SELECT count(*) FROM $table WHERE location = 'city-10'");
		my $wait = now() - $t0;
		$worst = $wait if $wait > $worst;
		if (!defined $replayed_at &&
			$standby->safe_psql('postgres',
				"SELECT pg_last_wal_replay_lsn() >= '$target_lsn'::pg_lsn") eq 't')
		{
			$replayed_at = now();
		}
		last if defined $replayed_at && now() > $replayed_at + 1;
		usleep(50_000);
	}
	ok(defined $replayed_at, "the refresh of $table was replayed on the standby");
	# the standby may have canceled the long query (and closed its session)
	local $SIG{PIPE} = 'IGNORE';
	eval { $long->quit; };
	my @lock_waits = grep { /still waiting for \w+Lock on relation/ }
	  split /\n/, slurp_file($standby->logfile, $log_offset);
	return ($worst, scalar @lock_waits);
}

my ($apply_wait, $apply_lock_waits) = standby_reader_wait('s_apply');
my ($swap_wait, $swap_lock_waits) = standby_reader_wait('s_swap');
diag(sprintf("longest standby reader wait during a refresh with a 20 s standby query: "
	. "apply %.3f s, swap %.3f s", $apply_wait, $swap_wait));
is($apply_lock_waits, 0, "no standby reader waits for a lock during an 'apply' refresh");
cmp_ok($swap_lock_waits, '>', 0,
	"standby readers wait for the lock a 'swap' refresh replays (the case mode 'apply' avoids)");
# The time bound.  A pause of the whole machine is no wait of a reader but
# could fail it (seen once in CI, when the probes were timed by the wall
# clock: a VM snapshot during this measurement made one probe take 6.9 s,
# with nothing logged); a probe over 1 s with no lock wait logged is
# therefore measured once more, and the figures shown.
if ($apply_wait >= 1.0 && $apply_lock_waits == 0)
{
	diag(sprintf("an 'apply' probe took %.3f s with no lock wait logged: measuring again",
		$apply_wait));
	($apply_wait, $apply_lock_waits) = standby_reader_wait('s_apply');
	diag(sprintf("again: %.3f s, %d lock wait(s) logged", $apply_wait, $apply_lock_waits));
}
cmp_ok($apply_wait, '<', 1.0, "standby readers never wait 1 s during an 'apply' refresh");
cmp_ok($swap_wait, '>', 1.0,
	"standby readers wait over 1 s behind a 'swap' refresh");

# max_standby_streaming_delay bounds a swap's stall on the standby (the long
# query is canceled instead)
$standby->append_conf('postgresql.conf', "max_standby_streaming_delay = 1s\n");
$standby->reload;
my ($bounded_wait) = standby_reader_wait('s_swap');
diag(sprintf("the same 'swap' refresh with max_standby_streaming_delay = 1s: %.3f s",
	$bounded_wait));
cmp_ok($bounded_wait, '<', 5.0, 'max_standby_streaming_delay bounds the stall of a swap');
$primary->safe_psql('postgres', 'SELECT count(*) FROM serving_layer_refresh()');
check_standby('after the reader runs');

# a refresh on the standby fails at once, leaving nothing behind
my $t0 = now();
my ($ret, $out, $err) = $standby->psql('postgres',
	q{SELECT * FROM serving_layer_refresh('s_apply')});
my $refused_after = now() - $t0;
like($err, qr/read-only|recovery/, 'a refresh on the standby is refused');
like($err, qr/25006|read-only/, 'with read_only_sql_transaction');
diag(sprintf("a refresh on the standby was refused after %.3f s", $refused_after));
cmp_ok($refused_after, '<', 2, 'a refresh on the standby is refused at once');
is($standby->safe_psql('postgres',
	q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'serving_layer%'}),
	'0', 'no worker was left on the standby');

# promoted (a failover), the standby refreshes in mode 'apply' as the
# primary did: the state the primary's last refresh left is not there
# (unlogged), so its first refresh compares in full, and the next one
# follows the change from the state that one left
is($primary->safe_psql('postgres', 'SELECT count(*) FROM serving_layer_apply_state'),
	'1', 'the primary has the state of s_apply');
$primary->stop;
$standby->promote;
is($standby->safe_psql('postgres', 'SELECT count(*) FROM serving_layer_apply_state'),
	'0', 'the promoted standby has no state of s_apply');
my $promoted_refresh = sub {
	my ($out, $err) = ('', '');
	$standby->psql('postgres', q{SET serving_layer."verbose" = on;
		SELECT status, changed_rows FROM serving_layer_refresh('s_apply')},
		stdout => \$out, stderr => \$err, on_error_die => 1);
	return ($out, $err);
};
$standby->safe_psql('postgres', q{UPDATE speed SET n = n + 1 WHERE location = 'new-10'});
($out, $err) = $promoted_refresh->();
is($out, 'ok|1', 'the promoted standby refreshes s_apply: one row changed');
unlike($err, qr/delta:/, '... comparing in full');
$standby->safe_psql('postgres', q{UPDATE speed SET n = n + 1 WHERE location = 'new-11'});
($out, $err) = $promoted_refresh->();
is($out, 'ok|1', 'and again: one row changed');
like($err, qr/delta:/, '... following the change');
$standby->safe_psql('postgres', 'SELECT serving_layer_refresh(\'s_swap\')');
is($standby->safe_psql('postgres', sl_digest_sql('s_apply')),
	$standby->safe_psql('postgres', sl_digest_sql('s_swap')),
	'the promoted standby\'s refreshes in both modes made the same rows');

$standby->stop;
done_testing();
