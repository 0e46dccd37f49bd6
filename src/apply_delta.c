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
 * (apply_state.c, apply_delta_state.c), the number of batch rows it read
 * and a hash of them, and for every speed group (the speed rows of a key,
 * merged) its key, a hash of its merged values and the key's batch part
 * (its batch rows merged).  The next refresh then
 *	  1. reads the speed layer into its groups, as the C merge does
 *		 (fast_merge.c), and compares them with the saved ones: the keys
 *		 whose group is new, changed or gone are the changed keys;
 *	  2. if the batch table's watch trigger logged no change since the last
 *		 refresh (apply_batch_watch.c), takes the batch parts the state
 *		 kept, and for a key new to the speed layer its serving row, which
 *		 the last refresh left as the merge of its batch rows alone; else
 *		 reads the batch layer once, hashing every row, and keeps the rows
 *		 of the speed keys and of the keys gone from it;
 *	  3. if the batch layer is unchanged (its rows and their hash are the
 *		 saved ones, or it was not read), merges each changed key's batch
 *		 part with its speed group, exactly as the C merge does, and finds
 *		 its serving row by a unique index on the key (apply_lookup.c) or,
 *		 when many keys changed, by one scan of the table
 *		 (apply_delta_scan.c): unchanged, one UPDATE, one INSERT, or, for a
 *		 key gone from both layers, one DELETE (apply_rows.c).  This step is
 *		 apply_delta_apply.c.
 * What it reads is the speed layer, the saved state, the serving rows of
 * the changed keys (or, when many changed, the serving table) and, when
 * its table changed or cannot be watched, the batch layer; what it writes is the rows that changed and the new state.
 * If the batch layer changed, apply.c compares in full instead.  The hashes
 * are 64 bits: a batch layer taken for unchanged needs its row hash to
 * collide.
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
#include "utils/memutils.h"
#include "utils/rel.h"

#include "apply_delta_int.h"
#include "apply_lookup.h"
#include "layer_read.h"
#include "settings.h"

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
	/* changed, until delta_compare_speed() finds it as it was saved */
	g->matched = true;
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
 *		(the whole comparison then spills as the C merge does).  expected
 *		is the number of groups the last refresh found (0: none): the table
 *		is sized for them at once, rather than rehashing every group each
 *		time it doubles on the way.
 */
DeltaScan *
delta_read_speed(const MergePlan *plan, int64 expected)
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
	/*
	 * At most a quarter of the budget in slots (a pointer and a tag each, up
	 * to 2.9 per group): the groups that last fit take more than that.
	 */
	if (expected > 0)
		group_table_reserve(&ds->speed,
							Min((uint64) expected,
								ds->budget / (12 * (sizeof(Group *) + 1))));
	group_table_init(&ds->batch, 64 * 1024);
	ds->collect_all = true;
	ds->parts = true;
	hashset_init(&ds->changed, 0, ds->budget);
	ds->tids = tidmap_create(ds->cxt);

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

/*
 * delta_link_part / delta_linked_part
 *		Link speed group sg to part, its key's batch part in ds->batch, just
 *		made or found for it; the part linked to sg, or NULL when none is:
 *		then a lookup in ds->batch finds it, if there is one.  A link saves
 *		the lookups of merging and saving (two to four random probes a
 *		changed key: a tenth of a refresh in which 10 % of the keys changed).
 */
void
delta_link_part(DeltaScan *ds, Group *sg, Group *part)
{
	MemoryContext oldcxt;

	if (sg->part != 0 || ds->npartv == PG_UINT32_MAX)
		return;
	if (ds->npartv == ds->maxpartv)
	{
		oldcxt = MemoryContextSwitchTo(ds->cxt);
		ds->maxpartv = (uint32) Min((uint64) Max(1024, ds->maxpartv) * 2,
									PG_UINT32_MAX);
		ds->partv = ds->partv == NULL ?
			palloc_extended(sizeof(Group *) * ds->maxpartv, MCXT_ALLOC_HUGE) :
			repalloc_huge(ds->partv, sizeof(Group *) * ds->maxpartv);
		MemoryContextSwitchTo(oldcxt);
	}
	ds->partv[ds->npartv++] = part;
	sg->part = ds->npartv;
}

Group *
delta_linked_part(DeltaScan *ds, Group *sg)
{
	return sg->part != 0 ? ds->partv[sg->part - 1] : NULL;
}

/* the links to the parts in ds->batch dropped, as it is emptied */
static void
unlink_parts(DeltaScan *ds)
{
	for (uint64 i = 0; ds->npartv > 0 && i <= ds->speed.mask; i++)
		if (ds->speed.tags[i] != 0)
			ds->speed.groups[i]->part = 0;
	ds->npartv = 0;
}

/* add a key hash to the changed set */
static void
mark_changed(DeltaScan *ds, uint64 h)
{
	bool		full = false;

	(void) hashset_add(&ds->changed, CHANGED_HASH(h), (Size) 1 << 40, &full);
	ds->changed_keys++;
}

/*
 * How far delta_compare_speed() looks ahead: the slots of the keys
 * 2 * COMPARE_AHEAD entries on are prefetched, and the groups of those
 * COMPARE_AHEAD entries on, whose slots have come in meanwhile.
 */
#define COMPARE_AHEAD	8

/*
 * delta_compare_speed
 *		Step 1's comparison with the saved groups (NULL: none): each
 *		current group stays marked (matched, as speed_row() made it) when
 *		its key changed, and the saved keys gone from the speed layer are
 *		kept; the hashes of both go into the changed set.  The batch parts
 *		the state saved for the changed keys are restored into ds->batch,
 *		for delta_use_saved_parts(); the entries of the unchanged ones are
 *		kept as they are, for the next state.
 *
 * Each saved key is one probe of the speed groups, and their groups lie
 * in memory in the order the speed rows came: one or two cache misses a
 * key, most of this step.  The entries carry their key's hash, so that
 * the probes of the keys a few entries on are prefetched.
 */
void
delta_compare_speed(DeltaScan *ds, bytea *saved)
{
	char	   *end;
	char	   *p = delta_state_entries(ds, saved, &end);
	char	   *slots_at = p;	/* the next entry to prefetch the slot of */
	char	   *groups_at = p;	/* and the group of */
	int			nslots = 0;		/* entries from p to slots_at */
	int			ngroups = 0;	/* entries from p to groups_at */
	MemoryContext oldcxt = MemoryContextSwitchTo(ds->cxt);

	ds->new_keys = (int64) ds->speed.count;
	while (p != NULL && p < end)
	{
		char	   *entry = p;
		char	   *next = delta_next_entry(entry, end);
		uint64		h = delta_entry_key_hash(entry);
		Group	   *g;

		CHECK_FOR_INTERRUPTS();
		for (; slots_at < end && nslots < 2 * COMPARE_AHEAD; nslots++)
		{
			group_table_prefetch_slot(&ds->speed,
									  delta_entry_key_hash(slots_at));
			slots_at = delta_next_entry(slots_at, end);
		}
		for (; groups_at < end && ngroups < COMPARE_AHEAD; ngroups++)
		{
			group_table_prefetch_group(&ds->speed,
									   delta_entry_key_hash(groups_at));
			groups_at = delta_next_entry(groups_at, end);
		}
		nslots--;
		ngroups--;

		p = delta_entry_key(entry);
		MemoryContextSwitchTo(ds->rowcxt);
		delta_restore_key(ds, &p);
		g = group_table_find(&ds->speed, ds->cols, ds->ncols, h, ds->values,
							 ds->nulls, false);
		if (g != NULL &&
			delta_group_hash(ds, g) == delta_entry_group_hash(entry))
		{
			/* the same group as last time: its part is not needed now */
			g->matched = false;
			ds->new_keys--;
			delta_keep_entry(ds, entry, next);
			MemoryContextReset(ds->rowcxt);
			p = next;
			continue;
		}
		if (ds->saved_parts)
			delta_restore_part(ds, &p, h, true, g);
		Assert(p == next);
		p = next;
		/* where its row was, for the refresh to look there first */
		{
			ItemPointerData tid;

			delta_entry_tid(entry, &tid);
			if (ItemPointerIsValid(&tid))
				tidmap_put(ds->tids, h, &tid);
		}
		if (g != NULL)
			ds->new_keys--;
		else
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
 * delta_use_saved_parts
 *		Whether the changed keys can be merged with the batch parts the
 *		saved state kept, without reading the batch layer, when the batch
 *		table is as the last refresh read it under batch watch version
 *		(0: not known): the state has the parts, read under that version,
 *		and every key new to the speed layer can take its part from the
 *		serving table (serving_parts: its columns are the merge's types).
 *		If so, the refresh goes on without delta_read_batch().
 */
bool
delta_use_saved_parts(DeltaScan *ds, int64 version, bool serving_parts)
{
	ds->skip_batch = version != 0 && ds->saved_parts &&
		ds->saved_version == version &&
		(ds->new_keys == 0 || serving_parts);
	return ds->skip_batch;
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
	Group	   *sg = NULL;
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

	if (ds->collect_all)
		sg = group_table_find(&ds->speed, ds->cols, ds->ncols, h,
							  slot->tts_values, slot->tts_isnull, false);
	if (sg != NULL ||
		(ds->changed.count > 0 &&
		 hashset_contains(&ds->changed, CHANGED_HASH(h))))
	{
		Group	   *g;

		slot_getallattrs(slot);
		g = group_table_find(&ds->batch, ds->cols, ds->ncols, CHANGED_HASH(h),
							 slot->tts_values, slot->tts_isnull, true);
		if (sg != NULL)
			delta_link_part(ds, sg, g);
		oldcxt = MemoryContextSwitchTo(ds->batch.cxt);
		for (int i = 0; i < ds->ncols; i++)
			if (ds->cols[i].acc != ACC_KEY)
				acc_add(&ds->cols[i], &g->acc[i], slot->tts_values[i],
						slot->tts_isnull[i]);
		MemoryContextSwitchTo(oldcxt);
		/* every speed key's part only while they fit */
		if (ds->collect_all && (ds->batch_rows & 1023) == 0 &&
			MemoryContextMemAllocated(ds->batch.cxt, true) > ds->budget)
		{
			ds->collect_all = false;
			ds->parts = false;
		}
	}
}

/*
 * delta_read_batch
 *		Step 2: the batch layer read once under the active snapshot, its
 *		rows counted and hashed (a table scanned: as stored, only the keys
 *		deformed), and the rows of every speed key and of the keys gone
 *		from it kept, grouped by key: the batch parts.  Parts restored from
 *		the state are dropped first: the rows read replace them.
 */
void
delta_read_batch(DeltaScan *ds)
{
	LayerReader *batch = layer_open(ds->plan, false);

	group_table_reset(&ds->batch);
	unlink_parts(ds);
	ds->skip_batch = false;
	ds->stored = layer_rows_stored(batch);
	layer_read(batch, LAYER_ROWS_BY_KEY, batch_row, ds);
	layer_close(batch);
	if (MemoryContextMemAllocated(ds->batch.cxt, true) > ds->budget)
		ds->parts = false;
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
 * delta_rows_found_in_place
 *		How many serving rows delta_apply() found where the saved state had
 *		them, without a lookup in the index.
 */
int64
delta_rows_found_in_place(DeltaScan *ds)
{
	return ds->tid_hits;
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
