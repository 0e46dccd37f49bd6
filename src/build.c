/*-------------------------------------------------------------------------
 *
 * build.c
 *	  Build the serving table's new contents beside it: a new heap with the
 *	  same columns, filled with the merge query's rows, and a copy of each
 *	  of the serving table's indexes built on it.
 *
 * The new heap is made with make_new_heap(), as REFRESH MATERIALIZED VIEW
 * and CLUSTER do, so it has the serving table's exact tuple descriptor
 * (dropped columns included), persistence, access method and options.  The
 * rows are computed in C (fast_merge.c) or by the merge query through SPI
 * (query_rows.c), and written by heap_writer.c rather than by INSERT ...
 * SELECT, for two reasons SPI alone cannot serve:
 *	  - tuples are inserted frozen (TABLE_INSERT_FROZEN), which is valid for
 *		a relation created in this transaction and lets transactions whose
 *		snapshots predate the swap see the new contents instead of an empty
 *		table, as REFRESH MATERIALIZED VIEW does;
 *	  - rows go in through table_multi_insert() with a bulk-insert state, the
 *		fastest path the table AM offers (it is what COPY uses).
 * Values too large for a heap page go to the new heap's own TOAST table,
 * which the swap hands to the serving table with the rest (by link), so the
 * index copies and ANALYZE read them normally before the swap.
 * Only the serving table's SHARE UPDATE EXCLUSIVE lock is held meanwhile:
 * readers and writers of the serving table are not blocked by the build.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "commands/cluster.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "build.h"
#include "batch_guard.h"
#include "boundary.h"
#include "fast_merge_api.h"
#include "heap_writer.h"
#include "merge_sql.h"
#include "merge_types.h"
#include "query_rows.h"
#include "util.h"

/* counts summed from the merge query's two last columns */
typedef struct SqlFill
{
	HeapWriter *writer;
	int			ndata;
	int64		input_rows;
	int64		speed_rows;
} SqlFill;

/*
 * sql_fill_row
 *		One row of the merge query: the data columns go to the new heap,
 *		the two counts are added up.
 */
static void
sql_fill_row(TupleTableSlot *slot, void *arg)
{
	SqlFill    *fill = arg;

	writer_put(fill->writer, slot->tts_values, slot->tts_isnull);
	fill->input_rows += DatumGetInt64(slot->tts_values[fill->ndata]);
	fill->speed_rows += DatumGetInt64(slot->tts_values[fill->ndata + 1]);
}

/*
 * build_merge_prepare
 *		What comes before the merge's reads, under the active snapshot (the
 *		one every read of the layers sees): the derived time boundary, and
 *		with guard_first the half-loaded batch check (mode 'apply' changes
 *		the serving table while it merges, so it checks first).
 */
void
build_merge_prepare(const MergePlan *plan, BuildResult *result,
					const Definition *guard_first)
{
	boundary_derive(plan);
	result->boundary = boundary_text(plan);
	if (guard_first != NULL)
		batch_guard_check_first(guard_first, plan);
}

/*
 * build_merge_fill
 *		Compute the new contents into writer, under the active snapshot: in
 *		C for the common merges (fast_merge.c), else with one GROUP BY query
 *		(merge_sql.c).  Both modes use it: 'swap' writes the rows into a new
 *		heap, 'apply' hands them to its comparison (apply.c).
 */
void
build_merge_fill(const MergePlan *plan, HeapWriter *writer,
				 BuildResult *result)
{
	if (fast_merge_possible(plan))
	{
		char	   *merged_by;

		fast_merge(plan, writer, &result->batch_rows, &result->speed_rows,
				   &merged_by);
		result->merged_by = merged_by;
	}
	else
	{
		SqlFill		fill;
		int			nparams;
		Oid		   *paramtypes;
		Datum	   *paramvalues;
		char	   *sql;

		result->merged_by = "by GROUP BY";
		sql = merge_sql_select(plan, true, &nparams, &paramtypes,
							   &paramvalues);
		memset(&fill, 0, sizeof(fill));
		fill.writer = writer;
		fill.ndata = plan->ncolumns;
		query_rows(sql, nparams, paramtypes, paramvalues, true,
				   sql_fill_row, &fill);
		result->speed_rows = fill.speed_rows;
		result->batch_rows = fill.input_rows - fill.speed_rows;
	}
	result->output_rows = writer_end(writer);
}

/*
 * build_merge_rows
 *		build_merge_prepare() and build_merge_fill() under one new snapshot:
 *		the derived time boundary and the rows on either side of it must
 *		agree.
 */
void
build_merge_rows(const MergePlan *plan, HeapWriter *writer,
				 BuildResult *result, const Definition *guard_first)
{
	PushActiveSnapshot(GetTransactionSnapshot());
	build_merge_prepare(plan, result, guard_first);
	build_merge_fill(plan, writer, result);
	PopActiveSnapshot();
}

/*
 * build_index_copy
 *		Build an index copy; a unique violation is reported under the name
 *		of the serving table's index, which is the one the user knows.
 */
static void
build_index_copy(Relation newrel, Relation idxrel, const char *name)
{
	MemoryContext cxt = CurrentMemoryContext;

	PG_TRY();
	{
		index_build(newrel, idxrel, BuildIndexInfo(idxrel), false, true);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_UNIQUE_VIOLATION)
			PG_RE_THROW();
		FlushErrorState();
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("could not create unique index \"%s\"", name),
				 edata->detail ? errdetail_internal("%s", edata->detail) : 0,
				 errhint("The new contents have two rows with the same value in this unique index.")));
	}
	PG_END_TRY();
}

/*
 * build_indexes
 *		Give the new heap a copy of each of the serving table's indexes,
 *		built on the new contents, and remember the pairs for the swap.
 *
 * index_concurrently_create_copy() makes the catalog entry from the old
 * index's definition (columns, expressions, predicate, opclasses, options)
 * without building it; index_build() then builds it in bulk, in parallel
 * where the settings allow.  Only the storage of the copy is kept: the swap
 * moves it under the old index, whose catalog entry, name and constraints
 * stay.
 */
static void
build_indexes(Relation oldrel, Relation newrel, BuildResult *result)
{
	List	   *indexes = RelationGetIndexList(oldrel);
	ListCell   *lc;

	foreach(lc, indexes)
	{
		Oid			oldidx = lfirst_oid(lc);
		Oid			newidx;
		Relation	idxrel;
		char	   *name;

		CHECK_FOR_INTERRUPTS();
		name = psprintf("pg_temp_%u_%u", RelationGetRelid(newrel), oldidx);
		newidx = index_concurrently_create_copy(newrel, oldidx,
												get_rel_tablespace(oldidx),
												name);
		CommandCounterIncrement();
		idxrel = index_open(newidx, AccessExclusiveLock);
		build_index_copy(newrel, idxrel, get_rel_name(oldidx));
		index_close(idxrel, NoLock);
		CommandCounterIncrement();

		result->index_pairs = lappend_oid(result->index_pairs, oldidx);
		result->index_pairs = lappend_oid(result->index_pairs, newidx);
	}
}

/*
 * analyze_new_heap
 *		Gather planner statistics on the new contents, before the swap, so
 *		that the serving table has fresh statistics without an ANALYZE under
 *		its exclusive lock: the swap moves them over (swap.c).
 */
static void
analyze_new_heap(Relation newrel)
{
	char	   *sql;

	sql = psprintf("ANALYZE %s",
				   quote_qualified_identifier(get_namespace_name(RelationGetNamespace(newrel)),
											  RelationGetRelationName(newrel)));
	(void) sl_spi_run(sql, SPI_OK_UTILITY, NULL);
}

/*
 * build_enter_owner
 *		Run what follows as the serving table's owner, security-restricted,
 *		with search_path pinned to pg_catalog and the merge's settings, as
 *		REFRESH MATERIALIZED VIEW runs its query: a superuser refreshing
 *		another role's table runs none of that role's code with superuser
 *		rights.  build_leave_owner() restores the caller's context.
 */
void
build_enter_owner(Relation oldrel, OwnerContext *ctx)
{
	GetUserIdAndSecContext(&ctx->save_userid, &ctx->save_sec_context);
	SetUserIdAndSecContext(oldrel->rd_rel->relowner,
						   ctx->save_sec_context | SECURITY_RESTRICTED_OPERATION);
	ctx->save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);

	/*
	 * The planner cannot estimate the number of groups of a GROUP BY over a
	 * UNION ALL (it assumes 200), so with parallel workers it picks partial
	 * aggregation followed by a sort of every group, 1.5x slower than one
	 * serial hash aggregate on 1M keys.  And a hash aggregate over millions
	 * of groups is fastest when it spills in small partitions: measured on
	 * 1M keys, 1.5 s at work_mem 4MB, 1.8 s at 16MB, 2.7 s at 64MB, 3.6 s at
	 * 1GB.  A fixed small work_mem also bounds the backend's memory whatever
	 * the session's work_mem is.
	 */
	(void) set_config_option("max_parallel_workers_per_gather", "0",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	(void) set_config_option("work_mem", "4MB",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	(void) set_config_option("hash_mem_multiplier", "2",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
}

/*
 * build_leave_owner
 *		Undo build_enter_owner().
 */
void
build_leave_owner(OwnerContext *ctx)
{
	AtEOXact_GUC(false, ctx->save_nestlevel);
	SetUserIdAndSecContext(ctx->save_userid, ctx->save_sec_context);
}

/*
 * build_new_contents
 *		Create, fill and index the new heap of a serving table.
 *
 * The caller holds SHARE UPDATE EXCLUSIVE on the serving table.  The work
 * runs as the serving table's owner in a security-restricted operation with
 * search_path pinned to pg_catalog, as REFRESH MATERIALIZED VIEW runs its
 * query: a superuser refreshing another role's table runs none of that
 * role's code with superuser rights.
 */
BuildResult *
build_new_contents(const MergePlan *plan, Oid target_relid)
{
	BuildResult *result = palloc0(sizeof(BuildResult));
	Relation	oldrel = table_open(target_relid, NoLock);
	Relation	newrel;
	OwnerContext ctx;
	instr_time	start;

	result->target_relid = target_relid;
	result->changed_rows = -1;

	build_enter_owner(oldrel, &ctx);

	INSTR_TIME_SET_CURRENT(start);
	result->new_relid = make_new_heap(target_relid,
									  oldrel->rd_rel->reltablespace,
									  oldrel->rd_rel->relam,
									  oldrel->rd_rel->relpersistence,
									  NoLock);
	newrel = table_open(result->new_relid, NoLock);

	build_merge_rows(plan, writer_begin(oldrel, newrel), result, NULL);
	result->fill_ms = sl_elapsed_ms(start);

	INSTR_TIME_SET_CURRENT(start);
	build_indexes(oldrel, newrel, result);
	result->index_ms = sl_elapsed_ms(start);

	INSTR_TIME_SET_CURRENT(start);
	analyze_new_heap(newrel);
	result->analyze_ms = sl_elapsed_ms(start);

	table_close(newrel, NoLock);
	table_close(oldrel, NoLock);

	build_leave_owner(&ctx);
	return result;
}
