/*-------------------------------------------------------------------------
 *
 * retire.h
 *	  Drop a serving table's old storage, at once or once the refresh's
 *	  transaction is over (retire.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_RETIRE_H
#define SL_RETIRE_H

#include "nodes/pg_list.h"

/* old storage of this size or more is dropped after the commit */
#define RETIRE_MIN_BYTES ((Size) 64 * 1024 * 1024)

extern void retire_old_heap(Oid serving, Oid oldheap);
extern void retire_name_toast(Oid serving);
extern void retire_drop_leftovers(Oid serving);
extern void retire_launch_cleanup(List *relids);

#endif							/* SL_RETIRE_H */
