/*-------------------------------------------------------------------------
 *
 * target_create.h
 *	  Lock the serving table for a refresh, or create it for the first one
 *	  (target_create.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_TARGET_CREATE_H
#define SL_TARGET_CREATE_H

#include "definition.h"
#include "merge_types.h"

extern Oid	target_lock_or_create(const MergePlan *plan, const Definition *def);

#endif							/* SL_TARGET_CREATE_H */
