#!/usr/bin/env bash
# test/compat-check.sh
#
# The code is written against the newest PostgreSQL API, and src/compat.h
# maps it onto the older majors (see its header).  A call of an API that
# PostgreSQL 16 or 17 removed still compiles on 15, so a change tested only
# on 15 would break the 17 and 18 builds; this script finds those calls in
# src/ (compat.h itself excepted) and says what to write instead.
# test/run-tests.sh runs it before every build, on every major.
#
#   test/compat-check.sh        exit status 1 when it finds one
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# "extended regular expression => what to write instead", one per removed API
RULES=(
	'\bpg_[a-z_]+_ownercheck[[:space:]]*\( => object_ownercheck(<catalog>RelationId, oid, roleid) (16)'
	'\bpg_(namespace|proc|type|database|language|tablespace|foreign_data_wrapper|foreign_server|largeobject)_aclcheck[[:space:]]*\( => object_aclcheck(<catalog>RelationId, oid, roleid, mode) (16)'
	'\bstringToQualifiedNameList[[:space:]]*\(([^(),]|\([^()]*\))*\) => stringToQualifiedNameList(string, NULL) (16)'
	'\brd_(new|first)RelfilenodeSubid => rd_newRelfilelocatorSubid, rd_firstRelfilelocatorSubid (16)'
	'\bRelationAssumeNewRelfilenode => RelationAssumeNewRelfilelocator (16)'
	'\bRelationCloseSmgrByOid => relation_forget_smgr() from compat.h (17 removed it)'
	'\brd_node\b => rd_locator (16)'
	'\bRelFileNode\b => RelFileLocator (16)'
)

found=0
for rule in "${RULES[@]}"; do
	re=${rule%% => *}
	instead=${rule#* => }
	hits=$(grep -nE "$re" src/*.c src/*.h 2>/dev/null | grep -v '^src/compat\.h:' || true)
	[ -n "$hits" ] || continue
	found=1
	echo "compat-check: an API that PostgreSQL 16 or 17 removed; write $instead"
	echo "  (and include \"compat.h\"), so that the code builds on 15, 17 and 18:"
	sed 's/^/    /' <<<"$hits"
done
exit "$found"
