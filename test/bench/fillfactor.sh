#!/usr/bin/env bash
# test/bench/fillfactor.sh
#
# How much room must a serving table's pages keep for a refresh in mode
# 'apply' that changes every row?  Starts the benchmark cluster (lib.sh),
# builds the classic layout at N batch keys (2M) with a 10 % speed layer,
# and makes three copies of their merge, each with a unique btree index on
# the key, at fillfactor 90 (what mode 'apply' gives a table it creates),
# 70 and 50.  Then ROUNDS (3) times: the floor (CREATE TABLE x AS SELECT *
# FROM batch_layer), and one UPDATE of every row of each copy (what a
# refresh of a batch layer rewritten with new values for every key applies),
# each after a CHECKPOINT, each copy vacuumed after its UPDATE (as
# autovacuum would between two refreshes).  Reported per round: seconds, the
# share of the updates that were HOT (stayed on their page: no new index
# entry), and at the end each table's and index's pages.  No extension
# function is called: this measures PostgreSQL's own UPDATE, the floor of
# any way to apply the same change as row changes.
#
#   test/bench/fillfactor.sh [--n N] [--rounds R]
#
# The report goes to test/bench/out/fillfactor/report.md.  Environment:
# BENCH_PORT, BENCH_USER, BENCH_AUTOGROUP_NICE (lib.sh).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=2000000
ROUNDS=3
FACTORS=(90 70 50)
while [ $# -gt 0 ]; do
	case "$1" in
	--n) N=$2; shift ;;
	--rounds) ROUNDS=$2; shift ;;
	-h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument '$1'" ;;
	esac
	shift
done

OUT=$BENCH_OUT/fillfactor
mkdir -p "$OUT"
bench_check_install
bench_start_cluster
log "N=$(human "$N"): layers and the three copies"
make_batch "$N" plain
make_speed "$N" 10 plain
{
	echo "CREATE TABLE merged AS $BENCH_MERGE_SQL;"
	for f in "${FACTORS[@]}"; do
		echo "CREATE TABLE s$f WITH (fillfactor = $f) AS SELECT * FROM merged;
		CREATE UNIQUE INDEX s${f}_key ON s$f (location);"
	done
	echo "DROP TABLE merged;"
	echo "VACUUM ANALYZE $(printf 's%s, ' "${FACTORS[@]}" | sed 's/, $//');"
} | bq >/dev/null

# Seconds of statement $1, run in a new session after a CHECKPOINT.
timed() {
	local f=$OUT/timed.log
	"$PG_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 -c 'CHECKPOINT' \
		-c '\timing on' -c "$1" >"$f" 2>&1 || { cat "$f" >&2; die "failed: $1"; }
	timing_seconds "$f"
}

# Pages of relation $1.
pages() { bq -c "SELECT pg_relation_size('$1') / 8192"; }

# HOT updates of table $1 so far (the statistics of the ended sessions).
hot() {
	bq -c "SELECT n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = '$1'"
}

declare -A START_PAGES START_INDEX
for f in "${FACTORS[@]}"; do
	START_PAGES[$f]=$(pages "s$f")
	START_INDEX[$f]=$(pages "s${f}_key")
done
ROWS=$(bq -c 'SELECT count(*) FROM s90')
TSV=$OUT/runs.tsv
: >"$TSV"
for r in $(seq 1 "$ROUNDS"); do
	log "round $r"
	printf '%s\tfloor\t%s\t-\n' "$r" "$(timed 'CREATE TABLE x AS SELECT * FROM batch_layer')" >>"$TSV"
	bq -c 'DROP TABLE x' >/dev/null
	for f in "${FACTORS[@]}"; do
		before=$(hot "s$f")
		secs=$(timed "UPDATE s$f SET count_id = count_id + 1")
		sleep 0.5			# the ended session's statistics reach the view
		after=$(hot "s$f")
		printf '%s\t%s\t%s\t%s\n' "$r" "$f" "$secs" $(((after - before) * 100 / ROWS)) >>"$TSV"
		bq -c "VACUUM s$f" >/dev/null
	done
done

report() {
	echo "## UPDATE of every row against the fillfactor ($(date -u +%Y-%m-%d\ %H:%M) UTC)"
	echo
	bench_machine
	bench_load_note "at the end"
	echo
	echo "$ROWS rows (N = $(human "$N") batch keys and a 10 % speed layer, merged), a unique btree index on the key;"
	echo "each UPDATE after a CHECKPOINT, each table vacuumed after its UPDATE; seconds, and in brackets the share of"
	echo "the updates that were HOT."
	echo
	printf '| round | floor (copy) |'
	printf ' fillfactor %s |' "${FACTORS[@]}"
	echo
	printf '|---|---|'
	printf -- '---|%.0s' "${FACTORS[@]}"
	echo
	for r in $(seq 1 "$ROUNDS"); do
		printf '| %s | %s |' "$r" "$(awk -F'\t' -v r="$r" '$1 == r && $2 == "floor" {print $3}' "$TSV")"
		for f in "${FACTORS[@]}"; do
			printf ' %s s (%s %% HOT) |' $(awk -F'\t' -v r="$r" -v f="$f" '$1 == r && $2 == f {print $3, $4}' "$TSV")
		done
		echo
	done
	printf '| median | %s |' "$(awk -F'\t' '$2 == "floor" {print $3}' "$TSV" | median)"
	for f in "${FACTORS[@]}"; do
		printf ' %s s |' "$(awk -F'\t' -v f="$f" '$2 == f {print $3}' "$TSV" | median)"
	done
	echo
	echo
	echo "| fillfactor | table pages before / after | index pages before / after |"
	echo "|---|---|---|"
	for f in "${FACTORS[@]}"; do
		echo "| $f | ${START_PAGES[$f]} / $(pages "s$f") | ${START_INDEX[$f]} / $(pages "s${f}_key") |"
	done
}
report | tee "$OUT/report.md"
