/*-------------------------------------------------------------------------
 *
 * apply_rows.h
 *	  Changing the serving table's rows in place for mode 'apply', through
 *	  the executor's row routines (apply_rows.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_APPLY_ROWS_H
#define SL_APPLY_ROWS_H

#include "executor/tuptable.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"

#include "apply_compare.h"

/*
 * The executor state of one refresh's changes, and their counts (opaque:
 * the executor's headers define a Group of their own, as the C merge's do).
 */
typedef struct ApplyChanges ApplyChanges;

extern ApplyChanges *changes_begin(Relation rel, const RowShape *shape,
								   Snapshot snapshot);
extern TupleTableSlot *changes_oldslot(ApplyChanges *ch);
extern void changes_row_tid(ApplyChanges *ch, ItemPointer tid);
extern void changes_counts(ApplyChanges *ch, int64 *inserted,
						   int64 *updated, int64 *deleted);
extern void changes_end(ApplyChanges *ch);
extern void changes_fetch(ApplyChanges *ch, ItemPointer tid);
extern void changes_insert(ApplyChanges *ch, TupleTableSlot *newslot);
extern void changes_update(ApplyChanges *ch, ItemPointer tid, bool touched,
						   TupleTableSlot *newslot, bool same);
extern void changes_delete(ApplyChanges *ch, ItemPointer tid, bool touched);
extern bool changes_touched(TupleTableSlot *slot);

#endif							/* SL_APPLY_ROWS_H */
