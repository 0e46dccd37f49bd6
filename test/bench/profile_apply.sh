#!/usr/bin/env bash
# test/bench/profile_apply.sh
#
# Where does an 'apply' refresh's time go?  Starts the benchmark
# cluster (lib.sh's settings and BENCH_EXTRA_SETTINGS), builds apply.sh's
# layout at N batch keys (2M): a speed layer of 10 %, no index on the batch,
# a serving table in mode 'apply' with a unique btree index on the key, one
# refresh after the first so that the next ones follow the change.  Then,
# ROUNDS (2) times, apply.sh's "1 %" change (the speed rows of 1 % of the
# keys; --change 10pct: apply.sh's "10 %", every speed row) refreshed
# after a CHECKPOINT ("cold") and again without one ("warm"), each
# refresh in a new session sampled by `perf record -g -F HZ
# -p <backend>`.  It prints a markdown report: per refresh its time and the
# verbose lines' phases, the share of samples under the kernel's page-fault
# handler (a new backend maps each shared buffer it touches, and without
# huge pages that is two faults per buffer), and the 15 functions with the
# most samples of their own.  Report and perf data go to
# test/bench/out/profile_apply/.
#
#   test/bench/profile_apply.sh [--n N] [--rounds R] [--freq HZ] [--change 1pct|10pct]
#
# BENCH_EXTRA_SETTINGS="huge_pages = on" compares with huge pages (the
# kernel needs them reserved: vm.nr_hugepages, 600 for lib.sh's 1GB of
# shared buffers).  Needs perf (Debian: linux-perf) and root; the extension
# installed as for apply.sh.  About 3 minutes at 2M (1pct).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=2000000
ROUNDS=2
FREQ=2999
CHANGE=1pct
while [ $# -gt 0 ]; do
	case "$1" in
	--n) N=$2; shift 2 ;;
	--rounds) ROUNDS=$2; shift 2 ;;
	--freq) FREQ=$2; shift 2 ;;
	--change) CHANGE=$2; shift 2 ;;
	-h | --help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
done
case "$CHANGE" in
1pct) CHANGE_SQL=$APPLY_CHANGE_1PCT_SQL ;;
10pct) CHANGE_SQL=$APPLY_CHANGE_10PCT_SQL ;;
*) die "--change takes 1pct or 10pct, not '$CHANGE'" ;;
esac
bench_check_perf
bench_check_install
OUT=$BENCH_OUT/profile_apply
rm -rf "$OUT"
mkdir -p "$OUT"
bench_start_cluster

log "N=$(human "$N"): set-up"
make_apply_layout "$N"

# Profile one refresh after the change; $1 names it, cold or warm.
profile_one() {
	local name=$1
	bq -c "$CHANGE_SQL" >/dev/null
	bq -c 'VACUUM speed_layer, batch_layer' -c 'VACUUM s_apply' >/dev/null
	case "$name" in cold*) bq -c CHECKPOINT >/dev/null ;; esac
	bench_perf_session "$OUT/$name.data" 'SET serving_layer."verbose" = on;' \
		-g -F "$FREQ" <<-'SQL'
		\timing on
		SELECT changed_rows FROM serving_layer_refresh('s_apply');
	SQL
}

NAMES=()
for r in $(seq 1 "$ROUNDS"); do
	for k in cold warm; do
		log "round $r: $k"
		profile_one "$k-$r"
		NAMES+=("$k-$r")
	done
done

# Share of the samples with the page-fault handler in their stack.
fault_share() {
	perf report -i "$1" --children --sort sym --stdio -g none 2>/dev/null |
		awk '$NF == "exc_page_fault" {print $1; exit}'
}

report() {
	echo "## profile_apply.sh: a $CHANGE 'apply' refresh, cold and warm (N = $(human "$N"), $(date -u '+%Y-%m-%d %H:%M UTC'))"
	echo
	bench_machine
	echo "- extra settings: ${BENCH_EXTRA_SETTINGS:-none}; huge pages reserved (HugePages_Total): $(awk '/^HugePages_Total/ {print $2}' /proc/meminfo)"
	echo "- each refresh under \`perf record -g -F $FREQ -p <backend>\` in a new session"
	echo
	echo "| refresh | seconds | delta phase, ms | apply phase, ms | samples under exc_page_fault |"
	echo "|---|---|---|---|---|"
	for name in "${NAMES[@]}"; do
		printf '| %s | %s | %s | %s | %s |\n' "$name" "$(timing_seconds "$OUT/$name.data.log")" \
			"$(sed -n 's/^INFO: .*: delta: .*, \([0-9.]*\) ms$/\1/p' "$OUT/$name.data.log")" \
			"$(sed -n 's/^INFO: .*: apply: .*, \([0-9.]*\) ms$/\1/p' "$OUT/$name.data.log")" \
			"$(fault_share "$OUT/$name.data")"
	done
	for name in "${NAMES[@]}"; do
		echo
		echo "### $name: the 15 functions with the most samples of their own"
		echo
		echo '```'
		perf report -i "$OUT/$name.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null |
			grep -v '^#' | grep '%' | head -n 15 || true
		echo '```'
	done
}
report | tee "$OUT/profile_apply.md"
