/*-------------------------------------------------------------------------
 *
 * settings.h
 *	  The serving_layer.* settings, defined in entry.c's _PG_init().
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_SETTINGS_H
#define SL_SETTINGS_H

typedef enum
{
	IF_RUNNING_WAIT,
	IF_RUNNING_SKIP
} IfRunningMode;

/* how mode 'apply', following the change, finds the changed keys' rows */
typedef enum
{
	APPLY_FIND_AUTO,			/* by cost: apply_delta_scan.c */
	APPLY_FIND_INDEX,			/* a lookup of each key in the unique index */
	APPLY_FIND_SCAN				/* one scan of the serving table */
} ApplyFindRows;

extern int	sl_swap_lock_timeout;
extern int	sl_swap_max_wait;
extern int	sl_if_running;
extern bool sl_progress;
extern bool sl_progress_old_name;	/* serving_layer.verbose, version 1's name */
extern double sl_min_batch_fraction;	/* batch_guard.c */

/* whether serving_layer.progress (or its old name) asks for progress lines */
#define SL_PROGRESS() (sl_progress || sl_progress_old_name)
extern bool sl_fast_merge;
extern int	sl_fast_merge_memory;
extern int	sl_apply_find_rows;
extern int	sl_apply_fillfactor;	/* target_create.c */
extern bool sl_transparent_huge_pages;	/* large_alloc.c */

#endif							/* SL_SETTINGS_H */
