/*-------------------------------------------------------------------------
 *
 * spill.c
 *	  The C merge when its groups do not fit serving_layer.fast_merge_memory:
 *	  both layers partitioned by key hash into temporary files, and merged
 *	  partition by partition.
 *
 * As a hash join does with its batches (nodeHash.c, nodeHashjoin.c), rows go
 * to BufFiles by bits of their key hash, here bits 32 and up (the group
 * table's slots use the low bits, its tags the top seven).  The speed groups
 * are written when their table fills the budget, as groups already merged
 * (a key can then have a group in several writes of one partition, merged
 * again when the partition is read), the batch rows as their stored tuples
 * with their hash, and, when the first pass could not find the duplicate
 * hashes of the whole batch layer, the hashes alone in a third file, so
 * that each partition finds its own.  A partition is then merged as the
 * whole layers are in memory: its key hashes (when needed), its speed
 * groups, its batch rows, its duplicate groups and its unmatched speed
 * groups.  A partition that still does not fit is split again by the next
 * bits of the hash (recursively), unless splitting did not divide it, or no
 * bits are left: then it is merged beyond the budget, which only many rows
 * of one key hash can cause.
 *
 * The temporary files belong to the transaction's resource owner: an error
 * removes them, and each is closed, and so removed, when its partition is
 * done.  Every batch row still comes through the layer-reading functions
 * (fast_merge.c reads the layers and hands the rows here); the files only
 * hold them until their partition is merged, in the same snapshot.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "port/pg_bitutils.h"
#include "storage/buffile.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "fast_merge.h"
#include "layer_read.h"

#define PART_SHIFT_FIRST	32	/* the first partition bit of a key hash */
#define PART_SHIFT_END		57	/* bits from here on are the table's tags */
#define MAX_PARTITIONS		256

struct SpillSet
{
	int			nparts;			/* a power of 2 */
	int			shift;			/* partition = (hash >> shift) % nparts */
	int			bits;			/* log2(nparts) */
	BufFile   **speed;			/* speed groups */
	BufFile   **rows;			/* batch rows */
	BufFile   **hashes;			/* batch key hashes (without global_dups) */
	int64	   *nspeed;
	int64	   *nrows;
	bool	   *nosplit;		/* splitting its parent did not divide it */
};

static inline int
part_of(SpillSet *set, uint64 h)
{
	return (int) ((h >> set->shift) & (set->nparts - 1));
}

/*
 * file_write / file_read
 *		Write to a temporary file, created on first use in the merge's
 *		memory context; read exactly len bytes, or nothing at the end of
 *		the file if eof_ok (false then).
 */
static void
file_write(FastMerge *fm, BufFile **file, const void *data, size_t len)
{
	if (*file == NULL)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(fm->cxt);

		*file = BufFileCreateTemp(false);
		MemoryContextSwitchTo(oldcxt);
	}
	BufFileWrite(*file, (void *) data, len);
	fm->spill_bytes += len;
}

static bool
file_read(BufFile *file, void *data, size_t len, bool eof_ok)
{
	size_t		got = BufFileRead(file, data, len);

	if (got == len)
		return true;
	if (got == 0 && eof_ok)
		return false;
	ereport(ERROR,
			(errcode_for_file_access(),
			 errmsg("could not read from a temporary file of the C merge: read only %zu of %zu bytes",
					got, len)));
	return false;				/* keep the compiler quiet */
}

static void
file_rewind(BufFile *file)
{
	if (BufFileSeek(file, 0, 0, SEEK_SET) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not rewind a temporary file of the C merge")));
}

static void
file_close(BufFile **file)
{
	if (*file != NULL)
		BufFileClose(*file);
	*file = NULL;
}

/*
 * record_write / record_read
 *		A record: its length, its key hash, its bytes; read into
 *		fm->readbuf (MAXALIGNed).
 */
static void
record_write(FastMerge *fm, BufFile **file, uint64 h, const void *data,
			 uint32 len)
{
	file_write(fm, file, &len, sizeof(len));
	file_write(fm, file, &h, sizeof(h));
	file_write(fm, file, data, len);
}

static bool
record_read(FastMerge *fm, BufFile *file, uint64 *h, uint32 *len)
{
	if (!file_read(file, len, sizeof(uint32), true))
		return false;
	file_read(file, h, sizeof(uint64), false);
	if (*len > fm->readbuf_size)
	{
		if (fm->readbuf != NULL)
			pfree(fm->readbuf);
		fm->readbuf_size = Max(*len, 2 * fm->readbuf_size);
		fm->readbuf = MemoryContextAlloc(fm->cxt, fm->readbuf_size);
	}
	file_read(file, fm->readbuf, *len, false);
	return true;
}

static void
pad(StringInfo buf)
{
	while (buf->len % MAXIMUM_ALIGNOF != 0)
		appendStringInfoChar(buf, '\0');
}

/*
 * group_encode / group_decode
 *		A group as bytes: a null flag per column, then each value at a
 *		MAXALIGNed offset (integer sums as their 128 bits, values passed by
 *		value as a Datum, others as their length and bytes), so that decoded
 *		values can point into the read buffer.
 */
static void
group_encode(FastMerge *fm, Acc *accs)
{
	StringInfo	buf = &fm->sbuf;

	resetStringInfo(buf);
	for (int i = 0; i < fm->ncols; i++)
		appendStringInfoChar(buf, accs[i].isnull ? 1 : 0);
	for (int i = 0; i < fm->ncols; i++)
	{
		FastColumn *col = &fm->cols[i];
		Acc		   *a = &accs[i];

		if (a->isnull)
			continue;
		pad(buf);
		if (col->acc == ACC_SUM_INT)
			appendBinaryStringInfo(buf, (char *) &a->v.isum, sizeof(INT128));
		else if (col->typbyval)
			appendBinaryStringInfo(buf, (char *) &a->v.value, sizeof(Datum));
		else
		{
			uint32		size = datumGetSize(a->v.value, false, col->typlen);

			appendBinaryStringInfo(buf, (char *) &size, sizeof(size));
			pad(buf);
			appendBinaryStringInfo(buf, DatumGetPointer(a->v.value), size);
		}
	}
}

static void
group_decode(FastMerge *fm, char *data, Datum *values, bool *nulls, Acc *accs)
{
	Size		off = fm->ncols;

	for (int i = 0; i < fm->ncols; i++)
	{
		nulls[i] = data[i] != 0;
		accs[i].isnull = nulls[i];
		values[i] = (Datum) 0;
	}
	for (int i = 0; i < fm->ncols; i++)
	{
		FastColumn *col = &fm->cols[i];

		if (nulls[i])
			continue;
		off = MAXALIGN(off);
		if (col->acc == ACC_SUM_INT)
		{
			memcpy(&accs[i].v.isum, data + off, sizeof(INT128));
			off += sizeof(INT128);
			continue;
		}
		if (col->typbyval)
		{
			memcpy(&values[i], data + off, sizeof(Datum));
			off += sizeof(Datum);
		}
		else
		{
			uint32		size;

			memcpy(&size, data + off, sizeof(size));
			off = MAXALIGN(off + sizeof(size));
			values[i] = PointerGetDatum(data + off);
			off += size;
		}
		accs[i].v.value = values[i];
	}
}

/*
 * set_create
 *		An empty set of nparts partitions by the hash bits from shift on.
 */
static SpillSet *
set_create(FastMerge *fm, int nparts, int shift)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(fm->cxt);
	SpillSet   *set = palloc0(sizeof(SpillSet));

	set->nparts = nparts;
	set->shift = shift;
	while ((1 << set->bits) < nparts)
		set->bits++;
	set->speed = palloc0(sizeof(BufFile *) * nparts);
	set->rows = palloc0(sizeof(BufFile *) * nparts);
	set->hashes = palloc0(sizeof(BufFile *) * nparts);
	set->nspeed = palloc0(sizeof(int64) * nparts);
	set->nrows = palloc0(sizeof(int64) * nparts);
	set->nosplit = palloc0(sizeof(bool) * nparts);
	fm->spill_partitions += nparts;
	MemoryContextSwitchTo(oldcxt);
	return set;
}

static void
set_free(SpillSet *set)
{
	for (int p = 0; p < set->nparts; p++)
	{
		file_close(&set->speed[p]);
		file_close(&set->rows[p]);
		file_close(&set->hashes[p]);
	}
	pfree(set->speed);
	pfree(set->rows);
	pfree(set->hashes);
	pfree(set->nspeed);
	pfree(set->nrows);
	pfree(set->nosplit);
	pfree(set);
}

/*
 * nparts_for
 *		How many partitions to make of bytes of tables, from shift on: each
 *		partition's share at most half the budget or SPILL_TABLE_BYTES, as
 *		far as the buffers of
 *		the files (three of BLCKSZ per partition) stay within an eighth of
 *		it and hash bits are left.
 */
static int
nparts_for(FastMerge *fm, double bytes, int shift)
{
	double		maxp = (double) fm->budget / 8 / (3 * BLCKSZ);
	double		target = Min(fm->budget / 2, SPILL_TABLE_BYTES);
	int			n = 2;

	while (n < MAX_PARTITIONS && 2 * n <= maxp &&
		   shift + pg_leftmost_one_pos32(2 * n) <= PART_SHIFT_END &&
		   bytes / n > target)
		n *= 2;
	return n;
}

/*
 * spill_speed_groups
 *		Write the speed groups to their partitions and empty their table;
 *		the first time, make the partitions, as many as the whole speed
 *		layer (estimated from its reltuples while rows are still to come)
 *		and, without the first pass, the batch key sets need.
 */
void
spill_speed_groups(FastMerge *fm)
{
	SpillSet   *set;

	/* measured on a table large enough for its fixed part not to count */
	if (fm->speed.count >= 4096)
		fm->group_bytes = (double) MemoryContextMemAllocated(fm->speed.cxt, true) /
			fm->speed.count;
	if (fm->spill == NULL)
	{
		double		bytes = MemoryContextMemAllocated(fm->speed.cxt, true);

		if (fm->speed_rows > 0 && fm->speed_reltuples > fm->speed_rows)
			bytes *= fm->speed_reltuples / fm->speed_rows;
		if (!fm->global_dups && fm->batch_reltuples > 0)
			bytes += fm->batch_reltuples * sizeof(uint32) * 2;
		fm->spill = set_create(fm, nparts_for(fm, bytes, PART_SHIFT_FIRST),
							   PART_SHIFT_FIRST);
	}
	set = fm->spill;
	for (uint64 i = 0; i <= fm->speed.mask; i++)
	{
		Group	   *g = fm->speed.groups[i];
		int			p;

		/* the groups lie in memory in another order: fetch ahead */
		if (i + 16 <= fm->speed.mask)
			SL_PREFETCH(fm->speed.groups[i + 16]);
		if (fm->speed.tags[i] == 0)
			continue;
		CHECK_FOR_INTERRUPTS();
		p = part_of(set, g->hash);
		group_encode(fm, g->acc);
		record_write(fm, &set->speed[p], g->hash, fm->sbuf.data, fm->sbuf.len);
		set->nspeed[p]++;
	}
	group_table_reset(&fm->speed);
	fm->speed_limit = Min(fm->budget, SPILL_TABLE_BYTES);
}

/*
 * spill_speed_row
 *		A speed row straight into its partition, as a group of one row: when
 *		the speed layer is known to spill, making its groups in memory first
 *		only to write them out costs more than it saves (the partition
 *		merges the rows of a key when it is read).  Keys are kept inline, as
 *		in the group table.
 */
void
spill_speed_row(FastMerge *fm, TupleTableSlot *slot, uint64 h)
{
	Acc		   *accs = palloc(sizeof(Acc) * fm->ncols);
	int			p;

	if (fm->spill == NULL)
	{
		double		bytes = fm->speed_reltuples * fm->group_bytes;

		if (!fm->global_dups && fm->batch_reltuples > 0)
			bytes += fm->batch_reltuples * sizeof(uint32) * 2;
		fm->spill = set_create(fm, nparts_for(fm, bytes, PART_SHIFT_FIRST),
							   PART_SHIFT_FIRST);
	}
	for (int i = 0; i < fm->ncols; i++)
	{
		FastColumn *col = &fm->cols[i];
		Datum		d = slot->tts_values[i];

		accs[i].isnull = slot->tts_isnull[i];
		if (accs[i].isnull)
			continue;
		if (col->acc == ACC_SUM_INT)
			accs[i].v.isum = int64_to_int128(col->typid == INT2OID ? DatumGetInt16(d) :
											 col->typid == INT4OID ? DatumGetInt32(d) :
											 DatumGetInt64(d));
		else if (col->acc == ACC_KEY && col->typlen == -1)
			accs[i].v.value = PointerGetDatum(PG_DETOAST_DATUM_PACKED(d));
		else
			accs[i].v.value = d;
	}
	p = part_of(fm->spill, h);
	group_encode(fm, accs);
	record_write(fm, &fm->spill->speed[p], h, fm->sbuf.data, fm->sbuf.len);
	fm->spill->nspeed[p]++;
}

/*
 * spill_row_write / spill_row_read
 *		A batch row with its key hash into a file, as its stored tuple (or
 *		one formed from the query's row); read back into fm->rowslot, all
 *		its columns deformed, or NULL at the end of the file.
 */
void
spill_row_write(FastMerge *fm, BufFile **file, uint64 h, TupleTableSlot *slot)
{
	HeapTuple	tuple;
	bool		shouldfree;

	if (fm->rowslot == NULL)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(fm->cxt);

		fm->rowdesc = layer_stored_desc(fm->batch) != NULL ?
			layer_stored_desc(fm->batch) :
			CreateTupleDescCopy(slot->tts_tupleDescriptor);
		fm->rowslot = MakeSingleTupleTableSlot(fm->rowdesc, &TTSOpsHeapTuple);
		MemoryContextSwitchTo(oldcxt);
	}
	tuple = ExecFetchSlotHeapTuple(slot, false, &shouldfree);
	record_write(fm, file, h, tuple->t_data, tuple->t_len);
	if (shouldfree)
		heap_freetuple(tuple);
}

TupleTableSlot *
spill_row_read(FastMerge *fm, BufFile *file, uint64 *h)
{
	uint32		len;

	if (!record_read(fm, file, h, &len))
		return NULL;
	fm->rowtup.t_len = len;
	fm->rowtup.t_data = (HeapTupleHeader) fm->readbuf;
	ItemPointerSetInvalid(&fm->rowtup.t_self);
	fm->rowtup.t_tableOid = InvalidOid;
	ExecStoreHeapTuple(&fm->rowtup, fm->rowslot, false);
	slot_getallattrs(fm->rowslot);
	return fm->rowslot;
}

/* a batch row into its partition (a callback of the batch reads) */
void
spill_batch_row(TupleTableSlot *slot, void *arg)
{
	FastMerge  *fm = arg;
	SpillSet   *set = fm->spill;
	uint64		h = group_key_hash(fm->cols, fm->ncols, slot->tts_values,
								   slot->tts_isnull);
	int			p = part_of(set, h);

	spill_row_write(fm, &set->rows[p], h, slot);
	set->nrows[p]++;
	if (!fm->global_dups)
		file_write(fm, &set->hashes[p], &h, sizeof(h));
}

static void merge_set(FastMerge *fm, SpillSet *set, int depth);

/*
 * split
 *		Partition p of set again, by the next bits of the hash, and merge
 *		the new partitions.  Records are copied as they are.
 */
static void
split(FastMerge *fm, SpillSet *set, int p, int depth)
{
	int			shift = set->shift + set->bits;
	SpillSet   *sub = set_create(fm, nparts_for(fm, set->nspeed[p] * fm->group_bytes +
												set->nrows[p] * sizeof(uint32) * 2,
												shift),
								 shift);
	uint64		h;
	uint32		len;

	if (set->speed[p] != NULL)
	{
		file_rewind(set->speed[p]);
		while (record_read(fm, set->speed[p], &h, &len))
		{
			int			q = part_of(sub, h);

			record_write(fm, &sub->speed[q], h, fm->readbuf, len);
			sub->nspeed[q]++;
		}
	}
	if (set->rows[p] != NULL)
	{
		file_rewind(set->rows[p]);
		while (record_read(fm, set->rows[p], &h, &len))
		{
			int			q = part_of(sub, h);

			CHECK_FOR_INTERRUPTS();
			record_write(fm, &sub->rows[q], h, fm->readbuf, len);
			sub->nrows[q]++;
		}
	}
	if (set->hashes[p] != NULL)
	{
		file_rewind(set->hashes[p]);
		while (file_read(set->hashes[p], &h, sizeof(h), true))
			file_write(fm, &sub->hashes[part_of(sub, h)], &h, sizeof(h));
	}
	for (int q = 0; q < sub->nparts; q++)
		sub->nosplit[q] = sub->nspeed[q] == set->nspeed[p] &&
			sub->nrows[q] == set->nrows[p];
	file_close(&set->speed[p]);
	file_close(&set->rows[p]);
	file_close(&set->hashes[p]);
	merge_set(fm, sub, depth + 1);
	set_free(sub);
}

/*
 * merge_partition
 *		Steps 1-4 of fast_merge.c for partition p of set, or split it when
 *		its key set or its speed groups do not fit.  Returns with the
 *		tables empty.
 */
static void
merge_partition(FastMerge *fm, SpillSet *set, int p, int depth)
{
	bool		can_split = !set->nosplit[p] &&
		set->shift + set->bits < PART_SHIFT_END;
	TupleTableSlot *slot;
	uint64		h;
	uint32		len;
	int64		n = 0;
	Datum	   *values;
	bool	   *nulls;
	Acc		   *accs;

	if (set->speed[p] == NULL && set->rows[p] == NULL)
		return;
	if (can_split && set->nspeed[p] * fm->group_bytes > fm->budget)
	{
		split(fm, set, p, depth);
		return;
	}

	/* step 1 for this partition: its key hashes, unless known already */
	if (!fm->global_dups && set->hashes[p] != NULL)
	{
		bool		full = false;
		Size		maxbytes = can_split ? fm->budget : SIZE_MAX / 4;

		hashset_init(&fm->keys, 0, maxbytes);
		file_rewind(set->hashes[p]);
		while (!full && file_read(set->hashes[p], &h, sizeof(h), true))
			if (!hashset_add(&fm->keys, h, maxbytes, &full))
				(void) hashset_add(&fm->duphashes, h, maxbytes, &full);
		pfree(fm->keys.slots);
		fm->keys.slots = NULL;
		if (full)
		{
			pfree(fm->duphashes.slots);
			hashset_init(&fm->duphashes, 0, fm->budget);
			split(fm, set, p, depth);
			return;
		}
	}

	/* step 2: the speed groups, merged again where a key was written twice */
	values = palloc(sizeof(Datum) * fm->ncols);
	nulls = palloc(sizeof(bool) * fm->ncols);
	accs = palloc(sizeof(Acc) * fm->ncols);
	if (set->speed[p] != NULL)
	{
		file_rewind(set->speed[p]);
		while (record_read(fm, set->speed[p], &h, &len))
		{
			group_decode(fm, fm->readbuf, values, nulls, accs);
			fm_add_group(fm, &fm->speed, h, values, nulls, accs);
			if ((++n & 255) == 0 && can_split &&
				MemoryContextMemAllocated(fm->speed.cxt, true) +
				sizeof(uint32) * (fm->duphashes.mask + 1) > fm->budget)
			{
				group_table_reset(&fm->speed);
				if (!fm->global_dups)
				{
					pfree(fm->duphashes.slots);
					hashset_init(&fm->duphashes, 0, fm->budget);
				}
				split(fm, set, p, depth);
				return;
			}
		}
	}
	pfree(values);
	pfree(nulls);
	pfree(accs);

	/* steps 3 and 4 */
	if (set->rows[p] != NULL)
	{
		file_rewind(set->rows[p]);
		while ((slot = spill_row_read(fm, set->rows[p], &h)) != NULL)
		{
			CHECK_FOR_INTERRUPTS();
			fm_batch_row_hashed(fm, slot, h);
		}
	}
	fm_write_groups(fm);
	if (!fm->global_dups)
	{
		pfree(fm->duphashes.slots);
		hashset_init(&fm->duphashes, 0, fm->budget);
	}
}

/* merge every partition of a set, closing each one's files when done */
static void
merge_set(FastMerge *fm, SpillSet *set, int depth)
{
	fm->spill_depth = Max(fm->spill_depth, depth);
	for (int p = 0; p < set->nparts; p++)
	{
		CHECK_FOR_INTERRUPTS();
		merge_partition(fm, set, p, depth);
		file_close(&set->speed[p]);
		file_close(&set->rows[p]);
		file_close(&set->hashes[p]);
	}
}

/*
 * spill_merge
 *		Merge the partitions the speed groups and the batch rows were
 *		written to.
 */
void
spill_merge(FastMerge *fm)
{
	SpillSet   *set = fm->spill;

	fm->spill = NULL;
	merge_set(fm, set, 1);
	set_free(set);
}
