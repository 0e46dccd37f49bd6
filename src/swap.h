/*-------------------------------------------------------------------------
 *
 * swap.h
 *	  Take the serving tables' swap locks with bounded waits, and exchange
 *	  the storage of a serving table and its new heap (swap.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_SWAP_H
#define SL_SWAP_H

#include "nodes/pg_list.h"

#include "build.h"

extern int	swap_lock_serving_tables(List *relids, List *names);
extern void swap_storage(BuildResult *result);

#endif							/* SL_SWAP_H */
