/*-------------------------------------------------------------------------
 *
 * layer_read.h
 *	  Read the rows of a batch or speed layer, in batch column order, by a
 *	  table scan or by a query, whichever gives the layer's rows
 *	  (layer_read.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_LAYER_READ_H
#define SL_LAYER_READ_H

#include "merge_types.h"
#include "query_rows.h"

typedef struct LayerReader LayerReader;

/* which columns layer_read() hands over */
typedef enum LayerColumns
{
	LAYER_KEYS,					/* the key columns (the others must not be
								 * read) */
	LAYER_ALL,					/* every column */
	LAYER_ROWS_BY_KEY			/* every column, but from a table scan only
								 * the keys deformed: for callbacks that copy
								 * the stored row (layer_stored_desc()) */
} LayerColumns;

extern LayerReader *layer_open(const MergePlan *plan, bool speed);
extern bool layer_rows_stored(const LayerReader *reader);
extern TupleDesc layer_stored_desc(const LayerReader *reader);
extern void layer_read(LayerReader *reader, LayerColumns columns,
					   QueryRowFn fn, void *arg);
extern void layer_close(LayerReader *reader);

#endif							/* SL_LAYER_READ_H */
