/*-------------------------------------------------------------------------
 *
 * merge_plan.h
 *	  Validate a definition and turn it into a merge plan (merge_plan.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_MERGE_PLAN_H
#define SL_MERGE_PLAN_H

#include "definition.h"
#include "merge_types.h"

extern MergePlan *merge_plan_build(const Definition *def);
extern void merge_plan_check_target(const MergePlan *plan, Oid relid);
extern List *merge_plan_key_names(const MergePlan *plan);
extern List *merge_plan_speed_names(const MergePlan *plan);

#endif							/* SL_MERGE_PLAN_H */
