/*-------------------------------------------------------------------------
 *
 * apply.c
 *	  Refresh mode 'apply': compute the new contents with the same merge as
 *	  a swap, compare them with the serving table's rows, and apply only the
 *	  differences in place, as ordinary row changes.
 *
 * A swap exchanges storage under an ACCESS EXCLUSIVE lock; that lock is
 * WAL-logged and replayed on hot standbys, where it waits for long queries
 * and stalls every reader behind it, and the swap emits no row changes, so
 * logical replication subscribers and row triggers never see it.  Here the
 * serving table keeps the SHARE UPDATE EXCLUSIVE lock the build takes (no
 * reader or writer waits, nothing is replayed on standbys), and every
 * difference goes through the executor's row routines, those of the
 * logical replication apply worker (ExecSimpleRelationInsert/Update/
 * Delete): indexes are maintained, constraints checked, row triggers fire,
 * and the changes are WAL-logged and decoded as any DML's.  Readers see the
 * old or the new contents, never a mix: the changes become visible together
 * at commit.
 *
 * The comparison, in three steps:
 *	  1. the serving table is scanned once; for each row a hash of its key
 *		 (the key types' hash functions, as GROUP BY groups) and a hash of
 *		 its stored image (as datum_image_eq compares) are kept with its
 *		 TID, 24 bytes a row;
 *	  2. the merge (build.c: in C or by GROUP BY, the rows a swap would
 *		 write) hands each new row here instead of to a new heap; a row
 *		 whose key hash and image hash match a serving row's is unchanged;
 *		 a row whose key equals a serving row's (checked on the stored row)
 *		 but whose image differs is one UPDATE of that row; any other is an
 *		 INSERT;
 *	  3. the serving rows no new row matched are DELETEd (keys gone from
 *		 both layers, or duplicates made by users' DML).
 * Two different rows taken for equal need their 64-bit key hashes and
 * their 64-bit image hashes to collide at once (apply_compare.c hashes and
 * compares rows).  What is written follows
 * what changed; what is read is the layers and the serving table once.
 *
 * A serving row that another transaction has locked, updated or deleted is
 * locked first, following its update chain (as the executor does in READ
 * COMMITTED), and the latest version is compared and changed: a refresh
 * waits for concurrent DML on the rows it changes, and its result wins.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/typcache.h"

#include "apply.h"
#include "apply_compare.h"
#include "build.h"
#include "compat_executor.h"
#include "heap_writer.h"
#include "util.h"

/* One serving row, as step 1 saw it. */
typedef struct ServingRow
{
	uint64		keyhash;
	uint64		imagehash;
	ItemPointerData tid;
	bool		matched;		/* a new row matched it (step 2) */
	bool		touched;		/* it had an xmax when scanned */
} ServingRow;

typedef struct ApplyState
{
	Relation	rel;
	RowShape	shape;			/* how its rows are hashed and compared */

	/* step 1: the serving rows, and an open-addressing index on keyhash */
	ServingRow *rows;
	uint64		nrows;
	uint64		maxrows;
	uint32	   *slots;			/* row number + 1, 0 empty */
	uint64		mask;
	uint64		next;			/* the row after the last one matched */

	/* applying the changes */
	Snapshot	snapshot;
	EState	   *estate;
	ResultRelInfo *rri;
	EPQState	epqstate;
	TupleTableSlot *oldslot;	/* a serving row fetched by TID */
	TupleTableSlot *lockslot;	/* its latest version, locked */
	MemoryContext rowcxt;
	int64		inserted;
	int64		updated;
	int64		deleted;
} ApplyState;

/*
 * scan_serving
 *		Step 1: remember every serving row's hashes and TID, then index them
 *		by key hash.
 */
static void
scan_serving(ApplyState *st)
{
	TableScanDesc scan = table_beginscan(st->rel, st->snapshot, 0, NULL);
	TupleTableSlot *slot = MakeSingleTupleTableSlot(RelationGetDescr(st->rel),
													&TTSOpsHeapTuple);
	HeapTuple	tuple;
	uint64		nslots = 1024;

	st->maxrows = 1024;
	st->rows = palloc_extended(sizeof(ServingRow) * st->maxrows, MCXT_ALLOC_HUGE);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		ServingRow *r;
		MemoryContext oldcxt;

		CHECK_FOR_INTERRUPTS();
		if (st->nrows == st->maxrows)
		{
			st->maxrows *= 2;
			st->rows = repalloc_huge(st->rows, sizeof(ServingRow) * st->maxrows);
		}
		ExecStoreHeapTuple(tuple, slot, false);
		slot_getallattrs(slot);
		oldcxt = MemoryContextSwitchTo(st->rowcxt);
		r = &st->rows[st->nrows++];
		r->keyhash = row_key_hash(&st->shape, slot->tts_values, slot->tts_isnull);
		r->imagehash = row_image_hash(&st->shape, slot->tts_values, slot->tts_isnull);
		r->tid = tuple->t_self;
		r->matched = false;
		r->touched = !(tuple->t_data->t_infomask & HEAP_XMAX_INVALID) &&
			TransactionIdIsValid(HeapTupleHeaderGetRawXmax(tuple->t_data));
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(st->rowcxt);
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);

	if (st->nrows >= (uint64) PG_UINT32_MAX / 2)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("serving table \"%s\" has too many rows for mode 'apply'",
						RelationGetRelationName(st->rel))));
	while (nslots < st->nrows * 2)
		nslots *= 2;
	st->mask = nslots - 1;
	st->slots = palloc_extended(sizeof(uint32) * nslots,
								MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	for (uint64 n = 0; n < st->nrows; n++)
	{
		uint64		i = st->rows[n].keyhash & st->mask;

		while (st->slots[i] != 0)
			i = (i + 1) & st->mask;
		st->slots[i] = (uint32) (n + 1);
	}
}

/*
 * lock_latest
 *		Lock the latest version of the serving row at tid, waiting for the
 *		transactions that hold it, into st->lockslot.  False when the row has
 *		been deleted meanwhile.
 */
static bool
lock_latest(ApplyState *st, ItemPointer tid)
{
	TM_FailureData tmfd;
	TM_Result	res;
	ItemPointerData latest = *tid;

	res = table_tuple_lock(st->rel, &latest, GetLatestSnapshot(),
						   st->lockslot, GetCurrentCommandId(false),
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
				 (int) res, RelationGetRelationName(st->rel));
	}
	return false;				/* keep the compiler quiet */
}

/*
 * touched_by_others
 *		Whether the stored row in slot (fetched by TID) carries an xmax:
 *		another transaction locked, updated or deleted it after our snapshot
 *		was taken, or is doing so.
 */
static bool
touched_by_others(TupleTableSlot *slot)
{
	HeapTuple	tuple = ((BufferHeapTupleTableSlot *) slot)->base.tuple;

	return !(tuple->t_data->t_infomask & HEAP_XMAX_INVALID) &&
		TransactionIdIsValid(HeapTupleHeaderGetRawXmax(tuple->t_data));
}

/*
 * apply_insert
 *		INSERT a new row through the executor.
 */
static void
apply_insert(ApplyState *st, TupleTableSlot *slot)
{
	ExecSimpleRelationInsert(st->rri, st->estate, slot);
	st->inserted++;
}

/*
 * apply_update
 *		Make the serving row r (fetched by TID into st->oldslot) the new row:
 *		one UPDATE, unless it already is that row.  A row another
 *		transaction touched is locked first and its latest version used; if
 *		it was deleted meanwhile, the new row is inserted.
 */
static void
apply_update(ApplyState *st, ServingRow *r, TupleTableSlot *newslot,
			 bool same)
{
	TupleTableSlot *target = st->oldslot;

	if (r->touched || touched_by_others(st->oldslot))
	{
		if (!lock_latest(st, &r->tid))
		{
			apply_insert(st, newslot);
			return;
		}
		target = st->lockslot;
		same = row_same_image(&st->shape, target, newslot);
	}
	if (same)
		return;
	ExecSimpleRelationUpdate(st->rri, st->estate, &st->epqstate, target,
							 newslot);
	st->updated++;
}

/*
 * fetch_serving_row
 *		Fetch the serving row r as our snapshot sees it into st->oldslot.
 */
static void
fetch_serving_row(ApplyState *st, ServingRow *r)
{
	if (!table_tuple_fetch_row_version(st->rel, &r->tid, st->snapshot,
									   st->oldslot))
		elog(ERROR, "could not fetch a row of serving table \"%s\"",
			 RelationGetRelationName(st->rel));
}

/*
 * match_row
 *		Whether serving row r is the one of the new row in slot (key hash kh,
 *		image hash ih); if it is, make it the new row.
 */
static bool
match_row(ApplyState *st, ServingRow *r, TupleTableSlot *slot, uint64 kh,
		  uint64 ih)
{
	if (r->keyhash != kh || r->matched)
		return false;
	if (r->imagehash == ih)
	{
		/* the same row, unless someone else is changing it */
		r->matched = true;
		if (r->touched)
		{
			fetch_serving_row(st, r);
			apply_update(st, r, slot, true);
		}
		return true;
	}
	fetch_serving_row(st, r);
	if (!row_same_key(&st->shape, st->oldslot, slot))
		return false;
	r->matched = true;
	apply_update(st, r, slot, false);
	return true;
}

/*
 * apply_row
 *		Step 2, for one new row of the merge (a slot of the serving table's
 *		type): unchanged, one UPDATE, or one INSERT.
 *
 * The merge mostly produces the rows in the order the serving table stores
 * them (a swap wrote them in that order; an apply moves only the rows it
 * changes), so the row after the last one matched is tried first: it is
 * next in memory, where the index lookup costs a cache miss per row (a
 * third of a refresh's time on 1M rows).
 */
static void
apply_row(TupleTableSlot *slot, void *arg)
{
	ApplyState *st = arg;
	MemoryContext oldcxt = MemoryContextSwitchTo(st->rowcxt);
	uint64		kh;
	uint64		ih;
	uint64		i;
	bool		found = false;

	slot_getallattrs(slot);
	kh = row_key_hash(&st->shape, slot->tts_values, slot->tts_isnull);
	ih = row_image_hash(&st->shape, slot->tts_values, slot->tts_isnull);
	if (st->next < st->nrows &&
		match_row(st, &st->rows[st->next], slot, kh, ih))
	{
		st->next++;
		found = true;
	}
	for (i = kh & st->mask; !found && st->slots[i] != 0; i = (i + 1) & st->mask)
	{
		if (match_row(st, &st->rows[st->slots[i] - 1], slot, kh, ih))
		{
			st->next = st->slots[i];
			found = true;
		}
	}
	if (!found)
		apply_insert(st, slot);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(st->rowcxt);
	ResetPerTupleExprContext(st->estate);
}

/*
 * delete_unmatched
 *		Step 3: DELETE the serving rows no new row matched.
 */
static void
delete_unmatched(ApplyState *st)
{
	for (uint64 n = 0; n < st->nrows; n++)
	{
		ServingRow *r = &st->rows[n];
		TupleTableSlot *target = st->oldslot;

		if (r->matched)
			continue;
		CHECK_FOR_INTERRUPTS();
		fetch_serving_row(st, r);
		if (r->touched || touched_by_others(st->oldslot))
		{
			if (!lock_latest(st, &r->tid))
				continue;		/* deleted by someone else already */
			target = st->lockslot;
		}
		ExecSimpleRelationDelete(st->rri, st->estate, &st->epqstate, target);
		st->deleted++;
		ResetPerTupleExprContext(st->estate);
	}
}

/*
 * begin_changes
 *		An executor state for the serving table, as the logical replication
 *		apply worker makes one: a range table of the one relation, its
 *		result relation with its indexes open, AFTER triggers collected.
 */
static void
begin_changes(ApplyState *st)
{
	RangeTblEntry *rte = makeNode(RangeTblEntry);

	st->estate = CreateExecutorState();
	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(st->rel);
	rte->relkind = st->rel->rd_rel->relkind;
	rte->rellockmode = ShareUpdateExclusiveLock;
	exec_init_one_relation(st->estate, rte);
	st->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(st->rri, st->rel, 1, NULL, 0);
	st->estate->es_output_cid = GetCurrentCommandId(true);
	st->estate->es_snapshot = st->snapshot;
	ExecOpenIndices(st->rri, false);
	EvalPlanQualInit(&st->epqstate, st->estate, NULL, NIL, -1, NIL);
	st->oldslot = table_slot_create(st->rel, &st->estate->es_tupleTable);
	st->lockslot = table_slot_create(st->rel, &st->estate->es_tupleTable);
	AfterTriggerBeginQuery();
}

/*
 * end_changes
 *		Fire the AFTER row triggers and release the executor state.
 */
static void
end_changes(ApplyState *st)
{
	AfterTriggerEndQuery(st->estate);
	EvalPlanQualEnd(&st->epqstate);
	ExecCloseIndices(st->rri);
	ExecResetTupleTable(st->estate->es_tupleTable, false);
	FreeExecutorState(st->estate);
}

/*
 * apply_new_contents
 *		Refresh the serving table in place: the merge's rows compared with
 *		its rows, the differences applied.  The caller holds SHARE UPDATE
 *		EXCLUSIVE on it, and nothing stronger is taken.
 */
BuildResult *
apply_new_contents(const Definition *def, const MergePlan *plan,
				   Oid target_relid)
{
	BuildResult *result = palloc0(sizeof(BuildResult));
	ApplyState *st = palloc0(sizeof(ApplyState));
	OwnerContext ctx;
	instr_time	start;

	result->target_relid = target_relid;
	result->applied = true;
	st->rel = table_open(target_relid, NoLock);
	row_shape_init(&st->shape, st->rel, plan);

	/*
	 * A published table without a replica identity cannot take UPDATE or
	 * DELETE (PostgreSQL refuses them, 55000): refuse before any work rather
	 * than at the first row that changes.
	 */
	CheckCmdReplicaIdentity(st->rel, CMD_UPDATE);
	CheckCmdReplicaIdentity(st->rel, CMD_DELETE);
	st->rowcxt = AllocSetContextCreate(CurrentMemoryContext,
									   "serving_layer apply row",
									   ALLOCSET_DEFAULT_SIZES);

	build_enter_owner(st->rel, &ctx);
	st->snapshot = RegisterSnapshot(GetTransactionSnapshot());

	INSTR_TIME_SET_CURRENT(start);
	scan_serving(st);
	result->serving_rows = st->nrows;
	result->scan_ms = sl_elapsed_ms(start);

	INSTR_TIME_SET_CURRENT(start);
	PushActiveSnapshot(GetTransactionSnapshot());
	begin_changes(st);
	build_merge_rows(plan, writer_begin_sink(st->rel, apply_row, st), result,
					 def);
	delete_unmatched(st);
	end_changes(st);
	PopActiveSnapshot();
	result->changed_rows = st->inserted + st->updated + st->deleted;
	result->inserted = st->inserted;
	result->updated = st->updated;
	result->deleted = st->deleted;
	result->apply_ms = sl_elapsed_ms(start);

	UnregisterSnapshot(st->snapshot);
	build_leave_owner(&ctx);
	table_close(st->rel, NoLock);
	MemoryContextDelete(st->rowcxt);
	pfree(st->rows);
	pfree(st->slots);
	return result;
}
