#!/usr/bin/env bash
# test/bench/readers.sh
#
# What do readers of the serving table notice of refreshes?  Starts a
# throwaway PostgreSQL 15 cluster (as the postgres OS user, in a temporary
# folder, on 127.0.0.1:$BENCH_PORT, default 55480; removed at the end),
# builds the classic layout with N = 1M batch keys and a 10 % speed layer
# (serving_layer ~1.05M rows, one btree index on location), and runs pgbench
# readers (4 clients, READ_RATE = 500 transactions/s in all, each
# "SELECT * FROM serving_layer WHERE location = 'city-' || random key", an
# index lookup) for PHASE (60) s in three phases:
#   1. readers alone (baseline);
#   2. readers while another connection runs refreshes back to back;
#   3. the same, plus one long reader (BEGIN; SELECT pg_sleep(20) FROM
#      serving_layer LIMIT 1; COMMIT) started in the middle of the phase.
# From pgbench's per-transaction logs it reports per phase the read latency
# p50 / p99 / max, transactions, reader errors (failed transactions and
# aborted clients), and from the server log the swap lock: wait and swap
# phase (serving_layer.verbose lines), time from taking it to its release
# (the first reader queued behind it getting its lock: log_lock_waits with
# deadlock_timeout = 1ms in the readers' sessions) and to the end of the
# commit (log_min_duration_statement).  A last section measures the swap
# lock hold time on a quiet server (one probe reader) at 1M and 5M keys with
# one index, with synchronous_commit on and, as a diagnostic, off.  Raw logs
# and the report go to test/bench/out/.
#
#   test/bench/readers.sh [--quick]
#
# --quick: 100k keys, 15 s phases, a 5 s long reader, hold times at 100k and
# 300k.  A default run takes about 8 minutes.  It assumes the extension is
# installed (make install).  Environment: BENCH_PORT, BENCH_USER (lib.sh),
# READ_RATE (0 = as fast as the 4 clients go), READ_CLIENTS.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=1000000
PHASE=60
LONG=20
HOLD_SIZES=(1000000 5000000)
HOLD_RUNS=3
MODE=default
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) N=100000 PHASE=15 LONG=5 HOLD_SIZES=(100000 300000) MODE=quick ;;
	-h | --help) sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
	shift
done
SPEED_PCT=10
READ_RATE=${READ_RATE:-500}
READ_CLIENTS=${READ_CLIENTS:-4}
# targets from the issue
TARGET_STALL_MS=200
TARGET_HOLD_MS=50

bench_check_install
mkdir -p "$BENCH_OUT"
RAW=$BENCH_OUT/readers-raw
rm -rf "$RAW"
mkdir -p "$RAW"
REPORT=$BENCH_OUT/readers.md
LOAD_BEFORE=$(bench_load_note "before the run")
TOP_BEFORE=$(ps -eo pcpu=,comm= --sort=-pcpu | awk 'NR <= 5 {printf "%s%s %s%%", (NR > 1 ? ", " : ""), $2, $1}')
STARTED=$(date +%s)
bench_start_cluster
SRV_LOG=$(bench_server_log)

# The refresh loop's psql: verbose INFO lines and the statement's duration go
# to the server log with the session's application_name, so the swap lock
# can be timed from the server's own clock.
# $2, if given, is one more SET for the session.
refresh_once() {
	PGAPPNAME=$1 "$PG_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 -c "${2:-SELECT}" \
		-c 'SET serving_layer."verbose" = on' -c 'SET log_min_messages = info' \
		-c 'SET log_min_duration_statement = 0' -c 'SELECT * FROM serving_layer_refresh()'
}

# The refreshes of the sessions named $1 in the server log, one TSV line each:
#  1 pid, 2 epoch when the swap lock was taken (verbose "lock:" line),
#  3 attempts, 4 lock wait ms, 5 swap ms, 6 epoch after the commit (the
#  statement's duration line), 7 statement ms, 8 lock taken -> end of the
#  commit ms, 9 lock taken -> released ms (when the first reader that queued
#  behind the held lock got its AccessShareLock, from the readers'
#  log_lock_waits "acquired" lines; "-" when no reader queued), 10 readers
#  that queued behind it, 11 their longest wait ms.
# Epochs have 1 ms resolution (log_line_prefix %n).
refreshes_of() {
	awk -v app="app=$1" '
		/LOG: +process [0-9]+ acquired AccessShareLock on relation/ {
			match($0, /after [0-9.]+ ms/); w = substr($0, RSTART + 6, RLENGTH - 9)
			na++; acq_t[na] = $4; acq_w[na] = w
			next
		}
		$6 != app { next }
		/INFO: +refresh of .*: lock: attempts/ {
			pid = $5; lockt[pid] = $4
			match($0, /attempts [0-9]+/); att[pid] = substr($0, RSTART + 9, RLENGTH - 9)
			match($0, /[0-9.]+ ms$/); wait[pid] = substr($0, RSTART, RLENGTH - 3)
			next
		}
		/INFO: +refresh of .*: swap: / { match($0, /[0-9.]+ ms$/); swap[$5] = substr($0, RSTART, RLENGTH - 3); next }
		/LOG: +duration: .*serving_layer_refresh/ {
			pid = $5
			if (!(pid in lockt)) next
			match($0, /duration: [0-9.]+/); d = substr($0, RSTART + 10, RLENGTH - 10)
			nr++; r_line[nr] = sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.0f", pid, lockt[pid], att[pid], wait[pid], swap[pid], $4, d, ($4 - lockt[pid]) * 1000)
			r_lock[nr] = lockt[pid]; r_end[nr] = $4
			delete lockt[pid]
		}
		END {
			for (i = 1; i <= nr; i++) {
				rel = ""; n = 0; mx = 0
				for (j = 1; j <= na; j++) {
					# granted after the lock was taken, no later than the commit ended,
					# and queued no earlier than 1 ms (the log resolution) before it was taken
					if (acq_t[j] < r_lock[i] || acq_t[j] > r_end[i] + 0.001) continue
					if (acq_t[j] - acq_w[j] / 1000 < r_lock[i] - 0.001) continue
					n++
					if (acq_w[j] > mx) mx = acq_w[j]
					if (rel == "" || acq_t[j] < rel) rel = acq_t[j]
				}
				printf "%s\t%s\t%d\t%s\n", r_line[i], (rel == "" ? "-" : sprintf("%.0f", (rel - r_lock[i]) * 1000)), n, (n ? sprintf("%.1f", mx) : "-")
			}
		}' "$SRV_LOG"
}

# "median max" of column $2 of TSV file $1.
med_max() {
	local med max
	med=$(cut -f"$2" "$1" | awk '/^[0-9.]+$/' | median | awk '{printf "%g\n", $1}')
	max=$(cut -f"$2" "$1" | awk '/^[0-9.]+$/' | sort -g | tail -n1)
	printf '%s %s\n' "${med:--}" "${max:--}"
}

# --- data --------------------------------------------------------------------------

log "generating the layout: $N batch keys, speed layer $SPEED_PCT %"
make_batch "$N" analyze
make_speed "$N" "$SPEED_PCT" analyze
bq -c 'SELECT count(*) FROM serving_layer_refresh()' >/dev/null
bq -c 'CREATE INDEX serving_layer_location_idx ON serving_layer (location)' -c 'VACUUM ANALYZE serving_layer' -c CHECKPOINT >/dev/null
ROWS=$(bq -c 'SELECT count(*) FROM serving_layer')
MAXKEY=$((N + N * SPEED_PCT / 200))
cat >"$RAW/read.sql" <<EOF
\\set k random(1, $MAXKEY)
SELECT * FROM serving_layer WHERE location = 'city-' || :k;
EOF

# Readers log each lock wait longer than 1 ms with the time it was granted:
# the first reader granted after a swap lock was taken marks its release.
PROBE_OPTIONS='-c log_lock_waits=on -c deadlock_timeout=1ms'

# --- the phases ------------------------------------------------------------------------

# Run phase $1 (a name) for $PHASE s; $2 = yes: refreshes back to back;
# $3 = yes: the long reader in the middle.
run_phase() {
	local name=$1 refresh=$2 long=$3 loop_pid='' long_pid='' rate_opt=() rc=0
	log "phase $name: readers$([ "$refresh" = yes ] && echo ' + refreshes')$([ "$long" = yes ] && echo " + one ${LONG} s reader")"
	rm -f "$RAW/$name.stop"
	bq -c CHECKPOINT >/dev/null
	if [ "$refresh" = yes ]; then
		(
			i=0
			while [ ! -e "$RAW/$name.stop" ]; do
				i=$((i + 1))
				refresh_once "$name-refresh" >>"$RAW/$name-refresh.log" 2>&1 ||
					echo "refresh $i failed" >>"$RAW/$name-refresh.log"
			done
		) &
		loop_pid=$!
	fi
	if [ "$long" = yes ]; then
		(
			sleep $(((PHASE - LONG) / 2))
			t0=$EPOCHREALTIME
			lrc=0
			PGAPPNAME=$name-long "$PG_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 -c 'BEGIN' \
				-c "SELECT pg_sleep($LONG) FROM serving_layer LIMIT 1" -c 'COMMIT' \
				>"$RAW/$name-long.log" 2>&1 || lrc=$?
			printf '%s\t%s\t%s\n' "$t0" "$EPOCHREALTIME" "$lrc" >"$RAW/$name-long.tsv"
		) &
		long_pid=$!
	fi
	[ "$READ_RATE" -gt 0 ] && rate_opt=(-R "$READ_RATE")
	printf '%s\n' "$EPOCHREALTIME" >"$RAW/$name.start"
	PGOPTIONS="$PROBE_OPTIONS" PGAPPNAME=$name-readers \
		"$PG_BINDIR/pgbench" -n -M simple -c "$READ_CLIENTS" -j 2 -T "$PHASE" "${rate_opt[@]}" \
		-f "$RAW/read.sql" -l --log-prefix="$RAW/$name" -P 10 --failures-detailed \
		>"$RAW/$name.pgbench.out" 2>"$RAW/$name.pgbench.err" || rc=$?
	printf '%s\n' "$EPOCHREALTIME" >"$RAW/$name.end"
	echo "$rc" >"$RAW/$name.pgbench.rc"
	touch "$RAW/$name.stop"
	[ -n "$loop_pid" ] && wait "$loop_pid"
	[ -n "$long_pid" ] && wait "$long_pid"
	return 0
}

# One markdown row of phase $1's read latencies and errors; also fills
# PH_MAX[$1] and PH_ERR[$1].
declare -A PH_MAX=() PH_ERR=()
phase_row() {
	local name=$1 label=$2 stats failed aborted errs rc nref="-" hold="-" wait="-" swapms="-" rel="-" queued="-"
	cat "$RAW/$name".[0-9]* 2>/dev/null | awk '{print $3}' >"$RAW/$name.lat"
	stats=$(awk '/^[0-9]+$/' "$RAW/$name.lat" | sort -n | awk '{a[NR] = $1} END {
		if (NR == 0) { print "- - - 0"; exit }
		i50 = int(NR * 0.50 + 0.999999); i99 = int(NR * 0.99 + 0.999999);
		printf "%.2f %.2f %.1f %d\n", a[i50] / 1000, a[i99] / 1000, a[NR] / 1000, NR }')
	read -r p50 p99 max tx <<<"$stats"
	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$RAW/$name.pgbench.out" | awk 'NR == 1')
	aborted=$(grep -c 'aborted' "$RAW/$name.pgbench.err" || true)
	rc=$(cat "$RAW/$name.pgbench.rc")
	errs=$(( ${failed:-0} + aborted + $(grep -vcE '^[0-9]+$' "$RAW/$name.lat" || true) ))
	PH_MAX[$name]=$max PH_ERR[$name]=$errs
	if grep -q "app=$name-refresh" "$SRV_LOG"; then
		refreshes_of "$name-refresh" >"$RAW/$name-refreshes.tsv"
		nref=$(wc -l <"$RAW/$name-refreshes.tsv")
		read -r hm hx <<<"$(med_max "$RAW/$name-refreshes.tsv" 8)"
		read -r wm wx <<<"$(med_max "$RAW/$name-refreshes.tsv" 4)"
		read -r sm sx <<<"$(med_max "$RAW/$name-refreshes.tsv" 5)"
		read -r rm rx <<<"$(med_max "$RAW/$name-refreshes.tsv" 9)"
		hold="$hm / $hx" wait="$wm / $wx" swapms="$sm / $sx" rel="$rm / $rx"
		queued="$(awk -F'\t' '$10 > 0 {n++} END {print n + 0}' "$RAW/$name-refreshes.tsv")"
		local failedref
		failedref=$(grep -c 'failed' "$RAW/$name-refresh.log" || true)
		[ "$failedref" -gt 0 ] && nref="$nref ($failedref failed)"
	fi
	echo "| $label | $p50 | $p99 | $max | $tx | $errs (failed ${failed:-?}, aborted clients $aborted, pgbench exit $rc) | $nref | $wait | $swapms | $rel ($queued) | $hold |"
}

# The slowest reads of phase $1 and whether a swap lock window overlapped them.
slowest() {
	local name=$1 start
	start=$(cat "$RAW/$name.start")
	cat "$RAW/$name".[0-9]* 2>/dev/null | awk '$3 ~ /^[0-9]+$/ {printf "%.6f\t%d\n", $5 + $6 / 1e6, $3}' |
		sort -t$'\t' -k2,2nr | awk 'NR <= 5' >"$RAW/$name.slowest"
	local lt0=0 lt1=0
	[ -s "$RAW/$name-long.tsv" ] && read -r lt0 lt1 _ <"$RAW/$name-long.tsv"
	while IFS=$'\t' read -r end lat; do
		awk -F'\t' -v e="$end" -v l="$lat" -v s="$start" -v lt0="$lt0" -v lt1="$lt1" '
			BEGIN { b = e - l / 1e6; hit = "no swap lock held meanwhile"
				if (b >= lt0 && b <= lt1) hit = hit ", during the long reader: queued behind a swap lock attempt (swap_lock_timeout)" }
			$2 <= e && $6 >= b { hit = sprintf("overlaps the swap lock of a refresh (lock taken %+.0f ms from the read start, released after %s ms, commit ended after %d ms)", ($2 - b) * 1000, $9, $8) }
			END { printf "  - %.1f ms, at %.1f s into the phase: %s\n", l / 1000, b - s, hit }' \
			"$RAW/$name-refreshes.tsv" 2>/dev/null || printf '  - %.1f ms\n' "$(awk -v l="$lat" 'BEGIN {print l / 1000}')"
	done <"$RAW/$name.slowest"
	if [ -s "$RAW/$name-long.tsv" ]; then
		local t0 t1 lrc
		read -r t0 t1 lrc <"$RAW/$name-long.tsv"
		awk -v a="$t0" -v b="$t1" -v s="$start" -v rc="$lrc" 'BEGIN {
			printf "  - the long reader ran from %.1f s to %.1f s into the phase (%.2f s), psql exit status %s\n", a - s, b - s, b - a, rc }'
	fi
}

run_phase phase1 no no
run_phase phase2 yes no
run_phase phase3 yes yes

# --- swap lock hold on a quiet server ------------------------------------------------------

HOLD_LINES=()
declare -A HOLD_MAX=() HOLD_END_MAX=()
for n in "${HOLD_SIZES[@]}"; do
	if [ "$n" != "$N" ]; then
		log "generating the layout: $n batch keys, speed layer $SPEED_PCT %"
		make_batch "$n" analyze
		make_speed "$n" "$SPEED_PCT" analyze
		bq -c 'SELECT count(*) FROM serving_layer_refresh()' >/dev/null
		bq -c 'CREATE INDEX serving_layer_location_idx ON serving_layer (location)' >/dev/null
	fi
	# one probe reader (1000 reads/s) shows when the lock is released
	PGOPTIONS="$PROBE_OPTIONS" PGAPPNAME=hold-probe "$PG_BINDIR/pgbench" -n -M simple -c 1 \
		-T 3600 -R 1000 -f "$RAW/read.sql" >"$RAW/hold-$n-probe.out" 2>&1 &
	probe_pid=$!
	sleep 1
	# synchronous_commit = off (a diagnostic): how much of the hold is the commit's WAL flush
	for sc in on off; do
		for ((r = 1; r <= HOLD_RUNS; r++)); do
			bq -c CHECKPOINT >/dev/null
			refresh_once "hold-$n-$sc" "SET synchronous_commit = $sc" >>"$RAW/hold-$n-$sc.log" 2>&1
		done
	done
	kill -TERM "$probe_pid" 2>/dev/null || true
	wait "$probe_pid" || true
	rows=$(bq -c 'SELECT count(*) FROM serving_layer')
	for sc in on off; do
		f=$RAW/hold-$n-$sc.tsv
		refreshes_of "hold-$n-$sc" >"$f"
		read -r dm _ <<<"$(med_max "$f" 7)"
		read -r wm wx <<<"$(med_max "$f" 4)"
		read -r sm sx <<<"$(med_max "$f" 5)"
		read -r hm hx <<<"$(med_max "$f" 8)"
		read -r rm rx <<<"$(med_max "$f" 9)"
		HOLD_LINES+=("| $(human "$n") | $sc | $rows | 1 | $(wc -l <"$f") | $(awk -v v="$dm" 'BEGIN {printf "%.2f", v / 1000}') | $wm / $wx | $sm / $sx | $rm / $rx ($(awk -F'\t' '$10 > 0 {n++} END {print n + 0}' "$f")) | $hm / $hx |")
		if [ "$sc" = on ]; then
			HOLD_MAX[$n]=$rx
			HOLD_END_MAX[$n]=$hx
		fi
		log "hold at $n, synchronous_commit=$sc: lock->release median/max $rm / $rx ms; lock->end of commit $hm / $hx ms; swap phase $sm / $sx ms"
	done
done
LOAD_AFTER=$(bench_load_note "at the end")
ELAPSED=$(( $(date +%s) - STARTED ))

# --- report --------------------------------------------------------------------------

report() {
	echo "## readers.sh: readers during refreshes ($MODE run, $(date -u '+%Y-%m-%d %H:%M UTC'), $((ELAPSED / 60)) min)"
	echo
	bench_machine
	echo "$LOAD_BEFORE (busiest processes then: $TOP_BEFORE)"
	echo "$LOAD_AFTER"
	echo "- layout: batch_layer $(human "$N") keys, speed_layer $SPEED_PCT % ($((N * SPEED_PCT / 100)) rows, half new keys), serving_layer $ROWS rows with one btree index on location (refreshed by serving_layer_refresh(), classic layout)."
	echo "- readers: pgbench -M simple -c $READ_CLIENTS -j 2 -T $PHASE $([ "$READ_RATE" -gt 0 ] && echo "-R $READ_RATE (latency counted from each transaction's scheduled start, so a stall also delays the reads queued behind it)" || echo "(unthrottled)"), script: \`SELECT * FROM serving_layer WHERE location = 'city-' || :k\` with k = random(1, $MAXKEY). Latencies from pgbench's per-transaction log (-l)."
	echo "- refreshes: one psql connection per refresh, back to back, with serving_layer.verbose = on, log_min_messages = info and log_min_duration_statement = 0; \"lock wait\" and \"swap\" are the verbose lines' ms; \"lock -> released\" runs from the server log's timestamp of the verbose \"lock:\" line (written right after the ACCESS EXCLUSIVE lock is granted) to that of the first reader that queued behind the held lock getting its lock (log_lock_waits = on, deadlock_timeout = 1ms in the readers' sessions: a line per wait over 1 ms), in parentheses the number of refreshes where a reader queued (a refresh no reader queued behind has no value); \"lock -> end of commit\" runs to the statement's duration line, written after the commit, which also includes the removal of the old files after the lock is released: an upper bound. Server log timestamps have 1 ms resolution. Values are median / max."
	echo
	echo "### Read latency per phase ($PHASE s each)"
	echo
	echo "| phase | p50 ms | p99 ms | max ms | transactions | reader errors | refreshes | lock wait ms | swap ms | lock -> released ms | lock -> end of commit ms |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|"
	phase_row phase1 "1. readers alone"
	phase_row phase2 "2. readers + back-to-back refreshes"
	phase_row phase3 "3. readers + refreshes + one ${LONG} s reader"
	echo
	echo "Slowest reads:"
	echo
	for ph in phase1 phase2 phase3; do
		echo "- $ph:"
		slowest "$ph"
	done
	echo
	echo "### Swap lock hold time on a quiet server (one index, $HOLD_RUNS refreshes each, speed layer $SPEED_PCT %, one probe reader at 1000 reads/s)"
	echo
	echo "| N | synchronous_commit | serving rows | indexes | refreshes | refresh s (median) | lock wait ms | swap phase ms | lock -> released ms | lock -> end of commit ms |"
	echo "|---|---|---|---|---|---|---|---|---|---|"
	printf '%s\n' "${HOLD_LINES[@]}"
	echo
	echo "### Against the targets"
	echo
	local worst=0 errs=0 ph
	for ph in phase2 phase3; do
		worst=$(awk -v a="$worst" -v b="${PH_MAX[$ph]}" 'BEGIN {print (b + 0 > a + 0 ? b : a)}')
	done
	for ph in phase1 phase2 phase3; do errs=$((errs + PH_ERR[$ph])); done
	local big=${HOLD_SIZES[-1]}
	echo "| target | measured | met |"
	echo "|---|---|---|"
	echo "| worst plain-reader stall <= $TARGET_STALL_MS ms (phases 2 and 3) | $worst ms (baseline max ${PH_MAX[phase1]} ms) | $(awk -v w="$worst" -v t="$TARGET_STALL_MS" 'BEGIN {print (w + 0 <= t ? "yes" : "NO")}') |"
	local held=${HOLD_MAX[$big]}
	[ "$held" = - ] && held=${HOLD_END_MAX[$big]}
	echo "| swap lock held <= $TARGET_HOLD_MS ms at $(human "$big") keys, one index (lock -> released, max; lock -> end of commit where no reader queued) | ${HOLD_MAX[$big]} ms (lock -> end of commit ${HOLD_END_MAX[$big]} ms) | $(awk -v w="$held" -v t="$TARGET_HOLD_MS" 'BEGIN {print (w + 0 <= t ? "yes" : "NO")}') |"
	echo "| 0 reader errors | $errs | $([ "$errs" -eq 0 ] && echo yes || echo NO) |"
}
report | tee "$REPORT"
log "report: $REPORT; raw logs: $RAW/"
