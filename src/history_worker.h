/*-------------------------------------------------------------------------
 *
 * history_worker.h
 *	  Record failed refreshes in serving_layer_history from a background
 *	  worker, although the refresh's transaction rolls back
 *	  (history_worker.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_HISTORY_WORKER_H
#define SL_HISTORY_WORKER_H

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"

/* One history row of a failed call. */
typedef struct HistoryEntry
{
	char	   *target;
	TimestampTz started_at;
	const char *status;
	int64		batch_rows;
	int64		speed_rows;
	int64		output_rows;
	char	   *error;
} HistoryEntry;

extern void history_worker_prepare(void);
extern void history_record_failures(List *entries);

#endif							/* SL_HISTORY_WORKER_H */
