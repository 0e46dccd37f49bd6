#!/usr/bin/env bash
# test/bench/apply_ab.sh
#
# Is one build's 'apply' refresh faster than another's, on the same data in
# the same cluster?  Builds two git revisions A and B in temporary worktrees
# (never in this checkout), starts the benchmark cluster (lib.sh), builds
# apply.sh's layout at N keys (2M) with a second 'apply' target s_apply2 on
# the same layers, then ROUNDS (12) times: a floor (plain copy), then for
# each build in turn (A B in odd rounds, B A in even ones) the build
# installed, apply.sh's "1 %" change (--change 10pct: its "10 %", every
# speed row), a CHECKPOINT and a refresh of the build's own target (A: s_apply, B: s_apply2) in a new session, then the
# change again and a refresh without the CHECKPOINT ("warm").  Each build
# refreshes its own target, so that builds that save the state in different
# formats never read each other's.  Prints the medians of each build's
# refresh, delta and apply phases (the progress lines) and the median of the
# paired differences B - A with how many rounds B was faster; round 1 is left
# out of them (a build's first refresh may compare in full).  Raw logs go to
# test/bench/out/apply_ab/.
#
#   test/bench/apply_ab.sh [--n N] [--rounds R] [--change 1pct|10pct] REV_A REV_B
#
# Both revisions must install the same extension version (the refreshes
# run the installed SQL objects with each build's library).  Leaves REV_B
# installed.  About 2 minutes at 2M and 12 rounds, plus the builds.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=2000000
ROUNDS=12
CHANGE=1pct
REVS=()
while [ $# -gt 0 ]; do
	case "$1" in
	--n) N=$2; shift ;;
	--rounds) ROUNDS=$2; shift ;;
	--change) CHANGE=$2; shift ;;
	-h | --help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) die "unknown argument '$1' (see --help)" ;;
	*) REVS+=("$1") ;;
	esac
	shift
done
[ ${#REVS[@]} = 2 ] || die "give two git revisions (see --help)"
case "$CHANGE" in
1pct) CHANGE_SQL=$APPLY_CHANGE_1PCT_SQL ;;
10pct) CHANGE_SQL=$APPLY_CHANGE_10PCT_SQL ;;
*) die "--change takes 1pct or 10pct, not '$CHANGE'" ;;
esac

OUT=$BENCH_OUT/apply_ab
RAW=$OUT/raw
rm -rf "$OUT"
mkdir -p "$RAW"
TSV=$OUT/runs.tsv
: >"$TSV"
WT_BASE=$(mktemp -d /tmp/serving_layer.apply_ab.XXXXXX)
on_exit "rm -rf '$WT_BASE'"
declare -A TREE=() SHA=()
for b in A B; do
	rev=${REVS[$([ $b = A ] && echo 0 || echo 1)]}
	sha=$(git -C "$SL_ROOT" rev-parse --short "$rev^{commit}") || die "unknown revision '$rev'"
	SHA[$b]=$sha
	TREE[$b]=$WT_BASE/$b-$sha
	git -C "$SL_ROOT" worktree add -q --detach "${TREE[$b]}" "$sha"
	on_exit "git -C '$SL_ROOT' worktree remove --force '${TREE[$b]}'"
	log "building $b = $rev ($sha)"
	make -s -C "${TREE[$b]}" -j2 PG_CONFIG="$PG_CONFIG" >"$OUT/build-$b.log" 2>&1 ||
		{ cat "$OUT/build-$b.log" >&2; die "the build of $rev failed"; }
done
use() { make -s -C "${TREE[$1]}" PG_CONFIG="$PG_CONFIG" install >/dev/null; }
target() { if [ "$1" = A ]; then echo s_apply; else echo s_apply2; fi; }

use A
bench_start_cluster
log "N=$(human "$N"): set-up"
make_apply_layout "$N"
bq -c "SELECT serving_layer_define('s_apply2', 'batch_layer', 'speed_layer', mode => 'apply')" \
	-c "SELECT count(*) FROM serving_layer_refresh('s_apply2')" \
	-c "CREATE UNIQUE INDEX ON s_apply2 (location)" \
	-c "SELECT count(*) FROM serving_layer_refresh('s_apply2')" \
	-c "VACUUM ANALYZE s_apply2" >/dev/null

# One timed run: scenario $1 (floor, $CHANGE, ${CHANGE}_warm) of build $2 (- for
# the floor) in round $3; a line of $TSV: scenario, build, round, seconds,
# delta ms, apply ms.
timed_run() {
	local sc=$1 b=$2 round=$3 f=$RAW/${1}_${2}_${3}.log
	[ "$sc" = floor ] || bq -c "$CHANGE_SQL" >/dev/null
	bq -c 'VACUUM speed_layer, s_apply, s_apply2' >/dev/null
	[ "$sc" = "${CHANGE}_warm" ] || bq -c CHECKPOINT >/dev/null
	[ "$b" = - ] || use "$b"
	{
		printf '%s\n' 'SET serving_layer.progress = on;' '\timing on'
		case "$sc" in
		floor) echo 'CREATE TABLE x AS SELECT * FROM batch_layer;' ;;
		*) echo "SELECT changed_rows FROM serving_layer_refresh('$(target "$b")');" ;;
		esac
	} >"$f.sql"
	"$PG_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 -f "$f.sql" >"$f" 2>&1 ||
		{ cat "$f" >&2; die "$sc ($b) failed (output above, in $f)"; }
	[ "$sc" = floor ] && bq -c 'DROP TABLE x' >/dev/null
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$sc" "$b" "$round" "$(timing_seconds "$f")" \
		"$(sed -n 's/.*: delta: .*, \([0-9.]*\) ms$/\1/p' "$f" | head -n1)" \
		"$(sed -n 's/.*: apply: .*, \([0-9.]*\) ms$/\1/p' "$f" | head -n1)" >>"$TSV"
}

for round in $(seq 1 "$ROUNDS"); do
	if [ $((round % 2)) = 1 ]; then order=(A B); else order=(B A); fi
	log "round $round: floor, then ${order[*]}"
	timed_run floor - "$round"
	for b in "${order[@]}"; do
		timed_run "$CHANGE" "$b" "$round"
		timed_run "${CHANGE}_warm" "$b" "$round"
	done
done

# Median of column $3 (4 seconds, 5 delta ms, 6 apply ms) of scenario $1,
# build $2, rounds after the first.
med() { awk -F'\t' -v s="$1" -v b="$2" -v c="$3" '$1 == s && $2 == b && $3 > 1 && $c != "" {print $c}' "$TSV" | median; }

# Median of the paired differences B - A of column $2 of scenario $1, and
# how many rounds B was faster.
paired() {
	awk -F'\t' -v s="$1" -v c="$2" '$1 == s && $3 > 1 {t[$3, $2] = $c; r[$3] = 1}
		END {for (k in r) if ((k, "A") in t && (k, "B") in t) print t[k, "B"] - t[k, "A"]}' "$TSV" |
		sort -g | awk '{a[NR] = $1; if ($1 < 0) f++} END {
			if (NR == 0) exit;
			m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2;
			printf "%+.3f (B faster in %d of %d)\n", m, f, NR }'
}

{
	echo "## apply_ab.sh: A = ${REVS[0]}, B = ${REVS[1]} (N = $(human "$N"), $(date -u '+%Y-%m-%d %H:%M UTC'))"
	echo
	bench_machine
	echo "- builds: A = ${REVS[0]} (${SHA[A]}), B = ${REVS[1]} (${SHA[B]}), each built in a worktree and installed before its refreshes (the extension line above is this checkout)"
	echo
	echo "$ROUNDS rounds, the order of the builds alternating; medians of rounds 2 to $ROUNDS; floor (plain copy) $(med floor - 4) s."
	echo
	echo "| refresh | A | B | B - A, paired median |"
	echo "|---|---|---|---|"
	for sc in "$CHANGE" "${CHANGE}_warm"; do
		printf '| %s, s | %s | %s | %s |\n' "$sc" "$(med "$sc" A 4)" "$(med "$sc" B 4)" "$(paired "$sc" 4)"
		printf '| %s, delta phase ms | %s | %s | %s |\n' "$sc" "$(med "$sc" A 5)" "$(med "$sc" B 5)" "$(paired "$sc" 5)"
		printf '| %s, apply phase ms | %s | %s | %s |\n' "$sc" "$(med "$sc" A 6)" "$(med "$sc" B 6)" "$(paired "$sc" 6)"
	done
} | tee "$OUT/report.md"
