# test/t/070_verbose.pl
#
# serving_layer.verbose: with it on, a refresh reports each phase of each
# target as one INFO line "refresh of <target>: <phase>: <details>, <ms> ms"
# (build with the rows read and written, index, analyze, lock, swap); with
# it off (the default) it reports nothing.  The milliseconds vary from run to
# run, which is why this is a TAP test reading psql's stderr with patterns
# rather than a pg_regress test.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('verbose');
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
# on the serving table.
sub check_phases
{
	my ($name, $target, $result, $indexes, @info) = @_;
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
	like(
		$details{build} // '',
		qr/^rows read \Q$batch\E batch \+ \Q$speed\E speed, rows written \Q$output\E$/,
		"$name: build reports the rows read from each layer and written");
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
	'verbose off');
is($out, 'serving|4|2|5|ok', 'verbose off: the refresh works');
is(scalar(@info), 0, 'verbose off: no INFO line');
is($node->safe_psql('postgres', 'LOAD \'serving_layer\'; SHOW serving_layer."verbose"'),
	'off', 'serving_layer.verbose is off by default');

# On, one existing target with two indexes.
($out, @info) = run_sql(
	q{SET serving_layer."verbose" = on;
SELECT * FROM serving_layer_refresh('serving')}, 'one target');
is($out, 'serving|4|2|5|ok', 'one target: the refresh works');
is(scalar(@info), 5, 'one target: five INFO lines');
check_phases('one target', 'serving', '4|2|5', 2, @info);

# On, every target (one of them created by this refresh): each target's
# phases, in target order.
($out, @info) = run_sql(
	q{SET serving_layer."verbose" = on;
SELECT * FROM serving_layer_refresh()}, 'every target');
is($out, qq{"Sales"."by city"|4|2|5|ok\nserving|4|2|5|ok},
	'every target: both refreshed');
is(scalar(@info), 10, 'every target: five INFO lines per target');
check_phases('created target', '"Sales"."by city"', '4|2|5', 0, @info);
check_phases('existing target', 'serving', '4|2|5', 2, @info);
is( scalar(grep { /^refresh of (?!"Sales"\."by city": |serving: )/ } @info),
	0, 'every target: each line names its target as shown in the definitions');

# set_config works too, and INFO is shown whatever client_min_messages says.
$node->safe_psql('postgres', q{INSERT INTO speed VALUES ('f', 1, 1)});
($out, @info) = run_sql(
	q{SELECT set_config('serving_layer.verbose', 'on', false);
SET client_min_messages = error;
SELECT * FROM serving_layer_refresh('serving')}, 'set_config');
is($out, "on\nserving|4|3|6|ok", 'set_config: the refresh works');
check_phases('set_config', 'serving', '4|3|6', 2, @info);

# Off again in the same session: quiet.
($out, @info) = run_sql(
	q{SET serving_layer."verbose" = on;
SET serving_layer."verbose" = off;
SELECT * FROM serving_layer_refresh()}, 'turned off');
is(scalar(@info), 0, 'turned off: no INFO line');

$node->stop;
done_testing();
