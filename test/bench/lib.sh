# test/bench/lib.sh
# shellcheck shell=bash disable=SC2034
#
# Shared bash functions for the benchmark scripts (speed.sh, readers.sh):
# a throwaway PostgreSQL cluster (15, or the major given with --pg) tuned
# and described for benchmarking,
# a description of the machine, timing and median helpers.  Source it; do not
# run it.  It builds on test/lib/common.sh (cleanup on exit, running as an
# unprivileged OS user, psql); the cluster itself is started here because a
# benchmark needs its own settings (fsync on, no autovacuum, bigger memory)
# and a fixed port.
#
# Environment:
#   BENCH_PORT   TCP port on 127.0.0.1 (default 55480)
#   BENCH_USER   OS user that runs the cluster (default postgres; initdb
#                refuses root)
#   BENCH_AUTOGROUP_NICE  nice value of the cluster's scheduler autogroup
#                (see bench_autogroup_nice)

# shellcheck source=../lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
# shellcheck source=../lib/chroot.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/chroot.sh"

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_OUT=$BENCH_DIR/out
BENCH_PORT=${BENCH_PORT:-55480}
SL_RUN_USER=${BENCH_USER:-postgres}

# The settings every benchmark runs with (printed with the results).  Memory
# is sized for the 24 GiB machine; durability stays on (fsync,
# synchronous_commit, full_page_writes are left at their defaults);
# autovacuum is off so that no background ANALYZE or VACUUM lands inside a
# timing (the scripts ANALYZE explicitly where a run needs it); checkpoints
# are spread out and forced by the scripts between runs.
BENCH_SETTINGS="shared_buffers = 1GB
work_mem = 64MB
maintenance_work_mem = 1GB
max_wal_size = 32GB
min_wal_size = 2GB
checkpoint_timeout = 1h
autovacuum = off
max_connections = 50"

# Make sure the extension is installed system-wide (make install was the caller's job).
bench_check_install() {
	local extdir
	extdir=$("$PG_CONFIG" --sharedir)/extension
	[ -f "$extdir/serving_layer.control" ] || die "serving_layer is not installed in $extdir
  install it first:  make -C $SL_ROOT PG_CONFIG=$PG_CONFIG install"
	id -u "$SL_RUN_USER" >/dev/null 2>&1 || die "OS user '$SL_RUN_USER' does not exist (set BENCH_USER)"
}

# Progress goes to stderr (the reports go to stdout and their files).
log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# "1M", "300k", "5M" for a number of keys.
human() {
	awk -v n="$1" 'BEGIN { if (n >= 1000000 && n % 1000000 == 0) printf "%dM\n", n / 1000000;
		else if (n >= 1000) printf "%gk\n", n / 1000; else print n }'
}

# Start the benchmark cluster on 127.0.0.1:$BENCH_PORT; exports PGHOST, PGPORT,
# PGUSER, SL_CLUSTER_DIR.  The cluster and its directory are removed on exit.
bench_start_cluster() {
	port_in_use "$BENCH_PORT" && die "port $BENCH_PORT on 127.0.0.1 is in use (set BENCH_PORT)"
	init_cluster bench
	local data=$SL_CLUSTER_DIR/data log=$SL_CLUSTER_DIR/server.log
	cat >>"$data/postgresql.conf" <<-EOF
		# added by test/bench/lib.sh for a throwaway benchmark cluster
		listen_addresses = '127.0.0.1'
		port = $BENCH_PORT
		unix_socket_directories = '$SL_CLUSTER_DIR'
		log_line_prefix = '%m %n [%p] app=%a '
		# the benchmarks rebuild layers of every size on purpose: no
		# half-loaded batch check between them
		serving_layer.min_batch_fraction = 0
		$BENCH_SETTINGS
		${BENCH_EXTRA_SETTINGS:-}
	EOF
	as_test_user "$PG_BINDIR/pg_ctl" -D "$data" -l "$log" -w -t 120 start >/dev/null 2>&1 || {
		tail -n 40 "$log" >&2 || true
		die "the benchmark server did not start (server log above: $log)"
	}
	export PGHOST=127.0.0.1 PGPORT=$BENCH_PORT PGUSER=postgres PGDATABASE=bench SL_CLUSTER_DIR
	bench_autogroup_nice "$(head -n 1 "$data/postmaster.pid")"
	sl_psql -q -d postgres -c 'CREATE DATABASE bench' >/dev/null
	sl_psql -q -c 'CREATE EXTENSION serving_layer' >/dev/null
	say "benchmark cluster up on 127.0.0.1:$BENCH_PORT (data in $data, as OS user $SL_RUN_USER)"
}

# With BENCH_AUTOGROUP_NICE set, give the scheduler autogroup of the
# postmaster $1 (pg_ctl starts it in a session of its own, and its backends
# share that session) that nice value (-20 .. 19; below 0 needs root).  Where
# the kernel groups tasks by session (kernel.sched_autogroup_enabled = 1),
# a process's own nice value only orders it within its session: other
# sessions' work run under `nice -n 19` still takes an equal share of the
# CPU from the benchmark, unless the benchmark's autogroup is favoured.
bench_autogroup_nice() {
	[ -n "${BENCH_AUTOGROUP_NICE:-}" ] || return 0
	if [ "$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null)" != 1 ]; then
		say "scheduler autogroups are off: BENCH_AUTOGROUP_NICE ignored"
		return 0
	fi
	echo "$BENCH_AUTOGROUP_NICE" >"/proc/$1/autogroup" ||
		die "could not set the autogroup nice value of the postmaster ($1) to $BENCH_AUTOGROUP_NICE"
	say "benchmark cluster's $(cat "/proc/$1/autogroup")"
}

# The server log of the benchmark cluster.
bench_server_log() { printf '%s\n' "$SL_CLUSTER_DIR/server.log"; }

# psql on the benchmark database: quiet, unaligned, tuples only, stop on error.
bq() { PGOPTIONS='-c client_min_messages=warning' sl_psql -q -A -t "$@"; }

# Print "load average" and the busiest other processes, for the results.
bench_load_note() {
	local load
	load=$(cut -d' ' -f1-3 /proc/loadavg)
	printf -- '- load average (1, 5, 15 min) %s: %s\n' "$1" "$load"
}

# Print a markdown description of the machine and the server.
bench_machine() {
	local cpu cores mem kernel
	cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | awk 'NR == 1')
	cores=$(nproc)
	mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
	kernel=$(uname -r)
	echo "### Machine"
	echo
	echo "- CPU: $cpu, $cores cores ($(grep -c ^processor /proc/cpuinfo) logical)"
	echo "- RAM: $mem; kernel $kernel; $(systemd-detect-virt 2>/dev/null || echo unknown) virtualization"
	echo "- scheduler: autogroups $( [ "$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null)" = 1 ] && echo on || echo off); the benchmark cluster's autogroup nice ${BENCH_AUTOGROUP_NICE:-0}"
	echo "- disk: $(df -h "$SL_CLUSTER_DIR" | awk 'NR==2 {print $1 ", " $2 " (" $4 " free)"}') for the data directory"
	echo "- server: $(bq -c 'SHOW server_version'), locale C, UTF8"
	echo "- settings: $(bq -c "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name)
		FROM pg_settings WHERE name IN ('shared_buffers', 'work_mem', 'maintenance_work_mem',
		'hash_mem_multiplier', 'max_wal_size', 'checkpoint_timeout', 'autovacuum', 'fsync',
		'synchronous_commit', 'full_page_writes', 'wal_level', 'wal_compression', 'huge_pages', 'jit',
		'max_parallel_workers_per_gather', 'max_parallel_maintenance_workers',
		'effective_cache_size', 'random_page_cost')")"
	if [ -n "${BENCH_BUILD:-}" ]; then
		# compare-builds.sh installed another revision than this checkout's
		echo "- extension: serving_layer $(bq -c "SELECT extversion FROM pg_extension WHERE extname = 'serving_layer'") built at git $BENCH_BUILD; benchmark scripts from $SL_ROOT (git $(git -C "$SL_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'))"
	else
		echo "- extension: serving_layer $(bq -c "SELECT extversion FROM pg_extension WHERE extname = 'serving_layer'") from $SL_ROOT (git $(git -C "$SL_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$SL_ROOT" diff --quiet -- src 2>/dev/null || echo ', src/ modified'))"
	fi
}

# Median of the numbers on stdin (one per line); empty input prints nothing.
median() {
	sort -g | awk '{a[NR] = $1} END {
		if (NR == 0) exit;
		if (NR % 2) printf "%.3f\n", a[(NR + 1) / 2];
		else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# Sum of the "Time: X ms" lines psql's \timing printed in file $1, in seconds.
timing_seconds() {
	awk '/^Time: [0-9.]+ ms/ {t += $2} END {printf "%.3f\n", t / 1000}' "$1"
}

# a / b with 2 decimals, or "-" when either is missing or b is zero.
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a == "" || b == "" || a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || b + 0 == 0) print "-";
		else printf "%.2f\n", a / b }'
}

# --- perf ---------------------------------------------------------------------

# Die unless perf is there and this runs as root, which perf needs to attach
# to a backend of the cluster (it runs as $SL_RUN_USER).
bench_check_perf() {
	command -v perf >/dev/null || die "perf is missing (apt-get install linux-perf)"
	is_root || die "run as root (perf attaches to the backend, which runs as $SL_RUN_USER)"
}

# Sample one session's backend with perf: a new session runs the SQL in $2
# (untimed set-up: LOAD, SET), writes its backend's pid, waits for perf to
# attach, then runs the SQL on stdin, while `perf record OPTIONS -p <backend>`
# (options $3 ...) writes the samples to $1.  The session's output goes to
# $1.log, perf's to $1.perf.log.  Needs perf and root.
bench_perf_session() {
	local data=$1 setup=$2 pidfile=$1.pid psql perf backend
	shift 2
	rm -f "$pidfile"
	{
		printf '%s\n' "$setup" "\\o $pidfile" 'SELECT pg_backend_pid();' '\o' 'SELECT pg_sleep(3);'
		cat
	} | "$PG_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 >"$data.log" 2>&1 &
	psql=$!
	for _ in $(seq 1 50); do
		[ -s "$pidfile" ] && break
		sleep 0.1
	done
	[ -s "$pidfile" ] || die "the profiled session did not start (see $data.log)"
	backend=$(tr -d '[:space:]' <"$pidfile")
	log "perf record on backend $backend"
	perf record -q "$@" -p "$backend" -o "$data" >"$data.perf.log" 2>&1 &
	perf=$!
	wait "$psql" || { cat "$data.log" >&2; die "the profiled session failed (output above, in $data.log)"; }
	kill -INT "$perf"
	wait "$perf" || true
}

# apply.sh's "1 %" change: the speed rows of 1 % of the keys (the same keys
# each time), one more count each.
APPLY_CHANGE_1PCT_SQL='UPDATE speed_layer SET "count(id)" = "count(id)" + 1
	WHERE (hashtext(location) & 1023) < 102;'
# Its "10 %": every speed row (the speed layer holds 10 % of the keys).
APPLY_CHANGE_10PCT_SQL='UPDATE speed_layer SET "count(id)" = "count(id)" + 1;'

# apply.sh's layout at $1 batch keys, for the scripts that time or profile
# single refreshes: a speed layer of 10 %, no index on the batch, the
# serving table s_apply in mode 'apply' (made by its first refresh, so at
# fillfactor 90) and one in mode 'swap' for each further name ($2 ...),
# each with a unique btree index on the key; s_apply refreshed once more,
# so that its next refresh follows the change.
make_apply_layout() {
	local n=$1 t sql vacuum=s_apply
	shift
	make_batch "$n" plain
	make_speed "$n" 10 plain
	sql="SELECT serving_layer_define('s_apply', 'batch_layer', 'speed_layer', mode => 'apply');"
	for t in "$@"; do
		sql+=" SELECT serving_layer_define('$t', 'batch_layer', 'speed_layer', mode => 'swap');"
		vacuum+=", $t"
	done
	sql+=" SELECT count(*) FROM serving_layer_refresh();"
	for t in s_apply "$@"; do sql+=" CREATE UNIQUE INDEX ON $t (location);"; done
	sql+=" SELECT count(*) FROM serving_layer_refresh('s_apply'); VACUUM ANALYZE $vacuum;"
	bq <<<"$sql" >/dev/null
}

# --- the classic layout, generated ---------------------------------------------

# Create batch_layer with $1 keys 'city-1' .. 'city-N' (no index, no
# constraint), then VACUUM ANALYZE it if $2 is "analyze", else only read it
# once (hint bits) so that it has no statistics.
make_batch() {
	bq <<-SQL
		SET client_min_messages = warning;
		DROP TABLE IF EXISTS batch_layer, serving_layer, serving_layer_temp, x, bench_ref;
		CREATE TABLE batch_layer (location text, count_id bigint,
			sum_followers_count bigint, sum_favorite_count bigint, sum_retweet_count bigint);
		SET synchronous_commit = off;
		INSERT INTO batch_layer
		SELECT 'city-' || i, 1 + i % 97, (i * 7919) % 1000003, (i * 104729) % 10007, (i * 31) % 1009
		FROM generate_series(1::bigint, $1) AS i;
	SQL
	settle batch_layer "$2"
}

# Create speed_layer with $2 % of $1 rows, its columns named as Spark names
# them ("count(id)", ...): half of the rows update batch keys spread evenly
# over 'city-1' .. 'city-N', half bring new keys 'city-N+1' ...
make_speed() {
	local n=$1 pct=$2 s half step
	s=$((n * pct / 100))
	half=$((s / 2))
	step=$((n / half))
	bq <<-SQL
		SET client_min_messages = warning;
		DROP TABLE IF EXISTS speed_layer, bench_ref;
		CREATE TABLE speed_layer (location text, "count(id)" bigint,
			"sum(followers_count)" bigint, "sum(favorite_count)" bigint, "sum(retweet_count)" bigint);
		SET synchronous_commit = off;
		INSERT INTO speed_layer
		SELECT 'city-' || (1 + (j - 1) * $step), 1 + j % 7, j % 1000, j % 100, j % 10
		FROM generate_series(1::bigint, $half) AS j
		UNION ALL
		SELECT 'city-' || ($n + j), 1 + j % 7, j % 1000, j % 100, j % 10
		FROM generate_series(1::bigint, $((s - half))) AS j;
	SQL
	settle speed_layer "$3"
}

# The merge a refresh computes for the classic layout, as one query: the
# reference the benchmarks compare a serving table with, and what they copy
# or put in a materialized view.
BENCH_MERGE_SQL='SELECT location, sum(count_id)::bigint AS count_id,
		sum(sum_followers_count)::bigint AS sum_followers_count,
		sum(sum_favorite_count)::bigint AS sum_favorite_count,
		sum(sum_retweet_count)::bigint AS sum_retweet_count
	FROM (SELECT * FROM batch_layer UNION ALL SELECT * FROM speed_layer) AS u
	GROUP BY location'

# VACUUM ANALYZE a table ($2 = analyze) or read it once (anything else).
settle() {
	if [ "$2" = analyze ]; then
		bq -c "VACUUM ANALYZE $1" >/dev/null
	else
		bq -c "SELECT count(*) FROM $1" >/dev/null
	fi
}

# Make sure gnuplot is there (Debian package gnuplot-nox), installing it as root.
ensure_gnuplot() {
	command -v gnuplot >/dev/null 2>&1 && return 0
	is_root || { say "gnuplot is missing (apt-get install gnuplot-nox): no plot"; return 1; }
	say "installing gnuplot-nox for the plot"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends gnuplot-nox \
		</dev/null >/dev/null 2>&1 || {
		apt-get update -q >/dev/null 2>&1 &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
				gnuplot-nox </dev/null >/dev/null 2>&1
	} || { say "could not install gnuplot-nox: no plot"; return 1; }
}

# Benchmark PostgreSQL major $1 (a script's --pg N).  Where this machine has
# no PostgreSQL $1 but a Debian chroot provides it (test/lib/chroot.sh, as
# test/run-tests.sh --pg does), build and install the extension in a copy
# of the tree inside the chroot, run the benchmark script $2 there with the
# remaining arguments, copy its results to test/bench/out/pg$1/ and exit
# with its status.  Otherwise just select that major and return.
bench_use_major() {
	local major=$1 script=$2 status=0
	shift 2
	sl_select_major "$major"
	if [ -x "$PG_CONFIG" ] || ! sl_chroot_suite "$major" >/dev/null; then
		return 0
	fi
	[ -z "${SERVING_LAYER_IN_CHROOT:-}" ] ||
		die "PostgreSQL $major is missing inside its chroot ($PG_CONFIG)"
	sl_chroot_copy_tree "$major" || die "the chroot for PostgreSQL $major could not be made"
	say "benchmarking PostgreSQL $major inside the chroot $SL_CHROOT"
	# shellcheck disable=SC2016  # expanded by the shell inside the chroot
	sl_chroot_exec "$SL_CHROOT" --env SERVING_LAYER_IN_CHROOT=1 \
		--env "BENCH_PORT=$BENCH_PORT" --env "SEED_TIMEOUT=${SEED_TIMEOUT:-300}" \
		--env "BENCH_EXTRA_SETTINGS=${BENCH_EXTRA_SETTINGS:-}" \
		bash -c 'cd "$1" && pgc=/usr/lib/postgresql/$3/bin/pg_config &&
			make -s -j2 PG_CONFIG="$pgc" >/dev/null && make -s PG_CONFIG="$pgc" install >/dev/null &&
			exec bash "test/bench/$2" --pg "$3" "${@:4}"' \
		sl-bench "$SL_CHROOT_COPY" "$script" "$major" "$@" </dev/null || status=$?
	mkdir -p "$BENCH_OUT/pg$major"
	cp -a "$SL_CHROOT$SL_CHROOT_COPY/test/bench/out/." "$BENCH_OUT/pg$major/" 2>/dev/null || true
	say "results of PostgreSQL $major copied to $BENCH_OUT/pg$major/"
	exit "$status"
}
