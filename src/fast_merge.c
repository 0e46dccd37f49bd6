/*-------------------------------------------------------------------------
 *
 * fast_merge.c
 *	  The merge for the common case, in C: keys of hashable types, measures
 *	  merged with sum, min or max over the built-in numeric types.
 *
 * The general merge is one GROUP BY over batch UNION ALL speed, which hashes
 * or sorts every batch row.  But a batch layer usually holds one row per key
 * and the speed layer is small, so here:
 *	  1. a first pass over the batch keys finds which key hashes occur more
 *		 than once (in a set of 32 bits per key, or a Bloom filter of ten
 *		 bits when the set would not fit, freed after the pass);
 *	  2. the speed layer is aggregated by key into a hash table in memory;
 *	  3. a second pass streams the batch rows: a row whose key hash occurs
 *		 once is merged with its speed group, if any, and written at once; a
 *		 row whose hash occurs more than once (a duplicate key, or a hash
 *		 collision) is aggregated into a second hash table;
 *	  4. those groups are merged with their speed groups and written, then
 *		 the speed groups no batch row matched.
 * The reads see one snapshot, and every row comes through the layer-reading
 * functions: a plain table with a table scan (the batch table's unchanged
 * rows copied as stored), anything else, such as a speed layer whose
 * values need casting, through its query (layer_read.c).  The
 * results are those of the GROUP BY: NULL keys group together, sums are
 * exact for integer and numeric types and raise the same overflow errors,
 * min and max use the types' ordering.
 *
 * Memory: serving_layer.fast_merge_memory bounds the key set of step 1,
 * then the speed groups, the duplicate hashes and duplicate groups of steps
 * 2-4 together.  When neither the key set nor the filter would fit, step 1
 * is skipped; when the speed groups (with the duplicates to come) would not
 * fit, both layers are partitioned by key hash into temporary files, the
 * first partitions kept in memory as far as the budget allows, and merged
 * partition by partition, each with steps 1-4 (spill.c).  Duplicate groups
 * that do not fit beside the speed groups are left in a temporary file for
 * another round (fm_write_groups).  So the C merge never needs the GROUP BY
 * for lack of memory.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "fast_merge_api.h"
#include "heap_writer.h"
#include "layer_read.h"
#include "merge_types.h"
#include "settings.h"
#include "fast_merge.h"

/*
 * write_group
 *		Write a group, merged with the other layer's group g2 if any.
 */
static void
write_group(FastMerge *fm, Group *g, Group *g2)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(fm->rowcxt);

	for (int i = 0; i < fm->ncols; i++)
	{
		FastColumn *col = &fm->cols[i];
		Acc			acc = g->acc[i];

		if (col->acc == ACC_KEY)
		{
			fm->values[i] = acc.v.value;
			fm->nulls[i] = acc.isnull;
			continue;
		}
		if (g2 != NULL)
		{
			/* a copy of the value: acc_merge frees what it replaces */
			if (!acc.isnull && col->acc != ACC_SUM_INT)
				acc.v.value = datumCopy(acc.v.value, col->typbyval, col->typlen);
			acc_merge(col, &acc, &g2->acc[i]);
		}
		fm->nulls[i] = acc.isnull;
		fm->values[i] = acc.isnull ? (Datum) 0 : acc_result(col, &acc);
	}
	writer_put(fm->writer, fm->values, fm->nulls);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(fm->rowcxt);
}

/*
 * fm_add_group
 *		Merge a row's measures (values, nulls) or a spilled group's
 *		accumulators (accs) into its key's group in table t, a new group
 *		if the key has none, the values kept in the table's memory.
 */
void
fm_add_group(FastMerge *fm, GroupTable *t, uint64 h, Datum *values,
			 bool *nulls, Acc *accs)
{
	Group	   *g = group_table_find(t, fm->cols, fm->ncols, h, values, nulls,
									 true);
	MemoryContext oldcxt = MemoryContextSwitchTo(t->cxt);

	for (int i = 0; i < fm->ncols; i++)
	{
		if (fm->cols[i].acc == ACC_KEY)
			continue;
		if (accs != NULL)
			acc_merge(&fm->cols[i], &g->acc[i], &accs[i]);
		else
			acc_add(&fm->cols[i], &g->acc[i], values[i], nulls[i]);
	}
	MemoryContextSwitchTo(oldcxt);
}

/* the memory the tables of steps 2-4 hold, the filter of spill.c's included */
Size
fm_groups_memory(FastMerge *fm)
{
	return MemoryContextMemAllocated(fm->speed.cxt, true) +
		MemoryContextMemAllocated(fm->dups.cxt, true) +
		(fm->duphashes.slots != NULL ?
		 sizeof(uint32) * (fm->duphashes.mask + 1) : 0) +
		keyfilter_bytes(&fm->speedfilter);
}

/*
 * step 2: a speed row into its group, spilling the groups when they are
 * full, or straight into its partition when the speed layer is known to
 * spill
 */
static void
speed_row(TupleTableSlot *slot, void *arg)
{
	FastMerge  *fm = arg;
	uint64		h;

	h = group_key_hash(fm->cols, fm->ncols, slot->tts_values, slot->tts_isnull);
	fm->speed_rows++;
	if (fm->speed_direct)
	{
		spill_speed_row(fm, slot, h);
		return;
	}
	fm_add_group(fm, &fm->speed, h, slot->tts_values, slot->tts_isnull, NULL);
	if ((fm->speed_rows & 1023) == 0 && fm_groups_memory(fm) > fm->speed_limit)
		spill_speed_groups(fm);
}

/*
 * keys_flush
 *		Add the pending key hashes to the set (or the filter).  Their slots
 *		are fetched into the CPU cache first, all at once: the set is larger
 *		than the caches, and waiting for one slot after the other dominated
 *		this pass.  A hash the filter may hold already is taken for a
 *		duplicate: a false positive only costs its rows a trip through the
 *		table of duplicate groups.
 */
static void
keys_flush(FastMerge *fm)
{
	bool		filter = fm->keyfilter.nblocks > 0;

	for (int i = 0; i < fm->npending; i++)
	{
		if (filter)
			keyfilter_prefetch(&fm->keyfilter, fm->pending[i]);
		else
			SL_PREFETCH(&fm->keys.slots[HASHSET_SLOT(HASHSET_FP(fm->pending[i])) &
										fm->keys.mask]);
	}
	for (int i = 0; i < fm->npending && !fm->over_budget; i++)
	{
		bool		seen = filter ?
			keyfilter_test_add(&fm->keyfilter, fm->pending[i]) :
			!hashset_add(&fm->keys, fm->pending[i], fm->budget, &fm->over_budget);

		if (seen)
			(void) hashset_add(&fm->duphashes, fm->pending[i],
							   fm->budget - keyfilter_bytes(&fm->keyfilter),
							   &fm->over_budget);
	}
	fm->npending = 0;
}

/* step 1: a batch key into the set of hashes */
static void
batch_key(TupleTableSlot *slot, void *arg)
{
	FastMerge  *fm = arg;
	uint64		h;

	if (fm->over_budget)
		return;
	h = group_key_hash(fm->cols, fm->ncols, slot->tts_values, slot->tts_isnull);
	fm->pending[fm->npending++] = h;
	if (fm->npending == lengthof(fm->pending))
		keys_flush(fm);
}

/*
 * dup_row
 *		A batch row of a duplicate hash into its group; when the groups
 *		fill the budget, a row of a key that has no group yet is kept in a
 *		temporary file for the next round (fm_write_groups).
 */
static void
dup_row(FastMerge *fm, TupleTableSlot *slot, uint64 h)
{
	uint64		before = fm->dups.count;

	if (fm->dups_full &&
		group_table_find(&fm->dups, fm->cols, fm->ncols, h, slot->tts_values,
						 slot->tts_isnull, false) == NULL)
	{
		spill_row_write(fm, &fm->dupfile, h, slot);
		return;
	}
	fm_add_group(fm, &fm->dups, h, slot->tts_values, slot->tts_isnull, NULL);
	if (fm->dups.count != before && (fm->dups.count & 63) == 0 &&
		fm_groups_memory(fm) > fm->budget)
		fm->dups_full = true;
}

/*
 * fm_batch_row_hashed
 *		Step 3 for a batch row of key hash h, its keys deformed: written at
 *		once, or kept with its duplicates.
 */
void
fm_batch_row_hashed(FastMerge *fm, TupleTableSlot *slot, uint64 h)
{
	Group	   *g;
	MemoryContext oldcxt;

	fm->batch_rows++;
	if (fm->duphashes.count > 0 && hashset_contains(&fm->duphashes, h))
	{
		slot_getallattrs(slot);
		dup_row(fm, slot, h);
		return;
	}

	g = group_table_find(&fm->speed, fm->cols, fm->ncols, h, slot->tts_values, slot->tts_isnull, false);
	if (g == NULL)
	{
		/* a key of the batch only: the row as it is */
		if (layer_rows_stored(fm->batch))
			writer_put_slot(fm->writer, slot);
		else
			writer_put(fm->writer, slot->tts_values, slot->tts_isnull);
		return;
	}

	/* the batch value first, then the speed group's, as the GROUP BY adds */
	g->matched = true;
	slot_getallattrs(slot);
	oldcxt = MemoryContextSwitchTo(fm->rowcxt);
	for (int i = 0; i < fm->ncols; i++)
	{
		FastColumn *col = &fm->cols[i];
		Acc			acc;

		fm->values[i] = slot->tts_values[i];
		fm->nulls[i] = slot->tts_isnull[i];
		if (col->acc == ACC_KEY)
			continue;
		acc.isnull = true;
		acc_add(col, &acc, slot->tts_values[i], slot->tts_isnull[i]);
		acc_merge(col, &acc, &g->acc[i]);
		fm->nulls[i] = acc.isnull;
		fm->values[i] = acc.isnull ? (Datum) 0 : acc_result(col, &acc);
	}
	writer_put(fm->writer, fm->values, fm->nulls);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(fm->rowcxt);
}

/* step 3 as a callback of the batch reads */
static void
batch_row(TupleTableSlot *slot, void *arg)
{
	FastMerge  *fm = arg;

	fm_batch_row_hashed(fm, slot,
						group_key_hash(fm->cols, fm->ncols, slot->tts_values,
									   slot->tts_isnull));
}

/*
 * group_key
 *		A group's key as row arrays, for looking it up in the other table.
 */
static void
group_key(FastMerge *fm, Group *g, Datum *values, bool *nulls)
{
	for (int i = 0; i < fm->ncols; i++)
	{
		values[i] = g->acc[i].v.value;
		nulls[i] = fm->cols[i].acc != ACC_KEY || g->acc[i].isnull;
	}
}

/*
 * fm_write_groups
 *		Step 4: the duplicate groups with their speed groups, round after
 *		round while rows were left in a file, then the speed groups no
 *		batch row matched.  The tables are empty afterwards.
 */
void
fm_write_groups(FastMerge *fm)
{
	Datum	   *values = palloc(sizeof(Datum) * fm->ncols);
	bool	   *nulls = palloc(sizeof(bool) * fm->ncols);

	for (;;)
	{
		BufFile    *left;
		TupleTableSlot *slot;
		uint64		h;

		for (uint64 i = 0; i <= fm->dups.mask; i++)
		{
			Group	   *g = fm->dups.groups[i];
			Group	   *sg;

			if (fm->dups.tags[i] == 0)
				continue;
			CHECK_FOR_INTERRUPTS();
			group_key(fm, g, values, nulls);
			sg = group_table_find(&fm->speed, fm->cols, fm->ncols, g->hash, values, nulls, false);
			if (sg != NULL)
				sg->matched = true;
			write_group(fm, g, sg);
		}
		group_table_reset(&fm->dups);
		fm->dups_full = false;
		if (fm->dupfile == NULL)
			break;
		/* the next round: the rows left over, which may leave some again */
		left = fm->dupfile;
		fm->dupfile = NULL;
		spill_file_rewind(left);
		while ((slot = spill_row_read(fm, left, &h)) != NULL)
		{
			CHECK_FOR_INTERRUPTS();
			dup_row(fm, slot, h);
		}
		BufFileClose(left);
	}
	for (uint64 i = 0; i <= fm->speed.mask; i++)
	{
		Group	   *g = fm->speed.groups[i];

		/* the groups lie in memory in another order: fetch ahead */
		if (i + 16 <= fm->speed.mask)
			SL_PREFETCH(fm->speed.groups[i + 16]);
		if (fm->speed.tags[i] == 0 || g->matched)
			continue;
		CHECK_FOR_INTERRUPTS();
		write_group(fm, g, NULL);
	}
	group_table_reset(&fm->speed);
	pfree(values);
	pfree(nulls);
}

/*
 * reltuples_of
 *		pg_class.reltuples of a relation (-1 or 0 when unknown).
 */
static float4
reltuples_of(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	float4		reltuples = 0;

	if (HeapTupleIsValid(tup))
	{
		reltuples = ((Form_pg_class) GETSTRUCT(tup))->reltuples;
		ReleaseSysCache(tup);
	}
	return reltuples;
}

/*
 * key_pass
 *		Step 1, with the set of key hashes when it fits the budget (from
 *		the batch table's reltuples), else with a filter of them in half the
 *		budget, if that gives six bits a key; else, or when the duplicate
 *		hashes do not fit after all, the duplicates are found per partition
 *		instead (global_dups false).
 */
static void
key_pass(FastMerge *fm)
{
	uint64		expected = fm->batch_reltuples > 0 ? (uint64) fm->batch_reltuples : 0;

	if (expected * 10 / 7 * sizeof(uint32) <= fm->budget)
		hashset_init(&fm->keys, expected, fm->budget);
	else if (expected * 6 / 8 <= fm->budget / 2)
		keyfilter_init(&fm->keyfilter, expected, fm->budget / 2);
	else
	{
		fm->over_budget = true;
		return;
	}
	layer_read(fm->batch, LAYER_KEYS, batch_key, fm);
	keys_flush(fm);
	if (fm->keys.slots != NULL)
		pfree(fm->keys.slots);
	fm->keys.slots = NULL;
	keyfilter_free(&fm->keyfilter);
	fm->global_dups = !fm->over_budget;
}

/*
 * fast_merge
 *		Compute the new contents into writer; *merged_by says how, for the
 *		verbose build line.
 */
void
fast_merge(const MergePlan *plan, HeapWriter *writer, int64 *batch_rows,
		   int64 *speed_rows, char **merged_by)
{
	FastMerge  *fm = palloc0(sizeof(FastMerge));
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "serving_layer fast merge",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext oldcxt = MemoryContextSwitchTo(cxt);

	fm->cxt = cxt;
	fm->budget = (Size) sl_fast_merge_memory * 1024;
	fm->ncols = plan->ncolumns;
	fm->cols = fast_columns(plan);
	fm->writer = writer;
	fm->values = palloc(sizeof(Datum) * fm->ncols);
	fm->nulls = palloc(sizeof(bool) * fm->ncols);
	fm->rowcxt = AllocSetContextCreate(cxt, "serving_layer fast merge row",
									   ALLOCSET_DEFAULT_SIZES);
	initStringInfo(&fm->sbuf);
	/* blocks of groups of 1MB, smaller on a small budget */
	group_table_init(&fm->speed, Max(Min(fm->budget / 32, 1024 * 1024), 8192));
	group_table_init(&fm->dups, Max(Min(fm->budget / 32, 1024 * 1024), 8192));
	fm->group_bytes = offsetof(Group, acc) + sizeof(Acc) * fm->ncols + 32;
	fm->batch_reltuples = reltuples_of(plan->batch);
	fm->speed_reltuples = reltuples_of(plan->speed);
	hashset_init(&fm->duphashes, 0, fm->budget);

	/* every read sees the snapshot of the build (build.c) */
	PushActiveSnapshot(GetActiveSnapshot());

	fm->batch = layer_open(plan, false);

	/*
	 * The batch keys first, so that their set and the speed groups never
	 * take memory together.  When the speed layer is known to spill (from
	 * its reltuples), its partitions could find their duplicates from their
	 * own batch rows instead, but knowing them for the whole batch layer
	 * lets the batch rows that merge with nothing be written at once and
	 * the first partitions stay in memory (spill.c), which saves more than
	 * the pass costs (about a fifth of the refresh at 5M keys and 100 %).
	 */
	fm->speed_limit = fm->budget;
	key_pass(fm);
	if (!fm->global_dups)
	{
		/* incomplete: found per partition */
		pfree(fm->duphashes.slots);
		hashset_init(&fm->duphashes, 0, fm->budget);
	}
	if (fm->speed_reltuples * fm->group_bytes > fm->budget)
	{
		fm->speed_limit = Min(fm->budget, SPILL_TABLE_BYTES);
		fm->speed_direct = true;
		spill_start(fm);
	}
	{
		LayerReader *speed = layer_open(plan, true);

		layer_read(speed, LAYER_ALL, speed_row, fm);
		layer_close(speed);
	}

	/*
	 * The duplicate groups step 3 will make, one per duplicate hash, each
	 * taken as large as a speed group: with the speed groups, do they fit?
	 * Without the first pass, the batch has to be partitioned anyway.
	 */
	if (fm->spill == NULL)
	{
		Size		speed_mem = fm_groups_memory(fm);
		double		per_group = fm->speed.count > 0 ?
			(double) MemoryContextMemAllocated(fm->speed.cxt, true) / fm->speed.count :
			offsetof(Group, acc) + sizeof(Acc) * fm->ncols + 64;

		if (!fm->global_dups ||
			speed_mem + per_group * fm->duphashes.count > fm->budget)
			spill_speed_groups(fm);
	}
	else
		spill_speed_done(fm);

	if (fm->spill == NULL)
	{
		/* steps 3 and 4 in memory */
		layer_read(fm->batch, LAYER_ALL, batch_row, fm);
		fm_write_groups(fm);
		*merged_by = "in C";
	}
	else
	{
		/* the batch rows into the partitions, then partition by partition */
		layer_read(fm->batch, LAYER_ROWS_BY_KEY, spill_batch_row, fm);
		spill_merge(fm);
		ereport(DEBUG1,
				(errmsg_internal("C merge spilled: %d partitions, depth %d",
								 fm->spill_partitions, fm->spill_depth)));
		*merged_by = psprintf("in C, spilled to %d partitions (depth %d, %d kept in memory, %lld kB of temporary files, %lld batch rows written at once%s)",
							  fm->spill_partitions, fm->spill_depth,
							  fm->spill_inmem,
							  (long long) (fm->spill_bytes / 1024),
							  (long long) fm->batch_direct,
							  fm->global_dups ? "" : ", duplicates found per partition");
	}
	PopActiveSnapshot();
	if (fm->rowslot != NULL)
		ExecDropSingleTupleTableSlot(fm->rowslot);
	if (fm->rowdesc != NULL)
		FreeTupleDesc(fm->rowdesc);
	layer_close(fm->batch);

	MemoryContextSwitchTo(oldcxt);
	*merged_by = pstrdup(*merged_by);
	*batch_rows = fm->batch_rows;
	*speed_rows = fm->speed_rows;
	MemoryContextDelete(cxt);
}
