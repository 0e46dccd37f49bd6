/*-------------------------------------------------------------------------
 *
 * util.h
 *	  Small helpers shared by several modules (util.c): the extension's
 *	  schema and relations, relation owners, elapsed time, starting the
 *	  extension's background workers and setting up their signals, running
 *	  one statement through SPI.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_UTIL_H
#define SL_UTIL_H

#include "access/htup.h"
#include "access/tupdesc.h"
#include "portability/instr_time.h"
#include "postmaster/bgworker.h"
#include "tcop/dest.h"

/* called for each row sl_spi_run() returns, in the caller's memory context */
typedef void (*SpiRowFn) (HeapTuple tuple, TupleDesc desc, void *arg);

/* how sl_spi_run() runs a statement; zeroed fields are the defaults */
typedef struct SpiCall
{
	Oid			run_as;			/* role to run as; InvalidOid: the current */
	bool		read_only;
	int			nargs;			/* parameters $1..$nargs */
	Oid		   *argtypes;
	Datum	   *values;
	const char *nulls;			/* 'n' for a NULL parameter; NULL: none */
	SpiRowFn	row_fn;			/* each row of the result */
	void	   *row_arg;
	DestReceiver *dest;			/* or: the rows straight to this receiver */
} SpiCall;

extern Oid	sl_extension_schema(void);
extern char *sl_qualified(const char *relname);
extern Oid	sl_relation_owner(Oid relid);
extern double sl_elapsed_ms(instr_time start);
extern bool sl_start_worker(const char *function, const char *name,
							Datum main_arg, const void *extra, Size extralen,
							BackgroundWorkerHandle **handle);
extern void sl_worker_unblock_signals(void);
extern uint64 sl_spi_run(const char *sql, int expected, const SpiCall *call);

#endif							/* SL_UTIL_H */
