# test/t/060_dump_restore.pl
#
# Definitions survive pg_dump and restore.  They live in the extension's
# configuration table serving_layer_config, which pg_dump dumps with its rows
# (pg_extension_config_dump); batch and speed are regclass and must come back
# naming the same tables.  A database with two definitions -- one with
# explicit key, merge (including a user aggregate) and speed_columns, one with
# a schema-qualified quoted target owned by an ordinary role -- is refreshed
# once, dumped in custom format and restored with pg_restore into a new
# database, and dumped as plain SQL and restored with psql -f into another.
# In each restored database: the definitions are identical, the extension
# still owns its configuration table, the serving tables came back, and the
# next refresh works and gives the same contents as in the original.
# Last, a dump taken with the extension at version 1.1 restores at the
# default version with its definitions.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
$node->start;

my $tempdir = PostgreSQL::Test::Utils::tempdir;

$node->safe_psql('postgres', 'CREATE DATABASE orig');
$node->safe_psql(
	'orig', q{
CREATE EXTENSION serving_layer;
CREATE ROLE sl_owner;

-- One definition with everything explicit, in public: the speed table has
-- its own column names and an extra column, one measure merges with a user
-- aggregate, one with "speed".
CREATE AGGREGATE sl_total(bigint) (SFUNC = int8pl, STYPE = bigint);
CREATE TABLE batch_daily (day int, city text, orders bigint, amount numeric, note text);
CREATE TABLE speed_daily (d int, c text, n integer, amt numeric, remark text, extra text);
INSERT INTO batch_daily VALUES
	(1, 'Lyon', 3, 30.5, 'old'), (1, 'Nice', 1, 10, 'old'), (2, 'Lyon', 2, 20, 'old');
INSERT INTO speed_daily VALUES
	(1, 'Lyon', 1, 40, 'new', 'x'), (3, 'Brest', 4, 4, 'new', 'y');
SELECT serving_layer_define('daily', 'batch_daily', 'speed_daily',
	key => '{day,city}',
	merge => '{"orders": "sl_total", "amount": "max", "note": "speed"}',
	speed_columns => '{d,c,n,amt,remark}');

-- One with a quoted schema-qualified target, defined by an ordinary role
-- that owns the schema and the layers; the defaults apply.
CREATE SCHEMA "Sales" AUTHORIZATION sl_owner;
SET ROLE sl_owner;
CREATE TABLE "Sales"."batch city" (city text, orders bigint, amount numeric);
CREATE TABLE "Sales"."speed city" (city text, orders bigint, amount numeric);
INSERT INTO "Sales"."batch city" VALUES ('Lyon', 5, 50), ('Paris', 7, 70);
INSERT INTO "Sales"."speed city" VALUES ('Lyon', 1, 1.5), (NULL, 2, 2);
SELECT serving_layer_define('"Sales"."by city"', '"Sales"."batch city"', '"Sales"."speed city"');
SELECT serving_layer_refresh('"Sales"."by city"');
CREATE INDEX "by city idx" ON "Sales"."by city" (city);
RESET ROLE;

SELECT serving_layer_refresh('daily');
COMMENT ON TABLE daily IS 'daily sales';
});

# The serving tables' contents, one line per table.
my $contents_sql = q{
SELECT 'daily: ' || string_agg(t::text, ' ' ORDER BY t::text COLLATE "C") FROM daily t
UNION ALL
SELECT 'by city: ' || string_agg(t::text, ' ' ORDER BY t::text COLLATE "C") FROM "Sales"."by city" t};
my $definitions_sql = q{
SELECT target, batch, speed, key, merge, speed_columns
FROM serving_layer_definitions ORDER BY target COLLATE "C"};
my $config_sql = q{SELECT * FROM serving_layer_config ORDER BY target COLLATE "C"};

my $orig_definitions = $node->safe_psql('orig', $definitions_sql);
is( $orig_definitions,
	qq{"Sales"."by city"|"Sales"."batch city"|"Sales"."speed city"|{city}|{"amount": "sum", "orders": "sum"}|{city,orders,amount}\n}
	  . q{daily|public.batch_daily|public.speed_daily|{day,city}|{"note": "speed", "amount": "max", "orders": "public.sl_total"}|{d,c,n,amt,remark}},
	'the original database has both definitions');
my $orig_config = $node->safe_psql('orig', $config_sql);
my $orig_contents = $node->safe_psql('orig', $contents_sql);
is( $orig_contents,
	"daily: (1,Lyon,4,40,new) (1,Nice,1,10,old) (2,Lyon,2,20,old) (3,Brest,4,4,new)\n"
	  . 'by city: (,2,2) (Lyon,6,51.5) (Paris,7,70)',
	'the original serving tables after the first refresh');

# Rows added to the speed layers after the dump, in both databases alike, and
# what the next refresh must then give.
my $more_rows = q{
INSERT INTO speed_daily VALUES (2, 'Lyon', 5, 1, 'newer', 'z'), (4, 'Nice', 1, 1, 'new', 'z');
INSERT INTO "Sales"."speed city" VALUES ('Paris', 1, 0.5), ('Rouen', 3, 3);
};
my $next_contents =
	"daily: (1,Lyon,4,40,new) (1,Nice,1,10,old) (2,Lyon,7,20,newer) (3,Brest,4,4,new) (4,Nice,1,1,new)\n"
  . 'by city: (,2,2) (Lyon,6,51.5) (Paris,8,70.5) (Rouen,3,3)';
my $refresh_sql = q{
SET ROLE sl_owner;
SELECT * FROM serving_layer_refresh('"Sales"."by city"');
RESET ROLE;
SELECT * FROM serving_layer_refresh('daily');};
my $refresh_result =
  qq{"Sales"."by city"|2|4|4|ok||\ndaily|3|4|5|ok||};

# Check a restored database against the original.
sub check_restored
{
	my ($db, $how) = @_;

	is($node->safe_psql($db, $definitions_sql),
		$orig_definitions, "$how: serving_layer_definitions is identical");
	is($node->safe_psql($db, $config_sql),
		$orig_config, "$how: serving_layer_config is identical, definer included");
	is( $node->safe_psql(
			$db, q{
SELECT e.extversion, c.relname
FROM pg_extension e, unnest(e.extconfig) AS x(oid), pg_class c
WHERE e.extname = 'serving_layer' AND c.oid = x.oid}),
		$node->safe_psql('orig', q{SELECT extversion FROM pg_extension WHERE extname = 'serving_layer'})
		  . '|serving_layer_config',
		"$how: serving_layer_config is still the extension's configuration table");
	is( $node->safe_psql(
			$db, q{
SELECT count(*) FROM pg_depend
WHERE classid = 'pg_class'::regclass AND objid = 'serving_layer_config'::regclass
  AND refclassid = 'pg_extension'::regclass AND deptype = 'e'}),
		'1', "$how: serving_layer_config is a member of the extension");
	is($node->safe_psql($db, $contents_sql),
		$orig_contents, "$how: the serving tables came back with their rows");
	is( $node->safe_psql(
			$db, q{
SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = '"Sales"."by city"'::regclass}),
		'sl_owner', "$how: the quoted serving table is still owned by its role");

	$node->safe_psql($db, $more_rows);
	is($node->safe_psql($db, $refresh_sql),
		$refresh_result, "$how: the next refresh works");
	is($node->safe_psql($db, $contents_sql),
		$next_contents, "$how: the next refresh gives the expected contents");
	is( $node->safe_psql(
			$db, q{
SELECT indexrelid::regclass FROM pg_index WHERE indrelid = '"Sales"."by city"'::regclass}),
		'"Sales"."by city idx"', "$how: the serving table's index is still there");
	is( $node->safe_psql(
			$db, q{
SELECT string_agg(target, ' ' ORDER BY target COLLATE "C")
FROM serving_layer_history
WHERE status = 'ok' AND error IS NULL
  AND (target, output_rows) IN (('"Sales"."by city"', 4), ('daily', 5))}),
		'"Sales"."by city" daily',
		"$how: the refreshes are recorded in serving_layer_history");
	return;
}

# Custom format, restored with pg_restore into a new database.
my $dumpfile = "$tempdir/orig.dump";
$node->command_checks_all(
	[ 'pg_dump', '-Fc', '-f', $dumpfile, '-d', $node->connstr('orig') ],
	0, [qr/^$/], [qr/^$/], 'pg_dump -Fc of the database');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_checks_all(
	[
		'pg_restore', '--exit-on-error', '-d', $node->connstr('restored'),
		$dumpfile
	],
	0, [qr/^$/], [qr/^$/], 'pg_restore into a new database');
check_restored('restored', 'pg_restore');

# Plain format, restored with psql -f into another new database.
my $sqlfile = "$tempdir/orig.sql";
$node->command_checks_all(
	[ 'pg_dump', '-Fp', '-f', $sqlfile, '-d', $node->connstr('orig') ],
	0, [qr/^$/], [qr/^$/], 'pg_dump -Fp of the database');
$node->safe_psql('postgres', 'CREATE DATABASE restored_plain');
# (stdout has the rows of the dump's set_config() calls)
$node->command_checks_all(
	[
		'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1',
		'-d', $node->connstr('restored_plain'),
		'-f', $sqlfile
	],
	0, [qr//], [qr/^$/], 'psql -f of the plain dump into a new database');
check_restored('restored_plain', 'plain dump');

# A dump taken at version 1.1 restores at the default version: pg_dump does
# not record the version, so CREATE EXTENSION makes the current one, and the
# 1.1 definitions (layers as regclass, which pg_dump writes schema-qualified)
# load into its configuration table, where the layers are names.  The
# library works with the objects of 1.3 only, so the definition is written
# here as 1.1's functions wrote it.
$node->safe_psql('postgres', 'CREATE DATABASE old');
$node->safe_psql(
	'old', q{
CREATE EXTENSION serving_layer VERSION '1.1';
CREATE TABLE b (city text, n bigint);
CREATE TABLE s (city text, n bigint);
INSERT INTO b VALUES ('Lyon', 1);
INSERT INTO s VALUES ('Lyon', 2), ('Nice', 3);
INSERT INTO serving_layer_config (target, target_schema, target_name, batch,
	speed, key, merge, speed_columns, definer)
VALUES ('"Old Serving"', 'public', 'Old Serving', 'b', 's', '{city}',
		'{"n": "max"}', '{city,n}', current_user::regrole);
});
my $old_definitions =
  qq{"Old Serving"|public.b|public.s|{city}|{"n": "max"}|{city,n}};
my $olddump = "$tempdir/old.dump";
$node->command_checks_all(
	[ 'pg_dump', '-Fc', '-f', $olddump, '-d', $node->connstr('old') ],
	0, [qr/^$/], [qr/^$/], 'pg_dump -Fc of a database at version 1.1');
$node->safe_psql('postgres', 'CREATE DATABASE old_restored');
$node->command_checks_all(
	[
		'pg_restore', '--exit-on-error', '-d', $node->connstr('old_restored'),
		$olddump
	],
	0, [qr/^$/], [qr/^$/], 'pg_restore of the 1.1 dump');
is( $node->safe_psql(
		'old_restored', q{
SELECT e.extversion = a.default_version
FROM pg_extension e JOIN pg_available_extensions a ON a.name = e.extname
WHERE e.extname = 'serving_layer'}),
	't', '1.1 dump: restored at the default version');
is($node->safe_psql('old_restored', $definitions_sql),
	$old_definitions, '1.1 dump: the definitions are identical');
$node->safe_psql('old_restored', q{INSERT INTO s VALUES ('Lyon', 5)});
is($node->safe_psql('old_restored', 'SELECT * FROM serving_layer_refresh()'),
	'"Old Serving"|1|3|2|ok||', '1.1 dump: the next refresh works');
is( $node->safe_psql(
		'old_restored',
		'SELECT string_agg(t::text, \' \' ORDER BY t::text COLLATE "C") FROM "Old Serving" t'),
	'(Lyon,5) (Nice,3)', '1.1 dump: the next refresh gives the expected contents');

# And the original, refreshed the same way, gives the same contents.
$node->safe_psql('orig', $more_rows);
is($node->safe_psql('orig', $refresh_sql),
	$refresh_result, 'the original: the next refresh gives the same counts');
is($node->safe_psql('orig', $contents_sql),
	$next_contents, 'the original: the same contents as the restored databases');

$node->stop;
done_testing();
