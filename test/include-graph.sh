#!/bin/bash
# test/include-graph.sh
#
# Print which file of src/ includes which of the extension's own headers,
# one "file -> header" line each, and fail when the modules include each
# other in a cycle.  A module is a .c file with its .h (merge_plan.c and
# merge_plan.h are the module merge_plan), so "a.c includes b.h and b.c
# includes a.h" is a cycle even though no header includes itself.  A
# module's internal header, x_int.h (the declarations its several files
# share, as apply_delta_int.h for apply_delta*.c), belongs to module x.
#
# Usage: test/include-graph.sh [--check-headers]
#   --check-headers  also compile each header alone after postgres.h, to
#                    show that it includes what it needs (needs pg_config:
#                    $PG_CONFIG, else the one of SERVING_LAYER_PG_BINDIR,
#                    else the one in PATH).
# Exit status: 0 without a cycle (and with self-contained headers), 1 else.

set -u
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../src" && pwd)
cd "$src" || exit 1

edges=$(mktemp)
trap 'rm -f "$edges"' EXIT

for f in *.c *.h; do
	sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f" |
		while read -r h; do
			[ -f "$h" ] || continue
			echo "$f -> $h"
			from=${f%.*}
			from=${from%_int}
			to=${h%.*}
			to=${to%_int}
			[ "$from" != "$to" ] && echo "$from $to" >>"$edges"
		done
done

rc=0
if ! tsort "$edges" >/dev/null 2>"$edges.err"; then
	echo "include cycle among modules:" >&2
	sed -e 's/^tsort: [^:]*: //' "$edges.err" >&2
	rc=1
fi
rm -f "$edges.err"

if [ "${1:-}" = "--check-headers" ]; then
	pgc=${PG_CONFIG:-}
	[ -z "$pgc" ] && [ -n "${SERVING_LAYER_PG_BINDIR:-}" ] && pgc=$SERVING_LAYER_PG_BINDIR/pg_config
	[ -z "$pgc" ] && pgc=pg_config
	inc=$("$pgc" --includedir-server) || exit 1
	for h in *.h; do
		if ! printf '#include "postgres.h"\n#include "%s"\n' "$h" |
			${CC:-gcc} -fsyntax-only -Wall -I"$inc" -I. -x c - 2>&1 | sed "s|^|$h: |" | grep .; then
			continue
		fi
		rc=1
	done
	[ $rc -eq 0 ] && echo "every header compiles on its own"
fi
exit $rc
