/*-------------------------------------------------------------------------
 *
 * apply_full.c
 *	  Mode 'apply', the whole comparison: every serving row compared with
 *	  the rows of the merge, for a refresh that cannot follow the change
 *	  (apply.c says when), in three steps:
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
 *	  Two different rows taken for equal need their 64-bit key hashes and
 *	  their 64-bit image hashes to collide at once (apply_compare.c).
 * Then the state it leaves for the next refresh is given the places of
 * the speed keys' rows (apply_tids.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/tableam.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/memutils.h"

#include "apply_delta.h"
#include "apply_full.h"
#include "hash_mix.h"
#include "heap_writer.h"
#include "util.h"

/*
 * scan_serving
 *		Step 1: remember every serving row's hashes and TID, then index them
 *		by key hash.
 */
static void
scan_serving(FullCompare *st)
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
		uint64		i = sl_mix64(st->rows[n].keyhash) & st->mask;

		while (st->slots[i] != 0)
			i = (i + 1) & st->mask;
		st->slots[i] = (uint32) (n + 1);
	}
}

/*
 * match_row
 *		Whether serving row r is the one of the new row in slot (key hash kh,
 *		image hash ih); if it is, make it the new row.
 */
static bool
match_row(FullCompare *st, ServingRow *r, TupleTableSlot *slot, uint64 kh,
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
			changes_fetch(st->ch, &r->tid);
			changes_update(st->ch, &r->tid, true, slot, true);
			changes_row_tid(st->ch, &r->tid);
		}
		return true;
	}
	changes_fetch(st->ch, &r->tid);
	if (!row_same_key(&st->shape, changes_oldslot(st->ch), slot))
		return false;
	r->matched = true;
	changes_update(st->ch, &r->tid, r->touched, slot, false);
	/* where the row is now, for the state (place_of_key()) */
	changes_row_tid(st->ch, &r->tid);
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
	FullCompare *st = arg;
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
	for (i = sl_mix64(kh) & st->mask; !found && st->slots[i] != 0;
		 i = (i + 1) & st->mask)
	{
		if (match_row(st, &st->rows[st->slots[i] - 1], slot, kh, ih))
		{
			st->next = st->slots[i];
			found = true;
		}
	}
	if (!found)
		changes_insert(st->ch, slot);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(st->rowcxt);
}

/*
 * delete_unmatched
 *		Step 3: DELETE the serving rows no new row matched.
 */
static void
delete_unmatched(FullCompare *st)
{
	for (uint64 n = 0; n < st->nrows; n++)
	{
		ServingRow *r = &st->rows[n];

		if (r->matched)
			continue;
		CHECK_FOR_INTERRUPTS();
		changes_delete(st->ch, &r->tid, r->touched);
	}
}

/*
 * place_of_key
 *		delta_state_with_places()'s callback after the whole comparison:
 *		the place of the serving row it kept for the key (the merge's
 *		columns), as it left it.  A key hash two keys share may give the
 *		other key's row, which the refresh that uses it does not take.
 */
static bool
place_of_key(void *arg, Datum *values, bool *nulls, ItemPointer tid)
{
	FullCompare *st = arg;
	TupleDesc	desc = RelationGetDescr(st->rel);
	int			live = 0;
	uint64		kh;

	for (int a = 0; a < desc->natts; a++)
	{
		st->keyvalues[a] = (Datum) 0;
		st->keynulls[a] = true;
		if (!TupleDescAttr(desc, a)->attisdropped && live < st->ncolumns)
		{
			st->keyvalues[a] = values[live];
			st->keynulls[a] = nulls[live++];
		}
	}
	kh = row_key_hash(&st->shape, st->keyvalues, st->keynulls);
	for (uint64 i = sl_mix64(kh) & st->mask; st->slots[i] != 0;
		 i = (i + 1) & st->mask)
	{
		ServingRow *r = &st->rows[st->slots[i] - 1];

		if (r->keyhash == kh && r->matched)
		{
			*tid = r->tid;
			return true;
		}
	}
	return false;
}

/*
 * compare_in_full
 *		The whole comparison, steps 1 to 3, under the active snapshot; then
 *		the places of the speed keys' rows into the state saved for the next
 *		refresh (state, if any).
 */
void
compare_in_full(FullCompare *st, const MergePlan *plan, BuildResult *result,
				ApplyState *state)
{
	instr_time	start;

	INSTR_TIME_SET_CURRENT(start);
	scan_serving(st);
	result->serving_rows = st->nrows;
	result->scan_ms += sl_elapsed_ms(start);	/* after any state reads */

	INSTR_TIME_SET_CURRENT(start);
	st->ch = changes_begin(st->rel, &st->shape, st->snapshot);
	build_merge_fill(plan, writer_begin_sink(st->rel, apply_row, st), result);
	delete_unmatched(st);
	changes_counts(st->ch, &st->inserted, &st->updated, &st->deleted);
	changes_end(st->ch);
	if (state != NULL)
	{
		TupleDesc	desc = RelationGetDescr(st->rel);
		bytea	   *old = state->speed_state;

		st->ncolumns = plan->ncolumns;
		st->keyvalues = palloc(sizeof(Datum) * desc->natts);
		st->keynulls = palloc(sizeof(bool) * desc->natts);
		state->speed_state = delta_state_with_places(old, plan, place_of_key,
													 st);
		if (state->speed_state != old)
			pfree(old);
	}
	result->apply_ms = sl_elapsed_ms(start);
	pfree(st->rows);
	pfree(st->slots);
}
