# test/t/050_pg_cron.pl
#
# Scheduled refreshes with pg_cron: a cluster that preloads pg_cron, a small
# layout defined with serving_layer_define(), and a job running
# "SELECT serving_layer_refresh()" every minute.  The first run (pg_cron has
# minute granularity, so it comes within about a minute) must succeed, create
# the serving table with the merged rows, and leave an 'ok' row in
# serving_layer_history; then the job is unscheduled.
#
# pg_cron connects to the server as the job's user with libpq; TAP clusters
# listen on a unix socket only, so cron.host points at the socket directory.
# Skipped when pg_cron is not installed.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

# How long to wait for the first run, in seconds: up to a minute until the
# next minute starts, plus start-up and run time.
my $max_wait = 130;

my $node = PostgreSQL::Test::Cluster->new('cron');
$node->init;

my $sharedir = $node->config_data('--sharedir');
plan skip_all => 'pg_cron is not installed'
  unless -f "$sharedir/extension/pg_cron.control";

my $host = $node->host;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.host = '$host'
});
$node->start;

is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'),
	'pg_cron', 'pg_cron is preloaded');

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION pg_cron;
CREATE EXTENSION serving_layer;
CREATE TABLE batch_sales (city text, orders bigint, amount numeric);
CREATE TABLE speed_sales (city text, orders bigint, amount numeric);
INSERT INTO batch_sales VALUES ('Lyon', 3, 30.5), ('Nice', 1, 10), ('Paris', 5, 50);
INSERT INTO speed_sales VALUES ('Lyon', 1, 2.5), ('Brest', 2, 7), ('Lyon', 1, 1);
SELECT serving_layer_define('sales', 'batch_sales', 'speed_sales',
                            merge => '{"amount": "max"}');
});

is($node->safe_psql('postgres', "SELECT to_regclass('sales') IS NULL"),
	't', 'the serving table does not exist before the first run');
is($node->safe_psql('postgres', 'SELECT count(*) FROM serving_layer_history'),
	'0', 'no refresh has been recorded yet');

my $jobid = $node->safe_psql('postgres',
	"SELECT cron.schedule('refresh-serving', '* * * * *', 'SELECT serving_layer_refresh()')"
);
like($jobid, qr/^\d+$/, 'cron.schedule returns a job id');
is( $node->safe_psql(
		'postgres',
		"SELECT jobname, schedule, command, database, active FROM cron.job WHERE jobid = $jobid"),
	'refresh-serving|* * * * *|SELECT serving_layer_refresh()|postgres|t',
	'the job is scheduled');

# Wait, bounded, for the first run of the job to finish one way or the other.
# (poll_query_until would wait 10 * timeout_default attempts of 0.1 s.)
my $finished = q{
SELECT count(*) > 0 FROM cron.job_run_details
WHERE jobid = %d AND status IN ('succeeded', 'failed')};
my $deadline = time() + $max_wait;
my $done     = 0;
while (time() < $deadline)
{
	if ($node->safe_psql('postgres', sprintf($finished, $jobid)) eq 't')
	{
		$done = 1;
		last;
	}
	usleep(500_000);
}
ok($done, "the job ran within $max_wait s");

my $runs = $node->safe_psql(
	'postgres', qq{
SELECT runid, status, coalesce(return_message, '') FROM cron.job_run_details
WHERE jobid = $jobid ORDER BY runid});
diag("cron.job_run_details (runid|status|return_message):\n$runs")
  if !$done || $runs =~ /\|failed\|/;

# The first run that finished must have succeeded; for a query pg_cron
# reports the number of rows: one, as there is one definition.
my $first = $node->safe_psql(
	'postgres', qq{
SELECT status || '|' || coalesce(return_message, '') FROM cron.job_run_details
WHERE jobid = $jobid AND status IN ('succeeded', 'failed')
ORDER BY runid LIMIT 1});
is($first, 'succeeded|1 row', 'the first run succeeded');
if ($first !~ /^succeeded/)
{
	# Nothing below can work; pg_cron logs why a connection failed.
	diag("the server log's last lines about cron jobs and errors:");
	my @log = grep { /cron|ERROR|FATAL|WARNING/ && !/LOG:  statement: / }
	  split /\n/, slurp_file($node->logfile);
	diag(join("\n", @log > 30 ? @log[-30 .. -1] : @log));
	$node->stop;
	done_testing();
	exit;
}

# What the run produced.
is( $node->safe_psql(
		'postgres', 'SELECT city, orders, amount FROM sales ORDER BY city'),
	"Brest|2|7\nLyon|5|30.5\nNice|1|10\nParis|5|50",
	'the serving table holds the merged rows');
is( $node->safe_psql(
		'postgres', q{
SELECT pg_get_userbyid(c.relowner) = j.username
FROM pg_class c, cron.job j
WHERE c.oid = 'sales'::regclass AND j.jobid = } . $jobid),
	't',
	'the serving table was created by the job, owned by its user');
is( $node->safe_psql(
		'postgres', q{
SELECT target, status, batch_rows, speed_rows, output_rows, error IS NULL,
       started_at <= finished_at
FROM serving_layer_history ORDER BY started_at LIMIT 1}),
	'sales|ok|3|3|4|t|t',
	'serving_layer_history has an ok row for the run');

# Unschedule: the job is gone.
is($node->safe_psql('postgres', "SELECT cron.unschedule('refresh-serving')"),
	't', 'cron.unschedule removes the job');
is($node->safe_psql('postgres', 'SELECT count(*) FROM cron.job'),
	'0', 'no job is left');

$node->stop;
done_testing();
