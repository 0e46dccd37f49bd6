/*-------------------------------------------------------------------------
 *
 * apply_delta.h
 *	  Mode 'apply' following the change: from what the last refresh read,
 *	  only the keys whose layers changed are recomputed and compared
 *	  (apply_delta.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_APPLY_DELTA_H
#define SL_APPLY_DELTA_H

#include "apply_lookup.h"
#include "apply_rows.h"
#include "merge_types.h"

typedef struct DeltaScan DeltaScan;

extern DeltaScan *delta_read_speed(const MergePlan *plan, int64 expected);
extern void delta_compare_speed(DeltaScan *ds, bytea *saved);
extern bool delta_use_saved_parts(DeltaScan *ds, int64 version,
								  bool serving_parts);
extern void delta_read_batch(DeltaScan *ds);
extern void delta_counts(DeltaScan *ds, int64 *batch_rows,
						 int64 *batch_hash, int64 *speed_rows,
						 int64 *speed_groups, int64 *keys);
extern bool delta_apply(DeltaScan *ds, Relation rel, const RowShape *shape,
						Snapshot snapshot, KeyLookup *lookup,
						ApplyChanges *ch);
extern bytea *delta_state(DeltaScan *ds, int64 version);

/* the place of the serving row of a key (the merge's columns), if known */
typedef bool (*DeltaPlaceFn) (void *arg, Datum *values, bool *nulls,
							  ItemPointer tid);
extern bytea *delta_state_with_places(bytea *state, const MergePlan *plan,
									  DeltaPlaceFn place_of, void *arg);
extern int64 delta_rows_found_in_place(DeltaScan *ds);
extern void delta_end(DeltaScan *ds);

#endif							/* SL_APPLY_DELTA_H */
