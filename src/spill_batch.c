/*-------------------------------------------------------------------------
 *
 * spill_batch.c
 *	  The batch layer's rows when the C merge spills (spill.c): merged at
 *	  once when their partition stays in memory, written at once when they
 *	  can merge with nothing, else into their partition's file.
 *
 * A row can merge with nothing when its key is not among the spilled speed
 * keys, which a Bloom filter tells (group_table.c), and not a duplicate.
 * The filter is larger than the CPU caches (6MB at 5M speed keys), so that
 * testing each row as it came, one cache miss after the other, was 8 % of
 * a spilling refresh.  Rows from a table scan therefore wait in a ring of
 * RING_LAG rows, copied, while the filter's blocks of their keys are
 * fetched, and are tested RING_LAG rows later, when the block has arrived.
 * Rows from a query are tested at once.  The order of the rows in the new
 * heap changes, which nothing depends on.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "executor/tuptable.h"
#include "utils/memutils.h"

#include "fast_merge.h"
#include "heap_writer.h"
#include "layer_read.h"
#include "spill_file.h"

#define RING_LAG	16

struct BatchRing
{
	MemoryContext cxt;			/* the copies of the rows */
	TupleTableSlot *slot;		/* a row taken out of the ring */
	HeapTuple	tuples[RING_LAG];
	uint64		hashes[RING_LAG];
	int			head;			/* the oldest row */
	int			count;
};

/*
 * to_partition
 *		A batch row, its keys deformed, into the file of its partition p.
 */
static void
to_partition(FastMerge *fm, TupleTableSlot *slot, uint64 h, int p)
{
	SpillSet   *set = fm->spill;

	spill_row_write(fm, &set->rows[p], h, slot);
	set->nrows[p]++;
	if (!fm->global_dups)
		spill_write_hash(fm, &set->hashes[p], h);
}

/*
 * tested
 *		A row of a spilled partition whose key is not a duplicate, once the
 *		filter can be asked: written at once when its key is not a spilled
 *		speed key, else into its partition.
 */
static void
tested(FastMerge *fm, TupleTableSlot *slot, uint64 h)
{
	if (keyfilter_test(&fm->speedfilter, h))
	{
		to_partition(fm, slot, h, spill_part_of(fm->spill, h));
		return;
	}
	fm->batch_rows++;
	fm->batch_direct++;
	if (layer_rows_stored(fm->batch))
		writer_put_slot(fm->writer, slot);
	else
		writer_put(fm->writer, slot->tts_values, slot->tts_isnull);
}

/* the oldest row of the ring, tested and freed */
static void
ring_pop(FastMerge *fm)
{
	BatchRing  *ring = fm->ring;
	HeapTuple	tuple = ring->tuples[ring->head];

	ExecStoreHeapTuple(tuple, ring->slot, false);
	tested(fm, ring->slot, ring->hashes[ring->head]);
	ExecClearTuple(ring->slot);
	heap_freetuple(tuple);
	ring->head = (ring->head + 1) % RING_LAG;
	ring->count--;
}

/*
 * ring_push
 *		A row from the batch table's scan into the ring (its block of the
 *		filter fetched meanwhile), the oldest one tested first if full.
 */
static void
ring_push(FastMerge *fm, TupleTableSlot *slot, uint64 h)
{
	BatchRing  *ring = fm->ring;
	MemoryContext oldcxt;
	int			i;

	if (ring == NULL)
	{
		oldcxt = MemoryContextSwitchTo(fm->cxt);
		ring = fm->ring = palloc0(sizeof(BatchRing));
		ring->cxt = AllocSetContextCreate(fm->cxt, "serving_layer batch ring",
										  ALLOCSET_DEFAULT_SIZES);
		ring->slot = MakeSingleTupleTableSlot(layer_stored_desc(fm->batch),
											  &TTSOpsHeapTuple);
		MemoryContextSwitchTo(oldcxt);
	}
	keyfilter_prefetch(&fm->speedfilter, h);
	if (ring->count == RING_LAG)
		ring_pop(fm);
	i = (ring->head + ring->count) % RING_LAG;
	oldcxt = MemoryContextSwitchTo(ring->cxt);
	ring->tuples[i] = ExecCopySlotHeapTuple(slot);
	MemoryContextSwitchTo(oldcxt);
	ring->hashes[i] = h;
	ring->count++;
}

/*
 * spill_batch_row
 *		A batch row (a callback of the batch reads, only its keys deformed
 *		when it comes from a table scan): merged at once when its partition
 *		is in memory, into its partition when it is a duplicate or the
 *		speed keys are not known, else tested against the filter, later
 *		when it comes from a table scan.
 */
void
spill_batch_row(TupleTableSlot *slot, void *arg)
{
	FastMerge  *fm = arg;
	SpillSet   *set = fm->spill;
	uint64		h = group_key_hash(fm->cols, fm->ncols, slot->tts_values,
								   slot->tts_isnull);
	int			p = spill_part_of(set, h);

	if (p < set->nmem)
		fm_batch_row_hashed(fm, slot, h);
	else if (!fm->filter_batch ||
			 (fm->duphashes.count > 0 && hashset_contains(&fm->duphashes, h)))
		to_partition(fm, slot, h, p);
	else if (layer_rows_stored(fm->batch))
		ring_push(fm, slot, h);
	else
		tested(fm, slot, h);
}

/*
 * spill_batch_done
 *		The batch layer is read: test the rows left in the ring, and free it.
 */
void
spill_batch_done(FastMerge *fm)
{
	BatchRing  *ring = fm->ring;

	if (ring == NULL)
		return;
	while (ring->count > 0)
		ring_pop(fm);
	ExecDropSingleTupleTableSlot(ring->slot);
	MemoryContextDelete(ring->cxt);
	pfree(ring);
	fm->ring = NULL;
}
