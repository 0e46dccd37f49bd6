#!/usr/bin/env bash
# test/bench/apply.sh
#
# What does a refresh in mode 'apply' cost, against the size of the change?
# Starts a throwaway PostgreSQL 15 cluster (lib.sh), builds the classic
# layout at N batch keys (2M and 5M; --quick: 200k) with a speed layer of
# 10 % of N rows (half on batch keys, half new keys), no index on the batch,
# a serving table with a unique btree index on the key (made by the first
# refresh in mode 'apply', so at fillfactor 90), then times, RUNS (3)
# times each, alternating with the floor:
#   floor       CREATE TABLE x AS SELECT * FROM batch_layer (plain copy)
#   apply 1%    the speed rows of 1 % of the keys changed, then an 'apply'
#               refresh
#   apply 1% warm  the same change again right after, without the CHECKPOINT
#               (a refresh every few minutes mostly finds its pages already
#               logged whole since the last checkpoint)
#   apply new   speed rows for 1 % of the keys inserted, batch keys the speed
#               layer did not have (the refresh takes their batch values
#               from their serving rows), then 'apply'
#   apply 10%   every speed row changed (10 % of the keys), then 'apply'
#   apply all   the batch reloaded with new values for every key
#               (TRUNCATE + INSERT), then 'apply' (which compares in full:
#               the batch layer changed)
#   apply reload  the batch reloaded with the rows it has (TRUNCATE +
#               INSERT of the same rows, as a batch job that replaces its
#               table each run and found nothing new), then 'apply': compared
#               in full, nothing to change
#   apply 1% after all  apply.sh's "1 %" change once more, after "all" and
#               "reload": the serving table as a refresh that rewrote every
#               row left it (at fillfactor 90, twice its pages and its
#               index's)
# Every 'apply' run follows a refresh of the same target (set-up makes one),
# so 1 % and 10 % follow the change (apply_delta.c) as in a pipeline.
# Each run starts from packed tables, so that the runs repeat one another:
# before runs 2, 3, ... the serving table and its twin s_sql are rewritten
# (VACUUM FULL) and refreshed once, untimed.
#   swap        a 'swap' refresh of the same change (1 %), for reference
#   mv conc.    REFRESH MATERIALIZED VIEW CONCURRENTLY of a materialized
#               view of the same merge (GROUP BY over batch UNION ALL speed,
#               unique index on the key), after the same 1 % change: the
#               anchor
#   SQL UPDATE  right after 'apply 10%' and 'apply all', one UPDATE
#               statement changing as many rows of a twin of the serving
#               table (s_sql: same rows, fillfactor and index): every speed
#               key's row, and every row; what PostgreSQL's own executor
#               takes to change those rows in place, the floor of any way to
#               apply them as row changes; after '10%' also the same
#               statement with hash and merge joins off (a nested loop
#               through the index, the plan closest to a refresh's)
# The changes themselves are not timed; each timed statement runs in a new
# session after a CHECKPOINT; the serving table is vacuumed (untimed) before
# each run, and the dead tuples each 'apply' run leaves are counted
# (pgstattuple) and reported, as is the WAL each timed statement wrote
# (pg_current_wal_lsn() before and after).  The refresh's verbose lines say where its
# time goes (scan of the serving table; merge and changes).  Raw logs and
# the report go to test/bench/out/apply/ (apply-ffF/ with --fillfactor).
#
#   test/bench/apply.sh [--quick] [--runs N] [--sizes "N ..."] [--append]
#                       [--fillfactor F]
#
# --fillfactor F: the first refresh makes the serving table with
# serving_layer.apply_fillfactor = F instead of the default 90 (and the twin
# s_sql gets F too); 50 leaves room on every page to update all its rows
# in place.
#
# --append keeps the runs of earlier invocations (runs.tsv) and reports every
# size found there.
#
# It assumes the extension is installed (make install).  A default run takes
# about 15 minutes on 2 cores.  Environment: BENCH_PORT, BENCH_USER (lib.sh).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SIZES=(2000000 5000000)
RUNS=3
APPEND=0
FILLFACTOR=
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) SIZES=(200000) ;;
	--runs) RUNS=$2; shift ;;
	--sizes) read -r -a SIZES <<<"$2"; shift ;;
	--append) APPEND=1 ;;
	--fillfactor) FILLFACTOR=$2; shift ;;
	-h | --help) sed -n '2,70p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument '$1'" ;;
	esac
	shift
done

OUT=$BENCH_OUT/apply${FILLFACTOR:+-ff$FILLFACTOR}
RAW=$OUT/raw
mkdir -p "$RAW"
RUNS_TSV=$OUT/runs.tsv
[ "$APPEND" = 1 ] || : >"$RUNS_TSV"
bench_check_install
bench_start_cluster
bq -c 'CREATE EXTENSION pgstattuple' >/dev/null

# The merge a swap or an apply refresh computes, as a materialized view.
MV_SQL="CREATE MATERIALIZED VIEW mv AS $BENCH_MERGE_SQL;
	CREATE UNIQUE INDEX ON mv (location);"

# Build the layers at N keys, both serving tables and the view.
setup() {
	local n=$1
	bq -c 'DROP MATERIALIZED VIEW IF EXISTS mv' >/dev/null
	make_batch "$n" plain
	make_speed "$n" 10 plain
	bq <<-SQL >/dev/null
		SET client_min_messages = warning;
		DROP TABLE IF EXISTS s_apply, s_swap, s_sql;
		SELECT serving_layer_forget(target) FROM serving_layer_definitions;
		-- s_apply is made by its first refresh, as mode 'apply' makes a
		-- table (fillfactor 90, or --fillfactor's)
		${FILLFACTOR:+SET serving_layer.apply_fillfactor = $FILLFACTOR;}
		SELECT serving_layer_define('s_apply', 'batch_layer', 'speed_layer', mode => 'apply');
		SELECT serving_layer_define('s_swap', 'batch_layer', 'speed_layer', mode => 'swap');
		SELECT count(*) FROM serving_layer_refresh();
		CREATE UNIQUE INDEX ON s_apply (location);
		CREATE UNIQUE INDEX ON s_swap (location);
		-- the first refresh of a definition compares in full and leaves the
		-- state the next ones follow the change from, as in a pipeline
		SELECT count(*) FROM serving_layer_refresh('s_apply');
		$MV_SQL
		CREATE TABLE s_sql WITH (fillfactor = ${FILLFACTOR:-90}) AS SELECT * FROM s_apply;
		CREATE UNIQUE INDEX ON s_sql (location);
		VACUUM ANALYZE s_apply, s_swap, mv, s_sql;
	SQL
}

# The untimed change before a run of scenario $1.
change_sql() {
	case "$1" in
	1pct | 1pct_warm | 1pct_after_all) echo "$APPLY_CHANGE_1PCT_SQL" ;;
	new1pct) echo "INSERT INTO speed_layer SELECT b.location, 1, 1, 1, 1
		FROM batch_layer b WHERE ((hashtext(b.location) >> 10) & 1023) BETWEEN $((10 * $2)) AND $((10 * $2 + 9))
		AND NOT EXISTS (SELECT FROM speed_layer s WHERE s.location = b.location);" ;;
	10pct) echo "$APPLY_CHANGE_10PCT_SQL" ;;
	all) echo "BEGIN; CREATE TEMP TABLE nb AS SELECT location, count_id + 1 AS count_id,
		sum_followers_count, sum_favorite_count, sum_retweet_count FROM batch_layer;
		TRUNCATE batch_layer; INSERT INTO batch_layer SELECT * FROM nb; COMMIT;" ;;
	reload) echo "BEGIN; CREATE TEMP TABLE nb AS SELECT * FROM batch_layer;
		TRUNCATE batch_layer; INSERT INTO batch_layer SELECT * FROM nb; COMMIT;" ;;
	esac
}

# Time one run of method $2 (floor, apply, swap, mv) at N=$1 after change $3;
# append to $RUNS_TSV and print the seconds.
timed_run() {
	local n=$1 m=$2 ch=$3 run=$4 f secs dead=- changed=- wal
	f=$RAW/${n}_${m}_${ch}_${run}.log
	if [ "$m" != floor ] && [ "$m" != sql ] && [ "$m" != sqlix ]; then
		bq -c "$(change_sql "$ch" "$run")" >/dev/null
		bq -c 'VACUUM speed_layer, batch_layer' >/dev/null
	fi
	if [ "$ch" = 1pct_warm ]; then
		bq -c 'VACUUM s_apply' >/dev/null
	else
		bq -c 'VACUUM s_apply, s_sql' -c 'CHECKPOINT' >/dev/null
	fi
	{
	printf '%s\n' "SELECT pg_current_wal_lsn() AS l0 \\gset"
	case "$m" in
	floor) printf '%s\n' '\timing on' 'CREATE TABLE x AS SELECT * FROM batch_layer;' ;;
	apply) printf '%s\n' 'SET serving_layer."verbose" = on;' '\timing on' \
		"SELECT changed_rows FROM serving_layer_refresh('s_apply');" ;;
	swap) printf '%s\n' 'SET serving_layer."verbose" = on;' '\timing on' \
		"SELECT output_rows FROM serving_layer_refresh('s_swap');" ;;
	mv) printf '%s\n' '\timing on' 'REFRESH MATERIALIZED VIEW CONCURRENTLY mv;' ;;
	sql) printf '%s\n' '\timing on' "UPDATE s_sql SET count_id = count_id + 1$(
		[ "$ch" = all ] || echo ' WHERE location IN (SELECT location FROM speed_layer)');" ;;
	sqlix) printf '%s\n' 'SET enable_hashjoin = off;' 'SET enable_mergejoin = off;' '\timing on' \
		'UPDATE s_sql SET count_id = count_id + 1 WHERE location IN (SELECT location FROM speed_layer);' ;;
	esac
	printf '%s\n' '\timing off' "SELECT 'wal ' || pg_wal_lsn_diff(pg_current_wal_lsn(), :'l0');"
	} >"$f.sql"
	"$PG_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 -f "$f.sql" >"$f" 2>&1 ||
		{ cat "$f" >&2; die "$m failed at N=$n (output above, in $f)"; }
	secs=$(timing_seconds "$f")
	wal=$(sed -n 's/^wal //p' "$f")
	case "$m" in
	floor) bq -c 'DROP TABLE x' >/dev/null ;;
	apply)
		changed=$(grep -E '^[0-9]+$' "$f" | head -n1)
		dead=$(bq -c "SELECT dead_tuple_count FROM pgstattuple('s_apply')")
		;;
	esac
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$m" "$ch" "$run" "$secs" "$changed" "$dead" "$wal" >>"$RUNS_TSV"
	printf '%s\n' "$secs"
}

# Median of column $4 (5 = seconds) of method $2 / change $3 at N=$1.
med() {
	awk -F'\t' -v n="$1" -v m="$2" -v c="$3" -v col="${4:-5}" \
		'$1 == n && $2 == m && $3 == c {print $col}' "$RUNS_TSV" | median
}

# The same for a count: a whole number.
imed() { med "$@" | sed 's/\.000$//'; }

# Median WAL written (column 8), in MB, of method $2 / change $3 at N=$1.
wal_mb() {
	awk -F'\t' -v n="$1" -v m="$2" -v c="$3" \
		'$1 == n && $2 == m && $3 == c && $8 != "" {printf "%.3f\n", $8 / 1048576}' "$RUNS_TSV" |
		median | awk '{printf "%.0f", $1}'
}

for n in "${SIZES[@]}"; do
	log "N=$(human "$n"): setup"
	setup "$n"
	for run in $(seq 1 "$RUNS"); do
		if [ "$run" -gt 1 ]; then
			log "N=$(human "$n") run $run: the serving tables packed again (untimed)"
			bq -c 'VACUUM FULL s_apply, s_sql' \
				-c "SELECT count(*) FROM serving_layer_refresh('s_apply')" \
				-c 'VACUUM ANALYZE s_apply, s_sql' >/dev/null
		fi
		for ch in 1pct new1pct 10pct all reload 1pct_after_all; do
			log "N=$(human "$n") run $run: floor, apply $ch"
			timed_run "$n" floor - "$run" >/dev/null
			timed_run "$n" apply "$ch" "$run" >/dev/null
			[ "$ch" = 1pct ] && timed_run "$n" apply 1pct_warm "$run" >/dev/null
			case "$ch" in 10pct | all) timed_run "$n" sql "$ch" "$run" >/dev/null ;; esac
			[ "$ch" = 10pct ] && timed_run "$n" sqlix 10pct "$run" >/dev/null
		done
		log "N=$(human "$n") run $run: swap, mv (1 %)"
		timed_run "$n" floor - "$run" >/dev/null
		timed_run "$n" swap 1pct "$run" >/dev/null
		timed_run "$n" mv 1pct "$run" >/dev/null
	done
	# the apply refresh equals the merge of the same layers
	bq -c "SELECT count(*) FROM serving_layer_refresh('s_apply')" \
		-c 'REFRESH MATERIALIZED VIEW mv' >/dev/null
	same=$(bq -c "SELECT (SELECT count(*) FROM (SELECT * FROM s_apply EXCEPT ALL SELECT * FROM mv) a)
		+ (SELECT count(*) FROM (SELECT * FROM mv EXCEPT ALL SELECT * FROM s_apply) b)")
	[ "$same" = 0 ] || die "N=$n: s_apply differs from the merge in $same rows"
	log "N=$(human "$n"): s_apply equals the merge"
done

report() {
	local n floor a1 aw aa an a10 aall arel sw mv q10 qix qall
	mapfile -t SIZES < <(cut -f1 "$RUNS_TSV" | sort -n -u)
	echo "## Mode 'apply' ($(date -u +%Y-%m-%d\ %H:%M) UTC)"
	echo
	bench_machine
	bench_load_note "at the end"
	echo
	echo "Runs at each N: $(for n in "${SIZES[@]}"; do
		printf '%s %s, ' "$(human "$n")" "$(awk -F'\t' -v n="$n" '$1 == n && $2 == "apply" && $3 == "1pct"' "$RUNS_TSV" | wc -l)"
	done | sed 's/, $//'); medians of those, seconds; ratios to the plain copy (floor) of the same N."
	echo "The serving table and its twin at fillfactor ${FILLFACTOR:-90}${FILLFACTOR:+ (--fillfactor)}."
	echo "Changed rows and dead tuples left (pgstattuple, after the run) of the 'apply' runs."
	echo
	echo "| N | floor (copy) | apply 1 % | apply 1 % warm | apply new 1 % | apply 10 % | apply all | apply reload | apply 1 % after all | swap (1 %) | mv concurrently (1 %) | SQL UPDATE 10 % / through the index / all | 1 % / floor | 1 % warm / floor | new 1 % / floor | 10 % / floor | all / floor | reload / floor | 1 % after all / floor | swap / floor | mv / floor | SQL UPDATE 10 % / through the index / all, / floor | changed 1 % / new / 10 % / all | dead tuples 1 % / new / 10 % / all | WAL MB floor / 1 % / 1 % warm / new / 10 % / all / reload |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	for n in "${SIZES[@]}"; do
		floor=$(med "$n" floor -)
		a1=$(med "$n" apply 1pct)
		aw=$(med "$n" apply 1pct_warm)
		aa=$(med "$n" apply 1pct_after_all)
		an=$(med "$n" apply new1pct)
		a10=$(med "$n" apply 10pct)
		aall=$(med "$n" apply all)
		arel=$(med "$n" apply reload)
		sw=$(med "$n" swap 1pct)
		mv=$(med "$n" mv 1pct)
		q10=$(med "$n" sql 10pct)
		qix=$(med "$n" sqlix 10pct)
		qall=$(med "$n" sql all)
		printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s / %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s / %s | %s / %s / %s / %s | %s / %s / %s / %s | %s / %s / %s / %s / %s / %s / %s |\n' \
			"$(human "$n")" "$floor" "$a1" "$aw" "$an" "$a10" "$aall" "$arel" "$aa" "$sw" "$mv" "$q10" "$qix" "$qall" \
			"$(ratio "$a1" "$floor")" "$(ratio "$aw" "$floor")" "$(ratio "$an" "$floor")" "$(ratio "$a10" "$floor")" "$(ratio "$aall" "$floor")" "$(ratio "$arel" "$floor")" "$(ratio "$aa" "$floor")" \
			"$(ratio "$sw" "$floor")" "$(ratio "$mv" "$floor")" "$(ratio "$q10" "$floor")" "$(ratio "$qix" "$floor")" "$(ratio "$qall" "$floor")" \
			"$(imed "$n" apply 1pct 6)" "$(imed "$n" apply new1pct 6)" "$(imed "$n" apply 10pct 6)" "$(imed "$n" apply all 6)" \
			"$(imed "$n" apply 1pct 7)" "$(imed "$n" apply new1pct 7)" "$(imed "$n" apply 10pct 7)" "$(imed "$n" apply all 7)" \
			"$(wal_mb "$n" floor -)" "$(wal_mb "$n" apply 1pct)" "$(wal_mb "$n" apply 1pct_warm)" "$(wal_mb "$n" apply new1pct)" "$(wal_mb "$n" apply 10pct)" "$(wal_mb "$n" apply all)" "$(wal_mb "$n" apply reload)"
	done
	echo
	echo "Where an 'apply' refresh's time goes (progress lines of the last run at each N):"
	echo
	for n in "${SIZES[@]}"; do
		for ch in 1pct 1pct_warm new1pct 10pct all reload 1pct_after_all; do
			echo "- $(human "$n") $ch: $(grep -h -o 'refresh of s_apply: .*' "$RAW/${n}_apply_${ch}_${RUNS}.log" | sed 's/refresh of s_apply: //' | paste -sd ';' -)"
		done
	done
}
report | tee "$OUT/report.md"
