# test/t/080_redshift.pl
#
# The Redshift procedures (redshift/serving_layer_refresh.sql) on stock
# PostgreSQL: the file must keep to the subset Redshift documents, must
# install with plain psql -f into a database without the extension, and every
# overload must produce, case by case, what a reference query (GROUP BY over
# UNION ALL, written here) produces -- and what the C extension produces.
# The four-argument overload applies the derived time boundary; an existing
# serving table with the batch table's columns is rebuilt LIKE itself.

use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# The file sits two levels above this test; prove runs from the source root.
my $sqlfile = File::Spec->rel2abs(
	File::Spec->catfile(dirname(__FILE__), '..', '..', 'redshift', 'serving_layer_refresh.sql'));
ok(-r $sqlfile, 'redshift/serving_layer_refresh.sql exists');

#
# a. The subset rule: none of the names Redshift does not support, outside
# comments.  String literals are kept, as dynamic SQL lives in them.
#
open(my $fh, '<', $sqlfile) or die "cannot open $sqlfile: $!";
my $code = do { local $/; <$fh> };
close($fh);
$code =~ s{/\*.*?\*/}{ }gs;
$code =~ s{--[^\n]*}{}g;
like($code, qr/CREATE OR REPLACE PROCEDURE serving_layer_refresh\(target varchar, batch varchar, speed varchar, time_column varchar\)/,
	'the file creates the four-argument procedure');
like($code, qr/CREATE OR REPLACE PROCEDURE serving_layer_refresh\(target varchar, batch varchar, speed varchar\)/,
	'the file creates the three-argument procedure');
like($code, qr/CREATE OR REPLACE PROCEDURE serving_layer_refresh\(\)/,
	'the file creates the classic-layout procedure');

my @forbidden = (
	[ 'FORMAT(',            qr/\bFORMAT\s*\(/i ],
	[ 'STRING_AGG',         qr/\bSTRING_AGG\b/i ],
	[ 'ARRAY_AGG',          qr/\bARRAY_AGG\b/i ],
	[ 'ARRAY_TO_STRING',    qr/\bARRAY_TO_STRING\b/i ],
	[ 'STRING_TO_ARRAY',    qr/\bSTRING_TO_ARRAY\b/i ],
	[ 'UNNEST',             qr/\bUNNEST\b/i ],
	[ 'ARRAY_LENGTH',       qr/\bARRAY_LENGTH\b/i ],
	[ 'ARRAY_UPPER',        qr/\bARRAY_UPPER\b/i ],
	[ 'ARRAY_LOWER',        qr/\bARRAY_LOWER\b/i ],
	[ 'other array_* functions', qr/\bARRAY_\w+\s*\(/i ],
	[ 'ARRAY[',             qr/\bARRAY\s*\[/i ],
	[ 'IS DISTINCT FROM',   qr/\bIS\s+(NOT\s+)?DISTINCT\s+FROM\b/i ],
	[ 'GENERATE_SERIES',    qr/\bGENERATE_SERIES\b/i ],
	[ 'PG_ADVISORY',        qr/\bPG_ADVISORY/i ],
	[ 'PG_TRY_ADVISORY',    qr/\bPG_TRY_ADVISORY/i ],
	[ 'HAS_TABLE_PRIVILEGE', qr/\bHAS_TABLE_PRIVILEGE\b/i ],
	[ 'HAS_SCHEMA_PRIVILEGE', qr/\bHAS_SCHEMA_PRIVILEGE\b/i ],
	[ 'HAS_*_PRIVILEGE',    qr/\bHAS_\w*_PRIVILEGE\b/i ],
	[ 'ANY(',               qr/\bANY\s*\(/i ],
	[ 'trigger',            qr/\bTRIGGER\b/i ],
	[ 'CREATE INDEX',       qr/\bCREATE\s+(UNIQUE\s+)?INDEX\b/i ],
	[ 'to_regclass or regclass', qr/\bREGCLASS\b|\bTO_REGCLASS\b/i ],
	[ 'CURRENT_SCHEMAS',    qr/\bCURRENT_SCHEMAS\b/i ],
	[ 'DO blocks',          qr/^\s*DO\s/im ]);
foreach my $f (@forbidden)
{
	unlike($code, $f->[1], "the file does not use $f->[0]");
}

#
# b. Install with psql -f into a fresh database, in a schema of its own.
#
my $node = PostgreSQL::Test::Cluster->new('redshift');
$node->init;
$node->start;
my $db = 'rs';
$node->safe_psql('postgres', "CREATE DATABASE $db");
$node->safe_psql($db, 'CREATE SCHEMA rs; CREATE ROLE rs_reader; CREATE ROLE rs_owner');
is($node->safe_psql($db, "SELECT count(*) FROM pg_extension WHERE extname = 'serving_layer'"),
	'0', 'the database does not have the extension');
{
	local $ENV{PGOPTIONS} = '-c search_path=rs';
	my @install = ('psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr($db), '-f', $sqlfile);
	$node->command_ok(\@install, 'psql -f installs the file');
	$node->command_ok(\@install, 'psql -f installs the file again over itself');
}
is($node->safe_psql($db,
		"SELECT string_agg(p.oid::regprocedure::text, ' ' ORDER BY p.pronargs)
		 FROM pg_proc p WHERE p.pronamespace = 'rs'::regnamespace AND p.prokind = 'p'"),
	'rs.serving_layer_refresh() rs.serving_layer_refresh(character varying,character varying,character varying)'
	  . ' rs.serving_layer_refresh(character varying,character varying,character varying,character varying)',
	'the three overloads are installed in the chosen schema');

# c. The C path, the same cases through CREATE EXTENSION serving_layer.  It
# must be installed (make install); SERVING_LAYER_NO_C=1 runs the Redshift
# part alone and skips the comparison.
my $c_path = $node->safe_psql($db,
	"SELECT count(*) FROM pg_available_extensions WHERE name = 'serving_layer'") eq '1';
ok($c_path || $ENV{SERVING_LAYER_NO_C}, 'the C extension is installed, for the comparison with it');
$c_path = 0 if $ENV{SERVING_LAYER_NO_C};
$node->safe_psql($db, 'CREATE SCHEMA ext; CREATE EXTENSION serving_layer SCHEMA ext') if $c_path;
# The time boundary needs version 2 of the contract (define's time_column).
my $c_time = $c_path && $node->safe_psql($db,
	q{SELECT count(*) FROM pg_proc WHERE proname = 'serving_layer_define'
	  AND pronamespace = 'ext'::regnamespace AND 'time_column' = ANY (proargnames)}) ne '0';

# A string as an SQL literal.
sub lit
{
	my ($s) = @_;
	$s =~ s/'/''/g;
	return "'$s'";
}

sub query
{
	my ($sql) = @_;
	return $node->safe_psql($db, $sql);
}

# Rows of $rel not in $ref plus rows of $ref not in $rel (EXCEPT ALL both ways).
sub diff_count
{
	my ($rel, $ref) = @_;
	return query("SELECT count(*) FROM ((SELECT * FROM $rel EXCEPT ALL ($ref))
		UNION ALL (($ref) EXCEPT ALL SELECT * FROM $rel)) d");
}

# Column names and types, in order.
sub columns_of
{
	my ($rel) = @_;
	return query("SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
		FROM pg_attribute WHERE attrelid = " . lit($rel) . "::regclass AND attnum > 0 AND NOT attisdropped");
}

# CALL the procedure with three arguments, or four with a time column.  The
# shorter overloads call the four-argument one through search_path, so the
# schema installed into is on it.
sub call_refresh
{
	my ($t, $b, $s, $time) = @_;
	my @args = map { lit($_) } $t, $b, $s;
	push @args, lit($time) if defined $time;
	return $node->psql($db,
		'SET search_path = public, rs; CALL rs.serving_layer_refresh(' . join(', ', @args) . ')');
}

# The C extension on the same tables, into $c_target; returns (rc, stderr).
# With a time column, the key columns are given too (the procedure makes the
# time column a key whatever its type).
sub c_refresh
{
	my ($c_target, $b, $s, $time, $key) = @_;
	my $args = join(', ', map { lit($_) } $c_target, $b, $s);
	$args .= ', key => ' . lit($key) . ', time_column => ' . lit($time) if defined $time;
	my ($rc, $out, $err) = $node->psql($db,
		"SELECT ext.serving_layer_define($args);"
		  . ' SELECT count(*) FROM ext.serving_layer_refresh(' . lit($c_target) . ')');
	return ($rc, $err);
}

# Run one successful case: setup, CALL, compare with the reference and with C.
sub check_case
{
	my (%c) = @_;
	my $n = $c{name};
	my $sch = $c{schema} // ('c_' . $c{tag});
	my ($t, $b, $s) = map { "$sch.$_" } ($c{target} // 'out', $c{batch} // 'b', $c{speed} // 's');
	(my $setup = $c{setup}) =~ s/\@S\@/$sch/g;
	(my $ref = $c{ref}) =~ s/\@S\@/$sch/g;
	query("CREATE SCHEMA $sch; $setup");

	my ($rc, $out, $err) = call_refresh($t, $b, $s, $c{time});
	is($rc, 0, "$n: CALL succeeds") or diag($err);
	like($err, $c{info}, "$n: the INFO line") if $c{info};
	is(diff_count($t, $ref), '0', "$n: output equals the reference query (EXCEPT ALL both ways)");
	is(query("SELECT count(*) FROM $t"), $c{rows}, "$n: $c{rows} rows");
	is(columns_of($t), columns_of($b), "$n: the batch table's columns and types");

  SKIP:
	{
		skip 'no C extension to compare with (not installed, or SERVING_LAYER_NO_C set)', 2 unless $c_path;
		skip 'the installed C extension has no time_column (contract version 2)', 2
		  if defined $c{time} && !$c_time;
		my $c_target = "$sch." . ($c{c_target} // 'c_out');
		my ($crc, $cerr) = c_refresh($c_target, $b, $s, $c{time}, $c{key});
		is($crc, 0, "$n: the C extension refreshes the same tables") or diag($cerr);
		is(diff_count($t, "SELECT * FROM $c_target") . ' ' . columns_of($c_target),
			'0 ' . columns_of($t), "$n: the C extension's output is identical");
	}
	return $sch;
}

#
# The classic layout through CALL serving_layer_refresh(): speed columns
# named like "count(id)" match by position; tables found through search_path.
#
my $classic_setup = q{
	CREATE TABLE batch_layer (location varchar(64), count_id bigint, sum_followers_count bigint,
		sum_favorite_count bigint, sum_retweet_count bigint);
	CREATE TABLE speed_layer (location varchar(64), "count(id)" bigint, "sum(followers_count)" bigint,
		"sum(favorite_count)" bigint, "sum(retweet_count)" bigint);
	INSERT INTO batch_layer VALUES ('paris', 1, 10, 100, 1000), ('rome', 2, 20, 200, 2000),
		('berlin', 3, 30, 300, 3000);
	INSERT INTO speed_layer VALUES ('paris', 1, 1, 1, 1), ('oslo', 4, 40, 400, 4000);
};
my $classic_ref = q{SELECT location, sum(c)::bigint, sum(f)::bigint, sum(v)::bigint, sum(r)::bigint
	FROM (SELECT * FROM classic.batch_layer UNION ALL SELECT * FROM classic.speed_layer) u (location, c, f, v, r)
	GROUP BY location};
my $classic_round2 = q{TRUNCATE speed_layer; INSERT INTO speed_layer VALUES ('rome', 5, 5, 5, 5), ('lima', 1, 1, 1, 1);};
query("CREATE SCHEMA classic; SET search_path = classic; $classic_setup");
foreach my $round (1, 2)
{
	my $what = $round == 1 ? 'created' : 'replaced';
	query("SET search_path = classic; $classic_round2") if $round == 2;
	my ($rc, $out, $err) = $node->psql($db, 'SET search_path = classic, rs; CALL serving_layer_refresh()');
	is($rc, 0, "classic layout, round $round: CALL serving_layer_refresh() succeeds") or diag($err);
	is(diff_count('classic.serving_layer', $classic_ref), '0', "classic layout, round $round ($what): output equals the reference");
	is(query('SELECT count(*) FROM classic.serving_layer'), '4', "classic layout, round $round: 4 rows");
	is(columns_of('classic.serving_layer'), columns_of('classic.batch_layer'), "classic layout, round $round: batch columns");
}
SKIP:
{
	skip 'no C extension to compare with (not installed, or SERVING_LAYER_NO_C set)', 1 unless $c_path;
	# serving_layer_refresh() without definitions: a database of its own.
	$node->safe_psql('postgres', 'CREATE DATABASE cclassic');
	$node->safe_psql('cclassic', "CREATE EXTENSION serving_layer; $classic_setup; $classic_round2");
	$node->safe_psql('cclassic', 'SELECT * FROM serving_layer_refresh()');
	my $rows = 'SELECT s::text FROM serving_layer s ORDER BY 1';
	is($node->safe_psql('cclassic', $rows), query("SET search_path = classic; $rows"),
		'classic layout: serving_layer_refresh() of the C extension gives identical rows');
}

#
# The cases of the C path, each in a schema of its own.
#
check_case(name => 'by name', tag => 'by_name',
	setup => q{CREATE TABLE @S@.b (city text, n integer, amount numeric(10,2), ratio double precision);
		CREATE TABLE @S@.s (extra integer, amount numeric(12,4), note text, ratio real, city text, n bigint);
		INSERT INTO @S@.b VALUES ('a', 1, 1.10, 0.5), ('b', 2, 2.20, NULL), ('c', NULL, NULL, 1);
		INSERT INTO @S@.s VALUES (99, 1.2345, 'x', 0.25, 'a', 10), (98, 0.005, 'y', NULL, 'd', 4);},
	ref => q{SELECT city, sum(n)::integer, sum(amount)::numeric(10,2), sum(ratio)
		FROM (SELECT city, n, amount, ratio FROM @S@.b
			  UNION ALL SELECT city, n::integer, amount::numeric(10,2), ratio::double precision FROM @S@.s) u
		GROUP BY city},
	rows => 4);

check_case(name => 'NULL keys', tag => 'null_keys',
	setup => q{CREATE TABLE @S@.b (city text, n integer); CREATE TABLE @S@.s (city text, n integer);
		INSERT INTO @S@.b VALUES ('a', 1), (NULL, 2), (NULL, 3);
		INSERT INTO @S@.s VALUES (NULL, 10), ('b', 1);},
	ref => q{SELECT city, sum(n)::integer FROM (TABLE @S@.b UNION ALL TABLE @S@.s) u GROUP BY city},
	rows => 3);
is(query('SELECT n FROM c_null_keys.out WHERE city IS NULL'), '15', 'NULL keys: batch and speed NULL keys merged into one row');

check_case(name => 'duplicate keys', tag => 'dups',
	setup => q{CREATE TABLE @S@.b (city text, n integer); CREATE TABLE @S@.s (city text, n integer);
		INSERT INTO @S@.b VALUES ('a', 1), ('a', 2), ('b', 1);
		INSERT INTO @S@.s VALUES ('b', 5), ('b', 6), ('c', 1), ('c', 1);},
	ref => q{SELECT city, sum(n)::integer FROM (TABLE @S@.b UNION ALL TABLE @S@.s) u GROUP BY city},
	rows => 3);

check_case(name => 'NULL measures', tag => 'null_measures',
	setup => q{CREATE TABLE @S@.b (k text, x integer, y integer); CREATE TABLE @S@.s (k text, x integer, y integer);
		INSERT INTO @S@.b VALUES ('a', NULL, 1), ('b', NULL, NULL), ('c', 2, NULL);
		INSERT INTO @S@.s VALUES ('a', NULL, NULL), ('b', NULL, NULL), ('c', NULL, 3), ('d', NULL, NULL);},
	ref => q{SELECT k, sum(x)::integer, sum(y)::integer FROM (TABLE @S@.b UNION ALL TABLE @S@.s) u GROUP BY k},
	rows => 4);
is(query(q{SELECT count(*) FROM c_null_measures.out WHERE k IN ('b', 'd') AND x IS NULL AND y IS NULL}),
	'2', 'NULL measures: all NULL gives NULL');

check_case(name => 'composite keys with NULLs (by position, dropped columns)', tag => 'composite',
	setup => q{CREATE TABLE @S@.b (region text, gone integer, city varchar(20), d date, flag boolean, n smallint, r real);
		CREATE TABLE @S@.s (s1 text, s2 text, s3 date, junk text, s4 boolean, s5 integer, s6 double precision);
		ALTER TABLE @S@.b DROP COLUMN gone; ALTER TABLE @S@.s DROP COLUMN junk;
		INSERT INTO @S@.b VALUES ('eu', NULL, '2024-01-01', true, 1, 1.5), (NULL, 'x', '2024-01-01', NULL, 2, NULL),
			(NULL, NULL, NULL, NULL, 3, 2), ('eu', 'x', '2024-01-02', false, NULL, 0.25);
		INSERT INTO @S@.s VALUES ('eu', NULL, '2024-01-01', true, 10, 1), (NULL, NULL, NULL, NULL, 4, NULL),
			(NULL, 'x', '2024-01-01', true, 1, 1), ('us', NULL, NULL, NULL, 7, 7);},
	ref => q{SELECT region, city, d, flag, sum(n)::smallint, sum(r)::real
		FROM (SELECT * FROM @S@.b
			  UNION ALL SELECT s1, s2::varchar(20), s3, s4, s5::smallint, s6::real FROM @S@.s) u
		GROUP BY region, city, d, flag},
	rows => 6);

check_case(name => 'speed-only and batch-only keys', tag => 'only',
	setup => q{CREATE TABLE @S@.b (city text, n integer); CREATE TABLE @S@.s (city text, n integer);
		INSERT INTO @S@.b VALUES ('a', 1), ('b', 2); INSERT INTO @S@.s VALUES ('c', 3), ('d', 4), ('a', 1);},
	ref => q{SELECT city, sum(n)::integer FROM (TABLE @S@.b UNION ALL TABLE @S@.s) u GROUP BY city},
	rows => 4);

check_case(name => 'empty batch', tag => 'empty_batch',
	setup => q{CREATE TABLE @S@.b (city text, n integer); CREATE TABLE @S@.s (city text, n integer);
		INSERT INTO @S@.s VALUES ('a', 1), ('a', 2), ('b', NULL);},
	ref => q{SELECT city, sum(n)::integer FROM (TABLE @S@.b UNION ALL TABLE @S@.s) u GROUP BY city},
	rows => 2);

check_case(name => 'empty speed', tag => 'empty_speed',
	setup => q{CREATE TABLE @S@.b (city text, n integer); CREATE TABLE @S@.s (city text, n integer);
		INSERT INTO @S@.b VALUES ('a', 1), ('a', 2), ('b', 3);},
	ref => q{SELECT city, sum(n)::integer FROM (TABLE @S@.b UNION ALL TABLE @S@.s) u GROUP BY city},
	rows => 2);

is(query(q{SELECT to_regclass('c_new.out') IS NULL}), 't', 'new target: the serving table does not exist before');
check_case(name => 'new target', tag => 'new',
	setup => q{CREATE TABLE @S@.b (city text, n integer); CREATE TABLE @S@.s (city text, n integer);
		INSERT INTO @S@.b VALUES ('a', 1); INSERT INTO @S@.s VALUES ('b', 2);},
	ref => q{SELECT city, sum(n)::integer FROM (TABLE @S@.b UNION ALL TABLE @S@.s) u GROUP BY city},
	rows => 2);

#
# An existing target is replaced: its columns become the batch table's, its
# grants, owner and comments are re-applied, and a late-binding view (on
# PostgreSQL: a view over a SQL function, whose body binds by name at each
# call) shows the new rows.
#
my $late_setup = q{CREATE TABLE @S@.b (city text, n integer); CREATE TABLE @S@.s (city text, n integer);
	INSERT INTO @S@.b VALUES ('a', 1), ('b', 2); INSERT INTO @S@.s VALUES ('b', 3), ('c', 4);
	CREATE TABLE @S@.out (city text, n integer, stale integer);
	INSERT INTO @S@.out VALUES ('old', 0, 0);
	COMMENT ON TABLE @S@.out IS 'serving table'; COMMENT ON COLUMN @S@.out.n IS 'the count';
	GRANT SELECT ON @S@.out TO rs_reader; GRANT INSERT ON @S@.out TO PUBLIC;
	ALTER TABLE @S@.out OWNER TO rs_owner;
	CREATE FUNCTION @S@.out_rows() RETURNS TABLE (city text, n integer)
		LANGUAGE sql STABLE AS $f$ SELECT city, n FROM @S@.out $f$;
	CREATE VIEW @S@.v AS SELECT * FROM @S@.out_rows();};
my $sch = check_case(name => 'existing target', tag => 'existing', setup => $late_setup,
	ref => q{SELECT city, sum(n)::integer FROM (TABLE @S@.b UNION ALL TABLE @S@.s) u GROUP BY city},
	rows => 3);
is(diff_count("$sch.v", "SELECT * FROM $sch.out"), '0', 'existing target: the late-binding view shows the new rows');
is(query("SELECT obj_description('$sch.out'::regclass, 'pg_class') || ' / ' || col_description('$sch.out'::regclass, 2)"),
	'serving table / the count', 'existing target: table and column comments re-applied');
is(query("SELECT has_table_privilege('rs_reader', '$sch.out', 'SELECT')::text || has_table_privilege('public', '$sch.out', 'INSERT')::text"),
	'truetrue', 'existing target: grants re-applied');
is(query("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = '$sch.out'::regclass"),
	'rs_owner', 'existing target: the owner is kept');

# A regular view binds to the table: the procedure refuses, naming it.
query(q{CREATE SCHEMA c_view; CREATE TABLE c_view.b (city text, n integer); CREATE TABLE c_view.s (city text, n integer);
	INSERT INTO c_view.b VALUES ('a', 1); CREATE TABLE c_view.out (city text, n integer);
	INSERT INTO c_view.out VALUES ('old', 0); CREATE VIEW c_view.v AS SELECT * FROM c_view.out;});
my ($rc, $out, $err) = call_refresh('c_view.out', 'c_view.b', 'c_view.s');
isnt($rc, 0, 'regular view: the refresh fails');
like($err, qr/view c_view\.v depends on serving table c_view\."out".*late-binding/, 'regular view: the error names the view and says what to do');
is(query('SELECT city FROM c_view.v'), 'old', 'regular view: the serving table is unchanged');

#
# Hostile identifiers: quotes, a dot, semicolons, comment marks, upper case.
#
$sch = check_case(name => 'hostile identifiers', tag => 'hostile', schema => q{"Sch ""q"". x"},
	target => q{"Out'; DROP TABLE x;--"}, batch => q{"we;ird ""name"""}, speed => q{"sp"" eed"},
	c_target => q{"C out;--"},
	setup => q{CREATE TABLE @S@."we;ird ""name""" ("Mixed Case ;--" text, "n;--" integer);
		CREATE TABLE @S@."sp"" eed" ("n;--" bigint, "Mixed Case ;--" text, "x" text);
		INSERT INTO @S@."we;ird ""name""" VALUES ('a', 1), ('B', 2);
		INSERT INTO @S@."sp"" eed" VALUES (5, 'B', 'q'), (1, NULL, NULL);},
	ref => q{SELECT "Mixed Case ;--", sum("n;--")::integer
		FROM (SELECT "Mixed Case ;--", "n;--" FROM @S@."we;ird ""name"""
			  UNION ALL SELECT "Mixed Case ;--", "n;--"::integer FROM @S@."sp"" eed") u
		GROUP BY 1},
	rows => 3);
is(query('SELECT count(*) FROM pg_class WHERE relnamespace = ' . lit($sch) . '::regnamespace'
		. q{ AND (relname IN ('we;ird "name"', 'sp" eed', 'Out''; DROP TABLE x;--') OR relname LIKE 'serving_layer%')}),
	'3', 'hostile identifiers: batch, speed and serving tables there, no work table left');

#
# Errors leave the serving table exactly as it was, and no work table behind.
#
sub check_error
{
	my (%c) = @_;
	my $s = "c_$c{tag}";
	query("CREATE SCHEMA $s; $c{setup}; CREATE TABLE $s.before AS TABLE $s.out");
	my ($rc, $out, $err) = call_refresh("$s.out", "$s.b", "$s.s", $c{time});
	isnt($rc, 0, "$c{name}: the refresh fails");
	like($err, $c{error}, "$c{name}: the error says why");
	is(diff_count("$s.out", "TABLE $s.before") . ' '
		  . query("SELECT count(*) FROM pg_class WHERE relnamespace = '$s'::regnamespace AND relname LIKE 'serving_layer%'"),
		'0 0', "$c{name}: the serving table is unchanged, no work table left");
  SKIP:
	{
		skip 'no C extension to compare with (not installed, or SERVING_LAYER_NO_C set)', 1 unless $c_path;
		skip $c{no_c}, 1 if $c{no_c};
		query("CREATE TABLE $s.c_out AS TABLE $s.out");
		my ($crc, $cerr) = c_refresh("$s.c_out", "$s.b", "$s.s");
		ok($crc != 0 && diff_count("$s.c_out", "TABLE $s.before") eq '0',
			"$c{name}: the C extension fails too, its target unchanged");
	}
}

check_error(name => 'overflow', tag => 'overflow',
	setup => q{CREATE TABLE c_overflow.b (city text, n integer); CREATE TABLE c_overflow.s (city text, n integer);
		INSERT INTO c_overflow.b VALUES ('a', 2147483647), ('b', 1);
		CREATE TABLE c_overflow.out (city text, n integer); INSERT INTO c_overflow.out VALUES ('a', 2147483647);
		INSERT INTO c_overflow.s VALUES ('a', 1)},
	error => qr/integer out of range/);

check_error(name => 'column-count mismatch', tag => 'mismatch',
	setup => q{CREATE TABLE c_mismatch.b (city text, n integer); CREATE TABLE c_mismatch.s (x text, y integer, z integer);
		INSERT INTO c_mismatch.b VALUES ('a', 1); INSERT INTO c_mismatch.s VALUES ('a', 1, 1);
		CREATE TABLE c_mismatch.out (city text, n integer); INSERT INTO c_mismatch.out VALUES ('old', 0)},
	error => qr/speed table c_mismatch\.s matches batch table c_mismatch\.b neither by name .* nor by position/);

check_error(name => 'no key column', tag => 'no_key',
	setup => q{CREATE TABLE c_no_key.b (n integer); CREATE TABLE c_no_key.s (n integer);
		CREATE TABLE c_no_key.out (n integer); INSERT INTO c_no_key.out VALUES (1)},
	error => qr/batch table c_no_key\.b has no key column/);

#
# The time boundary (four arguments): the boundary is the greatest non-NULL
# time of the batch table; batch rows at or before it, speed rows after it;
# NULL times from both layers, merged; no batch time: every speed row.  The
# reference applies the same rule in plain SQL; each case also checks the
# values that show the rule by hand.
#
sub time_ref
{
	my ($keys, $t, $measures) = @_;
	my $max = "(SELECT max($t) FROM \@S\@.b)";
	return "SELECT $keys, $measures FROM (SELECT * FROM \@S\@.b WHERE $t IS NULL OR $t <= $max"
	  . " UNION ALL SELECT * FROM \@S\@.s WHERE $t IS NULL OR $t > $max OR $max IS NULL) u GROUP BY $keys";
}

check_case(name => 'time boundary: overlap counted once', tag => 'overlap', time => 'hour', key => '{city,hour}',
	setup => q{CREATE TABLE @S@.b (city text, hour integer, n bigint); CREATE TABLE @S@.s (city text, hour integer, n bigint);
		INSERT INTO @S@.b VALUES ('a', 1, 10), ('a', 2, 20), ('b', 2, 5);
		INSERT INTO @S@.s VALUES ('a', 2, 20), ('b', 2, 5), ('a', 3, 7), ('c', 3, 1), ('a', 3, 1);},
	ref => time_ref('city, hour', 'hour', 'sum(n)::bigint'),
	info => qr/\(3 rows\) and .* \(3 rows\) at boundary 2 of hour: 5 rows/,
	rows => 5);
is(query(q{SELECT string_agg(city || hour || '=' || n, ' ' ORDER BY city, hour) FROM c_overlap.out}),
	'a1=10 a2=20 a3=8 b2=5 c3=1', 'time boundary: hour 2, in both layers, counted once; hour 3 from speed; the integer hour is a key');

check_case(name => 'time boundary: late speed rows', tag => 'late', time => 't', key => '{k,t}',
	setup => q{CREATE TABLE @S@.b (k text, t timestamp, n integer); CREATE TABLE @S@.s (k text, t timestamp, n integer);
		INSERT INTO @S@.b VALUES ('a', '2026-01-01 10:00', 1), ('b', '2026-01-01 11:00', 2);
		INSERT INTO @S@.s VALUES ('c', '2026-01-01 09:00', 100), ('a', '2026-01-01 11:00', 50),
			('a', '2026-01-01 12:00', 3);},
	ref => time_ref('k, t', 't', 'sum(n)::integer'),
	info => qr/\(1 rows\) at boundary 2026-01-01 11:00:00 of t: 3 rows/,
	rows => 3);
is(query(q{SELECT string_agg(k || ' ' || t || ' ' || n, ', ' ORDER BY t, k) FROM c_late.out}),
	'a 2026-01-01 10:00:00 1, b 2026-01-01 11:00:00 2, a 2026-01-01 12:00:00 3',
	'time boundary: speed rows before and at the boundary are ignored, a late key included');

check_case(name => 'time boundary: NULL times', tag => 'null_times', time => 'd', key => '{k,d}',
	setup => q{CREATE TABLE @S@.b (k text, d date, n integer); CREATE TABLE @S@.s (k text, d date, n integer);
		INSERT INTO @S@.b VALUES ('a', NULL, 1), ('a', '2026-01-02', 2);
		INSERT INTO @S@.s VALUES ('a', NULL, 10), ('a', '2026-01-01', 5), ('b', NULL, 3), ('a', '2026-01-03', 4);},
	ref => time_ref('k, d', 'd', 'sum(n)::integer'),
	rows => 4);
is(query(q{SELECT string_agg(k || ' ' || coalesce(d::text, 'null') || ' ' || n, ', ' ORDER BY k, d) FROM c_null_times.out}),
	'a 2026-01-02 2, a 2026-01-03 4, a null 11, b null 3',
	'time boundary: NULL-time rows of both layers merged, not split');

check_case(name => 'time boundary: batch without a time', tag => 'no_time', time => 'd', key => '{k,d}',
	setup => q{CREATE TABLE @S@.b (k text, d date, n integer); CREATE TABLE @S@.s (k text, d date, n integer);
		INSERT INTO @S@.b VALUES ('a', NULL, 1);
		INSERT INTO @S@.s VALUES ('a', NULL, 2), ('a', '2020-01-01', 3);},
	ref => time_ref('k, d', 'd', 'sum(n)::integer'),
	info => qr/at boundary none of d: 2 rows/,
	rows => 2);

check_case(name => 'time boundary: empty batch', tag => 'empty_batch_time', time => 't', key => '{k,t}',
	setup => q{CREATE TABLE @S@.b (k text, t timestamptz, n integer); CREATE TABLE @S@.s (k text, t timestamptz, n integer);
		INSERT INTO @S@.s VALUES ('a', '2026-01-01 10:00+00', 1), ('a', '2026-01-01 10:00+00', 2),
			('b', '2000-01-01 00:00+00', 3);},
	ref => time_ref('k, t', 't', 'sum(n)::integer'),
	info => qr/\(0 rows\) and .* \(3 rows\) at boundary none of t: 2 rows/,
	rows => 2);
is(query(q{SELECT string_agg(k || n, ' ' ORDER BY k) FROM c_empty_batch_time.out}), 'a3 b3',
	'time boundary: empty batch, every speed row taken');

check_case(name => 'time boundary: quoted time column, by position', tag => 'time_pos', time => 'The Hour',
	key => '{"The Hour",city}',
	setup => q{CREATE TABLE @S@.b ("The Hour" integer, city text, n integer);
		CREATE TABLE @S@.s (h integer, c text, cnt integer);
		INSERT INTO @S@.b VALUES (1, 'a', 1), (2, 'a', 1), (NULL, 'a', 1);
		INSERT INTO @S@.s VALUES (2, 'a', 5), (3, 'a', 6), (NULL, 'a', 7);},
	ref => q{SELECT "The Hour", city, sum(n)::integer FROM (SELECT * FROM @S@.b
		UNION ALL SELECT * FROM @S@.s WHERE h IS NULL OR h > 2) u ("The Hour", city, n) GROUP BY 1, 2},
	rows => 4);

check_error(name => 'time column not in the batch table', tag => 'bad_time', time => 'hour',
	no_c => 'the C extension checks its time column at define time',
	setup => q{CREATE TABLE c_bad_time.b (city text, n integer); CREATE TABLE c_bad_time.s (city text, n integer);
		INSERT INTO c_bad_time.b VALUES ('a', 1);
		CREATE TABLE c_bad_time.out (city text, n integer); INSERT INTO c_bad_time.out VALUES ('old', 0)},
	error => qr/time column hour is not a column of batch table c_bad_time\.b/);

#
# An existing serving table with the batch table's columns is rebuilt with
# CREATE TABLE ... (LIKE <serving table>): on Redshift that keeps DISTKEY,
# SORTKEY and encodings; on PostgreSQL what LIKE keeps shows it, the NOT NULL
# columns and a column's collation, which the batch table does not have.
#
$sch = check_case(name => 'existing target rebuilt LIKE itself', tag => 'like',
	setup => q{CREATE TABLE @S@.b (city text, hour integer, n integer); CREATE TABLE @S@.s (city text, hour integer, n integer);
		INSERT INTO @S@.b VALUES ('a', 1, 1), ('b', 1, 2); INSERT INTO @S@.s VALUES ('b', 1, 3), ('c', 2, 4);
		CREATE TABLE @S@.out (city text COLLATE "C" NOT NULL, hour integer NOT NULL, n integer);
		INSERT INTO @S@.out VALUES ('old', 0, 0);
		GRANT SELECT ON @S@.out TO rs_reader; ALTER TABLE @S@.out OWNER TO rs_owner;},
	ref => q{SELECT city, sum(hour)::integer, sum(n)::integer FROM (TABLE @S@.b UNION ALL TABLE @S@.s) u GROUP BY city},
	rows => 3);
is(query(qq{SELECT string_agg(attname || ' ' || attnotnull || ' ' || coalesce(collname, '-'), ', ' ORDER BY attnum)
	FROM pg_attribute LEFT JOIN pg_collation co ON co.oid = attcollation AND attcollation <> 100
	WHERE attrelid = '$sch.out'::regclass AND attnum > 0}),
	'city true C, hour true -, n false -',
	'existing target rebuilt LIKE itself: NOT NULL columns and the collation of the serving table kept');
is(query("SELECT has_table_privilege('rs_reader', '$sch.out', 'SELECT')::text || ' ' || pg_get_userbyid(relowner)
	FROM pg_class WHERE oid = '$sch.out'::regclass"),
	'true rs_owner', 'existing target rebuilt LIKE itself: grants and owner kept');

# What LIKE keeps is enforced: a NULL merged into a NOT NULL column of the
# serving table fails the refresh and leaves the table as it was.
check_error(name => 'existing target rebuilt LIKE itself, NOT NULL broken', tag => 'like_null',
	no_c => 'CREATE TABLE AS gives the C target no NOT NULL column to compare with',
	setup => q{CREATE TABLE c_like_null.b (city text, n integer); CREATE TABLE c_like_null.s (city text, n integer);
		INSERT INTO c_like_null.b VALUES ('a', NULL);
		CREATE TABLE c_like_null.out (city text, n integer NOT NULL); INSERT INTO c_like_null.out VALUES ('old', 0)},
	error => qr/null value in column "n"/);

$node->stop;
done_testing();
