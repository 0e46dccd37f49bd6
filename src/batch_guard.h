/*-------------------------------------------------------------------------
 *
 * batch_guard.h
 *	  Refuse to replace a serving table from a half-loaded batch layer.
 *
 * See batch_guard.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_BATCH_GUARD_H
#define SL_BATCH_GUARD_H

#include "definition.h"
#include "merge_types.h"

extern void batch_guard_check(const Definition *def, int64 batch_rows);
extern void batch_guard_record_classic(const TargetName *target,
									   int64 batch_rows);
extern void batch_guard_check_first(const Definition *def,
									const MergePlan *plan);

#endif							/* SL_BATCH_GUARD_H */
