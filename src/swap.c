/*-------------------------------------------------------------------------
 *
 * swap.c
 *	  Switch the new contents in: take the serving tables' ACCESS EXCLUSIVE
 *	  locks with bounded waits, then exchange the storage of each serving
 *	  table and its new heap, of their TOAST tables and of each index pair,
 *	  and move the new heap's planner statistics over.
 *
 * Why not SQL: no SQL command swaps two relations' storage while keeping
 * the OIDs, and the only core function that does (finish_heap_swap, used by
 * CLUSTER and REFRESH MATERIALIZED VIEW) rebuilds every index while holding
 * the exclusive lock, which takes time proportional to the table.  Here the
 * indexes were built beforehand on the new heap (build.c), so the swap only
 * rewrites a few pg_class rows (swap_files.c, adapted from core's
 * swap_relation_files()): the serving table keeps its OID, owner, grants,
 * comments, indexes, constraints and dependent views, and the exclusive
 * lock is held for a time that does not depend on its size.
 *
 * Afterwards the new heap holds the old storage; what becomes of it is
 * retire.c's business, not this file's.
 *
 * Readers queue behind a waiting ACCESS EXCLUSIVE request, so one attempt
 * to take the lock waits at most serving_layer.swap_lock_timeout; between
 * attempts the refresh sleeps (readers go on meanwhile) with a growing
 * back-off, until serving_layer.swap_max_wait has passed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/visibilitymap.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/pg_statistic.h"
#include "commands/tablecmds.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/predicate.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/rel.h"
#include "utils/resowner.h"

#include "build.h"
#include "settings.h"
#include "swap.h"
#include "swap_files.h"
#include "util.h"

/* the longest sleep between two attempts */
#define SWAP_MAX_BACKOFF_MS 1000

/*
 * lock_attempt
 *		Try once to take ACCESS EXCLUSIVE on every relation of the list,
 *		waiting at most timeout_ms for each.  Returns -1 when all are locked,
 *		else the index of the relation whose lock timed out (and none is
 *		kept); other errors (a cancel, statement_timeout, a deadlock)
 *		propagate.
 *
 * The attempt runs in a subtransaction with lock_timeout set, as PL/pgSQL
 * runs an EXCEPTION block: a timeout aborts the subtransaction, which takes
 * our place out of the lock queues and releases the locks this attempt got;
 * a success keeps the locks in the parent.  Taking all the serving tables of
 * a refresh in one attempt means none of them stays locked, blocking its
 * readers, while the refresh waits for another.
 */
static int
lock_attempt(List *relids, int timeout_ms)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile int failed = -1;
	volatile int current = 0;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		char		value[32];
		int			nestlevel = NewGUCNestLevel();
		ListCell   *lc;

		snprintf(value, sizeof(value), "%d", timeout_ms);
		(void) set_config_option("lock_timeout", value, PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
								 false);
		foreach(lc, relids)
		{
			current = foreach_current_index(lc);
			LockRelationOid(lfirst_oid(lc), AccessExclusiveLock);
		}
		AtEOXact_GUC(true, nestlevel);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
			ReThrowError(edata);
		FreeErrorData(edata);
		failed = current;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return failed;
}

/*
 * swap_lock_serving_tables
 *		Take ACCESS EXCLUSIVE on the serving tables (in the order given) in
 *		attempts of at most serving_layer.swap_lock_timeout ms per table,
 *		for at most serving_layer.swap_max_wait ms in all; then fail with
 *		lock_not_available, naming the table that was not available.
 *		Returns the number of attempts.
 */
int
swap_lock_serving_tables(List *relids, List *names)
{
	instr_time	start;
	int			attempts = 0;
	long		backoff = 10;

	INSTR_TIME_SET_CURRENT(start);
	for (;;)
	{
		double		waited;
		long		sleep_ms;
		int			failed;

		CHECK_FOR_INTERRUPTS();
		attempts++;
		failed = lock_attempt(relids, sl_swap_lock_timeout);
		if (failed < 0)
			break;

		waited = sl_elapsed_ms(start);
		if (waited >= sl_swap_max_wait)
			ereport(ERROR,
					(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
					 errmsg("could not lock serving table \"%s\" for the swap",
							(char *) list_nth(names, failed)),
					 errdetail("%d attempts of %d ms each over %.0f ms found the table locked by another transaction.",
							   attempts, sl_swap_lock_timeout, waited),
					 errhint("Retry the refresh, or raise serving_layer.swap_max_wait.")));

		sleep_ms = Min(backoff, (long) (sl_swap_max_wait - waited) + 1);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 sleep_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		backoff = Min(backoff * 2, SWAP_MAX_BACKOFF_MS);
	}
	return attempts;
}

/*
 * swap_statistics
 *		Give the serving table the planner statistics gathered on the new
 *		heap (build.c analyzes it before the swap): drop the serving table's
 *		pg_statistic rows and move the new heap's rows to it.
 */
static void
swap_statistics(Oid oldrelid, Oid newrelid)
{
	Relation	pg_statistic = table_open(StatisticRelationId, RowExclusiveLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;

	ScanKeyInit(&key, Anum_pg_statistic_starelid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(oldrelid));
	scan = systable_beginscan(pg_statistic, StatisticRelidAttnumInhIndexId,
							  true, NULL, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
		CatalogTupleDelete(pg_statistic, &tup->t_self);
	systable_endscan(scan);
	CommandCounterIncrement();

	ScanKeyInit(&key, Anum_pg_statistic_starelid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(newrelid));
	scan = systable_beginscan(pg_statistic, StatisticRelidAttnumInhIndexId,
							  true, NULL, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		HeapTuple	copy = heap_copytuple(tup);

		((Form_pg_statistic) GETSTRUCT(copy))->starelid = oldrelid;
		CatalogTupleUpdate(pg_statistic, &copy->t_self, copy);
		heap_freetuple(copy);
	}
	systable_endscan(scan);
	table_close(pg_statistic, RowExclusiveLock);
}

/*
 * swap_storage
 *		With the serving table locked ACCESS EXCLUSIVE, move the new heap's
 *		storage (and its TOAST table and indexes) under the serving table;
 *		the new heap then holds the old storage.
 */
void
swap_storage(BuildResult *result)
{
	Relation	oldrel = table_open(result->target_relid, NoLock);
	Relation	newrel = table_open(result->new_relid, NoLock);
	RelSizeStats stats;
	ListCell   *lc;

	/* no open cursor of ours may be reading the old storage */
	CheckTableNotInUse(oldrel, "serving_layer_refresh()");
	/* serializable readers of the old contents keep their conflicts */
	TransferPredicateLocksToHeapRelation(oldrel);

	/* the index locks follow the table lock at once: nobody else holds one */
	foreach(lc, result->index_pairs)
		LockRelationOid(lfirst_oid(lc), AccessExclusiveLock);

	/*
	 * The new heap's statistics, carried to the serving table by the swap.
	 * The rows were inserted frozen through multi-insert, which marks a page
	 * all-visible and all-frozen when it started empty, but not a page that
	 * a later batch of rows went on filling: the counts are read from the
	 * visibility map, as VACUUM does (relallfrozen exists from 18 on).
	 */
	stats.pages = RelationGetNumberOfBlocks(newrel);
	stats.tuples = (float4) result->output_rows;
	visibilitymap_count(newrel, &stats.allvisible, &stats.allfrozen);
	table_close(newrel, NoLock);
	table_close(oldrel, NoLock);

	swap_relations(result->target_relid, result->new_relid, true, &stats);
	for (int i = 0; i < list_length(result->index_pairs); i += 2)
		swap_relations(list_nth_oid(result->index_pairs, i),
					   list_nth_oid(result->index_pairs, i + 1), false, NULL);
	swap_statistics(result->target_relid, result->new_relid);
	CommandCounterIncrement();
}
