# test/lib/common.sh
#
# Shared bash functions for test/demo.sh and test/run-tests.sh: install the
# Debian packages the project needs, build and install the extension, pick an
# unprivileged OS user for PostgreSQL (initdb refuses to run as root), and run
# a throwaway cluster in a temporary directory that is removed on every exit
# path.  Source it; do not run it.  Postgres binaries are always taken from
# one PostgreSQL major's own bin directory, never from PATH: 15 (Debian 12's)
# unless sl_select_major picks another (test/run-tests.sh --pg N).
#
# SERVING_LAYER_PG_BINDIR names another bin directory of that major, for
# instance a private copy of /usr/lib/postgresql/15 and /usr/share/postgresql/15
# (PostgreSQL finds its share and lib directories relative to its binaries),
# so that two checkouts can build, install and test side by side.  It is
# ignored for a major its pg_config does not report.

# The source tree: the folder above test/.
SL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SL_TEST_USER=serving_layer

# Print the major of the PostgreSQL whose pg_config is $1 (nothing if none).
pg_config_major() {
	[ -x "$1" ] || return 0
	"$1" --version 2>/dev/null | sed -n 's/^PostgreSQL \([0-9]*\).*/\1/p'
}

# Use PostgreSQL major $1: sets SL_PG_MAJOR, PG_BINDIR, PG_CONFIG (exported),
# and the Debian packages the tests need (SL_PACKAGES) or use when the
# release has them (SL_OPTIONAL_PACKAGES: pg_cron and hll, whose tests then
# fail or say skipped, with the reason).
sl_select_major() {
	local major
	SL_PG_MAJOR=$1
	PG_BINDIR=/usr/lib/postgresql/$SL_PG_MAJOR/bin
	if [ -n "${SERVING_LAYER_PG_BINDIR:-}" ]; then
		major=$(pg_config_major "$SERVING_LAYER_PG_BINDIR/pg_config")
		if [ -z "$major" ] || [ "$major" = "$SL_PG_MAJOR" ]; then
			PG_BINDIR=$SERVING_LAYER_PG_BINDIR
		fi
	fi
	PG_CONFIG=$PG_BINDIR/pg_config
	export PG_CONFIG
	SL_PACKAGES=("postgresql-$SL_PG_MAJOR" "postgresql-server-dev-$SL_PG_MAJOR"
		libipc-run-perl perl make gcc libc6-dev)
	SL_OPTIONAL_PACKAGES=("postgresql-$SL_PG_MAJOR-cron" "postgresql-$SL_PG_MAJOR-hll")
}
sl_select_major 15

# Print a message prefixed with the script's name.
say() { printf '%s: %s\n' "$(basename "$0")" "$*"; }

# Print an error message and exit 1.
die() { printf '%s: error: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

# True when running as root.
is_root() { [ "$(id -u)" -eq 0 ]; }

# --- cleanup on every exit path --------------------------------------------

SL_CLEANUPS=()

# Register a command (one string, run with eval) to run when the script exits.
on_exit() { SL_CLEANUPS+=("$1"); }

# Run the registered cleanups, newest first; never fails.
sl_run_cleanups() {
	local i
	for ((i = ${#SL_CLEANUPS[@]} - 1; i >= 0; i--)); do
		eval "${SL_CLEANUPS[i]}" || true
	done
	SL_CLEANUPS=()
}
# The EXIT trap: run the cleanups and keep the exit status.
sl_on_exit() {
	local rc=$?
	trap - EXIT
	sl_run_cleanups
	exit "$rc"
}
trap sl_on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- packages ---------------------------------------------------------------

# True when Debian package $1 is installed.
package_installed() {
	[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# Install the missing Debian packages (dpkg-query first, so a second run
# never calls apt).  An optional package is installed when apt knows it; a
# release without it gets a note, and the tests needing it say so.
ensure_packages() {
	local p missing=() optional=()
	for p in "${SL_PACKAGES[@]}"; do
		package_installed "$p" || missing+=("$p")
	done
	for p in "${SL_OPTIONAL_PACKAGES[@]}"; do
		package_installed "$p" || optional+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && [ ${#optional[@]} -eq 0 ] && return 0
	if ! is_root; then
		[ ${#missing[@]} -eq 0 ] && return 0
		die "missing packages: ${missing[*]}
  install them as root, then run this again:
    sudo apt-get update && sudo apt-get install -y ${missing[*]} ${optional[*]}"
	fi
	export DEBIAN_FRONTEND=noninteractive
	if [ ${#missing[@]} -gt 0 ]; then
		say "installing missing packages: ${missing[*]}"
		apt-get -o DPkg::Lock::Timeout=600 update -q ||
			die "apt-get update failed (see above)"
	fi
	for p in "${optional[@]}"; do
		if apt-cache show "$p" >/dev/null 2>&1; then
			missing+=("$p")
		else
			say "note: no package $p here: the tests that need it will fail or say skipped"
		fi
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends \
		"${missing[@]}" </dev/null ||
		die "apt-get install ${missing[*]} failed (see above)"
	[ -x "$PG_CONFIG" ] || die "$PG_CONFIG is still missing after the install"
}

# --- build -----------------------------------------------------------------

# Build the extension in $SL_ROOT and install it into the selected PostgreSQL (COPT is passed through).
build_and_install() {
	local copt=() jobs
	[ -n "${COPT:-}" ] && copt=("COPT=$COPT")
	jobs=$(nproc 2>/dev/null || echo 2)
	say "building in $SL_ROOT${COPT:+ (COPT=$COPT)}"
	make -C "$SL_ROOT" -j"$jobs" PG_CONFIG="$PG_CONFIG" "${copt[@]}" ||
		die "the build failed (see the compiler messages above)"
	if [ -n "${SERVING_LAYER_SKIP_INSTALL:-}" ]; then
		say "SERVING_LAYER_SKIP_INSTALL is set: using the extension already installed"
		return 0
	fi
	local libdir extdir
	libdir=$("$PG_CONFIG" --pkglibdir)
	extdir=$("$PG_CONFIG" --sharedir)/extension
	if ! is_root && { [ ! -w "$libdir" ] || [ ! -w "$extdir" ]; }; then
		die "cannot install into $libdir and $extdir as $(id -un)
  install it as root, then run this again with the install step skipped:
    sudo make -C $SL_ROOT PG_CONFIG=$PG_CONFIG install
    SERVING_LAYER_SKIP_INSTALL=1 $0"
	fi
	make -C "$SL_ROOT" PG_CONFIG="$PG_CONFIG" "${copt[@]}" install >/dev/null ||
		die "make install failed (run: make -C $SL_ROOT PG_CONFIG=$PG_CONFIG install)"
	say "installed into $libdir and $extdir"
}

# --- the unprivileged user ---------------------------------------------------

# Set SL_RUN_USER: the OS user clusters run as (created when running as root).
ensure_test_user() {
	if ! is_root; then
		SL_RUN_USER=$(id -un)
		return 0
	fi
	if ! id -u "$SL_TEST_USER" >/dev/null 2>&1; then
		say "creating the unprivileged OS user '$SL_TEST_USER' (initdb refuses to run as root)"
		useradd --system --create-home --home-dir "/var/lib/$SL_TEST_USER" \
			--shell /bin/sh --comment "serving_layer tests" "$SL_TEST_USER" ||
			die "could not create the OS user '$SL_TEST_USER' with useradd"
	fi
	SL_RUN_USER=$SL_TEST_USER
}

# Run a command as $SL_RUN_USER with the selected PostgreSQL's bin directory first on PATH.
as_test_user() {
	local path="$PG_BINDIR:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	if is_root; then
		runuser -u "$SL_RUN_USER" -- env PATH="$path" "$@"
	else
		env PATH="$path" "$@"
	fi
}

# Make a temporary directory owned by $SL_RUN_USER; print its path.
make_user_tmpdir() {
	local d
	d=$(mktemp -d "${TMPDIR:-/tmp}/serving_layer.$1.XXXXXX") || die "mktemp failed"
	chmod 0755 "$d"
	is_root && chown "$SL_RUN_USER:" "$d"
	printf '%s\n' "$d"
}

# --- the throwaway cluster -----------------------------------------------------

# True when something listens on 127.0.0.1:$1.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Print the first free TCP port from $1 (default 54320) upward.
free_port() {
	local port
	for ((port = ${1:-54320}; port < 54420; port++)); do
		port_in_use "$port" || { printf '%s\n' "$port"; return 0; }
	done
	die "no free TCP port between 54320 and 54419 on 127.0.0.1"
}

# Make a fresh data directory in a temporary folder of the test user (NAME in
# its name), removed with the cluster on exit; sets SL_CLUSTER_DIR.
init_cluster() {
	SL_CLUSTER_DIR=$(make_user_tmpdir "$1")
	on_exit stop_cluster
	if ! as_test_user "$PG_BINDIR/initdb" -D "$SL_CLUSTER_DIR/data" -U postgres --auth=trust \
		--no-sync --locale=C --encoding=UTF8 >"$SL_CLUSTER_DIR/initdb.log" 2>&1; then
		cat "$SL_CLUSTER_DIR/initdb.log" >&2
		die "initdb failed in $SL_CLUSTER_DIR/data (output above)"
	fi
}

# Start a throwaway cluster; exports PGHOST, PGPORT, PGUSER and SL_CLUSTER_DIR.
# Every refresh transaction starts a history worker that waits for it to end
# (history_worker.c): on a starved machine they end slower than tests start
# them (seen: casts_overflow on PostgreSQL 18 warned that no worker slot was
# free, with 16), hence 32 slots.
# SERVING_LAYER_PRELOAD, when set, becomes shared_preload_libraries; the file
# test/cluster.conf, when the tree has one, is appended to postgresql.conf.
start_cluster() {
	[ -n "${SL_RUN_USER:-}" ] || ensure_test_user
	init_cluster cluster
	local data=$SL_CLUSTER_DIR/data log=$SL_CLUSTER_DIR/server.log
	cat >>"$data/postgresql.conf" <<-EOF
		# added by test/lib/common.sh for a throwaway test cluster
		listen_addresses = '127.0.0.1'
		unix_socket_directories = '$SL_CLUSTER_DIR'
		max_worker_processes = 32
		fsync = off
		log_line_prefix = '%m [%p] %q%a '
	EOF
	if [ -n "${SERVING_LAYER_PRELOAD:-}" ]; then
		echo "shared_preload_libraries = '$SERVING_LAYER_PRELOAD'" >>"$data/postgresql.conf"
	fi
	# Settings the tests need (if any) live in the tree, not in this script.
	if [ -f "$SL_ROOT/test/cluster.conf" ]; then
		cat "$SL_ROOT/test/cluster.conf" >>"$data/postgresql.conf"
	fi
	# Another run may take the port between our check and the start: try the next.
	local attempt next=54320
	for attempt in 1 2 3 4 5; do
		PGPORT=$(free_port "$next")
		echo "port = $PGPORT" >>"$data/postgresql.conf"
		rm -f "$log"
		as_test_user "$PG_BINDIR/pg_ctl" -D "$data" -l "$log" -w -t 60 start \
			>/dev/null 2>&1 && break
		if [ "$attempt" -lt 5 ] && grep -q 'could not bind\|could not create any TCP/IP' "$log"; then
			next=$((PGPORT + 1))
			continue
		fi
		tail -n 40 "$log" >&2 || true
		die "the test server did not start (server log above: $log)"
	done
	export PGHOST=127.0.0.1 PGPORT PGUSER=postgres SL_CLUSTER_DIR
	say "throwaway cluster up on 127.0.0.1:$PGPORT (data in $data, as OS user $SL_RUN_USER)"
}

# Print the last lines of the throwaway cluster's server log (for failure reports).
cluster_log_tail() {
	[ -n "${SL_CLUSTER_DIR:-}" ] && [ -f "$SL_CLUSTER_DIR/server.log" ] || return 0
	echo "---- last ${1:-40} lines of the server log ----"
	tail -n "${1:-40}" "$SL_CLUSTER_DIR/server.log"
}

# Stop the throwaway cluster (if any) and remove its directory.
stop_cluster() {
	[ -n "${SL_CLUSTER_DIR:-}" ] || return 0
	if [ -f "$SL_CLUSTER_DIR/data/postmaster.pid" ]; then
		as_test_user "$PG_BINDIR/pg_ctl" -D "$SL_CLUSTER_DIR/data" -m fast -w -t 60 \
			stop >/dev/null 2>&1 ||
			as_test_user "$PG_BINDIR/pg_ctl" -D "$SL_CLUSTER_DIR/data" -m immediate \
				stop >/dev/null 2>&1 || true
	fi
	rm -rf "$SL_CLUSTER_DIR"
	SL_CLUSTER_DIR=
}

# Run psql (the selected major's, no ~/.psqlrc, stop on the first error) against the cluster.
sl_psql() { "$PG_BINDIR/psql" -X -v ON_ERROR_STOP=1 "$@"; }
