/*-------------------------------------------------------------------------
 *
 * batch_scan.c
 *	  Read the batch layer straight from its table, for the C merge.
 *
 * The C merge reads the batch layer twice, and it is most of a refresh.
 * Through SPI, each row is first projected into a new tuple of the query's
 * columns, and a row written unchanged is then formed again from its values.
 * A plain table is read here with a table scan instead, under the merge's
 * snapshot, and when the batch table and the new heap store rows the same
 * way (the serving table was created from the batch table: the common
 * case) a row the merge leaves unchanged is copied into the new heap as the
 * tuple it is (writer_put_slot() in heap_writer.c).  This is why the C merge uses the table AM
 * here rather than SPI, which cannot hand out the stored tuple.
 *
 * A scan of the table gives what "SELECT ... FROM batch" would only when
 * that query reads nothing but the table's own rows with no filter, so this
 * path is taken only for a plain heap table without inheritance children, on
 * which row-level security does not apply to the current user, who has
 * SELECT on the whole table; otherwise the caller uses the query.
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

#include "batch_scan.h"
#include "boundary.h"
#include "merge_types.h"
#include "query_rows.h"

/*
 * batch_scan_open
 *		The batch table, opened with the lock its query would take, when it
 *		can be read directly and its columns are the plan's, in order, with
 *		the plan's types; else NULL (keeping the lock, which the query
 *		takes anyway).
 */
Relation
batch_scan_open(const MergePlan *plan)
{
	Relation	rel;
	TupleDesc	desc;

	/* a recorded time boundary filters batch rows: leave that to SQL */
	if (boundary_takes_batch(plan) ||
		get_rel_relkind(plan->batch) != RELKIND_RELATION ||
		pg_class_aclcheck(plan->batch, GetUserId(), ACL_SELECT) != ACLCHECK_OK ||
		check_enable_rls(plan->batch, InvalidOid, true) != RLS_NONE)
		return NULL;

	rel = table_open(plan->batch, AccessShareLock);
	desc = RelationGetDescr(rel);
	if (rel->rd_rel->relam != HEAP_TABLE_AM_OID ||
		rel->rd_rel->relhassubclass || desc->natts != plan->ncolumns)
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
 * batch_scan
 *		Call fn(slot, arg) for each row of the batch table visible to the
 *		active snapshot, with its first natts columns deformed, in a memory
 *		context reset after each row.
 */
void
batch_scan(Relation rel, int natts, QueryRowFn fn, void *arg)
{
	TableScanDesc scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	TupleTableSlot *slot = MakeSingleTupleTableSlot(RelationGetDescr(rel),
													&TTSOpsHeapTuple);
	MemoryContext rowcxt = AllocSetContextCreate(CurrentMemoryContext,
												 "serving_layer batch row",
												 ALLOCSET_DEFAULT_SIZES);
	HeapTuple	tuple;

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
		fn(slot, arg);
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(rowcxt);
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	MemoryContextDelete(rowcxt);
}
