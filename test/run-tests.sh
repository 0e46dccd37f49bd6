#!/usr/bin/env bash
# test/run-tests.sh
#
# Runs every test of serving_layer the same way, on a fresh machine or a
# developer's: installs what is missing (Debian packages), builds and installs
# the extension, copies the tree to a temporary folder the unprivileged test
# user owns, prints the server's version() line, runs the pg_regress tests
# (sql/) and the isolation tests (test/specs/) on a throwaway cluster, then
# each TAP test (test/t/*.pl, which make their own clusters), and ends with
# one line "N passed, N failed".
#
#   test/run-tests.sh [--pg N] [all|regress|isolation|tap ...]
#
# --pg N tests against PostgreSQL major N (default 15, Debian 12's).  A major
# this machine has no PostgreSQL for and Debian 12 has no packages for (17,
# 18) is tested inside a chroot of the Debian release that ships it, made
# once under /var/tmp (test/lib/chroot.sh): the tree is copied there, built,
# installed and tested by this same script, run inside the chroot.
#
# Exit status: 0 only when at least one test ran and none failed.
# SERVING_LAYER_KEEP=1 keeps the copied tree (results, logs) for inspection.
# COPT (e.g. -Werror) is passed to the build.
set -euo pipefail
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/chroot.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/chroot.sh"

SUITES=()
major=15
while [ $# -gt 0 ]; do
	case "$1" in
	--pg)
		[ $# -ge 2 ] || die "--pg needs a major version (15, 17, 18)"
		major=$2
		shift
		;;
	--pg=*) major=${1#--pg=} ;;
	all) SUITES+=(regress isolation tap) ;;
	regress | isolation | tap) SUITES+=("$1") ;;
	-h | --help)
		sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*) die "unknown argument '$1' (use: [--pg N] [all|regress|isolation|tap ...])" ;;
	esac
	shift
done
[[ "$major" =~ ^[0-9]+$ ]] || die "--pg needs a major version number, not '$major'"
[ ${#SUITES[@]} -gt 0 ] || SUITES=(regress isolation tap)
# each suite once, in the order they run
wanted=" ${SUITES[*]} "
SUITES=()
for s in regress isolation tap; do
	[[ "$wanted" == *" $s "* ]] && SUITES+=("$s")
done
sl_select_major "$major"

# A call of an API that 16 or 17 removed builds on 15 but breaks the other
# majors: refuse it on every major, before anything is built.
if ! bash "$SL_ROOT/test/compat-check.sh"; then
	echo "test/compat-check.sh found a removed PostgreSQL API (see above): no test ran"
	echo "0 passed, 1 failed"
	exit 1
fi

# Modules that include each other in a cycle (README, "Source layout").
if ! bash "$SL_ROOT/test/include-graph.sh" >/dev/null; then
	echo "test/include-graph.sh found an include cycle among src/'s modules (see above): no test ran"
	echo "0 passed, 1 failed"
	exit 1
fi

# A major without its own PostgreSQL here, which a Debian chroot provides:
# run this script inside that chroot (it ends with the closing line).
if [ ! -x "$PG_CONFIG" ] && sl_chroot_suite "$major" >/dev/null; then
	[ -z "${SERVING_LAYER_IN_CHROOT:-}" ] ||
		die "PostgreSQL $major is missing inside its chroot ($PG_CONFIG)"
	status=0
	sl_run_in_chroot "$major" "${SUITES[@]}" || status=$?
	exit "$status"
fi

declare -A S_PASS=() S_FAIL=() S_SKIP=() S_NOTE=()

# Print the names of the files matching a glob below the tree, without folder and suffix.
list_tests() {
	local f
	for f in "$SL_ROOT"/$1; do
		[ -e "$f" ] || continue
		f=$(basename "$f")
		printf '%s\n' "${f%.*}"
	done
}

# Print a file's first lines (at most $2) under a heading, if the file exists.
show_file() {
	[ -s "$1" ] || return 0
	echo "---- $1 (first ${2:-800} lines) ----"
	head -n "${2:-800}" "$1"
}

# Copy the tree (without .git and old results) to $WORK/tree, owned by the test user.
copy_tree() {
	WORK=$(make_user_tmpdir tests)
	on_exit remove_work
	TREE=$WORK/tree
	mkdir "$TREE"
	tar -C "$SL_ROOT" --exclude=./.git --exclude=./results --exclude=./output_iso \
		--exclude=./tmp_check --exclude=./log --exclude=./regression.diffs \
		--exclude=./regression.out -cf - . | tar -C "$TREE" -xf -
	is_root && chown -R "$SL_RUN_USER:" "$WORK"
	return 0
}

# Remove the copied tree, unless SERVING_LAYER_KEEP asks to keep it.
# shellcheck disable=SC2317  # called from the EXIT trap
remove_work() {
	[ -n "${WORK:-}" ] || return 0
	[ -n "${SERVING_LAYER_KEEP:-}" ] || rm -rf "$WORK"
}

# Run make installcheck in the copied tree as the test user; output to the screen and $1.
run_make() {
	local log=$1
	shift
	set +e
	(cd "$TREE" && as_test_user make --no-print-directory PG_CONFIG="$PG_CONFIG" \
		installcheck "$@") 2>&1 | tee "$log"
	local status=${PIPESTATUS[0]}
	set -e
	return "$status"
}

# Run one pg_regress-driven suite ($1) of $2 tests; $3 is its diffs file; rest: make vars.
run_pg_suite() {
	local suite=$1 expected=$2 diffs=$3 status=0 ok failed
	shift 3
	echo
	echo "======== $suite: $expected test(s) ========"
	run_make "$WORK/$suite.log" "$@" || status=$?
	# pg_regress prints "test name ... ok", or "     name ... ok" inside a
	# parallel group, up to 15; from 16 on "ok 1 - name" or "not ok 1 + name".
	ok=$(grep -cE '^((test | +)[^ ].* \.\.\. ok( |$)|ok [0-9]+ +[-+] )' "$WORK/$suite.log" || true)
	failed=$(grep -cE '^((test | +)[^ ].* \.\.\. (FAILED|failed)|not ok [0-9]+ +[-+] )' "$WORK/$suite.log" || true)
	if ((ok + failed < expected)); then
		S_NOTE[$suite]="$((expected - ok - failed)) test(s) did not run"
		failed=$((expected - ok))
	fi
	if ((status != 0 && failed == 0)); then
		S_NOTE[$suite]="make installcheck exited with status $status"
		failed=1
	fi
	S_PASS[$suite]=$ok
	S_FAIL[$suite]=$failed
	if ((failed > 0)); then
		echo "######## $suite failed: what differs ########"
		show_file "$TREE/$diffs" 1500
		cluster_log_tail 60
	fi
}

# Print the running server's version() line (which major, which build).
print_server_version() {
	echo "server: $(sl_psql -A -t -d postgres -c 'SELECT pg_catalog.version()')"
}

# Run the regress and isolation suites on one throwaway cluster.
run_server_suites() {
	local want_regress=$1 want_iso=$2 nreg niso
	nreg=$(list_tests 'sql/*.sql' | wc -l)
	niso=$(list_tests 'test/specs/*.spec' | wc -l)
	((want_regress && nreg == 0)) && S_NOTE[regress]="no test in sql/"
	((want_iso && niso == 0)) && S_NOTE[isolation]="no spec in test/specs/"
	((want_regress && nreg > 0)) || want_regress=0
	((want_iso && niso > 0)) || want_iso=0
	((want_regress || want_iso)) || return 0
	start_cluster
	print_server_version
	if ((want_regress)); then
		run_pg_suite regress "$nreg" regression.diffs ISOLATION= TAP_TESTS=
	fi
	if ((want_iso)); then
		run_pg_suite isolation "$niso" output_iso/regression.diffs REGRESS= TAP_TESTS=
	fi
	stop_cluster
}

# Show the logs a failed TAP test ($1, without .pl) left in tmp_check/log.
show_tap_logs() {
	local f
	for f in "$TREE/tmp_check/log/regress_log_$1" "$TREE"/tmp_check/log/"$1"_*.log; do
		[ -f "$f" ] || continue
		echo "---- last 80 lines of $f ----"
		tail -n 80 "$f"
	done
}

# Run each TAP test file by itself (its own prove run), so each file gets its own verdict.
run_tap_suite() {
	local t n=0 ok=0 failed=0 skipped=0 asserts=0 status log
	local tests=()
	mapfile -t tests < <(list_tests 'test/t/*.pl')
	if ((${#tests[@]} == 0)); then
		S_NOTE[tap]="no test in test/t/"
		return 0
	fi
	echo
	echo "======== tap: ${#tests[@]} test file(s) ========"
	for t in "${tests[@]}"; do
		n=$((n + 1))
		log=$WORK/tap_$t.log
		status=0
		run_make "$log" REGRESS= ISOLATION= PROVE_TESTS="test/t/$t.pl" || status=$?
		asserts=$((asserts + $(sed -n 's/^Files=[0-9]*, Tests=\([0-9]*\),.*/\1/p' "$log" | head -n 1 | grep . || echo 0)))
		if grep -qE '^test/t/[^ ]+\.pl \.+ skipped' "$log"; then
			skipped=$((skipped + 1))
		elif ((status == 0)) && grep -q '^Result: PASS' "$log"; then
			ok=$((ok + 1))
		else
			failed=$((failed + 1))
			echo "######## tap test $t failed (make status $status) ########"
			show_tap_logs "$t"
		fi
	done
	S_PASS[tap]=$ok
	S_FAIL[tap]=$failed
	S_SKIP[tap]=$skipped
	S_NOTE[tap]="prove: Files=$n, Tests=$asserts"
}

# --- main ---------------------------------------------------------------------

want() { [[ " ${SUITES[*]} " == *" $1 "* ]]; }

ensure_packages
# A build that fails is reported like a failed test, so the closing line is there.
if ! (build_and_install); then
	echo "the build failed: no test ran"
	echo "0 passed, 1 failed"
	exit 1
fi
ensure_test_user
copy_tree
say "testing a copy of the tree in $TREE as OS user $SL_RUN_USER"

# Without a regress or isolation run, a cluster is started just to say which server this is.
if ! want regress && ! want isolation; then
	start_cluster
	print_server_version
	stop_cluster
fi
run_server_suites "$(want regress && echo 1 || echo 0)" "$(want isolation && echo 1 || echo 0)"
want tap && run_tap_suite

pass=0 fail=0 skip=0
[ -n "${SERVING_LAYER_KEEP:-}" ] && say "SERVING_LAYER_KEEP is set: the tested tree stays in $TREE"
echo
echo "======== summary ========"
for s in "${SUITES[@]}"; do
	p=${S_PASS[$s]:-0} f=${S_FAIL[$s]:-0} k=${S_SKIP[$s]:-0}
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + k))
	line=$(printf '  %-10s %3d ok, %d failing' "$s" "$p" "$f")
	((k > 0)) && line+=", $k skipped"
	[ -n "${S_NOTE[$s]:-}" ] && line+="  (${S_NOTE[$s]})"
	echo "$line"
done
if ((pass + fail == 0)); then
	echo "  no test ran: that is a failure (add tests to sql/, test/specs/ or test/t/)"
	fail_status=1
else
	fail_status=$((fail > 0 ? 1 : 0))
fi
if ((skip > 0)); then
	echo "$pass passed, $fail failed, $skip skipped"
else
	echo "$pass passed, $fail failed"
fi
exit "$fail_status"
