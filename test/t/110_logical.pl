# test/t/110_logical.pl
#
# Logical replication of serving tables: a publisher and a subscriber.
#  - mode 'apply': after every refresh (keys changed, added and gone in
#    either layer, duplicates, a NULL key) the subscriber's copy converges to
#    exactly the publisher's rows, which are the rows a swap makes;
#  - mode 'swap' of a published table is refused (0A000) before any work,
#    so the subscriber is never silently left on old rows.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ServingLayerReplication;

my $pub = sl_primary('publisher', 'logical');

my $sub = PostgreSQL::Test::Cluster->new('subscriber');
$sub->init;
$sub->start;

my $schema = q{CREATE TABLE s_apply (location text, n bigint, m bigint);
	CREATE TABLE s_swap (location text, n bigint, m bigint);};

$pub->safe_psql('postgres', q{
	CREATE EXTENSION serving_layer;}
	. sl_layers_sql(2000, 100) . qq{
	$schema
	-- a NULL key cannot be in a primary key: the whole row identifies it
	ALTER TABLE s_apply REPLICA IDENTITY FULL;
	CREATE INDEX ON s_apply (location);
	SELECT serving_layer_define('s_apply', 'batch', 'speed', mode => 'apply');
	SELECT serving_layer_define('s_swap', 'batch', 'speed', mode => 'swap');
	CREATE PUBLICATION p FOR TABLE s_apply, s_swap;
});
$sub->safe_psql('postgres', $schema);
$sub->safe_psql('postgres',
	"CREATE SUBSCRIPTION s CONNECTION '" . $pub->connstr . " dbname=postgres' PUBLICATION p");
$sub->wait_for_subscription_sync($pub, 's');

my $digest = sl_digest_sql('s_apply');
# what a swap would make: the merge by GROUP BY, computed here
my $expected = sl_digest_sql(q{(SELECT location, sum(n) AS n, sum(m) AS m
		  FROM (SELECT * FROM batch UNION ALL SELECT * FROM speed) u
		  GROUP BY location)});

my @rounds = (
	'first refresh: the table is filled by INSERTs' => '',
	'batch keys changed, gone and new' => q{
		UPDATE batch SET n = n + 1 WHERE location IN ('city-1', 'city-2', 'dup');
		DELETE FROM batch WHERE location IN ('city-3', 'city-20');
		INSERT INTO batch VALUES ('brand-new', 1, 1), (NULL, 1, 1);},
	'speed rows changed, gone and new' => q{
		UPDATE speed SET m = m + 5 WHERE location LIKE 'new-1%';
		DELETE FROM speed WHERE location IN ('new-2', 'city-30');
		INSERT INTO speed VALUES ('new-x', 9, 9), ('city-4', 1, 1);},
	'nothing changed' => '',
	'the batch reloaded with other values (TRUNCATE and INSERT)' => q{
		TRUNCATE batch;
		INSERT INTO batch SELECT 'city-' || i, 2 * i, i % 5 FROM generate_series(1, 2500) i;},
	'both layers emptied' => q{TRUNCATE batch; TRUNCATE speed;},
	'refilled' => q{INSERT INTO batch VALUES ('a', 1, 1), (NULL, 2, 2);},
);
while (my ($label, $change) = splice(@rounds, 0, 2))
{
	$pub->safe_psql('postgres', $change) if $change ne '';
	my $status = $pub->safe_psql('postgres', q{
		SET serving_layer.min_batch_fraction = 0;
		SELECT status FROM serving_layer_refresh('s_apply')});
	is($status, 'ok', "$label: the refresh ran");
	$pub->wait_for_catchup('s');
	my $want = $pub->safe_psql('postgres', $expected);
	is($pub->safe_psql('postgres', $digest), $want, "$label: the publisher has the merge's rows");
	is($sub->safe_psql('postgres', $digest), $want, "$label: the subscriber converged");
}

# a swap of a published table is refused before any work
my ($ret, $out, $err) = $pub->psql('postgres',
	q{SELECT * FROM serving_layer_refresh('s_swap')},
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/0A000/, "a 'swap' refresh of a published table fails with 0A000");
like($err, qr/mode 'apply'/, 'its hint names mode apply');
is($pub->safe_psql('postgres', 'SELECT count(*) FROM s_swap'), '0',
	'the published table was not swapped');

$sub->stop;
$pub->stop;
done_testing();
