# test/t/090_key_pass.pl
#
# The C merge's first pass over the batch keys runs in the leader and one
# parallel worker when the batch table is large (4096 pages or more) and
# has statistics (key_pass.c).  Each way it can go must give the rows of
# the GROUP BY path: with the worker; with no worker to be had
# (max_parallel_workers = 0: the leader reads it all); not tried
# (max_parallel_maintenance_workers = 0); and abandoned for the serial pass
# when the table has grown far past its statistics.  The batch holds
# duplicate keys at both ends of the table, so that the two participants
# each read one copy, and NULL keys.  Which way it went is read from
# serving_layer.verbose's build line.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('key_pass');
$node->init;
$node->append_conf('postgresql.conf', "max_parallel_maintenance_workers = 2\n");
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION serving_layer;
CREATE TABLE batch (k text, n bigint, m integer);
CREATE TABLE speed (k text, n bigint, m integer);
INSERT INTO batch VALUES (NULL, 1, 1), ('dup-1', 1, 5);
INSERT INTO batch SELECT 'k' || i, i, i % 1000 FROM generate_series(1, 900000) i;
INSERT INTO batch SELECT 'k' || i, 1, -i FROM generate_series(1, 100) i;
INSERT INTO batch VALUES (NULL, 2, 0), ('dup-1', 10, 3);
INSERT INTO speed SELECT 'k' || (i * 90), 1000, -5 FROM generate_series(1, 10000) i;
INSERT INTO speed SELECT 'new' || i, 1, 1 FROM generate_series(1, 1000) i;
INSERT INTO speed VALUES (NULL, 100, 100);
ANALYZE batch;
ANALYZE speed;
SELECT serving_layer_define('fast', 'batch', 'speed', merge => '{"m": "min"}');
SELECT serving_layer_define('slow', 'batch', 'speed', merge => '{"m": "min"}');
});
cmp_ok($node->safe_psql('postgres', q{SELECT relpages FROM pg_class WHERE relname = 'batch'}),
	'>=', 4096, 'the batch table is large enough for a parallel first pass');

# Refresh 'fast' with $settings and serving_layer.verbose, 'slow' by GROUP
# BY; return how 'fast' was merged and the rows that differ.
sub refresh_both
{
	my ($settings, $name) = @_;
	my ($stdout, $stderr);
	my $ret = $node->psql(
		'postgres', qq{
$settings
SET serving_layer."verbose" = on;
SELECT output_rows FROM serving_layer_refresh('fast');
SET serving_layer."verbose" = off;
SET serving_layer.fast_merge = off;
SELECT output_rows FROM serving_layer_refresh('slow');
SELECT (SELECT count(*) FROM (TABLE fast EXCEPT ALL TABLE slow) a)
	 + (SELECT count(*) FROM (TABLE slow EXCEPT ALL TABLE fast) b);
},
		stdout        => \$stdout,
		stderr        => \$stderr,
		on_error_stop => 1);
	is($ret, 0, "$name: both refreshes succeed");
	my ($merged) = $stderr =~ /refresh of fast: build: .*, merged (.*), \d+\.\d ms/;
	my @out = split /\n/, $stdout;
	is($out[0], $out[1], "$name: as many rows in C as by GROUP BY");
	is($out[2], '0', "$name: the same rows");
	return ($merged // "(no build line: $stderr)", $out[0]);
}

my ($merged, $rows) = refresh_both('', 'parallel');
is($merged, 'in C, first pass with a parallel worker', 'parallel: a worker took part');
is($rows, 900000 + 2 + 1000, 'parallel: one row per key');
is( $node->safe_psql(
		'postgres', q{SELECT coalesce(k, 'NULL') || ',' || n || ',' || m FROM fast
WHERE k IN ('k90', 'dup-1') OR k IS NULL ORDER BY 1}),
	"NULL,103,0\ndup-1,11,3\nk90,1091,-90",
	'parallel: a key of both ends of the batch and of speed, a duplicate, the NULL key');

($merged) = refresh_both('SET max_parallel_workers = 0;', 'no worker');
is($merged, 'in C', 'no worker to be had: the leader reads the whole table');

($merged) = refresh_both('SET max_parallel_maintenance_workers = 0;', 'not tried');
is($merged, 'in C', 'max_parallel_maintenance_workers = 0: the serial pass');

# The table grows to three times what its statistics say: the shared set,
# sized from them, fills up, the parallel pass is abandoned and the serial
# one runs.
$node->safe_psql('postgres',
	q{INSERT INTO batch SELECT 'g' || i, 1, 1 FROM generate_series(1, 1800000) i});
($merged, $rows) = refresh_both('', 'stale statistics');
is($merged, 'in C', 'stale statistics: back to the serial pass');
is($rows, 2700000 + 2 + 1000, 'stale statistics: one row per key');

$node->stop;
done_testing();
