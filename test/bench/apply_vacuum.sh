#!/usr/bin/env bash
# test/bench/apply_vacuum.sh
#
# Does autovacuum keep up with refreshes in mode 'apply', under readers?
# Each UPDATE or DELETE of a refresh in mode 'apply' leaves a dead tuple
# (README, "Refresh modes").  Starts a throwaway PostgreSQL 15 cluster
# (lib.sh) with autovacuum ON at its default settings (the other
# benchmarks turn it off), builds the classic layout at N = 1M batch keys
# and a 10 % speed layer, defines serving_layer in mode 'apply' (its first
# refresh makes it, fillfactor 90; a unique index on the key), then for
# DURATION (300) s runs pgbench readers (4 clients, 500 transactions/s in
# all, an index lookup each) while a loop changes the speed rows of 1 % of
# the keys (a different 1 % each time) and refreshes, back to back.  After
# each refresh it samples the serving table's dead tuples (n_dead_tup), its
# size and its index's, and autovacuum's runs on it.  It reports the dead
# tuples' peak and last value against the rows changed in all, the sizes at
# the start and the end, autovacuum's runs, and the readers' latency.
#
#   test/bench/apply_vacuum.sh [--quick] [--duration S]
#
# --quick: 100k keys, 60 s.  It assumes the extension is installed (make
# install).  Environment: BENCH_PORT, BENCH_USER (lib.sh).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=1000000
DURATION=300
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) N=100000 DURATION=60 ;;
	--duration) DURATION=$2; shift ;;
	-h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument '$1'" ;;
	esac
	shift
done

OUT=$BENCH_OUT/apply_vacuum
mkdir -p "$OUT"
bench_check_install
bench_start_cluster
bq -c 'ALTER SYSTEM SET autovacuum = on' -c 'SELECT pg_reload_conf()' >/dev/null

log "N=$(human "$N"): setup"
make_batch "$N" analyze
make_speed "$N" 10 analyze
bq <<-SQL >/dev/null
	SET client_min_messages = warning;
	SELECT serving_layer_define('serving_layer', 'batch_layer', 'speed_layer', mode => 'apply');
	SELECT count(*) FROM serving_layer_refresh();
	CREATE UNIQUE INDEX serving_layer_location ON serving_layer (location);
	SELECT count(*) FROM serving_layer_refresh();
	VACUUM ANALYZE serving_layer;
SQL
MAXKEY=$((N + N / 20))
cat >"$OUT/read.sql" <<EOF
\\set k random(1, $MAXKEY)
SELECT * FROM serving_layer WHERE location = 'city-' || :k;
EOF

SAMPLE="SELECT n_dead_tup, n_live_tup, autovacuum_count,
	pg_relation_size('serving_layer'), pg_relation_size('serving_layer_location')
	FROM pg_stat_user_tables WHERE relname = 'serving_layer'"
START=$(bq -F ' ' -c "$SAMPLE")
: >"$OUT/samples.tsv"
touch "$OUT/run"
(
	i=0
	while [ -e "$OUT/run" ]; do
		# a different 1 % of the keys each time (1 % of 1024 hash buckets)
		b=$(((i * 10) % 1020))
		bq -c "UPDATE speed_layer SET \"count(id)\" = \"count(id)\" + 1
			WHERE (hashtext(location) & 1023) BETWEEN $b AND $((b + 9))" >/dev/null
		t0=$EPOCHREALTIME
		changed=$(bq -c 'SELECT changed_rows FROM serving_layer_refresh()')
		t1=$EPOCHREALTIME
		printf '%s\t%s\t%s\n' "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')" \
			"$changed" "$(bq -F $'\t' -c "$SAMPLE")" >>"$OUT/samples.tsv"
		i=$((i + 1))
	done
) &
LOOP=$!
"$PG_BINDIR/pgbench" -n -M simple -c 4 -j 2 -T "$DURATION" -R 500 -f "$OUT/read.sql" \
	-l --log-prefix="$OUT/readers" >"$OUT/pgbench.out" 2>&1 || true
rm -f "$OUT/run"
wait "$LOOP"
END=$(bq -F ' ' -c "$SAMPLE")

report() {
	local refreshes changed peak last lat
	refreshes=$(wc -l <"$OUT/samples.tsv")
	changed=$(awk -F'\t' '{s += $2} END {print s + 0}' "$OUT/samples.tsv")
	peak=$(awk -F'\t' '$3 > m {m = $3} END {print m + 0}' "$OUT/samples.tsv")
	last=$(tail -n1 "$OUT/samples.tsv" | cut -f3)
	lat=$(cat "$OUT"/readers.* 2>/dev/null | awk '{print $3 / 1000}' | sort -g |
		awk '{a[NR] = $1} END {if (NR) printf "p50 %.2f ms, p99 %.2f ms, max %.2f ms, %d reads", a[int(NR * 0.5) + 1], a[int(NR * 0.99) + 1], a[NR], NR}')
	echo "## Mode 'apply' and autovacuum ($(date -u +%Y-%m-%d\ %H:%M) UTC)"
	echo
	bench_machine
	bench_load_note "at the end"
	echo
	echo "N = $(human "$N") batch keys, 10 % speed layer, $DURATION s of refreshes back to back,"
	echo "each after the speed rows of another 1 % of the keys changed; autovacuum on, default settings;"
	echo "pgbench readers, 4 clients, 500 transactions/s in all."
	echo
	echo "| | dead tuples | live tuples | autovacuum runs | table bytes | index bytes |"
	echo "|---|---|---|---|---|---|"
	echo "| start | $(echo "$START" | awk '{printf "%s | %s | %s | %s | %s", $1, $2, $3, $4, $5}') |"
	echo "| end | $(echo "$END" | awk '{printf "%s | %s | %s | %s | %s", $1, $2, $3, $4, $5}') |"
	echo
	echo "- refreshes: $refreshes, rows changed in all: $changed (median refresh $(cut -f1 "$OUT/samples.tsv" | median) s)"
	echo "- dead tuples after a refresh: peak $peak, last $last"
	echo "- readers: $lat"
	echo "- autovacuum keeps up when the peak stays a small multiple of one"
	echo "  autovacuum threshold (50 + 0.2 x live tuples) and the sizes stop growing."
}
report | tee "$OUT/report.md"
