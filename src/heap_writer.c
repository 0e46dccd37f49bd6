/*-------------------------------------------------------------------------
 *
 * heap_writer.c
 *	  Write rows into the new heap: frozen, in bulk, checked against the
 *	  serving table's constraints.
 *
 * Rows are buffered in slots of the heap's own type and inserted with
 * table_multi_insert() and a bulk-insert state, as COPY does, with
 * TABLE_INSERT_FROZEN: the heap was created in this transaction, and frozen
 * rows are what lets transactions whose snapshots predate the swap see the
 * new contents instead of an empty table.  Each row is checked against the
 * serving table's NOT NULL and CHECK constraints as an INSERT into it would
 * be (the new heap has the same tuple descriptor, but the constraints
 * belong to the serving table).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "executor/executor.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "serving_layer.h"

/* flush buffered rows after this many, or this many bytes, like COPY */
#define WRITER_MAX_ROWS		1000
#define WRITER_MAX_BYTES	(64 * 1024)

struct HeapWriter
{
	Relation	rel;
	AttrNumber *attmap;			/* per heap attribute: live column or 0 */
	CommandId	cid;
	int			options;
	BulkInsertState bistate;
	MemoryContext cxt;
	TupleTableSlot *slots[WRITER_MAX_ROWS];
	int			nslots;
	int			nbuffered;
	Size		nbytes;
	int64		rows;
	EState	   *estate;			/* for the constraints, if any */
	ResultRelInfo *constraints;
};

/*
 * writer_begin
 *		Prepare to write rows into newrel, checked against oldrel's
 *		constraints.
 */
HeapWriter *
writer_begin(Relation oldrel, Relation newrel)
{
	HeapWriter *w = palloc0(sizeof(HeapWriter));
	TupleDesc	desc = RelationGetDescr(newrel);
	TupleConstr *constr = RelationGetDescr(oldrel)->constr;
	int			live = 0;

	w->rel = newrel;
	w->attmap = palloc0(sizeof(AttrNumber) * desc->natts);
	for (int i = 0; i < desc->natts; i++)
		if (!TupleDescAttr(desc, i)->attisdropped)
			w->attmap[i] = ++live;
	w->cid = GetCurrentCommandId(true);
	w->options = TABLE_INSERT_SKIP_FSM | TABLE_INSERT_FROZEN;
	w->bistate = GetBulkInsertState();
	w->cxt = AllocSetContextCreate(CurrentMemoryContext,
								   "serving_layer heap writer",
								   ALLOCSET_DEFAULT_SIZES);
	if (constr != NULL && (constr->has_not_null || constr->num_check > 0))
	{
		w->estate = CreateExecutorState();
		w->constraints = makeNode(ResultRelInfo);
		InitResultRelInfo(w->constraints, oldrel, 0, NULL, 0);
	}
	return w;
}

/*
 * writer_flush
 *		Insert the buffered rows.
 */
static void
writer_flush(HeapWriter *w)
{
	if (w->nbuffered == 0)
		return;
	table_multi_insert(w->rel, w->slots, w->nbuffered, w->cid, w->options,
					   w->bistate);
	for (int i = 0; i < w->nbuffered; i++)
		ExecClearTuple(w->slots[i]);
	w->nbuffered = 0;
	w->nbytes = 0;
}

/*
 * writer_put
 *		Write one row, given as values of the live columns in order.  The
 *		values are copied: the caller may free them at once.
 */
void
writer_put(HeapWriter *w, Datum *values, bool *nulls)
{
	TupleDesc	desc = RelationGetDescr(w->rel);
	TupleTableSlot *dst;

	if (w->nbuffered == w->nslots)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(w->cxt);

		w->slots[w->nslots++] = table_slot_create(w->rel, NULL);
		MemoryContextSwitchTo(oldcxt);
	}
	dst = w->slots[w->nbuffered];
	ExecClearTuple(dst);
	for (int i = 0; i < desc->natts; i++)
	{
		AttrNumber	src = w->attmap[i];

		dst->tts_values[i] = src ? values[src - 1] : (Datum) 0;
		dst->tts_isnull[i] = src ? nulls[src - 1] : true;
	}
	ExecStoreVirtualTuple(dst);
	if (w->constraints != NULL)
	{
		ExecConstraints(w->constraints, dst, w->estate);
		ResetPerTupleExprContext(w->estate);
	}
	/* forms the heap tuple in the slot's own memory */
	ExecMaterializeSlot(dst);

	w->rows++;
	w->nbuffered++;
	w->nbytes += ExecFetchSlotHeapTuple(dst, false, NULL)->t_len;
	if (w->nbuffered >= WRITER_MAX_ROWS || w->nbytes >= WRITER_MAX_BYTES)
		writer_flush(w);
}

/*
 * writer_end
 *		Insert what is left and release the writer; returns the number of
 *		rows written.
 */
int64
writer_end(HeapWriter *w)
{
	int64		rows = w->rows;

	writer_flush(w);
	for (int i = 0; i < w->nslots; i++)
		ExecDropSingleTupleTableSlot(w->slots[i]);
	FreeBulkInsertState(w->bistate);
	table_finish_bulk_insert(w->rel, w->options);
	if (w->estate != NULL)
		FreeExecutorState(w->estate);
	MemoryContextDelete(w->cxt);
	pfree(w);
	return rows;
}
