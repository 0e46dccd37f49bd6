/*-------------------------------------------------------------------------
 *
 * apply.h
 *	  Refresh mode 'apply': the merge's rows compared with the serving
 *	  table's and only the differences applied, as row changes, in place
 *	  (apply.c); and the check that refuses a 'swap' of a published table
 *	  (publication.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERVING_LAYER_APPLY_H
#define SERVING_LAYER_APPLY_H

#include "build.h"
#include "definition.h"
#include "merge_types.h"

/* apply.c */
extern BuildResult *apply_new_contents(const Definition *def,
									   const MergePlan *plan,
									   Oid target_relid);

/* publication.c */
extern void publication_refuse_swap(Oid relid, Oid namespace,
									const char *display);

#endif							/* SERVING_LAYER_APPLY_H */
