/*-------------------------------------------------------------------------
 *
 * boundary.h
 *	  The time boundary between the batch and the speed layer.
 *
 * See boundary.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_BOUNDARY_H
#define SL_BOUNDARY_H

#include "definition.h"
#include "merge_types.h"

extern void boundary_plan(MergePlan *plan, const Definition *def);
extern void boundary_derive(const MergePlan *plan);
extern char *boundary_text(const MergePlan *plan);
extern char *boundary_canonical(Oid typid, const char *text);
extern bool boundary_takes_batch(const MergePlan *plan);

#endif							/* SL_BOUNDARY_H */
