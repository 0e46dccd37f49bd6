/*-------------------------------------------------------------------------
 *
 * layer_read.c
 *	  Read a batch or speed layer for the C merge: each row in batch column
 *	  order (speed values converted to the batch types), all columns or
 *	  only the keys, from a table scan or from a query.
 *
 * The C merge reads the batch layer twice, and it is most of a refresh.
 * Through SPI, each row is first projected into a new tuple of the query's
 * columns, and a row written unchanged is then formed again from its values.
 * So a plain batch table is read with a table scan instead, under the
 * active snapshot, and when the batch table and the new heap store rows the
 * same way (the serving table was created from the batch table: the common
 * case) a row the merge leaves unchanged is copied into the new heap as the
 * tuple it is (layer_rows_stored(), writer_put_slot() in heap_writer.c).
 * This is why the table AM is used here rather than SPI, which cannot hand
 * out the stored tuple.
 *
 * A scan of the table gives what "SELECT ... FROM batch" would only when
 * that query reads nothing but the table's own rows with no filter, so the
 * scan is used only for a plain heap table without inheritance children, on
 * which row-level security does not apply to the current user, who has
 * SELECT on the whole table, and whose columns are the plan's.  A speed
 * table is scanned on the same terms when no time boundary filters it and
 * each of its merged columns has its batch column's type, so that no value
 * needs casting; its rows are handed over in the plan's column order.
 * Otherwise the layer is read with its query (merge_sql_layer()), through
 * query_rows.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"

#include "boundary.h"
#include "layer_read.h"
#include "merge_sql.h"
#include "merge_types.h"
#include "query_rows.h"

struct LayerReader
{
	const MergePlan *plan;
	bool		speed;
	Relation	rel;			/* the table, when it is scanned */
	AttrNumber *speed_attnos;	/* a scanned speed table: per plan column
								 * its attribute */
	TupleDesc	plan_desc;		/* ... and the plan's row type */
};

/*
 * open_table / open_scannable
 *		A plain heap table without inheritance children that the current
 *		user may read whole (SELECT, no row-level security), opened with
 *		the lock its query would take, else NULL (keeping the lock, which
 *		the query takes anyway); the batch table when, moreover, nothing
 *		filters its rows and its columns are the plan's, in order, with the
 *		plan's types.
 */
static Relation
open_table(Oid relid)
{
	Relation	rel;

	if (get_rel_relkind(relid) != RELKIND_RELATION ||
		pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK ||
		check_enable_rls(relid, InvalidOid, true) != RLS_NONE)
		return NULL;
	rel = table_open(relid, AccessShareLock);
	if (rel->rd_rel->relam != HEAP_TABLE_AM_OID || rel->rd_rel->relhassubclass)
	{
		/* the query will take the same lock: keep it, as it would */
		table_close(rel, NoLock);
		return NULL;
	}
	return rel;
}

static Relation
open_scannable(const MergePlan *plan)
{
	Relation	rel;
	TupleDesc	desc;

	/* a recorded time boundary filters batch rows: leave that to SQL */
	if (boundary_takes_batch(plan) || (rel = open_table(plan->batch)) == NULL)
		return NULL;
	desc = RelationGetDescr(rel);
	if (desc->natts != plan->ncolumns)
		goto no;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		const PlanColumn *col = &plan->columns[i];

		if (att->attisdropped || att->atttypid != col->typid ||
			att->atttypmod != col->typmod ||
			strcmp(NameStr(att->attname), col->name) != 0)
			goto no;
	}
	return rel;

no:
	/* the query will take the same lock: keep it, as it would */
	table_close(rel, NoLock);
	return NULL;
}

/*
 * open_speed_scannable
 *		The speed table, when a scan gives what its query would: no time
 *		boundary filters its rows and each plan column's speed column has
 *		the plan column's type and modifier, so that the query's assignment
 *		would be the column itself (merge_sql.c); reader->speed_attnos then
 *		maps the plan's columns to the table's attributes.
 */
static Relation
open_speed_scannable(LayerReader *reader)
{
	const MergePlan *plan = reader->plan;
	const TimeBoundary *b = plan->boundary;
	Relation	rel;
	TupleDesc	desc;
	AttrNumber *attnos;

	if ((b != NULL && (b->has_value || b->live)) ||
		(rel = open_table(plan->speed)) == NULL)
		return NULL;
	desc = RelationGetDescr(rel);
	attnos = palloc(sizeof(AttrNumber) * plan->ncolumns);
	for (int i = 0; i < plan->ncolumns; i++)
	{
		const PlanColumn *col = &plan->columns[i];
		int			a;

		for (a = 0; a < desc->natts; a++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, a);

			if (!att->attisdropped &&
				strcmp(NameStr(att->attname), col->speed_name) == 0)
				break;
		}
		if (a == desc->natts ||
			TupleDescAttr(desc, a)->atttypid != col->typid ||
			col->speed_typid != col->typid ||
			(col->typmod >= 0 &&
			 TupleDescAttr(desc, a)->atttypmod != col->typmod))
		{
			pfree(attnos);
			table_close(rel, NoLock);
			return NULL;
		}
		attnos[i] = a + 1;
	}
	reader->speed_attnos = attnos;
	reader->plan_desc = CreateTemplateTupleDesc(plan->ncolumns);
	for (int i = 0; i < plan->ncolumns; i++)
		TupleDescInitEntry(reader->plan_desc, i + 1, NULL,
						   plan->columns[i].typid, plan->columns[i].typmod, 0);
	return rel;
}

/*
 * scan_table
 *		Call fn(slot, arg) for each row of the table visible to the active
 *		snapshot, with its first natts columns deformed, in a memory
 *		context reset after each row.  With attnos, the callback gets
 *		instead a slot of plan_desc whose column i is the table's attribute
 *		attnos[i] (a speed table, its columns in batch order).
 */
static void
scan_table(Relation rel, int natts, const AttrNumber *attnos,
		   TupleDesc plan_desc, QueryRowFn fn, void *arg)
{
	TableScanDesc scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	TupleTableSlot *slot = MakeSingleTupleTableSlot(RelationGetDescr(rel),
													&TTSOpsHeapTuple);
	TupleTableSlot *planslot = NULL;
	MemoryContext rowcxt = AllocSetContextCreate(CurrentMemoryContext,
												 "serving_layer batch row",
												 ALLOCSET_DEFAULT_SIZES);
	HeapTuple	tuple;

	if (attnos != NULL)
	{
		natts = 0;
		for (int i = 0; i < plan_desc->natts; i++)
			natts = Max(natts, attnos[i]);
		planslot = MakeSingleTupleTableSlot(plan_desc, &TTSOpsVirtual);
	}

	/*
	 * heap_getnext() rather than table_scan_getnextslot(): the tuple stays
	 * in its page, which the scan keeps pinned while the callback runs, and
	 * is not pinned and unpinned once more per row (3% of a refresh).
	 */
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		MemoryContext oldcxt;

		CHECK_FOR_INTERRUPTS();
		ExecStoreHeapTuple(tuple, slot, false);
		slot_getsomeattrs(slot, natts);
		oldcxt = MemoryContextSwitchTo(rowcxt);
		if (planslot != NULL)
		{
			ExecClearTuple(planslot);
			for (int i = 0; i < plan_desc->natts; i++)
			{
				planslot->tts_values[i] = slot->tts_values[attnos[i] - 1];
				planslot->tts_isnull[i] = slot->tts_isnull[attnos[i] - 1];
			}
			ExecStoreVirtualTuple(planslot);
			fn(planslot, arg);
		}
		else
			fn(slot, arg);
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(rowcxt);
	}
	table_endscan(scan);
	if (planslot != NULL)
		ExecDropSingleTupleTableSlot(planslot);
	ExecDropSingleTupleTableSlot(slot);
	MemoryContextDelete(rowcxt);
}

/*
 * layer_open
 *		Prepare to read the batch layer (speed false) or the speed layer of
 *		a plan, with a table scan where that gives the layer's rows (for
 *		the speed layer, the executor's projection of each row was half of
 *		reading it).
 */
LayerReader *
layer_open(const MergePlan *plan, bool speed)
{
	LayerReader *reader = palloc0(sizeof(LayerReader));

	reader->plan = plan;
	reader->speed = speed;
	reader->rel = speed ? open_speed_scannable(reader) : open_scannable(plan);
	return reader;
}

/*
 * layer_rows_stored
 *		Whether the slots handed to the callback hold the layer's stored
 *		tuples, in the batch table's row type (which writer_put_slot() may
 *		copy as they are).
 */
bool
layer_rows_stored(const LayerReader *reader)
{
	return reader->rel != NULL && reader->speed_attnos == NULL;
}

/*
 * layer_stored_desc
 *		The row type of the stored tuples layer_read() hands over, or NULL
 *		when the rows come from a query.
 */
TupleDesc
layer_stored_desc(const LayerReader *reader)
{
	return layer_rows_stored(reader) ? RelationGetDescr(reader->rel) : NULL;
}

/*
 * layer_read
 *		Call fn(slot, arg) for each row of the layer, in a memory context
 *		reset after each row.  The slot's columns are the plan's, in batch
 *		column order; with LAYER_KEYS only the key columns are set (the
 *		others may be NULL or absent, and must not be read), and with
 *		LAYER_ROWS_BY_KEY a stored row may have only its keys deformed.
 */
void
layer_read(LayerReader *reader, LayerColumns columns, QueryRowFn fn,
		   void *arg)
{
	const MergePlan *plan = reader->plan;
	bool		keys_only = columns == LAYER_KEYS;

	if (reader->rel != NULL)
	{
		int			natts = plan->ncolumns;

		/* deform only up to the last key column */
		if (columns != LAYER_ALL)
			while (natts > 0 && plan->columns[natts - 1].kind != MERGE_KEY)
				natts--;
		scan_table(reader->rel, natts, reader->speed_attnos,
				   reader->plan_desc, fn, arg);
	}
	else
	{
		Oid		   *paramtypes;
		Datum	   *paramvalues;
		int			nparams;

		/* the time boundary, when the layer is split at one */
		nparams = merge_sql_layer_params(plan, reader->speed, &paramtypes,
										 &paramvalues);
		query_rows(merge_sql_layer(plan, reader->speed, keys_only), nparams,
				   paramtypes, paramvalues, true, fn, arg);
	}
}

/*
 * layer_close
 *		Done reading; a scanned table stays locked until the end of the
 *		transaction, as after its query.
 */
void
layer_close(LayerReader *reader)
{
	if (reader->rel != NULL)
		table_close(reader->rel, NoLock);
	if (reader->plan_desc != NULL)
		FreeTupleDesc(reader->plan_desc);
	pfree(reader);
}
