/*-------------------------------------------------------------------------
 *
 * batch_scan.h
 *	  Read a plain batch table with a table scan, for the C merge
 *	  (batch_scan.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_BATCH_SCAN_H
#define SL_BATCH_SCAN_H

#include "utils/relcache.h"

#include "merge_types.h"
#include "query_rows.h"

extern Relation batch_scan_open(const MergePlan *plan);
extern void batch_scan(Relation rel, int natts, QueryRowFn fn, void *arg);

#endif							/* SL_BATCH_SCAN_H */
