/*-------------------------------------------------------------------------
 *
 * apply_delta.c
 *	  Mode 'apply' following the change: only the keys whose layers changed
 *	  since the last refresh are recomputed, looked up in the serving table
 *	  and compared.
 *
 * The whole comparison (apply.c) reads the serving table and merges every
 * key, so it costs several times a copy of the table however little
 * changed.  But between two refreshes the batch layer usually stays as it
 * is (it is rewritten once a day or an hour) and the speed layer changes
 * in a few keys.  So the last refresh leaves, in serving_layer_apply_state
 * (apply_state.c), the number of batch rows it read and a hash of them,
 * and for every speed group (the speed rows of a key, merged) its key and
 * a hash of its merged values.  The next refresh then
 *	  1. reads the speed layer into its groups, as the C merge does
 *		 (fast_merge.c), and compares them with the saved ones: the keys
 *		 whose group is new, changed or gone are the changed keys;
 *	  2. reads the batch layer once, hashing every row, and keeps the rows
 *		 of the changed keys (by a set of their key hashes);
 *	  3. if the batch rows and their hash are the saved ones, merges each
 *		 changed key's batch rows with its speed group, exactly as the C
 *		 merge does, and looks its serving row up by a unique index on the
 *		 key (apply_lookup.c): unchanged, one UPDATE, one INSERT, or, for a
 *		 key gone from both layers, one DELETE (apply_rows.c).
 * What it reads is both layers once, and the serving rows of the changed
 * keys; what it writes is the rows that changed.  If the batch layer
 * changed, apply.c compares in full instead.  The hashes are 64 bits: a
 * batch layer taken for unchanged needs its row hash to collide.
 *
 * The batch rows are hashed as a multiset (the sum of their hashes), so
 * that their order, which a VACUUM or an UPDATE that changes nothing can
 * change, does not matter; a row hashes by its values' images, varlena
 * values detoasted, as apply_compare.c hashes rows.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "common/hashfn.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "apply_compare.h"
#include "apply_delta.h"
#include "fast_merge.h"
#include "heap_writer.h"
#include "layer_read.h"
#include "settings.h"

struct DeltaScan
{
	const MergePlan *plan;
	int			ncols;
	FastColumn *cols;
	Size		budget;
	MemoryContext cxt;
	MemoryContext rowcxt;		/* reset per row */
	GroupTable	speed;			/* speed groups; matched: the key changed */
	GroupTable	batch;			/* batch rows of changed key hashes, grouped */
	HashSet		changed;		/* hashes of the changed keys */
	bool		over_budget;	/* the speed groups did not fit */
	bool		collect;
	bool		stored;			/* batch rows are the table's tuples */
	int64		speed_rows;
	int64		batch_rows;
	uint64		batch_hash;
	int64		changed_keys;
	char	  **gone;			/* saved entries of keys gone from speed */
	int			ngone;
	int			maxgone;
	Datum	   *values;
	bool	   *nulls;
	/* delta_apply() */
	HeapWriter *writer;
	KeyLookup  *lookup;
	const RowShape *shape;
	ApplyChanges *ch;
	bool		deleting;
};

/*
 * group_hash
 *		Hash of a speed group: its key and its accumulators as they stand
 *		(not their results, which could raise an overflow error that the
 *		merge with the batch value would not).
 */
static uint64
group_hash(DeltaScan *ds, Group *g)
{
	uint64		h = UINT64CONST(0x3c6ef372fe94f82b);

	for (int i = 0; i < ds->ncols; i++)
	{
		FastColumn *col = &ds->cols[i];
		Acc		   *acc = &g->acc[i];
		uint64		v;

		if (acc->isnull)
			v = UINT64CONST(0x7f4a7c159e3779b9) + i;
		else if (col->acc == ACC_SUM_INT)
		{
			uint64		halves[2];

			StaticAssertStmt(sizeof(halves) == sizeof(INT128),
							 "INT128 is not two 64-bit halves");
			memcpy(halves, &acc->v.isum, sizeof(halves));
			v = sl_mix64(halves[0] ^ sl_mix64(halves[1] + i));
		}
		else
			v = sl_image_hash(acc->v.value, col->typbyval, col->typlen, i);
		h = hash_combine64(h, v);
	}
	return h;
}

/* a speed row into its group; the groups' memory checked every 1024 rows */
static void
speed_row(TupleTableSlot *slot, void *arg)
{
	DeltaScan  *ds = arg;
	uint64		h;
	Group	   *g;
	MemoryContext oldcxt;

	ds->speed_rows++;
	if (ds->over_budget)
		return;
	h = group_key_hash(ds->cols, ds->ncols, slot->tts_values, slot->tts_isnull);
	g = group_table_find(&ds->speed, ds->cols, ds->ncols, h, slot->tts_values,
						 slot->tts_isnull, true);
	oldcxt = MemoryContextSwitchTo(ds->speed.cxt);
	for (int i = 0; i < ds->ncols; i++)
		if (ds->cols[i].acc != ACC_KEY)
			acc_add(&ds->cols[i], &g->acc[i], slot->tts_values[i],
					slot->tts_isnull[i]);
	MemoryContextSwitchTo(oldcxt);
	if ((ds->speed_rows & 1023) == 0 &&
		MemoryContextMemAllocated(ds->speed.cxt, true) > ds->budget)
	{
		ds->over_budget = true;
		group_table_reset(&ds->speed);
	}
}

/*
 * delta_read_speed
 *		Step 1's reading: the speed layer into its groups, under the active
 *		snapshot; NULL if they do not fit serving_layer.fast_merge_memory
 *		(the whole comparison then spills as the C merge does).
 */
DeltaScan *
delta_read_speed(const MergePlan *plan)
{
	DeltaScan  *ds = palloc0(sizeof(DeltaScan));
	MemoryContext oldcxt;
	LayerReader *speed;

	ds->cxt = AllocSetContextCreate(CurrentMemoryContext,
									"serving_layer apply delta",
									ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(ds->cxt);
	ds->plan = plan;
	ds->ncols = plan->ncolumns;
	ds->cols = fast_columns(plan);
	ds->budget = (Size) sl_fast_merge_memory * 1024;
	ds->rowcxt = AllocSetContextCreate(ds->cxt, "serving_layer apply delta row",
									   ALLOCSET_DEFAULT_SIZES);
	ds->values = palloc(sizeof(Datum) * ds->ncols);
	ds->nulls = palloc(sizeof(bool) * ds->ncols);
	group_table_init(&ds->speed, Max(Min(ds->budget / 32, 1024 * 1024), 8192));
	group_table_init(&ds->batch, 64 * 1024);
	hashset_init(&ds->changed, 0, ds->budget);

	speed = layer_open(plan, true);
	layer_read(speed, LAYER_ALL, speed_row, ds);
	layer_close(speed);
	MemoryContextSwitchTo(oldcxt);
	/* after the last rows too: a small speed layer is checked only here */
	if (ds->over_budget ||
		MemoryContextMemAllocated(ds->speed.cxt, true) > ds->budget)
	{
		delta_end(ds);
		return NULL;
	}
	return ds;
}

/* the key columns of a saved entry at *p into ds->values/nulls */
static void
restore_key(DeltaScan *ds, char **p)
{
	for (int i = 0; i < ds->ncols; i++)
	{
		ds->nulls[i] = true;
		ds->values[i] = (Datum) 0;
		if (ds->cols[i].acc == ACC_KEY)
			ds->values[i] = datumRestore(p, &ds->nulls[i]);
	}
}

/*
 * The changed keys are a selection of the keys, and a selection can share
 * the low bits of its hashes (say, keys picked by hashtext(key) % 1024,
 * which are the low bits of the key hash here): the open-addressing tables
 * that hold only changed keys index them by the hash mixed once more, or
 * their entries cluster and lookups walk the clusters (measured: 112 probes
 * a batch row, a third of the refresh).
 */
#define CHANGED_HASH(h)	sl_mix64(h)

/* add a key hash to the changed set */
static void
mark_changed(DeltaScan *ds, uint64 h)
{
	bool		full = false;

	(void) hashset_add(&ds->changed, CHANGED_HASH(h), (Size) 1 << 40, &full);
	ds->changed_keys++;
}

/*
 * delta_compare_speed
 *		Step 1's comparison with the saved groups (NULL: none): each
 *		current group is marked (matched) when its key changed, and the
 *		saved keys gone from the speed layer are kept; the hashes of both
 *		go into the changed set.
 */
void
delta_compare_speed(DeltaScan *ds, bytea *saved)
{
	char	   *p;
	char	   *end;
	MemoryContext oldcxt = MemoryContextSwitchTo(ds->cxt);

	for (uint64 i = 0; i <= ds->speed.mask; i++)
		if (ds->speed.tags[i] != 0)
			ds->speed.groups[i]->matched = true;
	p = saved != NULL ? VARDATA_ANY(saved) : NULL;
	end = saved != NULL ? p + VARSIZE_ANY_EXHDR(saved) : NULL;
	while (p != NULL && p < end)
	{
		char	   *entry = p;
		uint64		savedhash;
		uint64		h;
		Group	   *g;

		CHECK_FOR_INTERRUPTS();
		memcpy(&savedhash, p, sizeof(uint64));
		p += sizeof(uint64);
		MemoryContextSwitchTo(ds->rowcxt);
		restore_key(ds, &p);
		h = group_key_hash(ds->cols, ds->ncols, ds->values, ds->nulls);
		g = group_table_find(&ds->speed, ds->cols, ds->ncols, h, ds->values,
							 ds->nulls, false);
		if (g != NULL && group_hash(ds, g) == savedhash)
			g->matched = false; /* the same group as last time */
		else if (g == NULL)
		{
			MemoryContextSwitchTo(ds->cxt);
			if (ds->ngone == ds->maxgone)
			{
				ds->maxgone = Max(64, ds->maxgone * 2);
				ds->gone = ds->gone == NULL ?
					palloc(sizeof(char *) * ds->maxgone) :
					repalloc(ds->gone, sizeof(char *) * ds->maxgone);
			}
			ds->gone[ds->ngone++] = entry;
			mark_changed(ds, h);
		}
		MemoryContextReset(ds->rowcxt);
	}
	for (uint64 i = 0; i <= ds->speed.mask; i++)
		if (ds->speed.tags[i] != 0 && ds->speed.groups[i]->matched)
			mark_changed(ds, ds->speed.groups[i]->hash);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * stored_row_hash
 *		Hash of a stored batch tuple as it is: its number of attributes,
 *		null bitmap and data, one pass over its bytes instead of deforming
 *		and hashing every value.  The same row stored another way (say,
 *		with a value moved out of line) hashes differently, which only
 *		costs a whole comparison.
 */
static uint64
stored_row_hash(TupleTableSlot *slot)
{
	HeapTuple	tuple = ((HeapTupleTableSlot *) slot)->tuple;
	HeapTupleHeader td = tuple->t_data;
	Size		start = offsetof(HeapTupleHeaderData, t_bits);
	uint32		shape = HeapTupleHeaderGetNatts(td) |
		((td->t_infomask & HEAP_HASNULL) ? 0x10000 : 0);

	return hash_bytes_extended((const unsigned char *) td + start,
							   tuple->t_len - start, shape);
}

/* step 2 for one batch row: hashed, and kept if its key changed */
static void
batch_row(TupleTableSlot *slot, void *arg)
{
	DeltaScan  *ds = arg;
	uint64		h;
	uint64		rowhash = UINT64CONST(0x6a09e667f3bcc908);
	MemoryContext oldcxt = MemoryContextSwitchTo(ds->rowcxt);

	ds->batch_rows++;
	h = group_key_hash(ds->cols, ds->ncols, slot->tts_values, slot->tts_isnull);
	if (ds->stored)
		rowhash = stored_row_hash(slot);
	else
	{
		for (int i = 0; i < ds->ncols; i++)
		{
			FastColumn *col = &ds->cols[i];
			uint64		v;

			if (slot->tts_isnull[i])
				v = UINT64CONST(0x7f4a7c159e3779b9) + i;
			else
				v = sl_image_hash(slot->tts_values[i], col->typbyval, col->typlen, i);
			rowhash = hash_combine64(rowhash, v);
		}
	}
	ds->batch_hash += sl_mix64(rowhash);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(ds->rowcxt);

	if (ds->collect && ds->changed.count > 0 &&
		hashset_contains(&ds->changed, CHANGED_HASH(h)))
	{
		Group	   *g;

		slot_getallattrs(slot);
		g = group_table_find(&ds->batch, ds->cols, ds->ncols, CHANGED_HASH(h),
							 slot->tts_values, slot->tts_isnull, true);
		oldcxt = MemoryContextSwitchTo(ds->batch.cxt);
		for (int i = 0; i < ds->ncols; i++)
			if (ds->cols[i].acc != ACC_KEY)
				acc_add(&ds->cols[i], &g->acc[i], slot->tts_values[i],
						slot->tts_isnull[i]);
		MemoryContextSwitchTo(oldcxt);
	}
}

/*
 * delta_read_batch
 *		Step 2: the batch layer read once under the active snapshot, its
 *		rows counted and hashed (a table scanned: as stored, only the keys
 *		deformed); with collect, the rows of the changed keys kept, grouped
 *		by key.
 */
void
delta_read_batch(DeltaScan *ds, bool collect)
{
	LayerReader *batch = layer_open(ds->plan, false);

	ds->collect = collect;
	ds->stored = layer_rows_stored(batch);
	layer_read(batch, LAYER_ROWS_BY_KEY, batch_row, ds);
	layer_close(batch);
}

/*
 * delta_counts
 *		What the reads found: batch rows and their hash, speed rows and
 *		groups, changed keys.
 */
void
delta_counts(DeltaScan *ds, int64 *batch_rows, int64 *batch_hash,
			 int64 *speed_rows, int64 *speed_groups, int64 *keys)
{
	*batch_rows = ds->batch_rows;
	*batch_hash = (int64) ds->batch_hash;
	*speed_rows = ds->speed_rows;
	*speed_groups = (int64) ds->speed.count;
	*keys = ds->changed_keys;
}

/*
 * changed_row
 *		The writer's sink in step 3: the new row of a changed key (or, when
 *		deleting, a row holding only the key of one gone from both layers)
 *		compared with its serving row and applied.
 */
static void
changed_row(TupleTableSlot *slot, void *arg)
{
	DeltaScan  *ds = arg;
	ApplyChanges *ch = ds->ch;
	ItemPointerData tid;

	CHECK_FOR_INTERRUPTS();
	if (!lookup_fetch(ds->lookup, slot, changes_oldslot(ch)))
	{
		if (!ds->deleting)
			changes_insert(ch, slot);
		return;
	}
	tid = changes_oldslot(ch)->tts_tid;
	if (ds->deleting)
		changes_delete(ch, &tid, false);
	else
		changes_update(ch, &tid, false, slot,
					   row_same_image(ds->shape, changes_oldslot(ch), slot));
}

/*
 * merged_row
 *		The merge of a key's batch group bg and speed group sg (either may
 *		be NULL) into the writer, as the C merge's write_group() makes it:
 *		the batch accumulator first, then the speed group's.
 */
static void
merged_row(DeltaScan *ds, Group *bg, Group *sg)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(ds->rowcxt);
	Group	   *first = bg != NULL ? bg : sg;

	for (int i = 0; i < ds->ncols; i++)
	{
		FastColumn *col = &ds->cols[i];
		Acc			acc = first->acc[i];

		if (col->acc == ACC_KEY)
		{
			ds->values[i] = acc.v.value;
			ds->nulls[i] = acc.isnull;
			continue;
		}
		if (bg != NULL && sg != NULL)
		{
			/* a copy of the value: acc_merge frees what it replaces */
			if (!acc.isnull && col->acc != ACC_SUM_INT)
				acc.v.value = datumCopy(acc.v.value, col->typbyval, col->typlen);
			acc_merge(col, &acc, &sg->acc[i]);
		}
		ds->nulls[i] = acc.isnull;
		ds->values[i] = acc.isnull ? (Datum) 0 : acc_result(col, &acc);
	}
	writer_put(ds->writer, ds->values, ds->nulls);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(ds->rowcxt);
}

/* a group's key as row arrays (measures NULL), for a lookup */
static void
group_key_row(DeltaScan *ds, Group *g)
{
	for (int i = 0; i < ds->ncols; i++)
	{
		ds->values[i] = g->acc[i].v.value;
		ds->nulls[i] = ds->cols[i].acc != ACC_KEY || g->acc[i].isnull;
	}
}

/*
 * delta_apply
 *		Step 3: the changed keys' new rows compared and applied: keys with
 *		batch rows, then changed speed groups without, then keys gone from
 *		both layers.  saved is the state delta_compare_speed() compared
 *		with (the gone keys point into it).
 */
void
delta_apply(DeltaScan *ds, bytea *saved, Relation rel, const RowShape *shape,
			KeyLookup *lookup, ApplyChanges *ch)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(ds->cxt);

	(void) saved;
	ds->shape = shape;
	ds->lookup = lookup;
	ds->ch = ch;
	ds->writer = writer_begin_sink(rel, changed_row, ds);
	for (uint64 i = 0; i <= ds->batch.mask; i++)
	{
		Group	   *bg = ds->batch.groups[i];
		Group	   *sg;

		if (ds->batch.tags[i] == 0)
			continue;
		group_key_row(ds, bg);
		/* (the batch groups are hashed with CHANGED_HASH) */
		sg = group_table_find(&ds->speed, ds->cols, ds->ncols,
							  group_key_hash(ds->cols, ds->ncols, ds->values,
											 ds->nulls),
							  ds->values, ds->nulls, false);
		if (sg != NULL)
			sg->matched = false;
		merged_row(ds, bg, sg);
	}
	for (uint64 i = 0; i <= ds->speed.mask; i++)
		if (ds->speed.tags[i] != 0 && ds->speed.groups[i]->matched)
			merged_row(ds, NULL, ds->speed.groups[i]);
	ds->deleting = true;
	for (int n = 0; n < ds->ngone; n++)
	{
		char	   *p = ds->gone[n] + sizeof(uint64);
		uint64		h;

		restore_key(ds, &p);
		h = group_key_hash(ds->cols, ds->ncols, ds->values, ds->nulls);
		if (group_table_find(&ds->batch, ds->cols, ds->ncols, CHANGED_HASH(h),
							 ds->values, ds->nulls, false) == NULL)
			writer_put(ds->writer, ds->values, ds->nulls);
	}
	(void) writer_end(ds->writer);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * delta_state
 *		The speed groups as the state to save: per group, its hash and its
 *		key columns (datumSerialize()).
 */
bytea *
delta_state(DeltaScan *ds)
{
	Size		size = VARHDRSZ;
	bytea	   *out;
	char	   *p;

	for (uint64 i = 0; i <= ds->speed.mask; i++)
	{
		Group	   *g = ds->speed.groups[i];

		if (ds->speed.tags[i] == 0)
			continue;
		size += sizeof(uint64);
		for (int c = 0; c < ds->ncols; c++)
			if (ds->cols[c].acc == ACC_KEY)
				size += datumEstimateSpace(g->acc[c].v.value, g->acc[c].isnull,
										   ds->cols[c].typbyval,
										   ds->cols[c].typlen);
	}
	if (size > MaxAllocSize)
		return NULL;
	out = palloc(size);
	SET_VARSIZE(out, size);
	p = VARDATA(out);
	for (uint64 i = 0; i <= ds->speed.mask; i++)
	{
		Group	   *g = ds->speed.groups[i];
		uint64		h;

		if (ds->speed.tags[i] == 0)
			continue;
		h = group_hash(ds, g);
		memcpy(p, &h, sizeof(uint64));
		p += sizeof(uint64);
		for (int c = 0; c < ds->ncols; c++)
			if (ds->cols[c].acc == ACC_KEY)
				datumSerialize(g->acc[c].v.value, g->acc[c].isnull,
							   ds->cols[c].typbyval, ds->cols[c].typlen, &p);
	}
	Assert(p == (char *) out + size);
	return out;
}

/*
 * delta_end
 *		Free everything the scan holds.
 */
void
delta_end(DeltaScan *ds)
{
	MemoryContextDelete(ds->cxt);
	pfree(ds);
}
