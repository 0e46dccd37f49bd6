/*-------------------------------------------------------------------------
 *
 * apply_state.h
 *	  What a refresh in mode 'apply' leaves for the next one to follow the
 *	  change from (apply_state.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_APPLY_STATE_H
#define SL_APPLY_STATE_H

#include "utils/relcache.h"

#include "definition.h"
#include "merge_types.h"

/* One row of serving_layer_apply_state. */
typedef struct ApplyState
{
	Oid			serving;		/* the serving table, its storage */
	Oid			serving_node;
	int64		watch_version;	/* its watch trigger's (apply_watch.c) */
	Oid			batch;			/* the batch table read, its storage */
	Oid			batch_node;
	int64		plan_hash;		/* the merge plan's columns */
	int64		batch_rows;		/* the batch rows read, their hash */
	int64		batch_hash;
	int64		output_rows;	/* the serving table's rows left */
	int64		speed_groups;	/* the speed groups read, as speed_state */
	bytea	   *speed_state;
} ApplyState;

extern int64 apply_plan_hash(const MergePlan *plan);
extern ApplyState *apply_state_load(const TargetName *target);
extern void apply_state_save(const TargetName *target,
							 const ApplyState *state);
extern void apply_state_forget(const TargetName *target);

#endif							/* SL_APPLY_STATE_H */
