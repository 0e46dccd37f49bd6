/*-------------------------------------------------------------------------
 *
 * apply_tids.h
 *	  Where the serving rows of changed keys were left, by key hash, for
 *	  mode 'apply' following the change (apply_tids.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_APPLY_TIDS_H
#define SL_APPLY_TIDS_H

#include "storage/itemptr.h"

typedef struct TidMap TidMap;

extern TidMap *tidmap_create(MemoryContext cxt);
extern void tidmap_put(TidMap *map, uint64 keyhash, ItemPointer tid);
extern bool tidmap_get(TidMap *map, uint64 keyhash, ItemPointer tid);

#endif							/* SL_APPLY_TIDS_H */
