# test/t/035_standby.pl
#
# On a hot standby every transaction is read-only, and the history worker a
# failed refresh would start can never run (dynamic workers start once
# recovery is over).  So every function that writes fails at once with
# read_only_sql_transaction (25006), before any work: no wait for a worker,
# and no worker registered that would, after a promotion, record failures
# that never happened.  Reading works: the serving table and the
# definitions replicate like any table.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->start;
$primary->safe_psql('postgres', q{
	CREATE EXTENSION serving_layer;
	CREATE TABLE batch_layer (location text, count_id bigint);
	CREATE TABLE speed_layer (location text, count_id bigint);
	INSERT INTO batch_layer VALUES ('oslo', 1), ('lima', 2);
	INSERT INTO speed_layer VALUES ('oslo', 10);
	SELECT serving_layer_define('serving', 'batch_layer', 'speed_layer');
	SELECT count(*) FROM serving_layer_refresh('serving');
});
$primary->backup('backup');

my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'backup', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

is($standby->safe_psql('postgres', 'SELECT location, count_id FROM serving ORDER BY 1'),
	"lima|2\noslo|11", 'the standby reads the serving table');
is($standby->safe_psql('postgres', 'SELECT target FROM serving_layer_definitions'),
	'serving', 'the standby reads the definitions');

# Each writing function, called on the standby: 25006 at once.
my @calls = (
	[ 'refresh of a target', q{SELECT * FROM serving_layer_refresh('serving')} ],
	[ 'refresh of every target', q{SELECT * FROM serving_layer_refresh()} ],
	[ 'refresh of an undefined target', q{SELECT * FROM serving_layer_refresh('nothing')} ],
	[ 'define', q{SELECT serving_layer_define('other', 'batch_layer', 'speed_layer')} ],
	[ 'forget', q{SELECT serving_layer_forget('serving')} ],
);
foreach my $call (@calls)
{
	my ($name, $sql) = @$call;
	my $t0 = time;
	my ($rc, $out, $err) = $standby->psql('postgres',
		"\\set VERBOSITY verbose\n$sql");
	my $secs = time - $t0;
	isnt($rc, 0, "$name on the standby fails");
	like($err, qr/ERROR:  25006: cannot execute serving_layer_\w+\(\) in a read-only transaction/,
		"$name on the standby: read_only_sql_transaction");
	unlike($err, qr/WARNING/, "$name on the standby: no warning");
	cmp_ok($secs, '<', 5, "$name on the standby fails at once ($secs s)");
}

# Many refreshes: none leaves a worker registration behind (they would use
# up max_worker_processes, and would all start at a promotion).
my $t0 = time;
for (1 .. 20)
{
	$standby->psql('postgres', q{SELECT * FROM serving_layer_refresh('serving')});
}
my $secs = time - $t0;
cmp_ok($secs, '<', 10, "20 refreshes on the standby take well under 10 s each ($secs s in all)");

# After a promotion, nothing of the refused calls is recorded: there was
# no worker waiting to start.  (The history has the primary's one 'ok' row.)
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'the standby was not promoted';
sleep 3;
is($standby->safe_psql('postgres',
		q{SELECT string_agg(status, ',' ORDER BY started_at) FROM serving_layer_history}),
	'ok', 'after the promotion, no failure of the refused calls is recorded');
is($standby->safe_psql('postgres', q{SELECT status FROM serving_layer_refresh('serving')}),
	'ok', 'after the promotion, a refresh works');

done_testing();
