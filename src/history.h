/*-------------------------------------------------------------------------
 *
 * history.h
 *	  Record a refresh in serving_layer_history (history.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_HISTORY_H
#define SL_HISTORY_H

#include "datatype/timestamp.h"

extern void history_record(const char *target, TimestampTz started_at,
						   const char *status, int64 batch_rows,
						   int64 speed_rows, int64 output_rows,
						   const char *boundary, int64 changed_rows,
						   const char *error);

#endif							/* SL_HISTORY_H */
