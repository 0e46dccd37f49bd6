#!/usr/bin/env bash
# test/bench/compare-builds.sh
#
# Is one build of the extension slower than another?  Builds each git
# revision given in a temporary worktree of its own (never in this
# checkout), then, ROUNDS (3) times, installs each build in turn into the
# PostgreSQL that SERVING_LAYER_PG_BINDIR names (a private copy: this never
# installs into the system's PostgreSQL) and runs this checkout's
# test/bench/speed.sh with the arguments after "--" (the same port, the
# same script, the same data for every build).  Builds alternate within
# each round: A B A B A B for two revisions.  Each speed.sh run's report
# and raw runs are kept in test/bench/out/compare/<round>-<revision>/, and
# the end prints a markdown table: for every N, speed and method, each
# build's median seconds over the rounds and the median over the rounds of
# the method's ratio to the floor (the first method given to speed.sh,
# measured in the same speed.sh run), then the ratio of each build's median
# ratio to the first build's.  The table also goes to
# test/bench/out/compare/compare.md.
#
#   SERVING_LAYER_PG_BINDIR=/var/tmp/pg15-me/usr/lib/postgresql/15/bin \
#   BENCH_PORT=56202 BENCH_EXTRA_SETTINGS="maintenance_work_mem = 64MB" \
#     test/bench/compare-builds.sh [--rounds N] REV REV [REV ...] -- \
#       --sizes "1000000 5000000" --speeds "1 10" --methods "a d" --runs 1 --no-extras
#
# A round of speed.sh runs takes as long as one speed.sh run times the
# number of revisions.  Leaves the last revision installed.  COPT is passed
# to the builds.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS=3
REVS=()
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) ROUNDS=$2; shift 2 ;;
	--) shift; break ;;
	-h | --help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) die "unknown argument '$1' (see --help)" ;;
	*) REVS+=("$1"); shift ;;
	esac
done
SPEED_ARGS=("$@")
[ ${#REVS[@]} -ge 2 ] || die "give at least two git revisions (see --help)"
[ -n "${SERVING_LAYER_PG_BINDIR:-}" ] ||
	die "set SERVING_LAYER_PG_BINDIR to a private copy of PostgreSQL 15's bin directory: each build is installed there in turn"
[ -x "$PG_CONFIG" ] || die "no pg_config in $PG_BINDIR"
# the flags speed.sh reads
FLOOR=
for ((i = 0; i < ${#SPEED_ARGS[@]}; i++)); do
	if [ "${SPEED_ARGS[i]}" = --methods ]; then
		read -r -a ms <<<"${SPEED_ARGS[i + 1]}"
		FLOOR=${ms[0]}
	fi
done
[ -n "$FLOOR" ] || die "give speed.sh --methods, the first of them the floor (e.g. --methods \"a d\")"

CMP_OUT=$BENCH_OUT/compare
rm -rf "$CMP_OUT"
mkdir -p "$CMP_OUT"
WT_BASE=$(mktemp -d /tmp/serving_layer.compare.XXXXXX)
on_exit "rm -rf '$WT_BASE'"

# --- the builds ------------------------------------------------------------------

declare -A SHA=() TREE=()
for rev in "${REVS[@]}"; do
	SHA[$rev]=$(git -C "$SL_ROOT" rev-parse --short "$rev^{commit}") || die "unknown revision '$rev'"
	TREE[$rev]=$WT_BASE/${SHA[$rev]}
	git -C "$SL_ROOT" worktree add -q --detach "${TREE[$rev]}" "${SHA[$rev]}"
	on_exit "git -C '$SL_ROOT' worktree remove --force '${TREE[$rev]}'"
	log "building $rev (${SHA[$rev]}) in ${TREE[$rev]}"
	make -s -C "${TREE[$rev]}" -j2 PG_CONFIG="$PG_CONFIG" ${COPT:+COPT="$COPT"} >"$CMP_OUT/build-${SHA[$rev]}.log" 2>&1 ||
		{ cat "$CMP_OUT/build-${SHA[$rev]}.log" >&2; die "the build of $rev failed"; }
done

# --- the rounds ------------------------------------------------------------------

ALL=$CMP_OUT/runs.tsv
printf 'build\tround\tN\tspeed_pct\tmethod\trun\tseconds\tstatus\tvmhwm_kb\trssshmem_kb\tmerged\n' >"$ALL"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for ((r = 1; r <= ROUNDS; r++)); do
	for rev in "${REVS[@]}"; do
		s=${SHA[$rev]}
		make -s -C "${TREE[$rev]}" PG_CONFIG="$PG_CONFIG" install >/dev/null
		log "round $r: $rev ($s) installed; speed.sh ${SPEED_ARGS[*]} (load $(cut -d' ' -f1-3 /proc/loadavg))"
		BENCH_BUILD="$s (installed by compare-builds.sh from $rev)" \
			"$BENCH_DIR/speed.sh" "${SPEED_ARGS[@]}" >"$CMP_OUT/speed-$r-$s.stdout" 2>"$CMP_OUT/speed-$r-$s.log" ||
			{ tail -n 30 "$CMP_OUT/speed-$r-$s.log" >&2; die "speed.sh failed in round $r with $rev"; }
		mkdir -p "$CMP_OUT/$r-$s"
		cp -a "$BENCH_OUT/speed.md" "$BENCH_OUT/speed-runs.tsv" "$BENCH_OUT/speed-raw" "$CMP_OUT/$r-$s/"
		awk -F'\t' -v b="$s" -v r="$r" 'NR > 1 {print b "\t" r "\t" $0}' "$BENCH_OUT/speed-runs.tsv" >>"$ALL"
	done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the table ---------------------------------------------------------------------

summary() {
	echo "## compare-builds.sh: ${REVS[*]} ($(date -u '+%Y-%m-%d %H:%M UTC'))"
	echo
	echo "- builds: $(for rev in "${REVS[@]}"; do printf '%s = %s; ' "$rev" "${SHA[$rev]}"; done)installed in turn into $PG_BINDIR"
	echo "- $ROUNDS rounds, builds alternating in each; speed.sh ${SPEED_ARGS[*]}${BENCH_EXTRA_SETTINGS:+; BENCH_EXTRA_SETTINGS=\"$BENCH_EXTRA_SETTINGS\"}"
	echo "- load average (1, 5, 15 min) at the start: $LOAD_START; at the end: $LOAD_END"
	echo "- x/$FLOOR: the median over the rounds of the ratio of the method's median to the floor's ($FLOOR) median in the same speed.sh run; vs ${SHA[${REVS[0]}]}: that median ratio over the first build's; private MB: the largest VmHWM - RssShmem of the method's runs"
	echo
	awk -F'\t' -v floor="$FLOOR" -v rounds="$ROUNDS" -v builds="$(for rev in "${REVS[@]}"; do printf '%s ' "${SHA[$rev]}"; done)" '
		function med(list,    a, n, i, j, t) {
			n = split(list, a, " ")
			for (i = 1; i <= n; i++)
				for (j = i + 1; j <= n; j++)
					if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
			if (n == 0) return ""
			return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
		}
		function human(n) { return (n >= 1000000 && n % 1000000 == 0) ? n / 1000000 "M" : n }
		NR == 1 { next }
		$8 != "ok" { next }
		{
			k = $1 SUBSEP $2 SUBSEP $3 SUBSEP $4 SUBSEP $5
			t[k] = t[k] " " $7
			if (!(($3, $4) in seen)) { seen[$3, $4] = 1; order[++nk] = $3 SUBSEP $4 }
			if (!($5 in mseen)) { mseen[$5] = 1; methods[++nm] = $5 }
			if ($9 != "-" && $10 != "-") {
				mb = ($9 - $10) / 1024
				if (!((($1, $3, $4, $5) in pm)) || mb > pm[$1, $3, $4, $5]) pm[$1, $3, $4, $5] = mb
			}
		}
		END {
			nb = split(builds, b, " ")
			hdr = "| N | speed % | method |"; sep = "|---|---|---|"
			for (i = 1; i <= nb; i++) {
				hdr = hdr " " b[i] " s | " b[i] " x/" floor " | " b[i] " private MB |"
				sep = sep "---|---|---|"
				if (i > 1) { hdr = hdr " " b[i] " vs " b[1] " |"; sep = sep "---|" }
			}
			print hdr; print sep
			for (o = 1; o <= nk; o++) {
				split(order[o], np, SUBSEP)
				for (mi = 1; mi <= nm; mi++) {
					m = methods[mi]
					line = "| " human(np[1]) " | " np[2] " | " m " |"
					for (i = 1; i <= nb; i++) {
						secs = ""; ratios = ""
						for (r = 1; r <= rounds; r++) {
							km = b[i] SUBSEP r SUBSEP np[1] SUBSEP np[2] SUBSEP m
							kf = b[i] SUBSEP r SUBSEP np[1] SUBSEP np[2] SUBSEP floor
							if (!(km in t)) continue
							mm = med(t[km]); secs = secs " " mm
							if (kf in t && med(t[kf]) > 0) ratios = ratios " " mm / med(t[kf])
						}
						rr[i] = med(ratios)
						p = ((b[i], np[1], np[2], m) in pm) ? sprintf("%.0f", pm[b[i], np[1], np[2], m]) : "-"
						line = line sprintf(" %.3f | %s | %s |", med(secs), (rr[i] == "" ? "-" : sprintf("%.2f", rr[i])), p)
						if (i > 1)
							line = line ((rr[1] > 0 && rr[i] != "") ? sprintf(" %.3f |", rr[i] / rr[1]) : " - |")
					}
					print line
				}
			}
		}' "$ALL"
	echo
	echo "Per round (seconds, medians of each speed.sh run; x/$FLOOR in parentheses):"
	echo
	echo "| round | build | N | speed % | method | s | x/$FLOOR |"
	echo "|---|---|---|---|---|---|---|"
	awk -F'\t' -v floor="$FLOOR" '
		function med(list,    a, n, i, j, t) {
			n = split(list, a, " ")
			for (i = 1; i <= n; i++)
				for (j = i + 1; j <= n; j++)
					if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
			return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
		}
		NR == 1 || $8 != "ok" { next }
		{ k = $2 SUBSEP $1 SUBSEP $3 SUBSEP $4 SUBSEP $5; if (!(k in t)) ord[++n] = k; t[k] = t[k] " " $7 }
		END {
			for (i = 1; i <= n; i++) {
				split(ord[i], f, SUBSEP)
				kf = f[1] SUBSEP f[2] SUBSEP f[3] SUBSEP f[4] SUBSEP floor
				printf "| %s | %s | %s | %s | %s | %.3f | %.2f |\n", f[1], f[2], f[3], f[4], f[5],
					med(t[ord[i]]), med(t[ord[i]]) / med(t[kf])
			}
		}' "$ALL"
}
summary | tee "$CMP_OUT/compare.md"
log "table: $CMP_OUT/compare.md; raw runs: $ALL; each run's report in $CMP_OUT/<round>-<build>/"
