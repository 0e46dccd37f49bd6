/*-------------------------------------------------------------------------
 *
 * spill.c
 *	  The C merge when its groups do not fit serving_layer.fast_merge_memory:
 *	  both layers partitioned by key hash into temporary files, and merged
 *	  partition by partition.
 *
 * As a hash join does with its batches (nodeHash.c, nodeHashjoin.c), rows go
 * to BufFiles by bits of their key hash, here bits 32 and up (the group
 * table's slots use the low bits, its tags the top seven), and, as a hybrid
 * hash join keeps its first batch, the first partitions stay in memory when
 * the budget allows: their speed groups stay in the group table and their
 * batch rows are merged as they are read.  The other speed rows are written
 * as rows (the speed layer known to spill, from its reltuples) or as groups
 * (the table full: a key can then have a group in several writes of one
 * partition, merged again when it is read), their key hashes into a filter
 * (group_table.c).  When the batch layer's duplicate keys are known (the
 * first pass, fast_merge.c), a batch row whose key is not in the filter
 * nor a duplicate merges with nothing: it is written at once, as it is;
 * only the others go to their partitions (a false positive of the filter
 * merges with nothing there).  Without the duplicates, all go, with their
 * hashes alone in a third file, so that each partition finds its own.  A
 * partition is then merged as the whole
 * layers are in memory: its key hashes (when needed), its speed groups,
 * its batch rows, its duplicate groups and its unmatched speed groups.  A
 * partition that still does not fit is split again by the next bits of
 * the hash (recursively), unless splitting did not divide it, or no bits
 * are left: then it is merged beyond the budget, which only many rows of
 * one key hash can cause.  The records are spill_file.c's.
 *
 * Each temporary file is closed, and so removed, when its partition is done
 * (an error removes them too).  Every row still comes through the layer
 * reads (fast_merge.c); the files only hold rows until their partition is
 * merged, in the same snapshot.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/tuptable.h"
#include "miscadmin.h"
#include "port/pg_bitutils.h"
#include "storage/buffile.h"
#include "utils/memutils.h"

#include "fast_merge.h"
#include "spill_file.h"

#define PART_SHIFT_FIRST	32	/* the first partition bit of a key hash */
#define PART_SHIFT_END		57	/* bits from here on are the table's tags */
#define MAX_PARTITIONS		256

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
part_close(SpillSet *set, int p)
{
	spill_file_close(&set->speed[p]);
	spill_file_close(&set->rows[p]);
	spill_file_close(&set->hashes[p]);
}

static void
set_free(SpillSet *set)
{
	for (int p = 0; p < set->nparts; p++)
		part_close(set, p);
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
 *		far as the buffers of the files (BLCKSZ per file, two or three per
 *		partition) stay within a quarter of it and hash bits are left.  (An
 *		eighth made 64 partitions at 16MB, too few for 5M speed keys: each
 *		was split again, and so written twice.)
 */
static int
nparts_for(FastMerge *fm, double bytes, int shift)
{
	double		maxp = (double) fm->budget / 4 /
		((fm->global_dups ? 2 : 3) * BLCKSZ);
	double		target = Min(fm->budget / 2, SPILL_TABLE_BYTES);
	int			n = 2;

	while (n < MAX_PARTITIONS && 2 * n <= maxp &&
		   shift + pg_leftmost_one_pos32(2 * n) <= PART_SHIFT_END &&
		   bytes / n > target)
		n *= 2;
	return n;
}

/*
 * top_set
 *		The first partitions, for bytes of speed groups: and, once the
 *		duplicates of the batch layer are known, the filter of the spilled
 *		speed keys, sized for the whole speed layer (as reltuples says, or
 *		twice the rows read so far) within half the budget.
 */
static SpillSet *
top_set(FastMerge *fm, double bytes)
{
	SpillSet   *set;

	if (!fm->global_dups && fm->batch_reltuples > 0)
		bytes += fm->batch_reltuples * sizeof(uint32) * 2;
	set = set_create(fm, nparts_for(fm, bytes, PART_SHIFT_FIRST),
					 PART_SHIFT_FIRST);
	if (fm->global_dups)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(fm->cxt);

		keyfilter_init(&fm->speedfilter,
					   (uint64) Max(fm->speed_reltuples, 2 * fm->speed_rows),
					   fm->budget / 2);
		MemoryContextSwitchTo(oldcxt);
		fm->filter_batch = true;
	}
	return set;
}

/*
 * spill_start
 *		Make the partitions before the speed layer is read, when it is known
 *		to spill, and keep the first ones in memory, as many as the budget
 *		holds beside the filter, the duplicate hashes and the files'
 *		buffers (a sixteenth is left for the duplicate groups).  Without
 *		the duplicates of the batch layer, none: a partition's batch rows
 *		must all be in one place to be merged.
 */
void
spill_start(FastMerge *fm)
{
	double		speed_bytes = fm->speed_reltuples * fm->group_bytes;
	SpillSet   *set = top_set(fm, speed_bytes);
	double		avail = (double) fm->budget - fm->budget / 16 -
		(double) set->nparts * 2 * BLCKSZ - keyfilter_bytes(&fm->speedfilter) -
		sizeof(uint32) * (fm->duphashes.mask + 1);

	fm->spill = set;
	if (!fm->global_dups || avail <= 0 || speed_bytes <= 0)
		return;
	set->nmem = (int) Min(set->nparts, avail / (speed_bytes / set->nparts));
	fm->speed_limit = (Size) avail + keyfilter_bytes(&fm->speedfilter) +
		sizeof(uint32) * (fm->duphashes.mask + 1);
	fm->mem_expected = fm->speed_reltuples * set->nmem / set->nparts;
	if (set->nmem > 0)
		group_table_reserve(&fm->speed, (uint64) fm->mem_expected);
}

/*
 * spill_speed_groups
 *		Write the speed groups to their partitions and empty their table
 *		(which then keeps no partition in memory); the first time, make the
 *		partitions, as many as the whole speed layer (estimated from its
 *		reltuples while rows are still to come) and, without the first
 *		pass, the batch key sets need.
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
		fm->spill = top_set(fm, bytes);
	}
	set = fm->spill;
	set->nmem = 0;
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
		p = spill_part_of(set, g->hash);
		spill_write_group(fm, &set->speed[p], g->hash, g->acc);
		set->nspeed[p]++;
		if (fm->filter_batch)
			keyfilter_add(&fm->speedfilter, g->hash);
	}
	group_table_reset(&fm->speed);
	fm->speed_limit = Min(fm->budget,
						  SPILL_TABLE_BYTES + keyfilter_bytes(&fm->speedfilter));
}

/*
 * shrink
 *		Keep only nmem partitions in memory: the other speed groups to their
 *		files, the kept ones into a new table, the old table freed.
 */
static void
shrink(FastMerge *fm, int nmem)
{
	SpillSet   *set = fm->spill;
	GroupTable	old = fm->speed;
	Datum	   *values = palloc(sizeof(Datum) * fm->ncols);
	bool	   *nulls = palloc(sizeof(bool) * fm->ncols);
	MemoryContext oldcxt = MemoryContextSwitchTo(fm->cxt);

	group_table_init(&fm->speed, old.arena_block);
	MemoryContextSwitchTo(oldcxt);
	fm->mem_expected = fm->mem_expected * nmem / set->nmem;
	group_table_reserve(&fm->speed, (uint64) fm->mem_expected);
	for (uint64 i = 0; i <= old.mask; i++)
	{
		Group	   *g = old.groups[i];
		int			p;

		if (old.tags[i] == 0)
			continue;
		p = spill_part_of(set, g->hash);
		if (p < nmem)
		{
			for (int c = 0; c < fm->ncols; c++)
			{
				values[c] = g->acc[c].v.value;
				nulls[c] = fm->cols[c].acc != ACC_KEY || g->acc[c].isnull;
			}
			fm_add_group(fm, &fm->speed, g->hash, values, nulls, g->acc);
			continue;
		}
		spill_write_group(fm, &set->speed[p], g->hash, g->acc);
		set->nspeed[p]++;
		keyfilter_add(&fm->speedfilter, g->hash);
	}
	MemoryContextDelete(old.cxt);
	fm->mem_rows = fm->mem_rows * nmem / set->nmem;
	set->nmem = nmem;
	pfree(values);
	pfree(nulls);
}

/*
 * check_projection
 *		With an eighth of the rows expected in memory read, whether their
 *		groups will fit beside the filter and the duplicate hashes, by what
 *		they take so far; if not, keep fewer partitions while the table is
 *		still small enough to copy.  (Should they outgrow their share later
 *		all the same, all are written out: spill_speed_row.)
 */
static void
check_projection(FastMerge *fm)
{
	SpillSet   *set = fm->spill;
	double		arrays = (double) (fm->speed.mask + 1) * (sizeof(Group *) + 1);
	double		table = MemoryContextMemAllocated(fm->speed.cxt, true);
	double		projected = arrays + (table - arrays) * fm->mem_expected /
		Max(fm->mem_rows, 1);
	double		room = (double) fm->speed_limit - (fm_groups_memory(fm) - table);
	int			nmem;

	if (projected <= room * 0.95)
		return;
	nmem = (int) (set->nmem * room * 0.9 / projected);
	if (nmem < set->nmem)
		shrink(fm, Max(nmem, 0));
}

/*
 * spill_speed_row
 *		A speed row when the speed layer is known to spill: into its group
 *		if its partition stays in memory, else as a row into its file
 *		(groups made first only to be written out cost more than they
 *		saved).  Groups kept in memory past their share are written too.
 */
void
spill_speed_row(FastMerge *fm, TupleTableSlot *slot, uint64 h)
{
	SpillSet   *set = fm->spill;
	int			p = spill_part_of(set, h);

	if (p < set->nmem)
	{
		fm_add_group(fm, &fm->speed, h, slot->tts_values, slot->tts_isnull,
					 NULL);
		if ((++fm->mem_rows & 1023) == 0)
		{
			if (!fm->mem_checked && fm->mem_rows >= fm->mem_expected / 8)
			{
				fm->mem_checked = true;
				check_projection(fm);
			}
			if (fm_groups_memory(fm) > fm->speed_limit)
				spill_speed_groups(fm);
		}
		return;
	}
	spill_write_row(fm, &set->speed[p], h, slot->tts_values, slot->tts_isnull);
	set->nspeed[p]++;
	if (fm->filter_batch)
		keyfilter_add(&fm->speedfilter, h);
}

/*
 * spill_speed_done
 *		The speed layer is read: write the groups left in the table, unless
 *		they are the partitions kept in memory.
 */
void
spill_speed_done(FastMerge *fm)
{
	if (fm->spill->nmem == 0)
		spill_speed_groups(fm);
}

static void merge_set(FastMerge *fm, SpillSet *set, int depth);

/* the records of file, as they are, into the files of sub by their hashes */
static void
copy_records(FastMerge *fm, BufFile *file, SpillSet *sub, BufFile **files,
			 int64 *counts)
{
	uint64		h;

	if (file == NULL)
		return;
	spill_file_rewind(file);
	while (spill_read_record(fm, file, &h) != SPILL_END)
	{
		int			q = spill_part_of(sub, h);

		CHECK_FOR_INTERRUPTS();
		spill_write_again(fm, &files[q]);
		counts[q]++;
	}
}

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

	copy_records(fm, set->speed[p], sub, sub->speed, sub->nspeed);
	copy_records(fm, set->rows[p], sub, sub->rows, sub->nrows);
	if (set->hashes[p] != NULL)
	{
		spill_file_rewind(set->hashes[p]);
		while (spill_read_hash(set->hashes[p], &h))
			spill_write_hash(fm, &sub->hashes[spill_part_of(sub, h)], h);
	}
	for (int q = 0; q < sub->nparts; q++)
		sub->nosplit[q] = sub->nspeed[q] == set->nspeed[p] &&
			sub->nrows[q] == set->nrows[p];
	part_close(set, p);
	merge_set(fm, sub, depth + 1);
	set_free(sub);
}

/* forget the duplicate hashes found for one partition */
static void
reset_duphashes(FastMerge *fm)
{
	if (fm->global_dups)
		return;
	pfree(fm->duphashes.slots);
	hashset_init(&fm->duphashes, 0, fm->budget);
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
	int64		n = 0;
	Datum	   *values;
	bool	   *nulls;
	Acc		   *accs;
	SpillRecord kind;

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
		spill_file_rewind(set->hashes[p]);
		while (!full && spill_read_hash(set->hashes[p], &h))
			if (!hashset_add(&fm->keys, h, maxbytes, &full))
				(void) hashset_add(&fm->duphashes, h, maxbytes, &full);
		pfree(fm->keys.slots);
		fm->keys.slots = NULL;
		if (full)
		{
			reset_duphashes(fm);
			split(fm, set, p, depth);
			return;
		}
	}

	/* step 2: the speed rows and groups, merged by key */
	values = palloc(sizeof(Datum) * fm->ncols);
	nulls = palloc(sizeof(bool) * fm->ncols);
	accs = palloc(sizeof(Acc) * fm->ncols);
	if (set->speed[p] != NULL)
	{
		spill_file_rewind(set->speed[p]);
		while ((kind = spill_read_record(fm, set->speed[p], &h)) != SPILL_END)
		{
			if (kind == SPILL_ROW)
			{
				spill_decode_row(fm, values, nulls);
				fm_add_group(fm, &fm->speed, h, values, nulls, NULL);
			}
			else
			{
				spill_decode_group(fm, values, nulls, accs);
				fm_add_group(fm, &fm->speed, h, values, nulls, accs);
			}
			if ((++n & 255) == 0 && can_split &&
				MemoryContextMemAllocated(fm->speed.cxt, true) +
				sizeof(uint32) * (fm->duphashes.mask + 1) > fm->budget)
			{
				group_table_reset(&fm->speed);
				reset_duphashes(fm);
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
		spill_file_rewind(set->rows[p]);
		while ((slot = spill_row_read(fm, set->rows[p], &h)) != NULL)
		{
			CHECK_FOR_INTERRUPTS();
			fm_batch_row_hashed(fm, slot, h);
		}
	}
	fm_write_groups(fm);
	reset_duphashes(fm);
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
		part_close(set, p);
	}
}

/*
 * spill_merge
 *		After the batch layer: the partitions kept in memory are finished
 *		(their duplicate groups and unmatched speed groups written), the
 *		filter is freed, and the partitions in the files are merged.
 */
void
spill_merge(FastMerge *fm)
{
	SpillSet   *set = fm->spill;

	spill_batch_done(fm);
	fm->spill = NULL;
	fm->spill_inmem = set->nmem;
	keyfilter_free(&fm->speedfilter);
	fm->filter_batch = false;
	if (set->nmem > 0)
		fm_write_groups(fm);
	merge_set(fm, set, 1);
	set_free(set);
}
