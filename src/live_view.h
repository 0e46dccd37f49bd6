/*-------------------------------------------------------------------------
 *
 * live_view.h
 *	  The live view of a definition: batch + speed as of now.
 *
 * See live_view.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_LIVE_VIEW_H
#define SL_LIVE_VIEW_H

#include "definition.h"
#include "merge_types.h"

extern void live_view_update(const Definition *def, const MergePlan *plan,
							 bool replace);
extern void live_view_drop(const Definition *def);

#endif							/* SL_LIVE_VIEW_H */
