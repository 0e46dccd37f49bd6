/*-------------------------------------------------------------------------
 *
 * refresh.h
 *	  Refresh one target or all of them (refresh.c).
 *
 * A refresh runs these steps, each in its own module:
 *	  target.h, catalog.h	find the target and its definition
 *	  merge_plan.h			validate the definition into a merge plan
 *	  build.h				build the new contents beside the serving table
 *	  swap.h				lock the serving table and swap the storage in
 *	  retire.h				drop the old storage
 *	  history.h				record the refresh (history_worker.h: a failed one)
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_REFRESH_H
#define SL_REFRESH_H

#include "nodes/pg_list.h"

/* One row of serving_layer_refresh()'s result. */
typedef struct RefreshOutcome
{
	char	   *target;
	const char *status;
	int64		batch_rows;
	int64		speed_rows;
	int64		output_rows;
	char	   *boundary;		/* NULL: none */
	int64		changed_rows;	/* -1: NULL (mode 'swap') */
} RefreshOutcome;

extern List *refresh_targets(const char *target_text);

#endif							/* SL_REFRESH_H */
