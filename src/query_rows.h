/*-------------------------------------------------------------------------
 *
 * query_rows.h
 *	  Run a query through SPI and hand each row to a callback
 *	  (query_rows.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_QUERY_ROWS_H
#define SL_QUERY_ROWS_H

#include "executor/tuptable.h"

/* called once per row, in a memory context reset after each row */
typedef void (*QueryRowFn) (TupleTableSlot *slot, void *arg);

extern void query_rows(const char *sql, int nparams, Oid *paramtypes,
					   Datum *paramvalues, bool read_only, QueryRowFn fn,
					   void *arg);

#endif							/* SL_QUERY_ROWS_H */
