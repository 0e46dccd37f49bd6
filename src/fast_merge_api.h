/*-------------------------------------------------------------------------
 *
 * fast_merge_api.h
 *	  The C merge as build.c calls it (fast_merge.c).  The C merge's own
 *	  types are in fast_merge.h, which only its files include.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_FAST_MERGE_API_H
#define SL_FAST_MERGE_API_H

#include "heap_writer.h"
#include "merge_types.h"

extern bool fast_merge_possible(const MergePlan *plan);
extern void fast_merge(const MergePlan *plan, HeapWriter *writer,
					   int64 *batch_rows, int64 *speed_rows, char **merged_by);

#endif							/* SL_FAST_MERGE_API_H */
