/*-------------------------------------------------------------------------
 *
 * apply_batch_watch.h
 *	  Whether the batch table of a target in mode 'apply' changed since its
 *	  last refresh, without reading it (apply_batch_watch.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_APPLY_BATCH_WATCH_H
#define SL_APPLY_BATCH_WATCH_H

#include "utils/snapshot.h"

#include "definition.h"

/* the name of the statement trigger on batch tables */
#define BATCH_WATCH_TRIGGER "serving_layer_watch_batch"

extern int64 batch_watch_version(Oid batch, Snapshot snapshot);
extern void batch_watch_ensure(Oid batch);
extern void batch_watch_release(Oid batch);
extern bool batch_watch_logged(const TargetName *target, Snapshot snapshot,
							   bool consume);
extern void batch_watch_note(Oid relid);
extern void batch_watch_forget(const TargetName *target);

#endif							/* SL_APPLY_BATCH_WATCH_H */
