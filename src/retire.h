/*-------------------------------------------------------------------------
 *
 * retire.h
 *	  Get rid of a serving table's old storage after the swap: at once, or
 *	  once the refresh's transaction is over (retire.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_RETIRE_H
#define SL_RETIRE_H

#include "nodes/pg_list.h"

/* old storage of this size or more is dropped after the commit */
#define RETIRE_MIN_BYTES ((Size) 64 * 1024 * 1024)

extern void retire_storage(Oid serving, Oid oldheap, List **deferred);
extern void retire_launch_cleanup(List *deferred);

#endif							/* SL_RETIRE_H */
