#!/usr/bin/env bash
# test/bench/speed.sh
#
# How fast is a refresh?  Starts a throwaway PostgreSQL 15 cluster (as the
# postgres OS user, in a temporary folder, on 127.0.0.1:$BENCH_PORT, default
# 55480; removed at the end), builds the classic layout of the original design
# at N batch keys (1M and 5M; --big adds 10M; --quick uses 100k and 300k) and
# a speed layer of 1 %, 10 % and 100 % of N rows (half of them keys of the
# batch layer, half new keys), and times, alternating the methods, RUNS (3)
# runs of each:
#   (a) floor          CREATE TABLE x AS SELECT * FROM batch_layer
#   (b) floor+index    (a), then CREATE INDEX ON x (location)
#   (c) seed           the original design's SQL (test/bench/seed.sql) in one
#                      transaction, cut off after SEED_TIMEOUT (300) s
#   (d) refresh        SELECT * FROM serving_layer_refresh(), no index on
#                      serving_layer
#   (e) refresh+index  the same with a btree index on serving_layer (location)
#   (f) floor of both  CREATE TABLE x AS SELECT * FROM batch_layer UNION ALL
#                      SELECT * FROM speed_layer (the floor when the speed
#                      layer is large: a merge reads and writes both)
#   (g) refresh, small (d) with serving_layer.fast_merge_memory = SMALL_MEM
#                      (16MB): the C merge spills to temporary files
# (a) to (e) by default; --methods picks others.
# It prints markdown tables of the medians, ratios, scaling and the refreshing
# backend's peak memory, checks at the smallest N that the refresh (and the
# seed) produce exactly a GROUP BY over batch UNION ALL speed, times the
# refresh at 1M keys / 10 % speed (the smallest N with --quick) with
# work_mem 64kB and 1GB, with and without ANALYZE on the layers, and shows
# where a refresh's time goes (auto_explain of the merge query at the second
# size, 10 % speed).  Raw results, the report and speed.png go to
# test/bench/out/.
#
#   test/bench/speed.sh [--pg N] [--quick | --big] [--runs N] [--sizes "N ..."]
#       [--speeds "P ..."] [--methods "a b c d e f g"] [--small-mem 16MB]
#       [--check-all] [--no-extras]
# --pg N benchmarks PostgreSQL N (default 15); 17 and 18 run inside the
# Debian chroots test/run-tests.sh --pg uses, which build and install the
# extension there; their results are copied to test/bench/out/pgN/.
# --check-all checks the output of (d) and (g) at every N, not only the
# smallest; --no-extras skips the work_mem runs and the auto_explain run.
# BENCH_EXTRA_SETTINGS adds server settings (e.g. "maintenance_work_mem =
# 64MB", its default).
#
# It assumes the extension is installed (make install) and runs as root or
# as a user that can run PostgreSQL.  A default run takes about 30 minutes on
# 2 cores.  Environment: BENCH_PORT, BENCH_USER (see lib.sh), SEED_TIMEOUT.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SIZES=(1000000 5000000)
SPEEDS=(1 10 100)
RUNS=3
SEED_TIMEOUT=${SEED_TIMEOUT:-300}
MODE=default
METHODS=(a b c d e)
SMALL_MEM=16MB
CHECK_ALL=0
EXTRAS=1
PG_MAJOR_ARG=15
ARGS=()
while [ $# -gt 0 ]; do
	# every argument but --pg N is kept for a run inside a chroot
	case "$1" in
	--pg) PG_MAJOR_ARG=$2; shift 2; continue ;;
	--runs | --sizes | --speeds | --methods | --small-mem) ARGS+=("$1" "$2") ;;
	*) ARGS+=("$1") ;;
	esac
	case "$1" in
	--quick) SIZES=(100000 300000) MODE=quick ;;
	--big) SIZES=(1000000 5000000 10000000) MODE=big ;;
	--runs) RUNS=$2; shift ;;
	--sizes) read -r -a SIZES <<<"$2"; MODE=custom; shift ;;
	--speeds) read -r -a SPEEDS <<<"$2"; shift ;;
	--methods) read -r -a METHODS <<<"$2"; shift ;;
	--small-mem) SMALL_MEM=$2; shift ;;
	--check-all) CHECK_ALL=1 ;;
	--no-extras) EXTRAS=0 ;;
	-h | --help) sed -n '2,46p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
	shift
done
# --pg N: PostgreSQL N here, or this script again inside its chroot
bench_use_major "$PG_MAJOR_ARG" speed.sh "${ARGS[@]}"
declare -A MNAME=([a]="floor" [b]="floor+index" [c]="seed" [d]="refresh" [e]="refresh+index"
	[f]="floor of both" [g]="refresh $SMALL_MEM")
has_method() { [[ " ${METHODS[*]} " == *" $1 "* ]]; }

bench_check_install
mkdir -p "$BENCH_OUT"
RAW=$BENCH_OUT/speed-raw
rm -rf "$RAW"
mkdir -p "$RAW"
RUNS_TSV=$BENCH_OUT/speed-runs.tsv
REPORT=$BENCH_OUT/speed.md
printf 'N\tspeed_pct\tmethod\trun\tseconds\tstatus\tvmhwm_kb\trssshmem_kb\tmerged\n' >"$RUNS_TSV"
LOAD_BEFORE=$(bench_load_note "before the run")
TOP_BEFORE=$(ps -eo pcpu=,comm= --sort=-pcpu | awk 'NR <= 5 {printf "%s%s %s%%", (NR > 1 ? ", " : ""), $2, $1}')
STARTED=$(date +%s)
bench_start_cluster
BENCH_SRV_LOG=$(bench_server_log)

# --- one timed run -------------------------------------------------------------

# Untimed preparation before method $1: the state production would have.
prepare() {
	case "$1" in
	a | b | f) bq -c 'DROP TABLE IF EXISTS x' >/dev/null ;;
	c) bq -c 'DROP TABLE IF EXISTS serving_layer_temp' >/dev/null ;;
	d | g) bq -c 'DROP INDEX IF EXISTS serving_layer_location_idx' >/dev/null ;;
	e) bq -c 'CREATE INDEX IF NOT EXISTS serving_layer_location_idx ON serving_layer (location)' >/dev/null ;;
	esac
	bq -c CHECKPOINT >/dev/null
}

# The backend's peak RSS and shared memory touched, read after a run.
MEM_SQL="SELECT 'mem', line FROM regexp_split_to_table(pg_read_file('/proc/' || pg_backend_pid() || '/status'), E'\\n') AS line WHERE line ~ '^(VmHWM|RssShmem):';"

# The psql script of method $1.
method_sql() {
	case "$1" in
	a) printf '%s\n' '\timing on' 'CREATE TABLE x AS SELECT * FROM batch_layer;' ;;
	b) printf '%s\n' '\timing on' 'CREATE TABLE x AS SELECT * FROM batch_layer;' \
		'CREATE INDEX ON x (location);' '\timing off' "$MEM_SQL" ;;
	c) printf '%s\n' "SET statement_timeout = '${SEED_TIMEOUT}s';" '\timing on' 'BEGIN;' \
		"\\i $BENCH_DIR/seed.sql" 'COMMIT;' ;;
	d | e) printf '%s\n' "SET serving_layer.\"verbose\" = on;" '\timing on' \
		'SELECT * FROM serving_layer_refresh();' '\timing off' "$MEM_SQL" ;;
	f) printf '%s\n' '\timing on' \
		'CREATE TABLE x AS SELECT * FROM batch_layer UNION ALL SELECT * FROM speed_layer;' \
		'\timing off' ;;
	g) printf '%s\n' "LOAD 'serving_layer';" "SET serving_layer.fast_merge_memory = '$SMALL_MEM';" \
		"SET serving_layer.\"verbose\" = on;" '\timing on' 'SELECT * FROM serving_layer_refresh();' \
		'\timing off' "$MEM_SQL" ;;
	esac
}

# Run method $3 once at N=$1, speed $2 %, run $4 (a label); append a line
# to $RUNS_TSV and print the seconds (or ">T" when cut off).
timed_run() {
	local n=$1 pct=$2 m=$3 run=$4 f rc=0 secs status=ok hwm=- shm=- merged=-
	f=$RAW/${n}_${pct}_${m}_${run}.log
	prepare "$m"
	method_sql "$m" >"$f.sql"
	if [ "$m" = c ]; then
		# the cap covers the whole transaction: SIGINT makes psql cancel it
		timeout --signal=INT "$SEED_TIMEOUT" \
			"$PG_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 -f "$f.sql" >"$f" 2>&1 || rc=$?
	else
		"$PG_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 -f "$f.sql" >"$f" 2>&1 || rc=$?
	fi
	secs=$(timing_seconds "$f")
	if [ "$rc" -ne 0 ]; then
		if [ "$m" = c ] && grep -q 'canceling statement' "$f"; then
			status=timeout
			secs=">$SEED_TIMEOUT"
		else
			cat "$f" >&2
			die "method $m (${MNAME[$m]}) failed at N=$n speed=$pct% (output above, in $f)"
		fi
	fi
	case "$m" in b | d | e | g)
		hwm=$(awk -F'|' '$2 ~ /^VmHWM:/ {print $2}' "$f" | awk '{print $2}')
		shm=$(awk -F'|' '$2 ~ /^RssShmem:/ {print $2}' "$f" | awk '{print $2}')
		;;
	esac
	case "$m" in d | e | g)
		# how the rows were merged, from the verbose build line
		merged=$(sed -n 's/.*: build: .*, merged \(.*\), [0-9.]* ms$/\1/p' "$f" | head -n1)
		[ -n "$merged" ] || merged=-
		;;
	esac
	case "$m" in a | b | f) bq -c 'DROP TABLE IF EXISTS x' >/dev/null ;; esac
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$pct" "$m" "$run" "$secs" "$status" \
		"$hwm" "$shm" "$merged" >>"$RUNS_TSV"
	printf '%s\n' "$secs"
}

# Median seconds of method $3 at N=$1 / $2 %, ">T" if it was cut off, "" if not run.
med() {
	awk -F'\t' -v n="$1" -v p="$2" -v m="$3" '$1 == n && $2 == p && $3 == m {print $5}' "$RUNS_TSV" |
		{
			local v all=()
			while read -r v; do all+=("$v"); done
			[ ${#all[@]} -eq 0 ] && return 0
			for v in "${all[@]}"; do
				case "$v" in ">"*) printf '%s\n' "$v"; return 0 ;; esac
			done
			printf '%s\n' "${all[@]}" | median
		}
}

# The largest peak RSS (VmHWM) and shared part of the runs of method $3 (b, d
# or e) at N / %, in MB.
peak_mem() {
	awk -F'\t' -v n="$1" -v p="$2" -v m="$3" '$1 == n && $2 == p && $3 == m && $7 != "-" {
		if ($7 > h) {h = $7; s = $8} } END { if (h) printf "%.0f (%.0f shared)\n", h / 1024, s / 1024 }' "$RUNS_TSV"
}

# --- checks against a reference query -------------------------------------------

# Compare serving_layer with GROUP BY over batch UNION ALL speed (EXCEPT ALL
# both ways); print "extra missing rows".
compare_with_reference() {
	bq <<-SQL
		SET client_min_messages = warning;
		CREATE TABLE IF NOT EXISTS bench_ref AS $BENCH_MERGE_SQL;
		SELECT (SELECT count(*) FROM (SELECT * FROM serving_layer EXCEPT ALL SELECT * FROM bench_ref) AS e1)
		       || ' ' ||
		       (SELECT count(*) FROM (SELECT * FROM bench_ref EXCEPT ALL SELECT * FROM serving_layer) AS e2)
		       || ' ' || (SELECT count(*) FROM serving_layer);
	SQL
}

# Check the output of refresh method $3 (d: default settings, g: the small
# budget) and, with (c) among the methods and $3 = d, of the seed, at N=$1 /
# $2 %; record a line for the report.
verify() {
	local n=$1 pct=$2 m=$3 r s="- - -" sets="" merged
	[ "$m" = g ] && sets="SET serving_layer.fast_merge_memory = '$SMALL_MEM';"
	merged=$(bq -c "LOAD 'serving_layer'" -c "$sets SET serving_layer.\"verbose\" = on" \
		-c 'SELECT count(*) FROM serving_layer_refresh()' 2>&1 |
		sed -n 's/.*: build: .*, merged \(.*\), [0-9.]* ms$/\1/p' | head -n1)
	r=$(compare_with_reference)
	if [ "$m" = d ] && has_method c; then
		{
			bq -c 'BEGIN' -f "$BENCH_DIR/seed.sql" -c 'COMMIT'
		} >/dev/null 2>&1 || die "the seed failed at N=$n speed=$pct% during the check"
		s=$(compare_with_reference)
		bq -c 'SELECT count(*) FROM serving_layer_refresh()' >/dev/null
	fi
	bq -c 'DROP TABLE bench_ref' >/dev/null
	local re rmiss rn se sm sn verdict=ok
	read -r re rmiss rn <<<"$r"
	read -r se sm sn <<<"$s"
	if [ "$re" != 0 ] || [ "$rmiss" != 0 ]; then
		verdict="MISMATCH"
	fi
	VERIFY_LINES+=("| $(human "$n") | $pct | (${m}) ${MNAME[$m]} | ${merged:--} | $rn | $re | $rmiss | $verdict | $sn | $se | $sm |")
	log "check N=$n speed=$pct% (${m}): refresh $verdict ($rn rows, $re extra, $rmiss missing, merged ${merged:--}); seed $sn rows, $se extra, $sm missing"
}

# --- the main measurement ----------------------------------------------------

# Seed cut-offs so far, as "N pct" lines: a larger N or speed is not run.
SEED_CUT=()
seed_feasible() {
	local c cn cp
	for c in "${SEED_CUT[@]+"${SEED_CUT[@]}"}"; do
		read -r cn cp <<<"$c"
		[ "$1" -ge "$cn" ] && [ "$2" -ge "$cp" ] && return 1
	done
	return 0
}

VERIFY_LINES=()
for n in "${SIZES[@]}"; do
	log "generating batch_layer with $n keys"
	make_batch "$n" analyze
	for pct in "${SPEEDS[@]}"; do
		log "N=$n speed=$pct%: generating speed_layer"
		make_speed "$n" "$pct" analyze
		# warm-up, untimed: creates serving_layer (the seed drops it) and reads the layers
		bq -c 'SELECT count(*) FROM serving_layer_refresh()' >/dev/null
		seed_on=1
		seed_feasible "$n" "$pct" || seed_on=0
		for ((r = 1; r <= RUNS; r++)); do
			for m in "${METHODS[@]}"; do
				if [ "$m" = c ] && [ "$seed_on" = 0 ]; then
					continue
				fi
				t=$(timed_run "$n" "$pct" "$m" "$r")
				log "N=$n speed=$pct% run $r ${MNAME[$m]}: $t s"
				if [ "$m" = c ] && [ "${t#>}" != "$t" ]; then
					SEED_CUT+=("$n $pct")
					seed_on=0
					# the seed's transaction was cancelled: serving_layer is the refresh's
				fi
			done
		done
		if [ "$n" = "${SIZES[0]}" ] || [ "$CHECK_ALL" = 1 ]; then
			for m in d g; do
				has_method "$m" && verify "$n" "$pct" "$m"
			done
		fi
		if [ "$EXTRAS" = 1 ] && [ "$pct" = 10 ] && [ "$n" = "${SIZES[1]:-}" ]; then
			log "N=$n speed=$pct%: where the refresh's time goes (auto_explain)"
			DIAG_N=$n
			bq -c 'CREATE INDEX IF NOT EXISTS serving_layer_location_idx ON serving_layer (location)' >/dev/null
			bq -c CHECKPOINT >/dev/null
			: >"$RAW/diag.log"
			log_start=$(wc -c <"$BENCH_SRV_LOG")
			"$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 >"$RAW/diag.log" 2>&1 <<-'SQL'
				LOAD 'auto_explain';
				SET auto_explain.log_min_duration = 0;
				SET auto_explain.log_nested_statements = on;
				SET auto_explain.log_analyze = on;
				SET auto_explain.log_buffers = on;
				SET serving_layer."verbose" = on;
				\timing on
				SELECT * FROM serving_layer_refresh();
			SQL
			tail -c +"$((log_start + 1))" "$BENCH_SRV_LOG" >"$RAW/diag-server.log"
			bq -c 'DROP TABLE IF EXISTS x' -c CHECKPOINT >/dev/null
			"$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 >"$RAW/diag-floor.log" 2>&1 <<-'SQL'
				EXPLAIN (ANALYZE, BUFFERS) CREATE TABLE x AS SELECT * FROM batch_layer;
				\echo CREATE INDEX ON x (location):
				\timing on
				CREATE INDEX ON x (location);
				\timing off
				DROP TABLE x;
			SQL
		fi
	done
done

# --- work_mem and ANALYZE ------------------------------------------------------

# The statements an auto_explain log excerpt ($1) holds, one TSV line each:
# ms, query text, top plan node (without costs), its memory lines.
ae_entries() {
	awk '
		function flush() {
			if (inentry) printf "%s\t%s\t%s\t%s\n", dur, q, top, ext
			inentry = 0
		}
		/LOG: +duration: [0-9.]+ ms +plan:/ {
			flush(); match($0, /duration: [0-9.]+/); dur = substr($0, RSTART + 10, RLENGTH - 10)
			inentry = 1; q = ""; top = ""; ext = ""; next
		}
		inentry && /^\tQuery Text: / { q = substr($0, 14); gsub(/\t/, " ", q); next }
		inentry && /^\t/ {
			line = $0; sub(/^[\t ]+/, "", line); sub(/^-> +/, "", line)
			gsub(/  \(cost=[^)]*\)/, "", line)
			if (top == "") top = line
			else if (line ~ /^(Batches|Sort Method|Memory Usage)/) ext = ext (ext == "" ? "" : ", ") line
			next
		}
		inentry { flush() }
		END { flush() }' "$1"
}

# The data statements of a refresh in an auto_explain excerpt (not the
# catalog, the history or the refresh call itself).
ae_data() { ae_entries "$1" | awk -F'\t' '$2 !~ /serving_layer_config|serving_layer_history|serving_layer_refresh\(|pg_catalog.pg_class/'; }

WM_LINES=()
if [ "$EXTRAS" = 1 ]; then
WM_N=${SIZES[0]}
WM_PCT=10
# session settings to try: "layers analyzed|SET ...; SET ..."
WM_CONFIGS=("no|SET work_mem = '64kB'" "no|SET work_mem = '1GB'" "yes|SET work_mem = '64kB'" "yes|SET work_mem = '1GB'")
if [ "$(bq -c "SELECT count(*) FROM pg_settings WHERE name = 'serving_layer.fast_merge_memory'")" = 1 ] ||
	[ "$(bq -c "LOAD 'serving_layer'" -c "SELECT count(*) FROM pg_settings WHERE name = 'serving_layer.fast_merge_memory'" | tail -n1)" = 1 ]; then
	# the smallest budget makes the refresh fall back to its GROUP BY query
	WM_CONFIGS+=("yes|SET work_mem = '64kB'; SET serving_layer.fast_merge_memory = 64"
		"yes|SET work_mem = '1GB'; SET serving_layer.fast_merge_memory = 64")
fi
log "work_mem / ANALYZE runs at N=$WM_N speed=$WM_PCT%"
make_batch "$WM_N" none
make_speed "$WM_N" "$WM_PCT" none
bq -c 'SELECT count(*) FROM serving_layer_refresh()' >/dev/null
analyzed=no
ci=0
for cfg in "${WM_CONFIGS[@]}"; do
	an=${cfg%%|*}
	sets=${cfg#*|}
	ci=$((ci + 1))
	if [ "$an" = yes ] && [ "$analyzed" = no ]; then
		bq -c 'ANALYZE batch_layer' -c 'ANALYZE speed_layer' >/dev/null
		analyzed=yes
	fi
	times=()
	for ((r = 1; r <= RUNS; r++)); do
		bq -c CHECKPOINT >/dev/null
		f=$RAW/session_${ci}_$r.log
		"$PG_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 >"$f" 2>&1 <<-SQL
			LOAD 'serving_layer';
			$sets;
			\\timing on
			SELECT * FROM serving_layer_refresh();
			\\timing off
			$MEM_SQL
		SQL
		times+=("$(timing_seconds "$f")")
		hwm=$(awk -F'|' '$2 ~ /^VmHWM:/ {print $2}' "$f" | awk '{print $2}')
		shm=$(awk -F'|' '$2 ~ /^RssShmem:/ {print $2}' "$f" | awk '{print $2}')
		printf '%s\t%s\t%s\t%s\t%s\tok\t%s\t%s\n' "$WM_N" "$WM_PCT" "d,$sets,analyze=$an" \
			"$r" "${times[-1]}" "$hwm" "$shm" >>"$RUNS_TSV"
	done
	# the plans the refresh ran, with their memory and spill counts (auto_explain, no timing)
	log_start=$(wc -c <"$BENCH_SRV_LOG")
	"$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 >/dev/null 2>&1 <<-SQL
		LOAD 'serving_layer';
		$sets;
		LOAD 'auto_explain';
		SET auto_explain.log_min_duration = 0;
		SET auto_explain.log_nested_statements = on;
		SET auto_explain.log_analyze = on;
		SET auto_explain.log_timing = off;
		SELECT * FROM serving_layer_refresh();
	SQL
	tail -c +"$((log_start + 1))" "$BENCH_SRV_LOG" >"$RAW/session_${ci}_plan.log"
	plan=$(ae_data "$RAW/session_${ci}_plan.log" |
		awk -F'\t' '{printf "%s%s%s", (NR > 1 ? "; " : ""), $3, ($4 == "" ? "" : " [" $4 "]")}')
	WM_LINES+=("| $an | ${sets//;/,} | $(printf '%s\n' "${times[@]}" | median) | $(printf '%s\n' "${times[@]}" | paste -sd ' ' -) | $((hwm / 1024)) ($((shm / 1024)) shared) | $plan |")
	log "$sets analyze=$an: $(printf '%s\n' "${times[@]}" | median) s"
done
fi
LOAD_AFTER=$(bench_load_note "at the end")
ELAPSED=$(( $(date +%s) - STARTED ))

# --- report ----------------------------------------------------------------------

report() {
	local n pct m v
	echo "## speed.sh: refresh speed ($MODE run, $(date -u '+%Y-%m-%d %H:%M UTC'), $((ELAPSED / 60)) min)"
	echo
	bench_machine
	echo "$LOAD_BEFORE (busiest processes then: $TOP_BEFORE)"
	echo "$LOAD_AFTER"
	echo "- data: batch_layer(location text, count_id, sum_followers_count, sum_favorite_count, sum_retweet_count bigint), N unique keys 'city-1'..'city-N', no index or constraint; speed_layer with the seed's column names (\"count(id)\", ...), so the classic layout matches them by position: half of its rows update batch keys spread evenly, half are new keys. Layers loaded with synchronous_commit=off, then VACUUM ANALYZE; timed runs use the settings above (synchronous_commit=on). The serving table exists before every refresh, as in production."
	echo "- method: median of $RUNS runs, methods alternating a b c d e in each round, a CHECKPOINT (untimed) before every run, each run in a new session, time = psql \\timing of the statements (the seed: BEGIN through COMMIT). Seed runs are cut off after $SEED_TIMEOUT s (statement_timeout and a cancel of the whole transaction), and not run at a larger N or speed once cut off."
	echo
	echo "### Medians (seconds)"
	echo
	# ratios of each refresh to its floor, where both were run
	local -a RATIOS=()
	local rp
	for rp in d/a e/b d/f g/f c/d; do
		has_method "${rp%/*}" && has_method "${rp#*/}" && RATIOS+=("$rp")
	done
	local hdr="| N | speed % | speed rows |" sep="|---|---|---|"
	for m in "${METHODS[@]}"; do hdr+=" (${m}) ${MNAME[$m]} |"; sep+="---|"; done
	for rp in "${RATIOS[@]}"; do hdr+=" $rp |"; sep+="---|"; done
	for m in "${METHODS[@]}"; do
		case "$m" in b | d | e | g) hdr+=" (${m}) peak RSS MB |"; sep+="---|" ;; esac
	done
	echo "$hdr"
	echo "$sep"
	for n in "${SIZES[@]}"; do
		for pct in "${SPEEDS[@]}"; do
			declare -A M=()
			local line="| $(human "$n") | $pct | $((n * pct / 100)) |"
			for m in "${METHODS[@]}"; do
				M[$m]=$(med "$n" "$pct" "$m")
				v=${M[$m]}
				if [ "$m" = c ] && [ -z "$v" ]; then
					v="> $SEED_TIMEOUT (not run)"
				elif [ "${v#>}" != "$v" ]; then
					v="> $SEED_TIMEOUT"
				fi
				line+=" $v |"
			done
			for rp in "${RATIOS[@]}"; do
				local x=${M[${rp%/*}]} y=${M[${rp#*/}]}
				if [ "$rp" = c/d ] && { [ -z "$x" ] || [ "${x#>}" != "$x" ]; }; then
					line+=" > $(awk -v t="$SEED_TIMEOUT" -v d="$y" 'BEGIN {printf "%.0f", t / d}') |"
				else
					line+=" $(ratio "$x" "$y") |"
				fi
			done
			for m in "${METHODS[@]}"; do
				case "$m" in b | d | e | g) line+=" $(peak_mem "$n" "$pct" "$m") |" ;; esac
			done
			echo "$line"
		done
	done
	echo
	echo "d/a = refresh / floor, e/b = refresh with index / (floor + index), d/f and g/f = refresh / floor of both layers, c/d = seed / refresh. How the refreshes merged (serving_layer.verbose): $(awk -F'\t' 'NR > 1 && $9 != "-" && $9 != "" {print "(" $3 ") " $9}' "$RUNS_TSV" | sort | uniq -c | awk '{c = $1; $1 = ""; printf "%s%s x%d", (NR > 1 ? ";" : ""), $0, c}'). Peak RSS is the largest VmHWM of the backend over the (b) runs (CREATE INDEX with the server's maintenance_work_mem), the (d) and (g) runs (the merge, no index) and the (e) runs (the index copy, built with maintenance_work_mem like CREATE INDEX), read from /proc/<pg_backend_pid()>/status in the same session after the refresh; \"shared\" is its RssShmem (shared_buffers pages it touched), so the private memory is about the difference."
	echo
	local n0=${SIZES[0]}
	echo "### Scaling with N (median seconds; ratio to N = $(human "$n0"))"
	echo
	local hdr="| speed % | method |" sep="|---|---|"
	for n in "${SIZES[@]}"; do hdr+=" $(human "$n") |"; sep+="---|"; done
	for n in "${SIZES[@]:1}"; do hdr+=" $(human "$n")/$(human "$n0") |"; sep+="---|"; done
	echo "$hdr"
	echo "$sep"
	for pct in "${SPEEDS[@]}"; do
		for m in "${METHODS[@]}"; do
			local line="| $pct | (${m}) ${MNAME[$m]} |"
			for n in "${SIZES[@]}"; do
				v=$(med "$n" "$pct" "$m")
				[ -z "$v" ] && v="> $SEED_TIMEOUT (not run)"
				line+=" $v |"
			done
			for n in "${SIZES[@]:1}"; do
				line+=" $(ratio "$(med "$n" "$pct" "$m")" "$(med "$n0" "$pct" "$m")") |"
			done
			echo "$line"
		done
	done
	echo
	echo "### Output checked against GROUP BY over batch UNION ALL speed (N = $(human "$n0"), EXCEPT ALL both ways)"
	echo
	echo "| N | speed % | method | merged | refresh rows | refresh extra | refresh missing | refresh | seed rows | seed extra | seed missing |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|"
	printf '%s\n' "${VERIFY_LINES[@]}"
	echo
	[ "$EXTRAS" = 1 ] || return 0
	echo "### Session work_mem and ANALYZE on the layers (N = $(human "$WM_N"), speed $WM_PCT %, refresh without index)"
	echo
	echo "| layers analyzed | session settings | median s | runs s | peak RSS MB | the refresh's statements (auto_explain top plan nodes) |"
	echo "|---|---|---|---|---|---|"
	printf '%s\n' "${WM_LINES[@]}"
	echo
	echo "Same data with the default settings, analyzed: (d) refresh $(med "$WM_N" "$WM_PCT" d) s in the first table. The last column lists the top plan node of each statement the refresh ran (auto_explain, nested statements, in order), with the memory and spill counts of aggregates: they show whether the session's work_mem reached them. serving_layer.fast_merge_memory = 64 (kB), where the extension has it, forces its GROUP BY fallback."
	if [ -n "${DIAG_N:-}" ]; then
		echo
		echo "### Where a refresh's time goes (N = $(human "$DIAG_N"), speed 10 %, index on serving_layer, one run with auto_explain ANALYZE)"
		echo
		local total phases
		total=$(awk '/^Time: / {print $2}' "$RAW/diag.log" | tail -n1)
		phases=$(awk '/^INFO: +refresh of/' "$RAW/diag.log" | sed -E 's/^INFO: +refresh of [^:]+: //' |
			awk '{ms = $(NF - 1); phase = $1; sub(/:$/, "", phase); detail = $0;
				sub(/^[a-z]+: */, "", detail); sub(/,? *[0-9.]+ ms$/, "", detail);
				printf "%s\t%s\t%s\n", phase, (detail == "" ? "-" : detail), ms}')
		echo "| phase (serving_layer.verbose) | ms |"
		echo "|---|---|"
		printf '%s\n' "$phases" | while IFS=$'\t' read -r ph det ms; do
			[ "$det" = - ] && det=
			echo "| $ph${det:+ ($det)} | $ms |"
		done
		echo "| commit and the rest (total - phases) | $(printf '%s\n' "$phases" | awk -F'\t' -v t="$total" '{s += $3} END {printf "%.1f", t - s}') |"
		printf "| total (psql \\\\timing, with auto_explain overhead) | %s |\n" "$total"
		echo
		echo "Statements the refresh ran during its build (auto_explain, nested statements, in order):"
		echo
		echo "| ms | statement | top plan node |"
		echo "|---|---|---|"
		ae_data "$RAW/diag-server.log" | awk -F'\t' '{q = substr($2, 1, 120); gsub(/\|/, "\\|", q); printf "| %s | `%s` | %s%s |\n", $1, q, $3, ($4 == "" ? "" : " [" $4 "]")}'
		echo
		echo "Their plans:"
		echo
		echo '```'
		awk '/LOG: +duration: [0-9.]+ ms +plan:/ {on = 1; buf = ""; next}
			on && /^\t/ {buf = buf substr($0, 2) "\n"; next}
			on {if (buf !~ /serving_layer_config|serving_layer_history|serving_layer_refresh\(|pg_catalog.pg_class/) printf "%s\n", buf; on = 0}
			END {if (on && buf !~ /serving_layer_config|serving_layer_history|serving_layer_refresh\(|pg_catalog.pg_class/) printf "%s", buf}' "$RAW/diag-server.log"
		echo '```'
		echo
		echo "Floor for comparison:"
		echo
		echo '```'
		grep -vE '^$' "$RAW/diag-floor.log" || true
		echo '```'
	fi
}
report | tee "$REPORT"

# --- plot ------------------------------------------------------------------------

if ensure_gnuplot; then
	DAT=$BENCH_OUT/speed-plot.dat
	{
		for pct in "${SPEEDS[@]}"; do
			echo "# speed $pct %"
			for n in "${SIZES[@]}"; do
				line="$(awk -v n="$n" 'BEGIN {printf "%g", n / 1000000}')"
				for m in "${METHODS[@]}"; do
					v=$(med "$n" "$pct" "$m")
					case "$v" in "" | ">"*) v=NaN ;; esac
					line+=" $v"
				done
				echo "$line"
			done
			printf '\n\n'
		done
	} >"$DAT"
	{
		echo "set terminal pngcairo noenhanced size 1500,560 font 'sans,11'"
		echo "set output '$BENCH_OUT/speed.png'"
		echo "set multiplot layout 1,${#SPEEDS[@]} title 'serving_layer refresh vs floors: median seconds against batch keys N ($(nproc) cores, PostgreSQL $SL_PG_MAJOR; seed points missing where cut off at $SEED_TIMEOUT s)'"
		echo "set xlabel 'batch keys N (millions)'"
		echo "set ylabel 'seconds'"
		echo "set key top left Left reverse samplen 2 font ',9' opaque box"
		echo "set grid"
		echo "set xrange [0:*]"
		echo "set yrange [0:*]"
		i=0
		for pct in "${SPEEDS[@]}"; do
			echo "set title 'speed layer = $pct % of N'"
			col=2
			pl="plot"
			for m in "${METHODS[@]}"; do
				[ "$col" -gt 2 ] && pl+=","
				pl+=" '$DAT' index $i using 1:$col with linespoints lw 2 title '(${m}) ${MNAME[$m]}'"
				col=$((col + 1))
			done
			echo "$pl"
			i=$((i + 1))
		done
		echo "unset multiplot"
	} >"$BENCH_OUT/speed.gp"
	gnuplot "$BENCH_OUT/speed.gp" && log "plot: $BENCH_OUT/speed.png"
fi
log "report: $REPORT; raw runs: $RUNS_TSV and $RAW/"
