/*-------------------------------------------------------------------------
 *
 * history_worker.h
 *	  Record failed refreshes in serving_layer_history from a background
 *	  worker that waits for the refresh's transaction to end
 *	  (history_worker.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_HISTORY_WORKER_H
#define SL_HISTORY_WORKER_H

#include "datatype/timestamp.h"

/* the failure log of one refresh call, in dynamic shared memory */
typedef struct FailureLog FailureLog;

extern FailureLog *failure_log_begin(int nrows);
extern void failure_log_end(FailureLog *log);
extern void failure_log_target(FailureLog *log, int i, const char *target,
							   TimestampTz started_at, bool skipped);
extern void failure_log_forget(FailureLog *log, int i);
extern void failure_log_error(FailureLog *log, int culprit, int sqlerrcode,
							  const char *message);

#endif							/* SL_HISTORY_WORKER_H */
