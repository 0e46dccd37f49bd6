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
 * A writer can also hand its rows to a callback instead (writer_begin_sink),
 * as slots of the serving table's own type: mode 'apply' (apply.c) compares
 * the merge's rows with the serving table's instead of storing them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "executor/executor.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "heap_writer.h"

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
	TupleDesc	copy_desc;		/* rows of this descriptor are stored alike */
	TupleDesc	nocopy_desc;	/* rows of this one are not */
	WriterSinkFn sink;			/* rows go to sink(slot, sink_arg) instead */
	void	   *sink_arg;
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
 * writer_begin_sink
 *		Prepare to hand rows, as slots of rel's type (dropped columns NULL),
 *		to fn(slot, arg) one at a time; the slot is reused for the next row.
 *		Constraints are left to whoever stores the row.
 */
HeapWriter *
writer_begin_sink(Relation rel, WriterSinkFn fn, void *arg)
{
	HeapWriter *w = palloc0(sizeof(HeapWriter));
	TupleDesc	desc = RelationGetDescr(rel);
	int			live = 0;

	w->rel = rel;
	w->attmap = palloc0(sizeof(AttrNumber) * desc->natts);
	for (int i = 0; i < desc->natts; i++)
		if (!TupleDescAttr(desc, i)->attisdropped)
			w->attmap[i] = ++live;
	w->sink = fn;
	w->sink_arg = arg;
	w->cxt = AllocSetContextCreate(CurrentMemoryContext,
								   "serving_layer row sink",
								   ALLOCSET_DEFAULT_SIZES);
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
 * next_slot
 *		The slot the next row goes into.
 */
static TupleTableSlot *
next_slot(HeapWriter *w)
{
	if (w->nbuffered == w->nslots)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(w->cxt);

		w->slots[w->nslots++] = table_slot_create(w->rel, NULL);
		MemoryContextSwitchTo(oldcxt);
	}
	return w->slots[w->nbuffered];
}

/*
 * buffer_row
 *		Check the row in dst (the next slot) against the constraints, make
 *		it a heap tuple of its own, and buffer it.
 */
static void
buffer_row(HeapWriter *w, TupleTableSlot *dst)
{
	if (w->sink != NULL)
	{
		w->rows++;
		w->sink(dst, w->sink_arg);
		ExecClearTuple(dst);
		return;
	}
	if (w->constraints != NULL)
	{
		ExecConstraints(w->constraints, dst, w->estate);
		ResetPerTupleExprContext(w->estate);
	}
	/* forms or copies the heap tuple in the slot's own memory */
	ExecMaterializeSlot(dst);

	w->rows++;
	w->nbuffered++;
	w->nbytes += ExecFetchSlotHeapTuple(dst, false, NULL)->t_len;
	if (w->nbuffered >= WRITER_MAX_ROWS || w->nbytes >= WRITER_MAX_BYTES)
		writer_flush(w);
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
	TupleTableSlot *dst = next_slot(w);

	ExecClearTuple(dst);
	for (int i = 0; i < desc->natts; i++)
	{
		AttrNumber	src = w->attmap[i];

		dst->tts_values[i] = src ? values[src - 1] : (Datum) 0;
		dst->tts_isnull[i] = src ? nulls[src - 1] : true;
	}
	ExecStoreVirtualTuple(dst);
	buffer_row(w, dst);
}

/*
 * same_layout
 *		Whether rows of descriptor a are stored as rows of b: the same
 *		attributes, none dropped, of the same types, lengths and alignments.
 */
static bool
same_layout(TupleDesc a, TupleDesc b)
{
	if (a->natts != b->natts)
		return false;
	for (int i = 0; i < a->natts; i++)
	{
		Form_pg_attribute x = TupleDescAttr(a, i);
		Form_pg_attribute y = TupleDescAttr(b, i);

		if (x->attisdropped || y->attisdropped ||
			x->atttypid != y->atttypid || x->atttypmod != y->atttypmod ||
			x->attlen != y->attlen || x->attbyval != y->attbyval ||
			x->attalign != y->attalign)
			return false;
	}
	return true;
}

/*
 * writer_put_slot
 *		Write a row read from a table whose columns are the live columns in
 *		order (layer_read.c), deformed.  When the table stores rows as the
 *		new heap does, and the stored tuple has all its attributes (a tuple
 *		stored before an ADD COLUMN lacks the new ones, which the new heap
 *		could not fill in), the tuple is copied as it is instead of being
 *		formed again from its values: the heap's insertion still moves
 *		values stored out of line to the new heap's own TOAST table, as for
 *		any inserted row.
 */
void
writer_put_slot(HeapWriter *w, TupleTableSlot *src)
{
	TupleDesc	desc = src->tts_tupleDescriptor;
	TupleTableSlot *dst;

	if (desc != w->copy_desc && desc != w->nocopy_desc)
	{
		if (same_layout(desc, RelationGetDescr(w->rel)))
			w->copy_desc = desc;
		else
			w->nocopy_desc = desc;
	}
	if (w->sink != NULL || desc != w->copy_desc ||
		!(TTS_IS_HEAPTUPLE(src) || TTS_IS_BUFFERTUPLE(src)) ||
		HeapTupleHeaderGetNatts(((HeapTupleTableSlot *) src)->tuple->t_data) !=
		desc->natts)
	{
		slot_getallattrs(src);
		writer_put(w, src->tts_values, src->tts_isnull);
		return;
	}
	dst = next_slot(w);
	ExecCopySlot(dst, src);
	buffer_row(w, dst);
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

	if (w->sink != NULL)
	{
		for (int i = 0; i < w->nslots; i++)
			ExecDropSingleTupleTableSlot(w->slots[i]);
		MemoryContextDelete(w->cxt);
		pfree(w);
		return rows;
	}
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
