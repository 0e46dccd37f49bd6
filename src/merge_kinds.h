/*-------------------------------------------------------------------------
 *
 * merge_kinds.h
 *	  The merges of a definition's measures and their defaults
 *	  (merge_kinds.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_MERGE_KINDS_H
#define SL_MERGE_KINDS_H

#include "definition.h"
#include "merge_types.h"

extern bool sl_is_numeric_type(Oid typid);
extern void merge_plan_merges(MergePlan *plan, const Definition *def,
							  const char *batchname);
extern Jsonb *merge_plan_merge_json(const MergePlan *plan);

#endif							/* SL_MERGE_KINDS_H */
