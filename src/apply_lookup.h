/*-------------------------------------------------------------------------
 *
 * apply_lookup.h
 *	  Finding a serving row by its key through a unique btree index on the
 *	  key, for mode 'apply' following the change (apply_lookup.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_APPLY_LOOKUP_H
#define SL_APPLY_LOOKUP_H

#include "access/genam.h"
#include "access/skey.h"
#include "executor/tuptable.h"
#include "storage/block.h"
#include "storage/itemptr.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"
#include "utils/sortsupport.h"

#include "apply_compare.h"
#include "merge_types.h"

typedef struct KeyLookup
{
	Relation	index;
	IndexScanDesc scan;
	MemoryContext cxt;			/* the scan's: where it allocates */
	int			nkeys;
	AttrNumber *heapatt;		/* per index column: serving attribute, 0-based */
	RegProcedure *eqproc;		/* its equality function */
	Oid		   *opcintype;
	Oid		   *collation;
	ScanKeyData *skeys;
	Relation	rel;
	Snapshot	snapshot;
	BlockNumber nblocks;		/* the table's blocks when the lookups began */
} KeyLookup;

extern Oid	lookup_find_index(Relation rel, const RowShape *shape,
							  const MergePlan *plan);
extern KeyLookup *lookup_begin(Relation rel, Oid indexid, Snapshot snapshot);
extern bool lookup_fetch(KeyLookup *lk, TupleTableSlot *key,
						 TupleTableSlot *found);
extern bool lookup_fetch_at(KeyLookup *lk, ItemPointer tid,
							TupleTableSlot *found);
extern SortSupport lookup_key_order(KeyLookup *lk);
extern void lookup_end(KeyLookup *lk);

#endif							/* SL_APPLY_LOOKUP_H */
