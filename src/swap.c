/*-------------------------------------------------------------------------
 *
 * swap.c
 *	  Switch the new contents in: take the serving table's ACCESS EXCLUSIVE
 *	  lock with bounded waits, then exchange the storage (relfilenodes) of
 *	  the serving table and the new heap and of each index pair, and hand
 *	  the new heap's TOAST table to the serving table.
 *
 * Why not SQL: no SQL command swaps two relations' storage while keeping
 * the OIDs, and the only core function that does (finish_heap_swap, used by
 * CLUSTER and REFRESH MATERIALIZED VIEW) rebuilds every index while holding
 * the exclusive lock, which takes time proportional to the table.  Here the
 * indexes were built beforehand on the new heap (build.c), so the swap only
 * rewrites a few pg_class rows: the serving table keeps its OID, owner,
 * grants, comments, indexes, constraints and dependent views, and the
 * exclusive lock is held for a time that does not depend on its size.  This
 * is the technique of pg_repack and of core's swap_relation_files(), done
 * for a relation and its index pairs.
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
#include "access/relation.h"
#include "access/table.h"
#include "access/toast_internals.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/pg_depend.h"
#include "catalog/indexing.h"
#include "catalog/pg_class.h"
#include "catalog/pg_statistic.h"
#include "utils/fmgroids.h"
#include "commands/tablecmds.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/predicate.h"
#include "utils/guc.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/resowner.h"
#include "utils/syscache.h"

#include "build.h"
#include "compat.h"
#include "retire.h"
#include "settings.h"
#include "swap.h"
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
 */
void
swap_lock_serving_tables(List *relids, List *names, List *displays)
{
	instr_time	start;
	int			attempts = 0;
	long		backoff = 10;
	ListCell   *lc;

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
	if (sl_verbose)
		foreach(lc, displays)
			ereport(INFO,
					(errmsg("refresh of %s: lock: attempts %d, %.1f ms",
							(char *) lfirst(lc), attempts, sl_elapsed_ms(start))));
}

/*
 * class_pair
 *		Modifiable copies of the pg_class rows of two relations; returns the
 *		first one's form.
 */
static Form_pg_class
class_pair(Oid r1, Oid r2, HeapTuple *tup1, HeapTuple *tup2)
{
	*tup1 = SearchSysCacheCopy1(RELOID, ObjectIdGetDatum(r1));
	*tup2 = SearchSysCacheCopy1(RELOID, ObjectIdGetDatum(r2));
	if (!HeapTupleIsValid(*tup1) || !HeapTupleIsValid(*tup2))
		elog(ERROR, "cache lookup failed for relation %u or %u", r1, r2);
	return (Form_pg_class) GETSTRUCT(*tup1);
}

/*
 * swap_pair
 *		Exchange the storage of two relations of the same kind by swapping
 *		their pg_class storage fields, with their size statistics.
 *
 * This follows the non-mapped, swap-TOAST-by-link path of core's
 * swap_relation_files() (commands/cluster.c), checked against 15, 17 and
 * 18: relfilenode and reltablespace are exchanged (relam and
 * relpersistence too in core, equal here by the check below); relpages,
 * reltuples, relallvisible and, from 18, relallfrozen are exchanged as
 * fresh statistics; relfrozenxid and relminmxid are exchanged where core
 * sets the new heap's cutoffs (the new heap's rows are all frozen).  The
 * relation cache is told which storage is new (rd_*Subid, renamed in 16),
 * and up to 16 both smgr links are closed (17 dropped that step).  TOAST
 * links are exchanged by swap_toast_links().  compat.h maps the fields
 * and calls that differ.
 */
static void
swap_pair(Relation pg_class, Oid r1, Oid r2)
{
	HeapTuple	tup1;
	HeapTuple	tup2;
	Form_pg_class f1 = class_pair(r1, r2, &tup1, &tup2);
	Form_pg_class f2 = (Form_pg_class) GETSTRUCT(tup2);
	Relation	rel1;
	Relation	rel2;

	if (f1->relkind != f2->relkind || f1->relam != f2->relam ||
		f1->relpersistence != f2->relpersistence)
		elog(ERROR, "cannot swap storage of relations %u and %u of different kinds",
			 r1, r2);

#define SWAP_FIELD(type, field) \
	do { type tmp = f1->field; f1->field = f2->field; f2->field = tmp; } while (0)
	SWAP_FIELD(Oid, relfilenode);
	SWAP_FIELD(Oid, reltablespace);
	SWAP_FIELD(int32, relpages);
	SWAP_FIELD(float4, reltuples);
	SWAP_FIELD(int32, relallvisible);
	SWAP_FIELD(TransactionId, relfrozenxid);
	SWAP_FIELD(MultiXactId, relminmxid);
#undef SWAP_FIELD
	class_swap_allfrozen(f1, f2);

	CatalogTupleUpdate(pg_class, &tup1->t_self, tup1);
	CatalogTupleUpdate(pg_class, &tup2->t_self, tup2);

	/*
	 * r1's storage is now new in this transaction and r2's is not; tell the
	 * relation cache, as core's swap_relation_files() does, so that
	 * wal_level=minimal skips and syncs the right files.
	 */
	rel1 = relation_open(r1, NoLock);
	rel2 = relation_open(r2, NoLock);
	rel2->rd_createSubid = rel1->rd_createSubid;
	rel2->rd_newRelfilelocatorSubid = rel1->rd_newRelfilelocatorSubid;
	rel2->rd_firstRelfilelocatorSubid = rel1->rd_firstRelfilelocatorSubid;
	RelationAssumeNewRelfilelocator(rel1);
	relation_close(rel1, NoLock);
	relation_close(rel2, NoLock);

	/* both smgr links are stale now; see swap_relation_files() */
	relation_forget_smgr(r1);
	relation_forget_smgr(r2);

	heap_freetuple(tup1);
	heap_freetuple(tup2);
}

/*
 * set_heap_stats
 *		Give the new heap the size statistics of its contents before the
 *		swap carries them to the serving table.  The rows were inserted
 *		frozen through multi-insert, which marks the pages all-visible and
 *		all-frozen (relallfrozen exists from 18 on).
 */
static void
set_heap_stats(Relation pg_class, Oid relid, BlockNumber pages, int64 tuples)
{
	HeapTuple	tup = SearchSysCacheCopy1(RELOID, ObjectIdGetDatum(relid));
	Form_pg_class form;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	form = (Form_pg_class) GETSTRUCT(tup);
	form->relpages = (int32) pages;
	form->reltuples = (float4) tuples;
	form->relallvisible = (int32) pages;
	class_set_allfrozen(form, (int32) pages);
	CatalogTupleUpdate(pg_class, &tup->t_self, tup);
	heap_freetuple(tup);
	CommandCounterIncrement();
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
 * relink_toast
 *		Make a TOAST table (if any) depend on a new heap: a TOAST table's
 *		only dependency is the INTERNAL one on its heap.
 */
static void
relink_toast(Oid heapid, Oid toastid)
{
	ObjectAddress heap;
	ObjectAddress toast;

	if (!OidIsValid(toastid))
		return;
	if (deleteDependencyRecordsFor(RelationRelationId, toastid, false) != 1)
		elog(ERROR, "expected one dependency record for TOAST table %u",
			 toastid);
	heap.classId = toast.classId = RelationRelationId;
	heap.objectSubId = toast.objectSubId = 0;
	heap.objectId = heapid;
	toast.objectId = toastid;
	recordDependencyOn(&toast, &heap, DEPENDENCY_INTERNAL);
}

/*
 * swap_toast_links
 *		Exchange the TOAST tables of two heaps by link: pg_class.reltoastrelid
 *		and the TOAST tables' INTERNAL dependencies on their heaps.
 *
 * The new heap's rows point at the new heap's TOAST table (by its OID), so
 * that table goes with them, as core's swap_relation_files() does when it
 * does not swap TOAST by content.  Either heap may have no TOAST table.
 */
static void
swap_toast_links(Relation pg_class, Oid r1, Oid r2)
{
	HeapTuple	tup1;
	HeapTuple	tup2;
	Form_pg_class f1 = class_pair(r1, r2, &tup1, &tup2);
	Form_pg_class f2 = (Form_pg_class) GETSTRUCT(tup2);
	Oid			toast1;

	toast1 = f1->reltoastrelid;
	f1->reltoastrelid = f2->reltoastrelid;
	f2->reltoastrelid = toast1;
	CatalogTupleUpdate(pg_class, &tup1->t_self, tup1);
	CatalogTupleUpdate(pg_class, &tup2->t_self, tup2);

	relink_toast(r1, f1->reltoastrelid);
	relink_toast(r2, f2->reltoastrelid);
	heap_freetuple(tup1);
	heap_freetuple(tup2);
}

/*
 * relation_total_blocks
 *		Blocks of a heap's main fork, its TOAST table's and its indexes'.
 */
static BlockNumber
relation_total_blocks(Relation rel)
{
	BlockNumber total = RelationGetNumberOfBlocks(rel);
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;

	if (OidIsValid(rel->rd_rel->reltoastrelid))
	{
		Relation	toast = table_open(rel->rd_rel->reltoastrelid, AccessShareLock);

		total += relation_total_blocks(toast);
		table_close(toast, AccessShareLock);
	}
	foreach(lc, indexes)
	{
		Relation	idx = index_open(lfirst_oid(lc), AccessShareLock);

		total += RelationGetNumberOfBlocks(idx);
		index_close(idx, AccessShareLock);
	}
	return total;
}

/*
 * swap_storage
 *		With the serving table locked ACCESS EXCLUSIVE, move the new heap's
 *		storage (and its TOAST table and indexes) under the serving table,
 *		and retire the new heap, which now owns the old storage.
 */
void
swap_storage(BuildResult *result)
{
	Relation	oldrel = table_open(result->target_relid, NoLock);
	Relation	newrel = table_open(result->new_relid, NoLock);
	Relation	pg_class;
	BlockNumber pages = RelationGetNumberOfBlocks(newrel);
	BlockNumber oldpages = relation_total_blocks(oldrel);
	ListCell   *lc;

	/* no open cursor of ours may be reading the old storage */
	CheckTableNotInUse(oldrel, "serving_layer_refresh()");
	/* serializable readers of the old contents keep their conflicts */
	TransferPredicateLocksToHeapRelation(oldrel);

	/* the index locks follow the table lock at once: nobody else holds one */
	foreach(lc, result->index_pairs)
		LockRelationOid(lfirst_oid(lc), AccessExclusiveLock);

	table_close(newrel, NoLock);
	table_close(oldrel, NoLock);

	pg_class = table_open(RelationRelationId, RowExclusiveLock);
	set_heap_stats(pg_class, result->new_relid, pages, result->output_rows);

	swap_pair(pg_class, result->target_relid, result->new_relid);
	CommandCounterIncrement();
	swap_toast_links(pg_class, result->target_relid, result->new_relid);
	for (int i = 0; i < list_length(result->index_pairs); i += 2)
		swap_pair(pg_class, list_nth_oid(result->index_pairs, i),
				  list_nth_oid(result->index_pairs, i + 1));
	table_close(pg_class, RowExclusiveLock);
	CommandCounterIncrement();
	swap_statistics(result->target_relid, result->new_relid);
	CommandCounterIncrement();

	/*
	 * The new heap, its TOAST table and its indexes now hold the old rows.
	 * Dropping them truncates their files at commit, under the exclusive
	 * lock: cheap for small tables, so they are dropped now; large ones are
	 * dropped once this transaction is over (retire.c).
	 */
	result->retired = (Size) oldpages * BLCKSZ >= RETIRE_MIN_BYTES;
	if (result->retired)
		retire_old_heap(result->target_relid, result->new_relid);
	else
	{
		ObjectAddress object;

		object.classId = RelationRelationId;
		object.objectId = result->new_relid;
		object.objectSubId = 0;
		performDeletion(&object, DROP_RESTRICT, PERFORM_DELETION_INTERNAL);
		CommandCounterIncrement();
		retire_name_toast(result->target_relid);
	}
}
