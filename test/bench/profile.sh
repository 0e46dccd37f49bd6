#!/usr/bin/env bash
# test/bench/profile.sh
#
# Where does a refresh's time go?  Starts the benchmark cluster (lib.sh's
# settings and BENCH_EXTRA_SETTINGS, 127.0.0.1:$BENCH_PORT), builds
# speed.sh's classic layout at N batch keys (5M) and a speed layer of P %
# (100), refreshes once untimed, then refreshes with serving_layer.verbose
# while `perf record --call-graph dwarf` samples the refreshing backend, and
# prints markdown tables of the samples: by phase of the merge (the
# outermost function of the stack among the merge's steps), by kind of work
# (the innermost function of the stack among known ones: reading the
# layers, hashing and grouping, spill files, writing the new heap, WAL,
# ANALYZE; kernel frames are counted for the function that called the
# kernel), and the 30 functions with the most samples of their own.  The
# report, perf.data and the classified stacks go to test/bench/out/profile/.
#
#   test/bench/profile.sh [--n N] [--speed P] [--mem SIZE] [--freq HZ]
# --mem sets serving_layer.fast_merge_memory for the profiled refresh
# (default: the extension's default).  Needs perf (Debian: linux-perf) and
# root; the extension installed as for speed.sh.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=5000000
PCT=100
MEM=
FREQ=499
while [ $# -gt 0 ]; do
	case "$1" in
	--n) N=$2; shift 2 ;;
	--speed) PCT=$2; shift 2 ;;
	--mem) MEM=$2; shift 2 ;;
	--freq) FREQ=$2; shift 2 ;;
	-h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
done
bench_check_perf
bench_check_install
OUT=$BENCH_OUT/profile
rm -rf "$OUT"
mkdir -p "$OUT"
LOAD_BEFORE=$(bench_load_note "before the run")
bench_start_cluster

log "generating batch_layer with $N keys, speed_layer $PCT %"
make_batch "$N" analyze
make_speed "$N" "$PCT" analyze
bq -c 'SELECT count(*) FROM serving_layer_refresh()' >/dev/null
bq -c CHECKPOINT >/dev/null

# The profiled refresh, in a session of its own.
SETS=
[ -n "$MEM" ] && SETS="SET serving_layer.fast_merge_memory = '$MEM';"
bench_perf_session "$OUT/perf.data" "LOAD 'serving_layer'; $SETS SET serving_layer.\"verbose\" = on;" \
	--call-graph dwarf,16384 -F "$FREQ" <<-'SQL'
	\timing on
	SELECT * FROM serving_layer_refresh();
	\timing off
	SELECT 'cpu ' || split_part(pg_read_file('/proc/' || pg_backend_pid() || '/stat'), ' ', 14)
		|| ' ' || split_part(pg_read_file('/proc/' || pg_backend_pid() || '/stat'), ' ', 15);
SQL
LOAD_AFTER=$(bench_load_note "at the end")

log "perf script (this takes a while)"
perf script -i "$OUT/perf.data" -F comm,tid,ip,sym,dso --no-inline 2>/dev/null >"$OUT/stacks.txt"

# One line per sample: its phase, its kind, its leaf symbol.  The scans of
# the layers run below layer_read, beside the row callbacks rather than under
# them: a sample in a scan gets the phase of the samples in a callback whose
# frame in fast_merge has the same return address (the same layer_read call).
awk '
	function phase_of(s) {
		if (s ~ /^(analyze_new_heap|do_analyze_rel|analyze_rel|ExecVacuum)$/) return "5. ANALYZE of the new heap"
		if (s == "writer_end") return "4. the last rows of the new heap written"
		if (s == "key_pass" || s == "batch_key" || s == "keys_flush") return "1. key pass over the batch (duplicates)"
		if (s == "speed_row" || s == "spill_speed_row" || s == "spill_speed_groups" || s == "spill_speed_done") return "2. speed layer into groups or partitions"
		if (s == "spill_batch_row" || s == "spill_batch_done" || s == "batch_row") return "3. batch layer: merged at once or into partitions"
		if (s == "spill_merge") return "4. merging the spilled partitions"
		if (s == "fm_write_groups") return "4. the groups kept in memory written"
		if (s ~ /^(build_indexes|build_index_copy)$/) return "index copies"
		return ""
	}
	function kind_of(s) {
		if (s ~ /^(fast_merge|spill_merge|merge_set|merge_partition|fm_write_groups|speed_row|spill_speed_row|spill_speed_groups|spill_speed_done|spill_batch_row|spill_batch_done|batch_row|key_pass|shrink|check_projection)$/) return "the merge'"'"'s own loops (rows routed, groups walked)"
		if (s ~ /^(XLog|CopyXLog|ReserveXLog|WALInsert|pg_comp_crc32c|issue_xlog_fsync|log_heap|WaitXLog|AdvanceXLInsert)/) return "WAL"
		if (s ~ /^(do_analyze_rel|acquire_sample_rows|compute_scalar_stats|compute_distinct_stats|update_attstats|analyze_rel|std_typanalyze|ExecVacuum)$/) return "ANALYZE"
		if (s ~ /^(BufFile|spill_file|file_write|file_read|spill_write|spill_read|spill_decode|put_value|get_value|record_begin|record_end|copy_records|spill_row_write|spill_row_read|row_slot|FileRead|FileWrite|FileClose|OpenTemporaryFile|PathNameCreateTemporaryFile|PathNameOpenTemporaryFile|split)/) return "spill files"
		if (s ~ /^(heap_multi_insert|RelationGetBufferForTuple|RelationAddBlocks|heap_fill_tuple|heap_form_tuple|heap_compute_data_size|PageAddItemExtended|writer_put|writer_put_slot|writer_flush|writer_end|buffer_row|next_slot|mdextend|smgrextend|ExtendBufferedRel|write_group|group_key$|ExecStoreHeapTuple|ExecCopySlot|heap_copytuple|FlushBuffer|mdwrite|smgrwrite|heap_freeze_tuple)/) return "writing the new heap"
		if (s ~ /^(group_key_hash|group_key_equal|group_table_|hash_bytes|hash_any|hash_uint32|hashtext|hashint|hash_numeric|fm_add_group|fm_batch_row_hashed|dup_row|acc_|hashset_|keyfilter_|keys_flush|batch_key|tested|ring_push|ring_pop|to_partition|arena_alloc|key_text|texteq|numeric_add|int8pl|int4pl|datumCopy|datumIsEqual)/) return "hashing and grouping"
		if (s ~ /^(heap_getnext|heapgettup|heapgetpage|heap_prepare_pagescan|HeapTupleSatisfies|heap_page_prune|heap_deform_tuple|slot_deform|slot_getsomeattrs|tts_buffer_heap|scan_table|layer_read|ExecScan|ExecSeqScan|SeqNext|ExecProject|ExecInterpExpr|ExecEvalExpr|SPI_|_SPI_|ExecutorRun|standard_ExecutorRun|ExecutePlan|ReadBuffer|ReadBufferExtended|heap_getnextslot|XidInMVCCSnapshot|TransactionIdIsCurrentTransactionId|TransactionIdDidCommit|TransactionLogFetch|ReleaseBuffer|ReleaseAndReadBuffer|LockBuffer|UnlockReleaseBuffer|MarkBufferDirtyHint|SetHintBits|PinBuffer|UnpinBuffer|toast_|detoast|pglz|pg_detoast|heap_tuple_untoast)/) return "reading the layers"
		return ""
	}
	function is_kernel(sym, line) {
		return line ~ /\(\[kernel\.kallsyms\]\)/ || line ~ /\[unknown\] \(\[unknown\]\)$/ && sym ~ /^ffffffff/
	}
	function end_sample() {
		if (n == 0) return
		ns++; len[ns] = n
		for (i = 1; i <= n; i++) { S[ns, i] = st[i]; I[ns, i] = ip[i] }
		K[ns] = kern
		n = 0; kern = 0
	}
	/^[^ \t]/ { end_sample(); next }
	/^[ \t]*$/ { end_sample(); next }
	{
		a = $1; sym = $2
		if (sym == "") sym = "[unknown]"
		if (is_kernel(sym, $0)) {
			# the leaf kernel function only; the caller decides the kind
			if (n == 0) { st[++n] = sym; ip[n] = a; kern = 1 }
			next
		}
		st[++n] = sym; ip[n] = a
	}
	END {
		end_sample()
		# phase of each sample from its callbacks; return addresses in fast_merge
		for (s = 1; s <= ns; s++) {
			ph[s] = ""
			for (i = len[s]; i >= 1; i--) { p = phase_of(S[s, i]); if (p != "") { ph[s] = p; break } }
			if (ph[s] != "")
				for (i = 1; i <= len[s]; i++)
					if (S[s, i] == "fast_merge") { site[I[s, i]] = ph[s]; break }
		}
		for (s = 1; s <= ns; s++) {
			if (ph[s] == "")
				for (i = 1; i <= len[s]; i++)
					if (S[s, i] == "fast_merge") { if (I[s, i] in site) ph[s] = site[I[s, i]]; else ph[s] = "fast_merge, other"; break }
			if (ph[s] == "") ph[s] = "outside the merge (commit, swap, ...)"
			kd = ""
			for (i = 1; i <= len[s]; i++) { k = kind_of(S[s, i]); if (k != "") { kd = k; break } }
			if (kd == "") kd = K[s] ? "other kernel" : "other"
			printf "%s\t%s\t%s\t%d\n", ph[s], kd, S[s, 1], K[s]
		}
	}' "$OUT/stacks.txt" >"$OUT/classified.tsv"

TOTAL=$(wc -l <"$OUT/classified.tsv")
REFRESH_S=$(timing_seconds "$OUT/perf.data.log")
report() {
	echo "## profile.sh: where a refresh's time goes (N = $(human "$N"), speed $PCT %${MEM:+, fast_merge_memory $MEM}, $(date -u '+%Y-%m-%d %H:%M UTC'))"
	echo
	bench_machine
	echo "$LOAD_BEFORE"
	echo "$LOAD_AFTER"
	echo "- refresh: $REFRESH_S s under perf (perf record --call-graph dwarf,16384 -F $FREQ -p <backend>), $TOTAL samples; the backend's CPU (utime stime, clock ticks) $(sed -n 's/^cpu //p' "$OUT/perf.data.log")"
	echo "- verbose: $(grep -E '^INFO: +refresh of .*: build:' "$OUT/perf.data.log" | sed -E 's/^INFO: +//' | head -n1)"
	echo
	echo "### By phase (outermost step of the merge in the stack)"
	echo
	echo "| phase | samples | % |"
	echo "|---|---|---|"
	awk -F'\t' -v t="$TOTAL" '{c[$1]++} END {for (k in c) printf "| %s | %d | %.1f |\n", k, c[k], 100 * c[k] / t}' \
		"$OUT/classified.tsv" | sort -t'|' -k2,2
	echo
	echo "### By kind of work (innermost known function in the stack; kernel time counted for its caller)"
	echo
	echo "| kind | samples | % | of which in the kernel, % |"
	echo "|---|---|---|---|"
	awk -F'\t' -v t="$TOTAL" '{c[$2]++; kk[$2] += $4} END {for (k in c) printf "| %s | %d | %.1f | %.1f |\n", k, c[k], 100 * c[k] / t, 100 * kk[k] / t}' \
		"$OUT/classified.tsv" | sort -t'|' -k3,3nr
	echo
	echo "### Phase x kind (% of all samples)"
	echo
	awk -F'\t' -v t="$TOTAL" '
		{c[$1 SUBSEP $2]++; if (!($1 in P)) {P[$1] = 1; pl[++np] = $1} if (!($2 in K)) {K[$2] = 1; kl[++nk] = $2}}
		END {
			h = "| phase |"; s = "|---|"
			for (j = 1; j <= nk; j++) { h = h " " kl[j] " |"; s = s "---|" }
			print h; print s
			for (i = 1; i <= np; i++) {
				l = "| " pl[i] " |"
				for (j = 1; j <= nk; j++) l = l sprintf(" %.1f |", 100 * c[pl[i] SUBSEP kl[j]] / t)
				print l
			}
		}' "$OUT/classified.tsv"
	echo
	echo "### The 30 functions with the most samples of their own (\`[unknown]\`: functions of the postgres binary without symbols, static ones)"
	echo
	echo "| function | kinds its samples were counted for | samples | % |"
	echo "|---|---|---|---|"
	awk -F'\t' -v t="$TOTAL" '{c[$3]++; ck[$3 SUBSEP $2]++} END {
			for (s in c) {
				l = ""
				for (x in ck) { split(x, f, SUBSEP); if (f[1] == s) l = l (l == "" ? "" : ", ") f[2] " " ck[x] }
				printf "%d\t%s\t%s\n", c[s], s, l
			}
		}' \
		"$OUT/classified.tsv" | sort -nr | head -n 30 |
		awk -F'\t' -v t="$TOTAL" '{printf "| `%s` | %s | %d | %.1f |\n", $2, $3, $1, 100 * $1 / t}'
}
report | tee "$OUT/profile.md"
log "report: $OUT/profile.md; perf data: $OUT/perf.data"
