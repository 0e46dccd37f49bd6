# test/t/045_retire.pl
#
# The old storage of a large serving table (64MB or more) is not dropped
# under the serving table's exclusive lock: it is renamed
# pg_temp_<oid>_retired_<xid> and a background worker drops it once the
# refresh's transaction is over.  Checks that the worker drops it after a
# commit, that nothing is left after a rollback, and that a retired heap
# left behind (here: its worker terminated before the commit) is dropped by
# the next refresh.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('retire');
$node->init;
$node->append_conf('postgresql.conf', "max_worker_processes = 16\n");
$node->start;

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
ok($node->poll_query_until('postgres',
	q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'serving_layer cleanup'}, 't'),
	'a cleanup worker waits for the refresh to end');
$node->safe_psql('postgres',
	q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'serving_layer cleanup'});
ok($node->poll_query_until('postgres',
	q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'serving_layer cleanup'}, 't'),
	'the cleanup worker is gone');
$bg->query_safe('COMMIT');
$bg->quit;
is($node->safe_psql('postgres', $retired_sql), '1',
	'without its worker, the retired heap is left after the commit');
is($node->safe_psql('postgres', "SELECT count_id FROM serving WHERE location = 'city-2'"),
	'3', 'the refresh committed');
$node->safe_psql('postgres', "SELECT count(*) FROM serving_layer_refresh('serving')");
ok($node->poll_query_until('postgres', $none_retired, 't'),
	'the next refresh drops the retired heap it finds');

# the TOAST table has its conventional name after all this
is($node->safe_psql('postgres',
	q{SELECT reltoastrelid::regclass::text = 'pg_toast.pg_toast_' || oid FROM pg_class WHERE relname = 'serving'}),
	't', 'the TOAST table is named after the serving table');

$node->stop;
done_testing();
