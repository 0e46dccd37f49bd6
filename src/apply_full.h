/*-------------------------------------------------------------------------
 *
 * apply_full.h
 *	  Mode 'apply', the whole comparison (apply_full.c), and the state of
 *	  one refresh in mode 'apply' that apply.c keeps in it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_APPLY_FULL_H
#define SL_APPLY_FULL_H

#include "storage/itemptr.h"
#include "utils/rel.h"
#include "utils/snapshot.h"

#include "apply_compare.h"
#include "apply_rows.h"
#include "apply_state.h"
#include "build.h"
#include "merge_types.h"

/* One serving row, as step 1 saw it. */
typedef struct ServingRow
{
	uint64		keyhash;
	uint64		imagehash;
	ItemPointerData tid;
	bool		matched;		/* a new row matched it (step 2) */
	bool		touched;		/* it had an xmax when scanned */
} ServingRow;

/*
 * One refresh in mode 'apply' (apply.c): the serving table, its snapshot,
 * its changes, and the whole comparison's rows.
 */
typedef struct FullCompare
{
	Relation	rel;
	RowShape	shape;			/* how its rows are hashed and compared */
	Snapshot	snapshot;

	/* step 1: the serving rows, and an open-addressing index on keyhash */
	ServingRow *rows;
	uint64		nrows;
	uint64		maxrows;
	uint32	   *slots;			/* row number + 1, 0 empty */
	uint64		mask;
	uint64		next;			/* the row after the last one matched */

	ApplyChanges *ch;			/* steps 2 and 3 */
	Datum	   *keyvalues;		/* place_of_key(): a key, as serving attributes */
	bool	   *keynulls;
	int			ncolumns;		/* the merge's */
	int64		inserted;		/* their counts */
	int64		updated;
	int64		deleted;
	MemoryContext rowcxt;
} FullCompare;

extern void compare_in_full(FullCompare *st, const MergePlan *plan,
							BuildResult *result, ApplyState *state);

#endif							/* SL_APPLY_FULL_H */
