/*-------------------------------------------------------------------------
 *
 * apply_lookup.c
 *	  Find a serving row by its key through a unique btree index on the
 *	  key, for mode 'apply' following the change (apply_delta.c).
 *
 * The merge groups keys with their types' default equality and the batch
 * columns' collations (as GROUP BY does).  An index finds the same row
 * only if it compares keys the same way: a valid, immediate, unique btree
 * index, without expressions or predicate, on exactly the key columns,
 * each with its type's default btree equality and the key's collation.
 * Unique, so that a key has at most one row that a snapshot sees.  This is
 * what REFRESH MATERIALIZED VIEW CONCURRENTLY asks of a materialized view,
 * for the same reason.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/nbtree.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/tableam.h"
#include "catalog/pg_am.h"
#include "catalog/pg_index.h"
#include "catalog/pg_opclass.h"
#include "commands/defrem.h"
#include "utils/lsyscache.h"
#include "storage/bufmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/typcache.h"

#include "apply_lookup.h"
#include "compat.h"

/*
 * index_matches
 *		Whether the open index finds keys as the merge groups them.
 */
static bool
index_matches(Relation index, Relation rel, const RowShape *shape,
			  const MergePlan *plan)
{
	Form_pg_index form = index->rd_index;
	TupleDesc	desc = RelationGetDescr(rel);

	if (!form->indisunique || !form->indimmediate || !form->indisvalid ||
		!form->indisready || !form->indislive ||
		index->rd_rel->relam != BTREE_AM_OID ||
		form->indnkeyatts != shape->nkeys ||
		RelationGetIndexExpressions(index) != NIL ||
		RelationGetIndexPredicate(index) != NIL)
		return false;
	for (int j = 0; j < form->indnkeyatts; j++)
	{
		AttrNumber	att = form->indkey.values[j] - 1;
		Oid			typid = TupleDescAttr(desc, att)->atttypid;
		TypeCacheEntry *tce;
		Oid			eqopr;
		int			k;
		int			live = 0;
		const PlanColumn *col = NULL;

		for (k = 0; k < shape->nkeys; k++)
			if (shape->keyatt[k] == att)
				break;
		if (k == shape->nkeys)
			return false;
		/* the plan column of serving attribute att */
		for (int a = 0; a <= att; a++)
			if (!TupleDescAttr(desc, a)->attisdropped)
				col = &plan->columns[live++];
		tce = lookup_type_cache(typid, TYPECACHE_EQ_OPR);
		eqopr = get_opfamily_member(index->rd_opfamily[j],
									index->rd_opcintype[j],
									index->rd_opcintype[j],
									BTEqualStrategyNumber);
		if (col == NULL || col->typid != typid || !OidIsValid(eqopr) ||
			eqopr != tce->eq_opr ||
			index->rd_indcollation[j] != col->collid)
			return false;
	}
	return true;
}

/*
 * lookup_find_index
 *		A unique index of rel that finds keys as the merge groups them, or
 *		InvalidOid.
 */
Oid
lookup_find_index(Relation rel, const RowShape *shape, const MergePlan *plan)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	Oid			found = InvalidOid;

	foreach(lc, indexes)
	{
		Relation	index = index_open(lfirst_oid(lc), AccessShareLock);
		bool		ok = index_matches(index, rel, shape, plan);

		index_close(index, AccessShareLock);
		if (ok)
		{
			found = lfirst_oid(lc);
			break;
		}
	}
	list_free(indexes);
	return found;
}

/*
 * lookup_begin
 *		An index scan of indexid, under snapshot, ready for lookups.
 */
KeyLookup *
lookup_begin(Relation rel, Oid indexid, Snapshot snapshot)
{
	KeyLookup  *lk = palloc0(sizeof(KeyLookup));
	Form_pg_index form;

	lk->index = index_open(indexid, AccessShareLock);
	form = lk->index->rd_index;
	lk->nkeys = form->indnkeyatts;
	lk->heapatt = palloc(sizeof(AttrNumber) * lk->nkeys);
	lk->eqproc = palloc(sizeof(RegProcedure) * lk->nkeys);
	lk->opcintype = palloc(sizeof(Oid) * lk->nkeys);
	lk->collation = palloc(sizeof(Oid) * lk->nkeys);
	lk->skeys = palloc(sizeof(ScanKeyData) * lk->nkeys);
	for (int j = 0; j < lk->nkeys; j++)
	{
		Oid			opcintype = lk->index->rd_opcintype[j];

		lk->heapatt[j] = form->indkey.values[j] - 1;
		lk->opcintype[j] = opcintype;
		lk->eqproc[j] = get_opcode(get_opfamily_member(lk->index->rd_opfamily[j],
													   opcintype, opcintype,
													   BTEqualStrategyNumber));
		lk->collation[j] = lk->index->rd_indcollation[j];
	}
	lk->scan = index_scan_begin(rel, lk->index, snapshot, lk->nkeys);
	lk->rel = rel;
	lk->snapshot = snapshot;
	/* no VACUUM can truncate it under the refresh's lock */
	lk->nblocks = RelationGetNumberOfBlocks(rel);
	lk->cxt = CurrentMemoryContext;
	return lk;
}

/*
 * lookup_fetch
 *		The serving row whose key is that of the row in key (a slot of the
 *		serving table's type), into found; false if there is none.  A NULL
 *		key part is looked up as IS NULL: GROUP BY groups NULLs together.
 */
bool
lookup_fetch(KeyLookup *lk, TupleTableSlot *key, TupleTableSlot *found)
{
	MemoryContext oldcxt;
	bool		ok;

	slot_getallattrs(key);
	for (int j = 0; j < lk->nkeys; j++)
	{
		AttrNumber	att = lk->heapatt[j];

		if (key->tts_isnull[att])
			ScanKeyEntryInitialize(&lk->skeys[j], SK_ISNULL | SK_SEARCHNULL,
								   j + 1, InvalidStrategy, InvalidOid,
								   InvalidOid, InvalidOid, (Datum) 0);
		else
			ScanKeyEntryInitialize(&lk->skeys[j], 0, j + 1,
								   BTEqualStrategyNumber, lk->opcintype[j],
								   lk->collation[j], lk->eqproc[j],
								   key->tts_values[att]);
	}

	/*
	 * In the scan's memory context: the index AM keeps what it allocates
	 * while fetching (btree's list of dead items to mark, say) until the
	 * scan ends, and the caller's context may be reset after each row.
	 */
	oldcxt = MemoryContextSwitchTo(lk->cxt);
	index_rescan(lk->scan, lk->skeys, lk->nkeys, NULL, 0);
	ok = index_getnext_slot(lk->scan, ForwardScanDirection, found);
	MemoryContextSwitchTo(oldcxt);
	return ok;
}

/*
 * lookup_fetch_at
 *		The serving row at tid, into found, if the lookups' snapshot sees a
 *		version there: for a key whose row a refresh noted the place of
 *		(apply_tids.c), one buffer read instead of a descent of the index.
 *		False when the place is past the table's end, empty or holds no
 *		visible version.  Whether the row is the key's is the caller's to
 *		check (row_same_key(): the index's equality is the keys' default
 *		one, lookup_find_index()).
 */
bool
lookup_fetch_at(KeyLookup *lk, ItemPointer tid, TupleTableSlot *found)
{
	return ItemPointerIsValid(tid) &&
		ItemPointerGetBlockNumber(tid) < lk->nblocks &&
		table_tuple_fetch_row_version(lk->rel, tid, lk->snapshot, found);
}

/*
 * lookup_key_order
 *		Sort support for each column of the index (nkeys of them), in the
 *		index's order, in the current memory context: keys looked up in that
 *		order walk its leaf pages from left to right rather than at random.
 */
SortSupport
lookup_key_order(KeyLookup *lk)
{
	SortSupport ssup = palloc0(sizeof(SortSupportData) * lk->nkeys);

	for (int j = 0; j < lk->nkeys; j++)
	{
		Oid			ltop = get_opfamily_member(lk->index->rd_opfamily[j],
											   lk->opcintype[j],
											   lk->opcintype[j],
											   BTLessStrategyNumber);

		ssup[j].ssup_cxt = CurrentMemoryContext;
		ssup[j].ssup_collation = lk->collation[j];
		ssup[j].ssup_nulls_first = false;
		ssup[j].ssup_attno = j + 1;
		PrepareSortSupportFromOrderingOp(ltop, &ssup[j]);
	}
	return ssup;
}

/*
 * lookup_end
 *		End the scan and close the index.
 */
void
lookup_end(KeyLookup *lk)
{
	index_endscan(lk->scan);
	index_close(lk->index, AccessShareLock);
}
