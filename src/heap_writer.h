/*-------------------------------------------------------------------------
 *
 * heap_writer.h
 *	  Write rows into the new heap: frozen, in bulk, checked against the
 *	  serving table's constraints (heap_writer.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_HEAP_WRITER_H
#define SL_HEAP_WRITER_H

#include "executor/tuptable.h"
#include "utils/relcache.h"

typedef struct HeapWriter HeapWriter;

typedef void (*WriterSinkFn) (TupleTableSlot *slot, void *arg);

extern HeapWriter *writer_begin(Relation oldrel, Relation newrel);
extern HeapWriter *writer_begin_sink(Relation rel, WriterSinkFn fn,
									 void *arg);
extern void writer_put(HeapWriter *w, Datum *values, bool *nulls);
extern void writer_put_slot(HeapWriter *w, TupleTableSlot *src);
extern int64 writer_end(HeapWriter *w);

#endif							/* SL_HEAP_WRITER_H */
