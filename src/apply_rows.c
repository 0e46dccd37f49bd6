/*-------------------------------------------------------------------------
 *
 * apply_rows.c
 *	  Mode 'apply' changes the serving table's rows in place: INSERT,
 *	  UPDATE and DELETE through the executor's row routines, those of the
 *	  logical replication apply worker (ExecSimpleRelationInsert/Update/
 *	  Delete), so that indexes are maintained, constraints checked, row
 *	  triggers fired, and the changes WAL-logged and decoded as any DML's.
 *
 * Both ways of finding what changed use these routines: the whole
 * comparison (apply.c) and the one that follows the change (apply_delta.c).
 *
 * A serving row that another transaction has locked, updated or deleted
 * since the refresh's snapshot is locked first, following its update chain
 * (as the executor does in READ COMMITTED), and its latest version is
 * compared and changed: a refresh waits for concurrent DML on the rows it
 * changes, and its result wins.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "apply_rows.h"
#include "compat_executor.h"

struct ApplyChanges
{
	Relation	rel;
	const RowShape *shape;
	Snapshot	snapshot;		/* the refresh's: what it compared */
	EState	   *estate;
	ResultRelInfo *rri;
	EPQState	epqstate;
	TupleTableSlot *oldslot;	/* a serving row, as the snapshot sees it */
	TupleTableSlot *lockslot;	/* its latest version, locked */
	int64		inserted;
	int64		updated;
	int64		deleted;
	ItemPointerData row_tid;	/* changes_row_tid() */
};

/*
 * changes_begin
 *		An executor state for the serving table, as the logical replication
 *		apply worker makes one: a range table of the one relation, its
 *		result relation with its indexes open, AFTER triggers collected.
 */
ApplyChanges *
changes_begin(Relation rel, const RowShape *shape, Snapshot snapshot)
{
	RangeTblEntry *rte = makeNode(RangeTblEntry);
	ApplyChanges *ch = palloc0(sizeof(ApplyChanges));

	ch->rel = rel;
	ch->shape = shape;
	ch->snapshot = snapshot;
	ch->estate = CreateExecutorState();
	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(rel);
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = ShareUpdateExclusiveLock;
	exec_init_one_relation(ch->estate, rte);
	ch->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(ch->rri, rel, 1, NULL, 0);
	ch->estate->es_output_cid = GetCurrentCommandId(true);
	ch->estate->es_snapshot = snapshot;
	ExecOpenIndices(ch->rri, false);
	EvalPlanQualInit(&ch->epqstate, ch->estate, NULL, NIL, -1, NIL);
	ch->oldslot = table_slot_create(rel, &ch->estate->es_tupleTable);
	ch->lockslot = table_slot_create(rel, &ch->estate->es_tupleTable);
	AfterTriggerBeginQuery();
	return ch;
}

/*
 * changes_oldslot
 *		The slot changes_fetch() fetches into (and the caller may fetch a
 *		serving row into before changes_update()).
 */
TupleTableSlot *
changes_oldslot(ApplyChanges *ch)
{
	return ch->oldslot;
}

/*
 * changes_row_tid
 *		Where the row that the last changes_insert() or changes_update()
 *		left is (the new version, or the row as it was when it was already
 *		the new row): the place the next refresh looks first.  A row a
 *		BEFORE trigger kept from being written leaves a place that is not
 *		its row, which only costs that refresh a lookup.
 */
void
changes_row_tid(ApplyChanges *ch, ItemPointer tid)
{
	*tid = ch->row_tid;
}

/*
 * changes_counts
 *		The rows inserted, updated and deleted so far.
 */
void
changes_counts(ApplyChanges *ch, int64 *inserted, int64 *updated,
			   int64 *deleted)
{
	*inserted = ch->inserted;
	*updated = ch->updated;
	*deleted = ch->deleted;
}

/*
 * changes_end
 *		Fire the AFTER row triggers and release the executor state (and
 *		ch; its counts are read before).
 */
void
changes_end(ApplyChanges *ch)
{
	AfterTriggerEndQuery(ch->estate);
	EvalPlanQualEnd(&ch->epqstate);
	ExecCloseIndices(ch->rri);
	ExecResetTupleTable(ch->estate->es_tupleTable, false);
	FreeExecutorState(ch->estate);
	pfree(ch);
}

/*
 * changes_touched
 *		Whether the stored row in slot (a buffer heap slot) carries an xmax:
 *		another transaction locked, updated or deleted it after our snapshot
 *		was taken, or is doing so.
 */
bool
changes_touched(TupleTableSlot *slot)
{
	HeapTuple	tuple = ((BufferHeapTupleTableSlot *) slot)->base.tuple;

	return !(tuple->t_data->t_infomask & HEAP_XMAX_INVALID) &&
		TransactionIdIsValid(HeapTupleHeaderGetRawXmax(tuple->t_data));
}

/*
 * lock_latest
 *		Lock the latest version of the serving row at tid, waiting for the
 *		transactions that hold it, into ch->lockslot.  False when the row has
 *		been deleted meanwhile.
 */
static bool
lock_latest(ApplyChanges *ch, ItemPointer tid)
{
	TM_FailureData tmfd;
	TM_Result	res;
	ItemPointerData latest = *tid;

	res = table_tuple_lock(ch->rel, &latest, GetLatestSnapshot(),
						   ch->lockslot, GetCurrentCommandId(false),
						   LockTupleExclusive, LockWaitBlock,
						   TUPLE_LOCK_FLAG_FIND_LAST_VERSION, &tmfd);
	switch (res)
	{
		case TM_Ok:
			return true;
		case TM_Deleted:
			return false;
		default:
			elog(ERROR, "unexpected result %d locking a row of serving table \"%s\"",
				 (int) res, RelationGetRelationName(ch->rel));
	}
	return false;				/* keep the compiler quiet */
}

/*
 * changes_fetch
 *		Fetch the serving row at tid as the refresh's snapshot sees it into
 *		ch->oldslot.
 */
void
changes_fetch(ApplyChanges *ch, ItemPointer tid)
{
	if (!table_tuple_fetch_row_version(ch->rel, tid, ch->snapshot,
									   ch->oldslot))
		elog(ERROR, "could not fetch a row of serving table \"%s\"",
			 RelationGetRelationName(ch->rel));
}

/*
 * changes_insert
 *		INSERT a new row.
 */
void
changes_insert(ApplyChanges *ch, TupleTableSlot *newslot)
{
	ExecSimpleRelationInsert(ch->rri, ch->estate, newslot);
	ch->row_tid = newslot->tts_tid;
	ch->inserted++;
	ResetPerTupleExprContext(ch->estate);
}

/*
 * changes_update
 *		Make the serving row at tid (fetched into ch->oldslot) the new row:
 *		one UPDATE, unless it already is that row (same).  A row another
 *		transaction touched (touched: it had an xmax when first seen) is
 *		locked first and its latest version used; if it was deleted
 *		meanwhile, the new row is inserted.
 */
void
changes_update(ApplyChanges *ch, ItemPointer tid, bool touched,
			   TupleTableSlot *newslot, bool same)
{
	TupleTableSlot *target = ch->oldslot;

	if (touched || changes_touched(ch->oldslot))
	{
		if (!lock_latest(ch, tid))
		{
			changes_insert(ch, newslot);
			return;
		}
		target = ch->lockslot;
		same = row_same_image(ch->shape, target, newslot);
	}
	if (same)
	{
		ch->row_tid = target->tts_tid;
		return;
	}
	ExecSimpleRelationUpdate(ch->rri, ch->estate, &ch->epqstate, target,
							 newslot);
	ch->row_tid = newslot->tts_tid;
	ch->updated++;
	ResetPerTupleExprContext(ch->estate);
}

/*
 * changes_delete
 *		DELETE the serving row at tid, or its latest version if another
 *		transaction touched it; nothing if that one deleted it already.
 */
void
changes_delete(ApplyChanges *ch, ItemPointer tid, bool touched)
{
	TupleTableSlot *target = ch->oldslot;

	changes_fetch(ch, tid);
	if (touched || changes_touched(ch->oldslot))
	{
		if (!lock_latest(ch, tid))
			return;				/* deleted by someone else already */
		target = ch->lockslot;
	}
	ExecSimpleRelationDelete(ch->rri, ch->estate, &ch->epqstate, target);
	ch->deleted++;
	ResetPerTupleExprContext(ch->estate);
}
