# test/t/070_progress.pl
#
# serving_layer.progress: with it on, a refresh reports each phase of each
# target as one INFO line "refresh of <target>: <phase>: <details>, <ms> ms"
# (build with the rows read and written and how they were merged, index,
# analyze, lock, swap); with
# it off (the default) it reports nothing.  The milliseconds vary from run to
# run, which is why this is a TAP test reading psql's stderr with patterns
# rather than a pg_regress test.  Version 1's name, serving_layer.verbose
# (which SET can only name quoted, VERBOSE being an SQL keyword), keeps
# working.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('progress');
$node->init;
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION serving_layer;
CREATE TABLE batch (city text, n bigint, amount numeric);
CREATE TABLE speed (city text, n bigint, amount numeric);
INSERT INTO batch VALUES ('a', 1, 1), ('b', 1, 1), ('c', 1, 1), ('d', 1, 1);
INSERT INTO speed VALUES ('a', 1, 1), ('e', 1, 1);
-- a serving table that exists, with two indexes
CREATE TABLE serving (city text, n bigint, amount numeric);
CREATE INDEX serving_city ON serving (city);
CREATE INDEX serving_n ON serving (n);
SELECT serving_layer_define('serving', 'batch', 'speed');
-- and one that the first refresh creates, with a quoted qualified name
CREATE SCHEMA "Sales";
SELECT serving_layer_define('"Sales"."by city"', 'batch', 'speed');
});

# Run SQL in one psql session; return the result rows (stdout) and the INFO
# messages (from stderr, without psql's "psql:<stdin>:N: " prefix).  Any
# other message on stderr fails the test.
sub run_sql
{
	my ($sql, $name) = @_;
	my ($stdout, $stderr);
	my $ret = $node->psql(
		'postgres', $sql,
		stdout        => \$stdout,
		stderr        => \$stderr,
		on_error_stop => 1);
	is($ret, 0, "$name: psql succeeds");
	my @info;
	my @other;
	foreach my $line (split /\n/, $stderr)
	{
		if ($line =~ /^(?:psql:[^ ]*: )?INFO:  (.*)$/)
		{
			push @info, $1;
		}
		else
		{
			push @other, $line;
		}
	}
	is(join("\n", @other), '', "$name: no other message");
	return ($stdout, @info);
}

# Check the INFO lines of one refresh of $target, given as the refresh
# returned it: batch|speed|output|status; $indexes is the number of indexes
# on the serving table; $merged how the build merged the rows ("in C",
# "by GROUP BY", ...).
sub check_phases
{
	my ($name, $target, $result, $indexes, $merged, @info) = @_;
	my ($batch, $speed, $output) = split /\|/, $result;

	my @mine = grep { index($_, "refresh of $target: ") == 0 } @info;
	my (@phases, %details);
	foreach my $line (@mine)
	{
		if ($line =~ /^refresh of \Q$target\E: (\w+): (?:(.*), )?(\d+\.\d) ms$/)
		{
			push @phases, $1;
			$details{$1} = $2 // '';
			cmp_ok($3, '<', 60000, "$name: $1: a sensible number of milliseconds");
		}
		else
		{
			fail("$name: line has the phase form: $line");
		}
	}
	is_deeply(\@phases, [qw(build index analyze lock swap)],
		"$name: one line per phase, in order");
	# $merged: the text, or a pattern (how a spill went varies)
	my $mre = ref($merged) eq 'Regexp' ? $merged : qr/\Q$merged\E/;
	like(
		$details{build} // '',
		qr/^rows read \Q$batch\E batch \+ \Q$speed\E speed, rows written \Q$output\E, merged $mre$/,
		"$name: build reports the rows read from each layer and written, merged $merged");
	is($details{index} // '', "indexes built $indexes",
		"$name: index reports the indexes built");
	is($details{analyze} // '', '', "$name: analyze reports its time");
	like($details{lock} // '', qr/^attempts [1-9]\d*$/,
		"$name: lock reports the attempts");
	is($details{swap} // '', 'relations swapped ' . (1 + $indexes),
		"$name: swap reports the relations swapped (the table and its indexes)");
	return;
}

# Off by default: no INFO at all.
my ($out, @info) = run_sql(q{SELECT * FROM serving_layer_refresh('serving')},
	'progress off');
is($out, 'serving|4|2|5|ok||', 'progress off: the refresh works');
is(scalar(@info), 0, 'progress off: no INFO line');
is($node->safe_psql('postgres', 'LOAD \'serving_layer\'; SHOW serving_layer.progress'),
	'off', 'serving_layer.progress is off by default');

# On, one existing target with two indexes.
($out, @info) = run_sql(
	q{SET serving_layer.progress = on;
SELECT * FROM serving_layer_refresh('serving')}, 'one target');
is($out, 'serving|4|2|5|ok||', 'one target: the refresh works');
is(scalar(@info), 5, 'one target: five INFO lines');
check_phases('one target', 'serving', '4|2|5', 2, 'in C', @info);

# On, every target (one of them created by this refresh): each target's
# phases, in target order.
($out, @info) = run_sql(
	q{SET serving_layer.progress = on;
SELECT * FROM serving_layer_refresh()}, 'every target');
is($out, qq{"Sales"."by city"|4|2|5|ok||\nserving|4|2|5|ok||},
	'every target: both refreshed');
is(scalar(@info), 10, 'every target: five INFO lines per target');
check_phases('created target', '"Sales"."by city"', '4|2|5', 0, 'in C', @info);
check_phases('existing target', 'serving', '4|2|5', 2, 'in C', @info);
is( scalar(grep { /^refresh of (?!"Sales"\."by city": |serving: )/ } @info),
	0, 'every target: each line names its target as shown in the definitions');

# set_config works too, and INFO is shown whatever client_min_messages says.
$node->safe_psql('postgres', q{INSERT INTO speed VALUES ('f', 1, 1)});
($out, @info) = run_sql(
	q{SELECT set_config('serving_layer.progress', 'on', false);
SET client_min_messages = error;
SELECT * FROM serving_layer_refresh('serving')}, 'set_config');
is($out, "on\nserving|4|3|6|ok||", 'set_config: the refresh works');
check_phases('set_config', 'serving', '4|3|6', 2, 'in C', @info);

# How the rows were merged: a merge the C code does not know (a text
# measure's max is not one of its sums, mins and maxes of numbers) is a
# GROUP BY; so is the C merge's work when it would exceed its memory.
$node->safe_psql(
	'postgres', q{
CREATE TABLE batch2 (city text, n bigint, note text);
CREATE TABLE speed2 (city text, n bigint, note text);
INSERT INTO batch2 SELECT 'c' || i, 1, 'x' FROM generate_series(1, 1000) i;
INSERT INTO speed2 SELECT 'c' || i, 1, 'y' FROM generate_series(1, 1000, 2) i;
SELECT serving_layer_define('notes', 'batch2', 'speed2', key => '{city}', merge => '{"note": "max"}');
SELECT serving_layer_define('sums', 'batch2', 'speed2');
});
($out, @info) = run_sql(
	q{SET serving_layer.progress = on;
SELECT * FROM serving_layer_refresh('notes')}, 'text max');
is($out, 'notes|1000|500|1000|ok||', 'text max: the refresh works');
check_phases('text max', 'notes', '1000|500|1000', 0, 'by GROUP BY', @info);
($out, @info) = run_sql(
	q{SET serving_layer.progress = on;
SELECT * FROM serving_layer_refresh('sums')}, 'sums');
is($out, 'sums|1000|500|1500|ok||', 'sums: the refresh works');
check_phases('sums', 'sums', '1000|500|1500', 0, 'in C', @info);
($out, @info) = run_sql(
	q{SET serving_layer.progress = on;
SET serving_layer.fast_merge_memory = '64kB';
SELECT * FROM serving_layer_refresh('sums')}, 'over memory');
is($out, 'sums|1000|500|1500|ok||', 'over memory: the refresh works');
# the C merge spills to temporary files rather than falling back to GROUP BY
check_phases('over memory', 'sums', '1000|500|1500', 0,
	qr/in C, spilled to [1-9]\d* partitions \(depth [1-9]\d*, \d+ kept in memory, [1-9]\d* kB of temporary files, \d+ batch rows written at once(, duplicates found per partition)?\)/,
	@info);

# The old name, quoted, still turns the lines on, and off.
($out, @info) = run_sql(
	q{SET serving_layer."verbose" = on;
SELECT * FROM serving_layer_refresh('serving')}, 'old name');
is($out, 'serving|4|3|6|ok||', 'old name: the refresh works');
check_phases('old name', 'serving', '4|3|6', 2, 'in C', @info);
($out, @info) = run_sql(
	q{SET serving_layer."verbose" = on;
SET serving_layer."verbose" = off;
SELECT * FROM serving_layer_refresh('serving')}, 'old name off');
is(scalar(@info), 0, 'old name turned off: no INFO line');

# Off again in the same session: quiet.
($out, @info) = run_sql(
	q{SET serving_layer.progress = on;
SET serving_layer.progress = off;
SELECT * FROM serving_layer_refresh()}, 'turned off');
is(scalar(@info), 0, 'turned off: no INFO line');

$node->stop;
done_testing();
