/*-------------------------------------------------------------------------
 *
 * retire.c
 *	  Drop the serving table's old storage after the refresh commits, not
 *	  while its exclusive lock is held.
 *
 * After the swap, the new heap holds the serving table's old storage.
 * Dropping it in the refresh's transaction would truncate and unlink its
 * files at commit, while the serving table is still locked ACCESS
 * EXCLUSIVE: measured on 5M rows with one index, 150 ms of readers stalled
 * behind the commit, most of it in truncate().  So an old heap of 64MB or
 * more (heap, TOAST and indexes; smaller ones are dropped at once, in a few
 * milliseconds) is retired instead: renamed pg_temp_<serving table oid>_retired_<xid>, and a dynamic
 * background worker started now waits for the refresh's transaction to end,
 * then drops it (if the transaction rolled back, the retired heap never
 * existed for anyone else and is gone already).  If no worker can be
 * started, the old heap is dropped in the refresh's transaction, as before.
 * A retired heap left by a crash is dropped by the next refresh of the same
 * target.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/toast_internals.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/tablecmds.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "retire.h"
#include "util.h"

/* what a cleanup worker gets, in bgw_extra */
#define RETIRE_MAX_PER_WORKER ((BGW_EXTRALEN - 3 * sizeof(Oid)) / sizeof(Oid))

typedef struct RetireMessage
{
	Oid			dboid;
	Oid			roleid;
	Oid			nrels;
	Oid			relids[RETIRE_MAX_PER_WORKER];
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
 * rename_rel
 *		Rename a relation (TOAST tables and indexes included) internally.
 */
static void
rename_rel(Oid relid, const char *name, bool is_index)
{
	RenameRelationInternal(relid, name, true, is_index);
	CommandCounterIncrement();
}

/*
 * retire_old_heap
 *		After the swap: rename the heap now holding the serving table's old
 *		storage out of the way, and give the serving table's new TOAST table
 *		and its index their conventional names (pg_toast_<oid>), which the
 *		old TOAST table, still alive, had.
 */
void
retire_old_heap(Oid serving, Oid oldheap)
{
	Relation	rel;
	Oid			newtoast;
	Oid			oldtoast;

	rename_rel(oldheap, psprintf("%s%u", retired_prefix(serving),
								 GetTopTransactionId()), false);

	rel = table_open(serving, NoLock);
	newtoast = rel->rd_rel->reltoastrelid;
	table_close(rel, NoLock);
	rel = table_open(oldheap, NoLock);
	oldtoast = rel->rd_rel->reltoastrelid;
	table_close(rel, NoLock);

	/* swap the two TOAST tables' names through a third one */
	if (OidIsValid(newtoast))
	{
		rename_rel(newtoast, psprintf("pg_toast_%u_new", serving), false);
		rename_rel(toast_get_valid_index(newtoast, AccessExclusiveLock),
				   psprintf("pg_toast_%u_new_index", serving), true);
	}
	if (OidIsValid(oldtoast))
	{
		rename_rel(oldtoast, psprintf("pg_toast_%u", oldheap), false);
		rename_rel(toast_get_valid_index(oldtoast, AccessExclusiveLock),
				   psprintf("pg_toast_%u_index", oldheap), true);
	}
	if (OidIsValid(newtoast))
	{
		rename_rel(newtoast, psprintf("pg_toast_%u", serving), false);
		rename_rel(toast_get_valid_index(newtoast, AccessExclusiveLock),
				   psprintf("pg_toast_%u_index", serving), true);
	}
}

/*
 * retire_name_toast
 *		Once the old TOAST table is dropped: give the serving table's TOAST
 *		table and its index their conventional names.
 */
void
retire_name_toast(Oid serving)
{
	Relation	rel = table_open(serving, NoLock);
	Oid			toast = rel->rd_rel->reltoastrelid;

	table_close(rel, NoLock);
	if (!OidIsValid(toast))
		return;
	rename_rel(toast, psprintf("pg_toast_%u", serving), false);
	rename_rel(toast_get_valid_index(toast, AccessExclusiveLock),
			   psprintf("pg_toast_%u_index", serving), true);
}

/*
 * drop_heap
 *		Drop a retired heap (with its TOAST table and index copies) if it
 *		still exists and nobody else is dropping it.
 */
static void
drop_heap(Oid relid)
{
	ObjectAddress object;

	if (!ConditionalLockRelationOid(relid, AccessExclusiveLock))
		return;
	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
	{
		UnlockRelationOid(relid, AccessExclusiveLock);
		return;
	}
	object.classId = RelationRelationId;
	object.objectId = relid;
	object.objectSubId = 0;
	performDeletion(&object, DROP_RESTRICT, PERFORM_DELETION_INTERNAL);
	CommandCounterIncrement();
}

/*
 * retire_drop_leftovers
 *		Drop the retired heaps of a serving table that a crash left behind.
 *		Called by a refresh holding the target's refresh lock.
 */
void
retire_drop_leftovers(Oid serving)
{
	Oid			argtypes[2] = {OIDOID, TEXTOID};
	Datum		values[2];
	MemoryContext outer = CurrentMemoryContext;
	List	   *relids = NIL;
	ListCell   *lc;

	values[0] = ObjectIdGetDatum(get_rel_namespace(serving));
	values[1] = CStringGetTextDatum(retired_prefix(serving));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT oid FROM pg_catalog.pg_class"
							  " WHERE relnamespace OPERATOR(pg_catalog.=) $1"
							  " AND pg_catalog.starts_with(relname::pg_catalog.text, $2)",
							  2, argtypes, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not look for retired heaps");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Oid			relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
														   SPI_tuptable->tupdesc,
														   1, &isnull));
		MemoryContext spicxt = MemoryContextSwitchTo(outer);

		relids = lappend_oid(relids, relid);
		MemoryContextSwitchTo(spicxt);
	}
	SPI_finish();
	foreach(lc, relids)
		drop_heap(lfirst_oid(lc));
}

/*
 * retire_launch_cleanup
 *		Start the workers that drop these retired heaps once this
 *		transaction is over; drop them now those that no worker can take.
 */
void
retire_launch_cleanup(List *relids)
{
	int			n = list_length(relids);
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
			msg.relids[i] = list_nth_oid(relids, done + i);

		if (!sl_start_worker("serving_layer_cleanup_worker",
							 "serving_layer cleanup",
							 TransactionIdGetDatum(GetTopTransactionId()),
							 &msg, sizeof(msg), &handle))
		{
			/* no worker: drop them here, at the cost of a longer lock */
			for (int i = 0; i < batch; i++)
				drop_heap(msg.relids[i]);
		}
		done += batch;
	}
}

/*
 * serving_layer_cleanup_worker
 *		Background worker: wait for the refresh's transaction (main_arg) to
 *		end, then drop the retired heaps it names, if they exist.
 */
void
serving_layer_cleanup_worker(Datum main_arg)
{
	TransactionId xid = DatumGetTransactionId(main_arg);
	RetireMessage msg;

	memcpy(&msg, MyBgworkerEntry->bgw_extra, sizeof(msg));
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(msg.dboid, msg.roleid, 0);
	pgstat_report_activity(STATE_RUNNING, "waiting for a refresh to end");

	StartTransactionCommand();
	XactLockTableWait(xid, NULL, NULL, XLTW_None);
	CommitTransactionCommand();

	pgstat_report_activity(STATE_RUNNING, "dropping the old storage of a serving table");
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	for (Oid i = 0; i < msg.nrels; i++)
		drop_heap(msg.relids[i]);
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	proc_exit(0);
}
