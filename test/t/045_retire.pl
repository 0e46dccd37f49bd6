# test/t/045_retire.pl
#
# The old storage of a large serving table (64MB or more) is not dropped
# under the serving table's exclusive lock: it is renamed
# pg_temp_<oid>_retired_<xid> and a background worker drops it once the
# refresh's transaction is over.  Checks that the worker drops it after a
# commit, that nothing is left after a rollback, that a retired heap left
# behind (here: its worker terminated before the commit) is dropped by the
# next refresh, also when a session holds it (the worker waits), and that
# a worker terminated in the COMMIT of its drop finishes it.
#
# The worker used to give up when it found the retired heap locked, leaving
# it until the next refresh; so it did when the committing backend,
# preempted on a loaded machine, had released its transaction lock but not
# yet the heap's (the "dropped after the commit" check then timed out; a
# session holding a retired heap left behind is how this test makes the
# worker find a lock every time).
# And a worker terminated in its COMMIT raised FATAL from its SIGTERM
# handler, then PANIC "cannot abort transaction N, it was already
# committed": a crash restart.  So no step may crash the server.  A crash
# restart leaves pg_postmaster_start_time() as it was; it is detected by
# the server log, and by a session opened at the start, which a crash
# restart would have ended.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('retire');
$node->init;
$node->append_conf('postgresql.conf', "max_worker_processes = 16\n");
$node->start;

my $keeper = $node->background_psql('postgres');
$keeper->set_query_timer_restart;
my $keeper_pid = $keeper->query_safe('SELECT pg_backend_pid()');

# ok when the server has not crashed: the log shows no crash restart and
# the session opened at the start is still connected
sub no_crash_restart
{
	my ($what) = @_;
	my $log = slurp_file($node->logfile);
	my $pid = eval { $keeper->query_safe('SELECT pg_backend_pid()') };

	unlike($log,
		qr/PANIC|terminated by signal|terminating any other active server processes/,
		"$what: the log shows no crash restart");
	is($pid, $keeper_pid, "$what: the first session is still connected");
	return;
}

$node->safe_psql('postgres', q{
	CREATE EXTENSION serving_layer;
	CREATE TABLE batch_layer (location text, count_id bigint, pad text);
	CREATE TABLE speed_layer (location text, count_id bigint, pad text);
	INSERT INTO batch_layer
		SELECT 'city-' || i, i, repeat('x', 40) FROM generate_series(1, 700000) i;
	INSERT INTO speed_layer VALUES ('city-1', 1, 'y');
	SELECT serving_layer_define('serving', 'batch_layer', 'speed_layer',
								key => '{location,pad}');
	SELECT count(*) FROM serving_layer_refresh('serving');
	CREATE INDEX ON serving (location);
});

my $size = $node->safe_psql('postgres',
	"SELECT pg_total_relation_size('serving') >= 64 * 1024 * 1024");
is($size, 't', 'the serving table takes 64MB or more');

my $retired_sql = q{SELECT count(*) FROM pg_class WHERE relname LIKE 'pg\_temp\_%\_retired\_%'};
my $none_retired = "SELECT ($retired_sql) = 0";

# the pid of the cleanup worker that waits for a refresh's open transaction
my $waiting_worker = q{SELECT pid FROM pg_stat_activity
	WHERE backend_type = 'serving_layer cleanup'
	AND query = 'waiting for a refresh to end' AND wait_event = 'transactionid'};

# after a commit, the worker drops the retired heap
$node->safe_psql('postgres', "SELECT count(*) FROM serving_layer_refresh('serving')");
ok($node->poll_query_until('postgres', $none_retired, 't'),
	'the retired heap is dropped after the commit');
is($node->safe_psql('postgres', 'SELECT count(*), sum(count_id) FROM serving'),
	'700001|245000350001', 'the serving table has the new contents');

# after a rollback there is nothing to drop, and the old contents stay
$node->safe_psql('postgres', q{
	UPDATE batch_layer SET count_id = count_id + 1 WHERE location = 'city-2';
	BEGIN;
	SELECT count(*) FROM serving_layer_refresh('serving');
	ROLLBACK;
});
ok($node->poll_query_until('postgres', $none_retired, 't'),
	'nothing retired is left after a rollback');
is($node->safe_psql('postgres', "SELECT count_id FROM serving WHERE location = 'city-2'"),
	'2', 'the rollback kept the old contents');

# a retired heap whose worker never ran is dropped by the next refresh
my $bg = $node->background_psql('postgres');
$bg->query_safe('BEGIN');
$bg->query_safe("SELECT count(*) FROM serving_layer_refresh('serving')");
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM ($waiting_worker) w", 't'),
	'a cleanup worker waits for the refresh to end');
my $worker = $node->safe_psql('postgres', $waiting_worker);
$node->safe_psql('postgres', "SELECT pg_terminate_backend($worker)");
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $worker", 't'),
	'the cleanup worker is gone');
$bg->query_safe('COMMIT');
$bg->quit;
is($node->safe_psql('postgres', $retired_sql), '1',
	'without its worker, the retired heap is left after the commit');
is($node->safe_psql('postgres', "SELECT count_id FROM serving WHERE location = 'city-2'"),
	'3', 'the refresh committed');

# the next refresh hands it to its worker; a session holding it (as
# autovacuum or a reader may) makes the worker wait, not give up
my $leftover = $node->safe_psql('postgres',
	q{SELECT relname FROM pg_class WHERE relname LIKE 'pg\_temp\_%\_retired\_%'});
my $reader = $node->background_psql('postgres');
$reader->query_safe("BEGIN; LOCK TABLE $leftover IN ACCESS SHARE MODE");
$node->safe_psql('postgres', "SELECT count(*) FROM serving_layer_refresh('serving')");
my $cleanup_waits = qq{SELECT a.pid FROM pg_locks l JOIN pg_stat_activity a USING (pid)
	WHERE a.backend_type = 'serving_layer cleanup'
	AND l.relation = '$leftover'::regclass AND l.mode = 'AccessExclusiveLock' AND NOT l.granted};
ok($node->poll_query_until('postgres', qq{SELECT EXISTS ($cleanup_waits)
	OR (($retired_sql) = 1 AND NOT EXISTS (SELECT FROM pg_stat_activity
		WHERE backend_type = 'serving_layer cleanup'))}, 't'),
	'the next cleanup worker has come to the retired heap left behind');
isnt($node->safe_psql('postgres', $cleanup_waits), '',
	'the cleanup worker waits for the session holding the retired heap');
$reader->query_safe('COMMIT');
$reader->quit;
ok($node->poll_query_until('postgres', $none_retired, 't'),
	'then the next refresh\'s worker drops the retired heap it found');
no_crash_restart('a worker terminated while waiting');

# a cleanup worker terminated in the COMMIT of its drop (the drop is
# visible, the worker still says it is dropping: it is unlinking the
# heap's files, which its COMMIT does last): a session polls for one every
# millisecond and terminates it
my $terminator = $node->background_psql('postgres');
$terminator->set_query_timer_restart;
my $terminated = 0;
for (my $attempt = 1; $attempt <= 3 && $terminated == 0; $attempt++)
{
	$terminator->query_until(qr/watching/, q{\echo watching
DO $$
DECLARE
	n int := 0;
	deadline timestamptz := clock_timestamp() + interval '120 s';
BEGIN
	WHILE n = 0 AND clock_timestamp() < deadline LOOP
		PERFORM pg_stat_clear_snapshot();
		SELECT count(pg_terminate_backend(pid)) INTO n
		FROM (SELECT pid FROM pg_stat_activity
			  WHERE backend_type = 'serving_layer cleanup'
			  AND query = 'dropping the old storage of a serving table'
			  AND NOT EXISTS (SELECT FROM pg_class
				  WHERE relname LIKE 'pg\_temp\_%\_retired\_%')
			  OFFSET 0) w;
		PERFORM pg_sleep(0.001);
	END LOOP;
	PERFORM set_config('retire_test.terminated', n::text, false);
END $$;
});
	$node->safe_psql('postgres', "SELECT count(*) FROM serving_layer_refresh('serving')");
	# a crash restart ends this session: then say so below, not die here
	$terminated = eval {
		$terminator->query_safe("SELECT current_setting('retire_test.terminated')");
	};
	if (!defined $terminated)
	{
		diag("the terminating session failed: $@");
		$terminated = -1;
	}
}
eval { $terminator->quit; };
ok($terminated != 0, 'a cleanup worker was terminated in its COMMIT');
no_crash_restart('a worker terminated in its COMMIT');
ok($node->poll_query_until('postgres', $none_retired, 't'),
	'the worker terminated in its COMMIT dropped the retired heap');

# the TOAST table has its conventional name after all this
is($node->safe_psql('postgres',
	q{SELECT reltoastrelid::regclass::text = 'pg_toast.pg_toast_' || oid FROM pg_class WHERE relname = 'serving'}),
	't', 'the TOAST table is named after the serving table');

no_crash_restart('at the end');
$keeper->quit;

# a fast shutdown terminates the workers too, maybe one in its COMMIT
$node->safe_psql('postgres', "SELECT count(*) FROM serving_layer_refresh('serving')");
$node->stop;
unlike(slurp_file($node->logfile), qr/PANIC|terminated by signal/,
	'the shutdown shows no crash');
done_testing();
