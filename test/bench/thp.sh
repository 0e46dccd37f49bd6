#!/usr/bin/env bash
# test/bench/thp.sh
#
# What does serving_layer.transparent_huge_pages (large_alloc.c) change?
# Starts a throwaway PostgreSQL 15 cluster (lib.sh), builds apply.sh's
# layout at N batch keys (2M; --quick: 200k): a speed layer of 10 %, no
# index on the batch, a serving table in mode 'apply' (s_apply) and one in
# mode 'swap' (s_swap), each with a unique btree index on the key.  Then
# ROUNDS (8) rounds, each timing the plain copy (the floor: CREATE TABLE AS
# of the batch layer) and then, once with the setting on and once off (the
# order alternating from round to round), these refreshes, each in a new
# session with the setting SET:
#   1 %        apply.sh's "1 %" change (the speed rows of 1 % of the keys),
#              VACUUM, CHECKPOINT, an 'apply' refresh
#   1 % warm   the same change again, an 'apply' refresh without the
#              CHECKPOINT
#   10 %       every speed row changed, CHECKPOINT, an 'apply' refresh
#   swap       a 'swap' refresh of s_swap after a CHECKPOINT (the C merge
#              of the whole table)
# It prints a markdown report: the medians of each setting, their ratios
# to the floor, and the median of the paired differences (on minus off,
# same round).  Raw logs and the report go to test/bench/out/thp/.
#
#   test/bench/thp.sh [--quick] [--n N] [--rounds R]
#
# The kernel decides whether the advice is taken: see
# /sys/kernel/mm/transparent_hugepage/enabled ("madvise" or "always" for an
# effect; the report prints it).  It assumes the extension is installed
# (make install).  About 6 minutes at 2M with 8 rounds on 2 cores.
# Environment: BENCH_PORT, BENCH_USER, BENCH_AUTOGROUP_NICE (lib.sh).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=2000000
ROUNDS=8
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) N=200000 ;;
	--n) N=$2; shift ;;
	--rounds) ROUNDS=$2; shift ;;
	-h | --help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
	shift
done

OUT=$BENCH_OUT/thp
RAW=$OUT/raw
rm -rf "$OUT"
mkdir -p "$RAW"
RUNS_TSV=$OUT/runs.tsv
: >"$RUNS_TSV"
bench_check_install
bench_start_cluster

log "N=$(human "$N"): set-up"
make_apply_layout "$N" s_swap

# Time scenario $1 (floor, 1pct, 1pct_warm, 10pct, swap) with the setting
# $2 (on, off, - for the floor) in round $3; append to $RUNS_TSV.
timed_run() {
	local sc=$1 thp=$2 round=$3 f=$RAW/${1}_${2}_${3}.log
	case "$sc" in
	1pct | 1pct_warm) bq -c "$APPLY_CHANGE_1PCT_SQL" >/dev/null ;;
	10pct) bq -c "$APPLY_CHANGE_10PCT_SQL" >/dev/null ;;
	esac
	bq -c 'VACUUM speed_layer, s_apply' >/dev/null
	[ "$sc" = 1pct_warm ] || bq -c CHECKPOINT >/dev/null
	{
		[ "$thp" = - ] || printf '%s\n' "SET serving_layer.transparent_huge_pages = $thp;" \
			'SET serving_layer."verbose" = on;'
		printf '%s\n' '\timing on'
		case "$sc" in
		floor) printf '%s\n' 'CREATE TABLE x AS SELECT * FROM batch_layer;' ;;
		swap) printf '%s\n' "SELECT output_rows FROM serving_layer_refresh('s_swap');" ;;
		*) printf '%s\n' "SELECT changed_rows FROM serving_layer_refresh('s_apply');" ;;
		esac
	} >"$f.sql"
	"$PG_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 -f "$f.sql" >"$f" 2>&1 ||
		{ cat "$f" >&2; die "$sc ($thp) failed (output above, in $f)"; }
	[ "$sc" = floor ] && bq -c 'DROP TABLE x' >/dev/null
	printf '%s\t%s\t%s\t%s\n' "$sc" "$thp" "$round" "$(timing_seconds "$f")" >>"$RUNS_TSV"
}

SCENARIOS=(1pct 1pct_warm 10pct swap)
for round in $(seq 1 "$ROUNDS"); do
	if [ $((round % 2)) = 1 ]; then order=(on off); else order=(off on); fi
	log "round $round: floor, then ${order[*]}"
	timed_run floor - "$round"
	for thp in "${order[@]}"; do
		for sc in "${SCENARIOS[@]}"; do
			timed_run "$sc" "$thp" "$round"
		done
	done
done

# the last refresh of s_apply equals a swap's merge of the same layers
bq -c "SELECT count(*) FROM serving_layer_refresh()" >/dev/null
same=$(bq -c "SELECT (SELECT count(*) FROM (SELECT * FROM s_apply EXCEPT ALL SELECT * FROM s_swap) a)
	+ (SELECT count(*) FROM (SELECT * FROM s_swap EXCEPT ALL SELECT * FROM s_apply) b)")
[ "$same" = 0 ] || die "s_apply differs from s_swap in $same rows"

# Median seconds of scenario $1 with setting $2.
med() { awk -F'\t' -v s="$1" -v t="$2" '$1 == s && $2 == t {print $4}' "$RUNS_TSV" | median; }

# Median of the paired differences on - off of scenario $1, in ms, and how
# many rounds on was faster.
paired() {
	awk -F'\t' -v s="$1" '$1 == s && $2 != "-" {t[$3, $2] = $4; r[$3] = 1}
		END {for (k in r) if ((k, "on") in t && (k, "off") in t) print (t[k, "on"] - t[k, "off"]) * 1000}' "$RUNS_TSV" |
		sort -g | awk '{a[NR] = $1; if ($1 < 0) f++} END {
			if (NR == 0) exit;
			m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2;
			printf "%+.0f ms (on faster in %d of %d)\n", m, f, NR }'
}

report() {
	local floor on off
	floor=$(med floor -)
	echo "## serving_layer.transparent_huge_pages on and off (N = $(human "$N"), $(date -u '+%Y-%m-%d %H:%M UTC'))"
	echo
	bench_machine
	echo "- transparent_hugepage: enabled $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo '?'), defrag $(cat /sys/kernel/mm/transparent_hugepage/defrag 2>/dev/null || echo '?')"
	bench_load_note "at the end"
	echo
	echo "$ROUNDS rounds, the order of on and off alternating; medians, seconds; floor (plain copy) $floor s."
	echo
	echo "| refresh | on | off | on / floor | off / floor | on - off, paired median |"
	echo "|---|---|---|---|---|---|"
	for sc in "${SCENARIOS[@]}"; do
		on=$(med "$sc" on)
		off=$(med "$sc" off)
		printf '| %s | %s | %s | %s | %s | %s |\n' "$sc" "$on" "$off" \
			"$(ratio "$on" "$floor")" "$(ratio "$off" "$floor")" "$(paired "$sc")"
	done
}
report | tee "$OUT/report.md"
