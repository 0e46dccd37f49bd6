/*-------------------------------------------------------------------------
 *
 * apply_delta_apply.c
 *	  Mode 'apply' following the change, step 3 (apply_delta.c describes
 *	  the steps): each changed key's speed group merged with its batch
 *	  part, exactly as the C merge merges them, and applied to the key's
 *	  serving row, which the unique index on the key finds or, when many
 *	  keys changed, one scan of the table (apply_delta_scan.c); then the
 *	  keys gone from the speed layer.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "apply_delta_int.h"
#include "apply_lookup.h"

/*
 * find_serving_row
 *		The serving row of the key in key (the key of the next row,
 *		ds->row_keyhash), into found: where the saved state or this refresh
 *		noted it, if a row the snapshot sees is there and has that key (the
 *		unique index allows one such row; apply_tids.c), else through the
 *		index.  False if the key has none.
 */
static bool
find_serving_row(DeltaScan *ds, TupleTableSlot *key, TupleTableSlot *found)
{
	ItemPointerData tid;

	if (tidmap_get(ds->tids, ds->row_keyhash, &tid) &&
		lookup_fetch_at(ds->lookup, &tid, found) &&
		row_same_key(ds->shape, key, found))
	{
		ds->tid_hits++;
		return true;
	}
	return lookup_fetch(ds->lookup, key, found);
}

/* the place of the row just inserted or updated, for the next refresh */
static void
note_row_tid(DeltaScan *ds)
{
	ItemPointerData tid;

	changes_row_tid(ds->ch, &tid);
	tidmap_put(ds->tids, ds->row_keyhash, &tid);
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
	/* looked_up_part() or the scan may have found the row already */
	if (ds->looked_up == LOOKED_UP_NONE ||
		(ds->looked_up == LOOKED_UP_NOT &&
		 !find_serving_row(ds, slot, changes_oldslot(ch))))
	{
		ds->looked_up = LOOKED_UP_NOT;
		if (!ds->deleting)
		{
			changes_insert(ch, slot);
			note_row_tid(ds);
		}
		return;
	}
	ds->looked_up = LOOKED_UP_NOT;
	tid = changes_oldslot(ch)->tts_tid;
	if (ds->deleting)
		changes_delete(ch, &tid, false);
	else
	{
		changes_update(ch, &tid, false, slot,
					   row_same_image(ds->shape, changes_oldslot(ch), slot));
		note_row_tid(ds);
	}
}

/*
 * merged_row
 *		The merge of a key's batch part bg and speed group sg (either may
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

/* group g's key as row arrays (measures NULL), for a lookup */
static void
key_row(DeltaScan *ds, Group *g)
{
	for (int i = 0; i < ds->ncols; i++)
	{
		ds->values[i] = g->acc[i].v.value;
		ds->nulls[i] = ds->cols[i].acc != ACC_KEY || g->acc[i].isnull;
	}
}

/* the batch part of the key in ds->values (hash h), NULL if not known */
static Group *
find_part(DeltaScan *ds, uint64 h)
{
	return group_table_find(&ds->batch, ds->cols, ds->ncols, CHANGED_HASH(h),
							ds->values, ds->nulls, false);
}

/*
 * serving_part
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
static Group *
serving_part(DeltaScan *ds, Group *sg, TupleTableSlot *found, bool exists)
{
	Group	   *part;
	MemoryContext oldcxt;

	key_row(ds, sg);
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
	delta_link_part(ds, sg, part);
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
 * looked_up_part
 *		serving_part() of the serving row that the index finds for sg's key,
 *		which changed_row() then compares with.
 */
static Group *
looked_up_part(DeltaScan *ds, Group *sg)
{
	TupleTableSlot *found = changes_oldslot(ds->ch);
	TupleTableSlot *key = ds->keyslot;
	bool		exists;

	key_row(ds, sg);
	ExecClearTuple(key);
	for (int a = 0; a < key->tts_tupleDescriptor->natts; a++)
		key->tts_isnull[a] = true;
	for (int i = 0; i < ds->ncols; i++)
	{
		key->tts_values[ds->servatt[i]] = ds->values[i];
		key->tts_isnull[ds->servatt[i]] = ds->nulls[i];
	}
	ExecStoreVirtualTuple(key);
	exists = find_serving_row(ds, key, found);
	ds->looked_up = exists ? LOOKED_UP_FOUND : LOOKED_UP_NONE;
	return serving_part(ds, sg, found, exists);
}

/*
 * delta_apply_group
 *		Changed speed group sg merged with its key's batch part (the one the
 *		state kept or, when the batch layer was not read, the key's serving
 *		row: serving_part()) and applied to the key's serving row: found
 *		(fetched into the changes' slot) when the caller has it, none when
 *		the caller knows there is none (absent), else the one the index
 *		finds.
 */
void
delta_apply_group(DeltaScan *ds, Group *sg, TupleTableSlot *found,
				  bool absent)
{
	Group	   *bg;

	ds->row_keyhash = sg->hash;
	key_row(ds, sg);
	bg = delta_linked_part(ds, sg);
	if (bg == NULL)
		bg = find_part(ds, sg->hash);
	if (found == NULL && !absent)
	{
		/* changed_row() looks the row up, if looked_up_part() did not */
		if (bg == NULL && ds->skip_batch)
			bg = looked_up_part(ds, sg);
	}
	else
	{
		if (bg == NULL && ds->skip_batch)
			bg = serving_part(ds, sg, found, found != NULL);
		ds->looked_up = found != NULL ? LOOKED_UP_FOUND : LOOKED_UP_NONE;
	}
	if (bg != NULL && bg->matched)
		bg = NULL;
	merged_row(ds, bg, sg);
}

/*
 * The order apply_in_order() looks keys up in: per index column,
 * its merge column and, for a type without collation, the index's sort
 * support; a collatable key (text) is ordered by its bytes, which is the
 * index's order under the C collation and near it under most others, at
 * the cost of a memcmp() where the collation's comparison could cost a
 * microsecond (strcoll()) each.
 */
typedef struct LookupOrder
{
	int			nkeys;
	FastColumn **col;
	int		   *c;				/* per index column: its merge column */
	SortSupport ssup;
} LookupOrder;

/* a collatable key's bytes compared, as the C collation compares them */
static int
cmp_key_bytes(const FastColumn *col, Datum a, Datum b)
{
	const char *pa;
	const char *pb;
	Size		la;
	Size		lb;
	int			r;

	if (col->typbyval)
		return a < b ? -1 : a > b ? 1 : 0;
	if (col->typlen == -1)
	{
		pa = VARDATA_ANY(DatumGetPointer(a));
		pb = VARDATA_ANY(DatumGetPointer(b));
		la = VARSIZE_ANY_EXHDR(DatumGetPointer(a));
		lb = VARSIZE_ANY_EXHDR(DatumGetPointer(b));
	}
	else
	{
		pa = DatumGetPointer(a);
		pb = DatumGetPointer(b);
		la = datumGetSize(a, false, col->typlen);
		lb = datumGetSize(b, false, col->typlen);
	}
	r = memcmp(pa, pb, Min(la, lb));
	if (r != 0)
		return r;
	return la < lb ? -1 : la > lb ? 1 : 0;
}

static int
cmp_by_index_key(const void *a, const void *b, void *arg)
{
	LookupOrder *lo = arg;
	const Group *ga = *(Group *const *) a;
	const Group *gb = *(Group *const *) b;

	for (int j = 0; j < lo->nkeys; j++)
	{
		const Acc  *x = &ga->acc[lo->c[j]];
		const Acc  *y = &gb->acc[lo->c[j]];
		int			r;

		if (x->isnull || y->isnull)
			r = x->isnull == y->isnull ? 0 : x->isnull ? 1 : -1;
		else if (OidIsValid(lo->col[j]->collid))
			r = cmp_key_bytes(lo->col[j], x->v.value, y->v.value);
		else
			r = ApplySortComparator(x->v.value, false, y->v.value, false,
									&lo->ssup[j]);
		if (r != 0)
			return r;
	}
	return 0;
}

/*
 * A changed speed group to apply and the place its key's serving row was
 * left in, if a refresh noted it (apply_tids.c).
 */
typedef struct ChangedGroup
{
	Group	   *g;
	ItemPointerData tid;
	bool		placed;
} ChangedGroup;

/*
 * The order apply_in_order() applies the changed groups in: those with a
 * place first, in the table's order (each page read once, and the pages
 * the updates dirty dirtied together), then the others in the index's.
 */
static int
cmp_changed(const void *a, const void *b, void *arg)
{
	const ChangedGroup *x = a;
	const ChangedGroup *y = b;

	if (x->placed != y->placed)
		return x->placed ? -1 : 1;
	if (x->placed)
		return ItemPointerCompare((ItemPointer) &x->tid,
								  (ItemPointer) &y->tid);
	return cmp_by_index_key(&x->g, &y->g, arg);
}

/*
 * changed_groups
 *		The changed speed groups not applied yet, each with the place of its
 *		key's serving row if one is known; their number in *n and of those
 *		with a place in *nplaced.
 */
static ChangedGroup *
changed_groups(DeltaScan *ds, uint64 *n, uint64 *nplaced)
{
	ChangedGroup *todo;

	todo = palloc_extended(sizeof(ChangedGroup) * Max(ds->speed.count, 1),
						   MCXT_ALLOC_HUGE);
	*n = 0;
	*nplaced = 0;
	for (uint64 i = 0; i <= ds->speed.mask; i++)
	{
		Group	   *sg = ds->speed.groups[i];
		ChangedGroup *c;

		if (ds->speed.tags[i] == 0 || !sg->matched || sg->applied)
			continue;
		c = &todo[(*n)++];
		c->g = sg;
		c->placed = tidmap_get(ds->tids, sg->hash, &c->tid);
		if (c->placed)
			(*nplaced)++;
	}
	return todo;
}

/*
 * apply_in_order
 *		The changed speed groups in todo (n of them), each applied to its
 *		key's serving row: fetched where a refresh left it, in the table's
 *		order, or looked up in the index, in (about) the index's key order.
 *		Fetches in the table's order read each page once; lookups in the
 *		key order walk the index's leaf pages from left to right, each page
 *		while it is still in the CPU's caches, rather than one at random
 *		each (measured at 2M keys, 1 % of them changed: the apply phase 267
 *		-> 222 ms, test/bench/report/apply.md).
 */
static void
apply_in_order(DeltaScan *ds, ChangedGroup *todo, uint64 n)
{
	LookupOrder lo;

	lo.nkeys = ds->lookup->nkeys;
	lo.col = palloc(sizeof(FastColumn *) * lo.nkeys);
	lo.c = palloc(sizeof(int) * lo.nkeys);
	for (int j = 0; j < lo.nkeys; j++)
		for (int i = 0; i < ds->ncols; i++)
			if (ds->servatt[i] == ds->lookup->heapatt[j])
			{
				lo.c[j] = i;
				lo.col[j] = &ds->cols[i];
			}
	lo.ssup = lookup_key_order(ds->lookup);
	qsort_arg(todo, n, sizeof(ChangedGroup), cmp_changed, &lo);
	for (uint64 k = 0; k < n; k++)
	{
		delta_apply_group(ds, todo[k].g, NULL, false);
		todo[k].g->applied = true;
	}
}

/*
 * delta_apply
 *		Step 3: the changed keys' new rows compared and applied: the changed
 *		speed groups, each merged with its key's batch part, then the keys
 *		gone from the speed layer, as their batch part alone or, without
 *		one, deleted.  When many keys changed whose rows' places are not
 *		known, their serving rows are found by one scan of the table
 *		(apply_delta_scan.c) rather than one index lookup each; true if
 *		they were.
 */
bool
delta_apply(DeltaScan *ds, Relation rel, const RowShape *shape,
			Snapshot snapshot, KeyLookup *lookup, ApplyChanges *ch)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(ds->cxt);
	TupleDesc	desc = RelationGetDescr(rel);
	int			live = 0;
	bool		scanned;
	ChangedGroup *todo;
	uint64		n;
	uint64		nplaced;

	ds->shape = shape;
	ds->lookup = lookup;
	ds->ch = ch;
	ds->servatt = palloc(sizeof(AttrNumber) * ds->ncols);
	for (int a = 0; a < desc->natts && live < ds->ncols; a++)
		if (!TupleDescAttr(desc, a)->attisdropped)
			ds->servatt[live++] = a;
	ds->keyslot = MakeSingleTupleTableSlot(desc, &TTSOpsVirtual);
	ds->writer = writer_begin_sink(rel, changed_row, ds);
	todo = changed_groups(ds, &n, &nplaced);
	scanned = delta_scan_pays(rel, n - nplaced, nplaced);
	if (scanned)
		delta_scan_apply(ds, rel, snapshot);
	else
		apply_in_order(ds, todo, n);
	pfree(todo);
	for (uint64 i = 0; i <= ds->speed.mask; i++)
	{
		Group	   *sg = ds->speed.groups[i];

		/* after a scan, which saw every serving row, a key left has none */
		if (ds->speed.tags[i] != 0 && sg->matched && !sg->applied)
			delta_apply_group(ds, sg, NULL, scanned);
	}
	ds->deleting = true;
	for (int n = 0; n < ds->ngone; n++)
	{
		char	   *p = delta_entry_key(ds->gone[n]);
		Group	   *bg;

		delta_restore_key(ds, &p);
		ds->row_keyhash = delta_entry_key_hash(ds->gone[n]);
		bg = find_part(ds, ds->row_keyhash);
		if (bg != NULL && !bg->matched)
		{
			ds->deleting = false;
			merged_row(ds, bg, NULL);
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
