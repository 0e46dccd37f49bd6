/*-------------------------------------------------------------------------
 *
 * util.h
 *	  Small helpers shared by several modules (util.c): the extension's
 *	  schema and relations, relation owners, elapsed time, starting the
 *	  extension's background workers.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_UTIL_H
#define SL_UTIL_H

#include "portability/instr_time.h"
#include "postmaster/bgworker.h"

extern Oid	sl_extension_schema(void);
extern char *sl_qualified(const char *relname);
extern Oid	sl_relation_owner(Oid relid);
extern double sl_elapsed_ms(instr_time start);
extern bool sl_start_worker(const char *function, const char *name,
							Datum main_arg, const void *extra, Size extralen,
							BackgroundWorkerHandle **handle);

#endif							/* SL_UTIL_H */
