# test/lib/ServingLayerReplication.pm
#
# Helpers shared by the TAP tests that replicate serving tables to another
# node (test/t/100_standby.pl: a streaming standby; 110_logical.pl: a
# logical subscriber), so that both start from the same primary and the
# same layers and compare the nodes the same way.
#
# The layers: batch and speed (location text, n bigint, m bigint); the batch
# has keys city-1 .. city-N (n = i, m = i % 7), a NULL key and the key 'dup'
# twice; the speed layer has M keys the batch has too (city-10, city-20,
# ...) and M keys of its own (new-1 .. new-M), each with n = m = 1.

package ServingLayerReplication;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Cluster;

our @EXPORT = qw(sl_primary sl_layers_sql sl_digest_sql);

# sl_primary(name, allows_streaming)
# A started primary (allows_streaming: 1 for a streaming standby, 'logical'
# for a subscriber), with max_worker_processes = 16 as on the clusters of
# test/run-tests.sh (the extension starts background workers of its own).
sub sl_primary
{
	my ($name, $allows_streaming) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);

	$node->init(allows_streaming => $allows_streaming);
	$node->append_conf('postgresql.conf', "max_worker_processes = 16\n");
	$node->start;
	return $node;
}

# sl_layers_sql(batch_keys, speed_keys)
# SQL that creates and fills the two layers (see above).
sub sl_layers_sql
{
	my ($batch_keys, $speed_keys) = @_;

	return qq{
	CREATE TABLE batch (location text, n bigint, m bigint);
	CREATE TABLE speed (location text, n bigint, m bigint);
	INSERT INTO batch SELECT 'city-' || i, i, i % 7 FROM generate_series(1, $batch_keys) i;
	INSERT INTO batch VALUES (NULL, 5, 5), ('dup', 1, 1), ('dup', 2, 2);
	INSERT INTO speed SELECT 'city-' || (i * 10), 1, 1 FROM generate_series(1, $speed_keys) i;
	INSERT INTO speed SELECT 'new-' || i, 1, 1 FROM generate_series(1, $speed_keys) i;
};
}

# sl_digest_sql(relation)
# A query giving the row count and an md5 of every row of a relation (a
# table name, or a subquery in parentheses) with a location column, in
# location order: equal digests, equal rows.  An empty relation gives "0:".
sub sl_digest_sql
{
	my ($from) = @_;

	return qq{SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY location)), '')
	FROM $from t};
}

1;
