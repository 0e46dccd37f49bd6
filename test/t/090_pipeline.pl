# test/t/090_pipeline.pl
#
# A Lambda pipeline with real clients, end to end.  pgbench clients stream
# events of the current simulated hour: each transaction inserts the event
# into an events table and upserts the speed layer per (key, hour) with
# INSERT ... ON CONFLICT DO UPDATE, the statement Kafka Connect's and
# Flink's JDBC sinks send.  Meanwhile a loop advances the hour, rebuilds the
# batch layer over the complete hours the way dbt's table materialization
# does (x__dbt_tmp built, x renamed to x__dbt_backup, x__dbt_tmp renamed to
# x, commit, DROP x__dbt_backup CASCADE), and refreshes every definition.
# Two definitions read the same speed layer: one whose batch job records its
# boundary with serving_layer_set_boundary() as a dbt post-hook would, one
# relying on the derived boundary.
#
# What must hold:
#   - during the stream, after each refresh, the serving table equals the
#     events grouped by (key, hour) up to the boundary and counts no more
#     than the events after it (a refresh in read committed); in a
#     repeatable read transaction, where the refresh and the check share a
#     snapshot, it equals them exactly; the live view equals them exactly at
#     any moment;
#   - each refresh returns the boundary the batch covers;
#   - once the stream stops and the batch catches up, the serving tables and
#     the live views equal the events grouped exactly (EXCEPT ALL both ways
#     and a digest): no event lost, none counted twice;
#   - no refresh failed (no history row other than 'ok'), no pgbench error,
#     every pgbench transaction is one event;
#   - a late event (an hour the batch already covers) is ignored by the
#     serving table and the live view until the batch covers it.
#
# The stream reads the current hour with FOR SHARE, so advancing the clock
# waits for the transactions of the hour that ends: the batch built after it
# sees every event of the complete hours, and the checks above can be exact.
# Late data is then tested on purpose, at the end.
#
# Every refresh mode ('swap', 'apply') is run in a database of its own.

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

# The refresh modes this test runs, each in a database of its own.
my @modes = ('swap', 'apply');

# The stream: clients, seconds, total rate, keys.  The loop: at most
# $max_rounds rounds of about $round_secs each, and never past the stream's
# end plus $grace seconds.
my $clients    = 3;
my $stream_secs = 20;
my $rate       = 150;
my $keys       = 40;
my $round_secs = 1.2;
my $max_rounds = 40;
my $grace      = 60;

my $node = PostgreSQL::Test::Cluster->new('pipeline');
$node->init;
$node->start;

my $pgbench_script = PostgreSQL::Test::Utils::tempdir() . '/stream.sql';
PostgreSQL::Test::Utils::append_to_file(
	$pgbench_script, qq{
\\set k random(1, $keys)
\\set n random(1, 5)
BEGIN;
SELECT hour AS h FROM clock FOR SHARE \\gset
INSERT INTO events (key, hour, n) VALUES ('k' || :k, :h, :n);
INSERT INTO speed (key, hour, n) VALUES ('k' || :k, :h, :n)
	ON CONFLICT (key, hour) DO UPDATE SET n = speed.n + EXCLUDED.n;
COMMIT;
});

# The events grouped by (key, hour): what the serving layer must show.
my $events_grouped = 'SELECT key, hour, sum(n)::bigint AS n FROM events GROUP BY key, hour';

# An SQL expression: the rows of $rel (key, hour, n) not in $ref plus those
# of $ref not in $rel, both restricted by $where.
sub diff_sql
{
	my ($rel, $ref, $where) = @_;
	$where //= 'true';
	return "(SELECT count(*) FROM ((SELECT key, hour, n FROM $rel WHERE $where"
	  . " EXCEPT ALL SELECT key, hour, n FROM ($ref) r WHERE $where)"
	  . " UNION ALL (SELECT key, hour, n FROM ($ref) r WHERE $where"
	  . " EXCEPT ALL SELECT key, hour, n FROM $rel WHERE $where)) d)";
}

# An SQL expression: the rows of $rel after the boundary $b (NULL: every row)
# that count more than the events of their key and hour.
sub over_sql
{
	my ($rel, $b) = @_;
	my $after = defined $b ? "s.hour > $b" : 'true';
	return "(SELECT count(*) FROM $rel s WHERE $after AND s.n > coalesce("
	  . '(SELECT sum(e.n) FROM events e WHERE e.key = s.key AND e.hour = s.hour), 0))';
}

# A digest of (key, hour, n) rows, to compare whole tables at a glance.
sub digest_sql
{
	my ($rel) = @_;
	return "(SELECT count(*) || ' rows, sum ' || coalesce(sum(n), 0) || ', md5 '"
	  . " || md5(coalesce(string_agg(key || ':' || hour || ':' || n, ',' ORDER BY key, hour), ''))"
	  . " FROM ($rel) x)";
}

# One dbt run of the batch model $table over the hours up to $hour: build
# $table__dbt_tmp, rename, run the post-hook inside the transaction, commit;
# optionally refresh before the backup is dropped (a refresh between dbt's
# rename and its drop); then drop the backup with CASCADE.  Returns the
# refresh's result rows, if one ran.
sub dbt_run
{
	my ($db, $table, $hour, %opt) = @_;
	my $hook = $opt{post_hook} ? "$opt{post_hook};" : '';
	$node->safe_psql(
		$db, qq{
BEGIN;
CREATE TABLE ${table}__dbt_tmp AS
	SELECT key, hour, sum(n)::bigint AS n FROM events WHERE hour <= $hour GROUP BY key, hour;
ALTER TABLE $table RENAME TO ${table}__dbt_backup;
ALTER TABLE ${table}__dbt_tmp RENAME TO $table;
$hook
COMMIT;
});
	my $between = '';
	$between = refresh_rows($db) if $opt{refresh_between};
	$node->safe_psql($db, "DROP TABLE ${table}__dbt_backup CASCADE");
	return $between;
}

# Refresh every definition in read committed; returns "target|status|boundary"
# lines.
sub refresh_rows
{
	my ($db) = @_;
	return $node->safe_psql($db,
		q{SELECT target || '|' || status || '|' || coalesce(boundary, 'none') FROM serving_layer_refresh() ORDER BY target COLLATE "C"});
}

# The boundary each target should have used: the explicit one for serving,
# the greatest batch hour for serving_derived.
sub expected_boundaries
{
	my ($db, $explicit) = @_;
	my $derived = $node->safe_psql($db, q{SELECT coalesce(max(hour)::text, 'none') FROM batch_derived});
	return "serving|ok|$explicit\nserving_derived|ok|$derived";
}

# The pipeline in one refresh mode.
sub run_pipeline
{
	my ($mode) = @_;
	my $db = "pipeline_$mode";
	my @problems;
	my $problem = sub { push @problems, join(' ', @_); };

	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql(
		$db, qq{
CREATE EXTENSION serving_layer;
CREATE TABLE clock (id int PRIMARY KEY CHECK (id = 1), hour int NOT NULL);
INSERT INTO clock VALUES (1, 1);
CREATE TABLE events (id bigserial PRIMARY KEY, key text NOT NULL, hour int NOT NULL, n int NOT NULL);
-- the speed layer, as a JDBC sink in upsert mode with primary key (key, hour) keeps it
CREATE TABLE speed (key text, hour int, n bigint NOT NULL, PRIMARY KEY (key, hour));
-- dbt's first run: the batch models over no complete hour yet
CREATE TABLE batch AS SELECT key, hour, sum(n)::bigint AS n FROM events WHERE false GROUP BY key, hour;
CREATE TABLE batch_derived AS SELECT key, hour, sum(n)::bigint AS n FROM events WHERE false GROUP BY key, hour;
SELECT serving_layer_define('serving', 'batch', 'speed', key => '{key,hour}',
	time_column => 'hour', live_view => 'serving_live', mode => '$mode');
SELECT serving_layer_define('serving_derived', 'batch_derived', 'speed', key => '{key,hour}',
	time_column => 'hour', live_view => 'serving_derived_live', mode => '$mode');
});
	is($node->safe_psql($db, q{SELECT string_agg(target || ' ' || mode, ', ' ORDER BY target) FROM serving_layer_definitions}),
		"serving $mode, serving_derived $mode", "$mode: both definitions, in mode $mode");
	is(refresh_rows($db), "serving|ok|none\nserving_derived|ok|none",
		"$mode: the first refresh, of empty layers, has no boundary");
	my $oids = $node->safe_psql($db, q{SELECT 'serving'::regclass::oid || ' ' || 'serving_derived'::regclass::oid});

	# The stream.
	my ($out, $err) = ('', '');
	my $stream = IPC::Run::start(
		[
			'pgbench', '-n', '-f', $pgbench_script, '-c', $clients, '-j', $clients,
			'-T', $stream_secs, '-R', $rate, $node->connstr($db)
		],
		'>', \$out, '2>', \$err);
	my $started  = time();
	my $deadline = $started + $stream_secs + $grace;
	my ($rounds, $exact_rounds, $live_checks, $between_refreshes, $boundary) = (0, 0, 0, 0, 'none');

	while ($rounds < $max_rounds && time() < $deadline)
	{
		usleep(int($round_secs * 1_000_000));
		last unless $stream->pumpable;
		$stream->pump_nb;
		$rounds++;

		# The hour ends: the clock moves on once the hour's transactions are
		# committed; the hour before it is complete.
		my $complete = $node->safe_psql($db, 'UPDATE clock SET hour = hour + 1 RETURNING hour - 1');

		# At any moment the live view shows every event, counted once.
		foreach my $v ('serving_live', 'serving_derived_live')
		{
			my $d = $node->safe_psql($db, 'SELECT ' . diff_sql($v, $events_grouped));
			$problem->("round $rounds: $v differs from the events by $d rows") if $d ne '0';
			$live_checks++;
		}

		# The batch jobs, dbt's way; every third round a refresh runs between
		# the rename and the drop of the backup.
		my $between = dbt_run($db, 'batch', $complete,
			post_hook       => "SELECT serving_layer_set_boundary('serving', '$complete')",
			refresh_between => $rounds % 3 == 0);
		$boundary = $complete;
		if ($between ne '')
		{
			$between_refreshes++;
			# batch_derived is not rebuilt yet: its boundary is the old one
			my $want = expected_boundaries($db, $boundary);
			$problem->("round $rounds: refresh between rename and drop returned\n$between\nwanted\n$want")
			  if $between ne $want;
		}
		dbt_run($db, 'batch_derived', $complete);

		# Old speed rows, which the batch covers, may go (retention).
		$node->safe_psql($db, 'DELETE FROM speed WHERE hour < ' . ($complete - 1));

		if ($rounds % 2 == 1)
		{
			# A refresh as pg_cron runs it (read committed): exact up to the
			# boundary, never more than the events after it.
			my $got  = refresh_rows($db);
			my $want = expected_boundaries($db, $boundary);
			$problem->("round $rounds: refresh returned\n$got\nwanted\n$want") if $got ne $want;
			foreach my $line (split /\n/, $got)
			{
				my ($t, $status, $b) = split /\|/, $line;
				my $bb = $b eq 'none' ? undef : $b;
				my $le = defined $bb ? "hour <= $bb" : 'false';
				my $r = $node->safe_psql($db,
					'SELECT ' . diff_sql($t, $events_grouped, $le) . " || ' ' || " . over_sql($t, $bb));
				$problem->("round $rounds: $t after a refresh at boundary $b: rows differing up to it, rows over-counted after it: $r")
				  if $r ne '0 0';
			}
		}
		else
		{
			# In one repeatable read transaction the refresh and the check
			# share a snapshot: the serving tables and live views equal the
			# events exactly.
			my $r = $node->safe_psql(
				$db, qq{
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT string_agg(target || '|' || status || '|' || coalesce(boundary, 'none'), E'\\n' ORDER BY target COLLATE "C") FROM serving_layer_refresh();
SELECT } . join(" || ' ' || ",
					map { diff_sql($_, $events_grouped) } qw(serving serving_derived serving_live serving_derived_live)) . q{;
COMMIT;});
			my ($got, $diffs) = ($r =~ /^(.*\n.*)\n(.*)$/);
			my $want = expected_boundaries($db, $boundary);
			$problem->("round $rounds: refresh returned\n" . ($got // $r) . "\nwanted\n$want")
			  if ($got // '') ne $want;
			$problem->("round $rounds: serving, serving_derived and their live views differ from the events, in one snapshot, by: "
				  . ($diffs // $r))
			  if ($diffs // '') ne '0 0 0 0';
			$exact_rounds++;
		}
	}

	# The stream ends on its own (-T); wait for it, bounded.
	my $stopped = eval {
		local $SIG{ALRM} = sub { die "timeout\n" };
		alarm($grace);
		$stream->finish;
		alarm(0);
		1;
	};
	if (!$stopped)
	{
		$stream->kill_kill;
		fail("$mode: pgbench ended within ${grace}s of its end") or diag($@);
	}
	my $pgbench_rc = $stream->result(0);
	my $stream_secs_run = sprintf('%.1f', time() - $started);

	# The batch catches up: the clock moves past the last hour, which is
	# then complete, and both batch jobs and a refresh run.
	my $last = $node->safe_psql($db, 'UPDATE clock SET hour = hour + 1 RETURNING hour - 1');
	dbt_run($db, 'batch', $last, post_hook => "SELECT serving_layer_set_boundary('serving', '$last')");
	dbt_run($db, 'batch_derived', $last);
	is(refresh_rows($db), expected_boundaries($db, $last), "$mode: the catch-up refresh uses the last hour as boundary");

	is($pgbench_rc, 0, "$mode: pgbench exits with status 0") or diag("stdout:\n$out\nstderr:\n$err");
	like($out, qr/^number of failed transactions: 0 /m, "$mode: pgbench reports no failed transaction")
	  or diag($out);
	unlike($err, qr/error|abort/i, "$mode: pgbench reports no error and no aborted client") or diag($err);
	my ($tx) = ($out =~ /^number of transactions actually processed: (\d+)/m);
	is($node->safe_psql($db, 'SELECT count(*) FROM events'), $tx // 'pgbench did not say',
		"$mode: one event per pgbench transaction");
	my $hours = $node->safe_psql($db, 'SELECT count(DISTINCT hour) FROM events');
	cmp_ok($rounds, '>=', 5, "$mode: the loop ran at least 5 rounds while the stream ran");
	cmp_ok($between_refreshes, '>=', 1, "$mode: at least one refresh ran between dbt's rename and its drop");
	cmp_ok($hours, '>=', 5, "$mode: the events span at least 5 hours");
	is(join("\n", @problems), '', "$mode: every check during the stream held ($rounds rounds, $exact_rounds in one snapshot, $live_checks live view checks)");

	# The end state: exactly the events, by every measure.
	my $ref_digest = $node->safe_psql($db, 'SELECT ' . digest_sql($events_grouped));
	foreach my $rel (qw(serving serving_derived serving_live serving_derived_live))
	{
		is($node->safe_psql($db, 'SELECT ' . diff_sql($rel, $events_grouped)), '0',
			"$mode: $rel equals the events grouped by (key, hour) (EXCEPT ALL both ways)");
		is($node->safe_psql($db, 'SELECT ' . digest_sql("SELECT key, hour, n FROM $rel")), $ref_digest,
			"$mode: $rel has the events' digest");
	}
	is($node->safe_psql($db, q{SELECT count(*) FROM serving_layer_history WHERE status <> 'ok'}), '0',
		"$mode: no refresh failed or was skipped");
	is($node->safe_psql($db, q{SELECT boundary FROM serving_layer_definitions WHERE target = 'serving'}), $last,
		"$mode: serving_layer_definitions shows the boundary the batch job set");

	# A late event, for an hour the batch already covers: the speed layer
	# has it, the serving table and the live view ignore it until the batch
	# covers it.
	$node->safe_psql(
		$db, q{
INSERT INTO events (key, hour, n) VALUES ('late', 2, 7);
INSERT INTO speed (key, hour, n) VALUES ('late', 2, 7)
	ON CONFLICT (key, hour) DO UPDATE SET n = speed.n + EXCLUDED.n;
});
	my $on_time = "SELECT key, hour, sum(n)::bigint AS n FROM events WHERE key <> 'late' GROUP BY key, hour";
	is(refresh_rows($db), expected_boundaries($db, $last), "$mode: a refresh after the late event");
	foreach my $rel (qw(serving serving_derived serving_live serving_derived_live))
	{
		is($node->safe_psql($db, 'SELECT ' . diff_sql($rel, $on_time)), '0',
			"$mode: $rel ignores the late event before the boundary");
	}
	dbt_run($db, 'batch', $last + 1, post_hook => "SELECT serving_layer_set_boundary('serving', '" . ($last + 1) . "')");
	dbt_run($db, 'batch_derived', $last + 1);
	refresh_rows($db);
	foreach my $rel (qw(serving serving_derived serving_live serving_derived_live))
	{
		is($node->safe_psql($db, 'SELECT ' . diff_sql($rel, $events_grouped)), '0',
			"$mode: $rel counts the late event once the batch covers it");
	}
	is($node->safe_psql($db, q{SELECT count(*) FROM serving_layer_history WHERE status <> 'ok'}), '0',
		"$mode: still no refresh failed");
	is($node->safe_psql($db, q{SELECT 'serving'::regclass::oid || ' ' || 'serving_derived'::regclass::oid}), $oids,
		"$mode: the serving tables kept their identity through every refresh");
	is($node->safe_psql($db, 'SELECT count(*) FROM serving_layer_history WHERE changed_rows IS '
			  . ($mode eq 'apply' ? 'NULL' : 'NOT NULL')),
		'0', "$mode: changed_rows is " . ($mode eq 'apply' ? 'counted by every refresh' : 'NULL'));

	my $refreshes = $node->safe_psql($db, q{SELECT count(*) FROM serving_layer_history WHERE target = 'serving'});
	note("$mode: pgbench -c $clients -T $stream_secs -R $rate: $tx transactions in ${stream_secs_run}s, "
		  . "$hours hours, $rounds rounds ($exact_rounds in one snapshot, $between_refreshes refreshes between rename and drop), "
		  . "$refreshes refreshes of serving, end state $ref_digest");
	diag("$mode: $tx events over $hours hours, $rounds rounds, $refreshes refreshes per target, all exact");
	return;
}

run_pipeline($_) foreach @modes;

$node->stop;
done_testing();
