/*-------------------------------------------------------------------------
 *
 * retire.c
 *	  After the swap, get rid of the serving table's old storage (which the
 *	  new heap now holds): at once when it is small, else after the
 *	  refresh's transaction is over, not while its exclusive lock is held.
 *
 * Dropping the old heap in the refresh's transaction truncates and unlinks
 * its files at commit, while the serving table is still locked ACCESS
 * EXCLUSIVE: measured on 5M rows with one index, 150 ms of readers stalled
 * behind the commit, most of it in truncate().  So an old heap of 64MB or
 * more (heap, TOAST and indexes; smaller ones are dropped at once, in a few
 * milliseconds) is retired instead: renamed
 * pg_temp_<serving table oid>_retired_<xid>, given an AUTO dependency on the
 * serving table (which marks it as ours, and drops it with the serving
 * table), and a dynamic background worker started now waits for the
 * refresh's transaction to end, then drops it (if the transaction rolled
 * back, the retired heap never existed for anyone else and is gone
 * already).  If no worker can be started, the old heap is dropped in the
 * refresh's transaction.  A retired heap left by a crash is found by the
 * next refresh of the same target and handed to its worker.
 *
 * Only relations this file retired are ever dropped: the name alone could
 * be any user's table, so a relation is taken for retired only with the
 * name, the relkind and the AUTO dependency on its serving table.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_depend.h"
#include "commands/tablecmds.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/bufmgr.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "retire.h"
#include "swap_files.h"
#include "util.h"

/* what a cleanup worker gets, in bgw_extra: (serving, retired) pairs */
#define RETIRE_MAX_PER_WORKER \
	((BGW_EXTRALEN - 3 * sizeof(Oid)) / (2 * sizeof(Oid)))

typedef struct RetireMessage
{
	Oid			dboid;
	Oid			roleid;
	Oid			nrels;
	Oid			pairs[RETIRE_MAX_PER_WORKER][2];
} RetireMessage;

StaticAssertDecl(sizeof(RetireMessage) <= BGW_EXTRALEN,
				 "RetireMessage must fit in bgw_extra");

PGDLLEXPORT void serving_layer_cleanup_worker(Datum main_arg);

/*
 * retired_prefix
 *		The name prefix of the retired heaps of a serving table.
 */
static char *
retired_prefix(Oid serving)
{
	return psprintf("pg_temp_%u_retired_", serving);
}

/*
 * auto_dependents
 *		The relations that have an AUTO dependency on the serving table as a
 *		whole: retire_storage() gives one to each heap it retires.
 */
static List *
auto_dependents(Oid serving)
{
	Relation	pg_depend = table_open(DependRelationId, AccessShareLock);
	ScanKeyData key[3];
	SysScanDesc scan;
	HeapTuple	tup;
	List	   *found = NIL;

	ScanKeyInit(&key[0], Anum_pg_depend_refclassid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(RelationRelationId));
	ScanKeyInit(&key[1], Anum_pg_depend_refobjid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(serving));
	ScanKeyInit(&key[2], Anum_pg_depend_refobjsubid, BTEqualStrategyNumber,
				F_INT4EQ, Int32GetDatum(0));
	scan = systable_beginscan(pg_depend, DependReferenceIndexId, true, NULL,
							  3, key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_depend dep = (Form_pg_depend) GETSTRUCT(tup);

		if (dep->classid == RelationRelationId && dep->objsubid == 0 &&
			dep->deptype == DEPENDENCY_AUTO)
			found = lappend_oid(found, dep->objid);
	}
	systable_endscan(scan);
	table_close(pg_depend, AccessShareLock);
	return found;
}

/*
 * has_retired_name
 *		Whether relid is a table named like the retired heaps of serving.
 */
static bool
has_retired_name(Oid relid, Oid serving)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	char	   *prefix = retired_prefix(serving);
	bool		named;

	if (!HeapTupleIsValid(tup))
		return false;
	named = ((Form_pg_class) GETSTRUCT(tup))->relkind == RELKIND_RELATION &&
		strncmp(NameStr(((Form_pg_class) GETSTRUCT(tup))->relname), prefix,
				strlen(prefix)) == 0;
	ReleaseSysCache(tup);
	return named;
}

/*
 * is_retired_heap
 *		Whether relid is a heap retire_storage() retired for serving: its
 *		name, its relkind and its AUTO dependency on serving.
 */
static bool
is_retired_heap(Oid relid, Oid serving)
{
	return has_retired_name(relid, serving) &&
		list_member_oid(auto_dependents(serving), relid);
}

/*
 * drop_relation
 *		Drop a relation with what depends on it internally (its TOAST
 *		table, its indexes).
 */
static void
drop_relation(Oid relid)
{
	ObjectAddress object;

	object.classId = RelationRelationId;
	object.objectId = relid;
	object.objectSubId = 0;
	performDeletion(&object, DROP_RESTRICT, PERFORM_DELETION_INTERNAL);
	CommandCounterIncrement();
}

/*
 * drop_retired
 *		Drop a retired heap if it still is one.  With wait, wait for the
 *		lock on it; else leave it if anyone holds one.
 *
 * The refresh's backend never waits here: it holds the serving table's
 * exclusive lock.  The cleanup worker must wait, not give up: it wakes
 * when the refresh's transaction lock is released, but a committing
 * backend releases its locks one lock partition after the other, waking
 * the waiters of each as it goes, so the worker can find the refresh still
 * holding the retired heap's lock for a moment (all the more on a loaded
 * machine, where the committing backend is preempted); autovacuum or a
 * reader (pg_relation_size()) can hold one too.  A worker that gave up
 * left the heap until the next refresh of the target, which may never
 * come.  The worker holds no other lock while it waits (one transaction a
 * heap), so it cannot deadlock, and autovacuum gives way to its request.
 */
static void
drop_retired(Oid serving, Oid relid, bool wait)
{
	if (wait)
		LockRelationOid(relid, AccessExclusiveLock);
	else if (!ConditionalLockRelationOid(relid, AccessExclusiveLock))
		return;
	if (!is_retired_heap(relid, serving))
	{
		UnlockRelationOid(relid, AccessExclusiveLock);
		return;
	}
	drop_relation(relid);
}

/*
 * storage_blocks
 *		Blocks of a heap's main fork, its TOAST table's and its indexes'.
 */
static BlockNumber
storage_blocks(Relation rel)
{
	BlockNumber total = RelationGetNumberOfBlocks(rel);
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;

	if (OidIsValid(rel->rd_rel->reltoastrelid))
	{
		Relation	toast = table_open(rel->rd_rel->reltoastrelid, AccessShareLock);

		total += storage_blocks(toast);
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
 * add_leftovers
 *		Append to *deferred the retired heaps of serving that earlier
 *		refreshes left behind (their worker never ran: a crash, a
 *		terminated worker).
 */
static void
add_leftovers(Oid serving, List **deferred)
{
	ListCell   *lc;

	foreach(lc, auto_dependents(serving))
		if (has_retired_name(lfirst_oid(lc), serving))
		{
			*deferred = lappend_oid(*deferred, serving);
			*deferred = lappend_oid(*deferred, lfirst_oid(lc));
		}
}

/*
 * retire_storage
 *		After the swap: drop oldheap, which now holds the serving table's old
 *		storage, at once when it is small; else rename it out of the way,
 *		mark it retired and append (serving, oldheap) to *deferred, for
 *		retire_launch_cleanup().  Retired heaps of serving left by earlier
 *		refreshes are appended too.  Either way the serving table's TOAST
 *		table ends up named after it.
 */
void
retire_storage(Oid serving, Oid oldheap, List **deferred)
{
	Relation	rel = table_open(oldheap, NoLock);
	Size		bytes = (Size) storage_blocks(rel) * BLCKSZ;
	ObjectAddress retired;
	ObjectAddress target;

	table_close(rel, NoLock);
	add_leftovers(serving, deferred);
	if (bytes < RETIRE_MIN_BYTES)
	{
		drop_relation(oldheap);
		swap_toast_names(serving, InvalidOid);
		return;
	}

	RenameRelationInternal(oldheap, psprintf("%s%u", retired_prefix(serving),
											 GetTopTransactionId()),
						   true, false);
	retired.classId = target.classId = RelationRelationId;
	retired.objectSubId = target.objectSubId = 0;
	retired.objectId = oldheap;
	target.objectId = serving;
	recordDependencyOn(&retired, &target, DEPENDENCY_AUTO);
	CommandCounterIncrement();
	swap_toast_names(serving, oldheap);
	*deferred = lappend_oid(*deferred, serving);
	*deferred = lappend_oid(*deferred, oldheap);
}

/*
 * retire_launch_cleanup
 *		Start the workers that drop the retired heaps of deferred (a flat
 *		list of serving, retired pairs) once this transaction is over; drop
 *		now those that no worker can take.
 */
void
retire_launch_cleanup(List *deferred)
{
	int			n = list_length(deferred) / 2;
	int			done = 0;

	while (done < n)
	{
		BackgroundWorkerHandle *handle;
		RetireMessage msg;
		int			batch = Min(n - done, (int) RETIRE_MAX_PER_WORKER);

		memset(&msg, 0, sizeof(msg));
		msg.dboid = MyDatabaseId;
		/* the bootstrap superuser can always log in, as autovacuum does */
		msg.roleid = BOOTSTRAP_SUPERUSERID;
		msg.nrels = batch;
		for (int i = 0; i < batch; i++)
		{
			msg.pairs[i][0] = list_nth_oid(deferred, 2 * (done + i));
			msg.pairs[i][1] = list_nth_oid(deferred, 2 * (done + i) + 1);
		}

		if (!sl_start_worker("serving_layer_cleanup_worker",
							 "serving_layer cleanup",
							 TransactionIdGetDatum(GetTopTransactionId()),
							 &msg, sizeof(msg), &handle))
		{
			/* no worker: drop them here, at the cost of a longer lock */
			for (int i = 0; i < batch; i++)
				drop_retired(msg.pairs[i][0], msg.pairs[i][1], false);
		}
		done += batch;
	}
}

/*
 * serving_layer_cleanup_worker
 *		Background worker: wait for the refresh's transaction (main_arg) to
 *		end, then drop the retired heaps it names, if they still are, each
 *		in a transaction of its own.
 *
 * A worker terminated (pg_terminate_backend, shutdown) while it waits or
 * drops leaves what it has not dropped yet to the next refresh of the
 * target; terminated in a COMMIT, it finishes the COMMIT first (see
 * sl_worker_unblock_signals()).
 */
void
serving_layer_cleanup_worker(Datum main_arg)
{
	TransactionId xid = DatumGetTransactionId(main_arg);
	RetireMessage msg;

	memcpy(&msg, MyBgworkerEntry->bgw_extra, sizeof(msg));
	sl_worker_unblock_signals();
	BackgroundWorkerInitializeConnectionByOid(msg.dboid, msg.roleid, 0);
	pgstat_report_activity(STATE_RUNNING, "waiting for a refresh to end");

	StartTransactionCommand();
	XactLockTableWait(xid, NULL, NULL, XLTW_None);
	CommitTransactionCommand();

	pgstat_report_activity(STATE_RUNNING, "dropping the old storage of a serving table");
	for (Oid i = 0; i < msg.nrels; i++)
	{
		CHECK_FOR_INTERRUPTS();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		drop_retired(msg.pairs[i][0], msg.pairs[i][1], true);
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	pgstat_report_activity(STATE_IDLE, NULL);
	proc_exit(0);
}
