/*-------------------------------------------------------------------------
 *
 * apply_watch.h
 *	  Knowing whether anything but mode 'apply' changed a serving table
 *	  since its last refresh: the watch trigger and its log
 *	  (apply_watch.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_APPLY_WATCH_H
#define SL_APPLY_WATCH_H

#include "access/htup.h"
#include "access/tupdesc.h"
#include "utils/snapshot.h"

/* the name of the statement trigger that logs other changes */
#define APPLY_WATCH_TRIGGER "serving_layer_watch"

extern bool apply_watch_trigger(Oid relid, const char *name,
								Snapshot snapshot, int64 *version,
								bool *exists, bool *trusted);
extern void apply_watch_set(Oid relid, bool watch);
extern bool apply_watch_current(Oid relid, int64 *version);
extern bool apply_watch_logged(Oid relid, Snapshot snapshot, bool consume);

/* whether a row of a log table is one a refresh looks for */
typedef bool (*WatchLogMatch) (HeapTuple tuple, TupleDesc desc,
							   const void *arg);
extern bool apply_watch_log_scan(const char *logname, WatchLogMatch match,
								 const void *arg, Snapshot snapshot,
								 bool consume);

#endif							/* SL_APPLY_WATCH_H */
