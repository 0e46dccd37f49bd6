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
 *		 part with its speed group, exactly as the C merge does, and looks
 *		 its serving row up by a unique index on the key (apply_lookup.c):
 *		 unchanged, one UPDATE, one INSERT, or, for a key gone from both
 *		 layers, one DELETE (apply_rows.c).
 * What it reads is the speed layer, the saved state, the serving rows of
 * the changed keys and, when its table changed or cannot be watched, the
 * batch layer; what it writes is the rows that changed and the new state.
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
#include "utils/datum.h"
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
	ds->collect_all = true;
	ds->parts = true;
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
 *		go into the changed set.  The batch parts the state saved for the
 *		changed keys are restored into ds->batch, for
 *		delta_use_saved_parts(); the entries of the unchanged ones are
 *		kept as they are, for the next state.
 */
void
delta_compare_speed(DeltaScan *ds, bytea *saved)
{
	char	   *end;
	char	   *p = delta_state_entries(ds, saved, &end);
	MemoryContext oldcxt = MemoryContextSwitchTo(ds->cxt);

	for (uint64 i = 0; i <= ds->speed.mask; i++)
		if (ds->speed.tags[i] != 0)
			ds->speed.groups[i]->matched = true;
	ds->new_keys = (int64) ds->speed.count;
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
		delta_restore_key(ds, &p);
		h = group_key_hash(ds->cols, ds->ncols, ds->values, ds->nulls);
		g = group_table_find(&ds->speed, ds->cols, ds->ncols, h, ds->values,
							 ds->nulls, false);
		if (g != NULL && delta_group_hash(ds, g) == savedhash)
		{
			/* the same group as last time: its part is not needed now */
			g->matched = false;
			ds->new_keys--;
			if (ds->saved_parts)
				delta_restore_part(ds, &p, h, false);
			delta_keep_entry(ds, entry, p);
			MemoryContextReset(ds->rowcxt);
			continue;
		}
		if (ds->saved_parts)
			delta_restore_part(ds, &p, h, true);
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

	if ((ds->collect_all &&
		 group_table_find(&ds->speed, ds->cols, ds->ncols, h,
						  slot->tts_values, slot->tts_isnull, false) != NULL) ||
		(ds->changed.count > 0 &&
		 hashset_contains(&ds->changed, CHANGED_HASH(h))))
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
	/* serving_part() may have looked the key up already */
	if (ds->looked_up == LOOKED_UP_NONE ||
		(ds->looked_up == LOOKED_UP_NOT &&
		 !lookup_fetch(ds->lookup, slot, changes_oldslot(ch))))
	{
		ds->looked_up = LOOKED_UP_NOT;
		if (!ds->deleting)
			changes_insert(ch, slot);
		return;
	}
	ds->looked_up = LOOKED_UP_NOT;
	tid = changes_oldslot(ch)->tts_tid;
	if (ds->deleting)
		changes_delete(ch, &tid, false);
	else
		changes_update(ch, &tid, false, slot,
					   row_same_image(ds->shape, changes_oldslot(ch), slot));
}

/*
 * delta_merged_row
 *		The merge of a key's batch part bg and speed group sg (either may
 *		be NULL) into the writer, as the C merge's write_group() makes it:
 *		the batch accumulator first, then the speed group's.
 */
void
delta_merged_row(DeltaScan *ds, Group *bg, Group *sg)
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

/* group g's key as row arrays (measures NULL), for a lookup */
void
delta_key_row(DeltaScan *ds, Group *g)
{
	for (int i = 0; i < ds->ncols; i++)
	{
		ds->values[i] = g->acc[i].v.value;
		ds->nulls[i] = ds->cols[i].acc != ACC_KEY || g->acc[i].isnull;
	}
}

/* the batch part of the key in ds->values (hash h), NULL if not known */
Group *
delta_find_part(DeltaScan *ds, uint64 h)
{
	return group_table_find(&ds->batch, ds->cols, ds->ncols, CHANGED_HASH(h),
							ds->values, ds->nulls, false);
}

/*
 * delta_serving_part
 *		The batch part of speed group sg's key, new to the speed layer since
 *		the last refresh, which did not read the batch layer: the key's
 *		serving row found (exists), which the last refresh left as the merge
 *		of its batch rows alone (nothing else changed the table:
 *		apply_watch.c), made the accumulators it came from again (exactly:
 *		the serving columns are the merge's types, and a merged value is its
 *		own accumulator).  No serving row: the key has no batch rows.  The
 *		part is kept for the state the refresh leaves.  Leaves the key in
 *		ds->values and ds->nulls.
 */
Group *
delta_serving_part(DeltaScan *ds, Group *sg, TupleTableSlot *found,
				   bool exists)
{
	Group	   *part;
	MemoryContext oldcxt;

	delta_key_row(ds, sg);
	if (exists)
	{
		/* the key as the batch rows have it, as the C merge writes it */
		slot_getallattrs(found);
		for (int i = 0; i < ds->ncols; i++)
			if (ds->cols[i].acc == ACC_KEY)
			{
				ds->values[i] = found->tts_values[ds->servatt[i]];
				ds->nulls[i] = found->tts_isnull[ds->servatt[i]];
			}
	}
	part = group_table_find(&ds->batch, ds->cols, ds->ncols,
							CHANGED_HASH(sg->hash), ds->values, ds->nulls,
							true);
	part->matched = !exists;
	if (!exists)
		return NULL;
	oldcxt = MemoryContextSwitchTo(ds->batch.cxt);
	for (int i = 0; i < ds->ncols; i++)
		if (ds->cols[i].acc != ACC_KEY)
			acc_add(&ds->cols[i], &part->acc[i],
					found->tts_values[ds->servatt[i]],
					found->tts_isnull[ds->servatt[i]]);
	MemoryContextSwitchTo(oldcxt);
	return part;
}

/*
 * serving_part
 *		delta_serving_part() of the serving row that the index finds for
 *		sg's key, which changed_row() then compares with.
 */
static Group *
serving_part(DeltaScan *ds, Group *sg)
{
	TupleTableSlot *found = changes_oldslot(ds->ch);
	TupleTableSlot *key = ds->keyslot;
	bool		exists;

	delta_key_row(ds, sg);
	ExecClearTuple(key);
	for (int a = 0; a < key->tts_tupleDescriptor->natts; a++)
		key->tts_isnull[a] = true;
	for (int i = 0; i < ds->ncols; i++)
	{
		key->tts_values[ds->servatt[i]] = ds->values[i];
		key->tts_isnull[ds->servatt[i]] = ds->nulls[i];
	}
	ExecStoreVirtualTuple(key);
	exists = lookup_fetch(ds->lookup, key, found);
	ds->looked_up = exists ? LOOKED_UP_FOUND : LOOKED_UP_NONE;
	return delta_serving_part(ds, sg, found, exists);
}

/*
 * delta_apply
 *		Step 3: the changed keys' new rows compared and applied: the changed
 *		speed groups, each merged with its key's batch part, then the keys
 *		gone from the speed layer, as their batch part alone or, without
 *		one, deleted.  When many keys changed, their serving rows are found
 *		by one scan of the table (apply_delta_scan.c) rather than one index
 *		lookup each; true if they were.
 */
bool
delta_apply(DeltaScan *ds, Relation rel, const RowShape *shape,
			Snapshot snapshot, KeyLookup *lookup, ApplyChanges *ch)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(ds->cxt);
	TupleDesc	desc = RelationGetDescr(rel);
	int			live = 0;
	bool		scanned;

	ds->shape = shape;
	ds->lookup = lookup;
	ds->ch = ch;
	ds->servatt = palloc(sizeof(AttrNumber) * ds->ncols);
	for (int a = 0; a < desc->natts && live < ds->ncols; a++)
		if (!TupleDescAttr(desc, a)->attisdropped)
			ds->servatt[live++] = a;
	ds->keyslot = MakeSingleTupleTableSlot(desc, &TTSOpsVirtual);
	ds->writer = writer_begin_sink(rel, changed_row, ds);
	scanned = delta_scan_pays(ds, rel);
	if (scanned)
		delta_scan_apply(ds, rel, snapshot);
	for (uint64 i = 0; i <= ds->speed.mask; i++)
	{
		Group	   *sg = ds->speed.groups[i];
		Group	   *bg;

		if (ds->speed.tags[i] == 0 || !sg->matched || sg->applied)
			continue;
		delta_key_row(ds, sg);
		bg = delta_find_part(ds, sg->hash);
		if (scanned)
		{
			/* the scan saw every serving row: this key has none */
			if (bg == NULL && ds->skip_batch)
				bg = delta_serving_part(ds, sg, NULL, false);
			ds->looked_up = LOOKED_UP_NONE;
		}
		else if (bg == NULL && ds->skip_batch)
			bg = serving_part(ds, sg);
		if (bg != NULL && bg->matched)
			bg = NULL;
		delta_merged_row(ds, bg, sg);
	}
	ds->deleting = true;
	for (int n = 0; n < ds->ngone; n++)
	{
		char	   *p = ds->gone[n] + sizeof(uint64);
		Group	   *bg;

		delta_restore_key(ds, &p);
		bg = delta_find_part(ds, group_key_hash(ds->cols, ds->ncols, ds->values,
												ds->nulls));
		if (bg != NULL && !bg->matched)
		{
			ds->deleting = false;
			delta_merged_row(ds, bg, NULL);
			ds->deleting = true;
		}
		else
			writer_put(ds->writer, ds->values, ds->nulls);
	}
	(void) writer_end(ds->writer);
	ExecDropSingleTupleTableSlot(ds->keyslot);
	MemoryContextSwitchTo(oldcxt);
	return scanned;
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
