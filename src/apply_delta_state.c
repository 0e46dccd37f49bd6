/*-------------------------------------------------------------------------
 *
 * apply_delta_state.c
 *	  What a refresh following the change leaves for the next one: the
 *	  speed groups it read, each with a hash of its values and, when they
 *	  fitted, the batch part of its key (its batch rows merged), written
 *	  into and read back from serving_layer_apply_state.speed_state.
 *
 * The layout of speed_state (APPLY_STATE_FORMAT in apply_state.c) is
 *	  a header: the batch watch version (apply_batch_watch.c) under which
 *	  the parts were read, 0 when they cannot be trusted, and one byte
 *	  saying whether the entries carry parts;
 *	  per speed group: the entry's length in bytes, the 64-bit hash of its
 *	  key and of its accumulators, the place of its serving row when the
 *	  refresh knew it (DELTA_ENTRY_HEADER in apply_delta_int.h: the next
 *	  refresh can step over an entry, and look ahead at the keys it will
 *	  probe, without reading it; apply_tids.c), its key columns
 *	  (datumSerialize()), and with parts one byte: 0 when the key has no
 *	  batch rows, else the merged batch value of every measure follows
 *	  (integer sums as their accumulator, sum_serialize(); the others by
 *	  datumSerialize()), after, when
 *	  the byte is 2, the key columns as the
 *	  batch rows have them (equal keys may differ in their images, 1.0 and
 *	  1.00 say, and the C merge writes the batch rows' one).
 * The parts let a refresh whose batch table is unchanged merge a changed
 * key without reading the batch layer.  Values are stored whole: a value
 * stored out of line in the batch table is detoasted first, as a pointer
 * to it would not outlive the refresh.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "utils/datum.h"
#include "utils/memutils.h"

#include "apply_delta_int.h"
#include "large_alloc.h"

/* the header of speed_state */
#define STATE_HEADER_SIZE	(sizeof(int64) + 1)

/*
 * delta_group_hash
 *		Hash of a speed group: its key and its accumulators as they stand
 *		(not their results, which could raise an overflow error that the
 *		merge with the batch value would not).
 */
uint64
delta_group_hash(DeltaScan *ds, Group *g)
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

/*
 * delta_state_entries
 *		The first entry of a saved state (NULL: none), its end into *end;
 *		its header into ds->saved_version and ds->saved_parts.
 */
char *
delta_state_entries(DeltaScan *ds, bytea *saved, char **end)
{
	char	   *p;

	ds->saved_version = 0;
	ds->saved_parts = false;
	*end = NULL;
	if (saved == NULL || VARSIZE_ANY_EXHDR(saved) < STATE_HEADER_SIZE)
		return NULL;
	p = VARDATA_ANY(saved);
	*end = p + VARSIZE_ANY_EXHDR(saved);
	memcpy(&ds->saved_version, p, sizeof(int64));
	ds->saved_parts = p[sizeof(int64)] != 0;
	return p + STATE_HEADER_SIZE;
}

/* the entry after a saved entry; a length out of the state is an error */
char *
delta_next_entry(char *entry, char *end)
{
	uint32		len = delta_entry_length(entry);

	if (len < DELTA_ENTRY_HEADER || len > (Size) (end - entry) ||
		(delta_entry_has_tid(entry) &&
		 len < DELTA_ENTRY_HEADER + sizeof(ItemPointerData)))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the state a refresh in mode 'apply' saved is corrupt"),
				 errdetail("An entry of %u bytes has %zu bytes of the state left.",
						   len, (Size) (end - entry)),
				 errhint("Define the target again with serving_layer_define(): its next refresh compares in full.")));
	return entry + len;
}

/* the key columns of a saved entry at *p into ds->values/nulls */
void
delta_restore_key(DeltaScan *ds, char **p)
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
 * delta_keep_entry
 *		Remember the saved entry from start to end, of a speed group that is
 *		as the last refresh saw it: when the batch layer was not read either,
 *		the next state takes the entry as it is (delta_state()).
 */
void
delta_keep_entry(DeltaScan *ds, char *start, char *end)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(ds->cxt);

	if (ds->nkept == ds->maxkept)
	{
		ds->maxkept = Max(1024, ds->maxkept * 2);
		ds->kept = ds->kept == NULL ?
			palloc_extended(sizeof(char *) * ds->maxkept, MCXT_ALLOC_HUGE) :
			repalloc_huge(ds->kept, sizeof(char *) * ds->maxkept);
		ds->keptlen = ds->keptlen == NULL ?
			palloc_extended(sizeof(uint32) * ds->maxkept, MCXT_ALLOC_HUGE) :
			repalloc_huge(ds->keptlen, sizeof(uint32) * ds->maxkept);
	}
	ds->kept[ds->nkept] = start;
	ds->keptlen[ds->nkept++] = (uint32) (end - start);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * sum_serialize / sum_restore
 *		An integer sum's accumulator in a part: a byte, 0 for NULL, 1 when
 *		the 16 bytes of an int128 follow, 2 when its value fits an int64 and
 *		follows zigzag-encoded in 7-bit groups (1 to 10 bytes: the sums of
 *		counts take 2 to 4 bytes rather than 9).  The state is written and
 *		read on the same machine: the int128 keeps its native layout.
 */
#define SUM_MAX_BYTES	(1 + sizeof(INT128))

static Size
sum_serialize(const Acc *acc, char *out)
{
	int64		v;
	uint64		z;
	Size		n = 1;

	if (acc->isnull)
	{
		out[0] = 0;
		return 1;
	}
	v = int128_to_int64(acc->v.isum);
	if (int128_compare(int64_to_int128(v), acc->v.isum) != 0)
	{
		out[0] = 1;
		memcpy(out + 1, &acc->v.isum, sizeof(INT128));
		return 1 + sizeof(INT128);
	}
	out[0] = 2;
	z = ((uint64) v << 1) ^ (uint64) (v >> 63);
	while (z >= 0x80)
	{
		out[n++] = (char) ((z & 0x7f) | 0x80);
		z >>= 7;
	}
	out[n++] = (char) z;
	return n;
}

static char *
sum_restore(char *p, Acc *acc)
{
	char		kind = *p++;
	uint64		z = 0;
	int			shift = 0;

	acc->isnull = kind == 0;
	if (kind == 0)
		return p;
	if (kind == 1)
	{
		memcpy(&acc->v.isum, p, sizeof(INT128));
		return p + sizeof(INT128);
	}
	for (;;)
	{
		uint8		b = (uint8) *p++;

		z |= (uint64) (b & 0x7f) << shift;
		if (b < 0x80)
			break;
		shift += 7;
	}
	acc->v.isum = int64_to_int128((int64) (z >> 1) ^ -(int64) (z & 1));
	return p;
}

/*
 * delta_restore_part
 *		The batch part of a saved entry at *p, whose key is in ds->values
 *		and hashes to keyhash: with keep, into ds->batch (in its memory) and
 *		linked to the key's speed group sg, if it has one; else only stepped
 *		over.
 */
void
delta_restore_part(DeltaScan *ds, char **p, uint64 keyhash, bool keep,
				   Group *sg)
{
	bool		present = **p != 0;
	bool		ownkey = **p == 2;
	Group	   *g = NULL;
	MemoryContext oldcxt;

	(*p)++;
	if (ownkey)
		delta_restore_key(ds, p);
	if (keep)
	{
		g = group_table_find(&ds->batch, ds->cols, ds->ncols,
							 CHANGED_HASH(keyhash), ds->values, ds->nulls,
							 true);
		g->matched = !present;
		if (sg != NULL)
			delta_link_part(ds, sg, g);
	}
	if (!present)
		return;
	oldcxt = MemoryContextSwitchTo(keep ? ds->batch.cxt : ds->rowcxt);
	for (int i = 0; i < ds->ncols; i++)
	{
		FastColumn *col = &ds->cols[i];
		Acc			acc;

		if (col->acc == ACC_KEY)
			continue;
		if (col->acc == ACC_SUM_INT)
			*p = sum_restore(*p, &acc);
		else
			acc.v.value = datumRestore(p, &acc.isnull);
		if (keep)
			g->acc[i] = acc;
	}
	MemoryContextSwitchTo(oldcxt);
}

/* a measure's value as it is written: whole, never a TOAST pointer */
static Datum
whole_value(FastColumn *col, Datum value)
{
	if (col->typlen == -1 && VARATT_IS_EXTERNAL(DatumGetPointer(value)))
		return PointerGetDatum(detoast_external_attr((struct varlena *) DatumGetPointer(value)));
	return value;
}

/* the space a part takes (with its leading byte), or writes it at *p */
static Size
part_bytes(DeltaScan *ds, Group *g, Group *part, char **p)
{
	Size		size = 1;
	bool		ownkey = false;

	for (int i = 0; part != NULL && i < ds->ncols; i++)
		if (ds->cols[i].acc == ACC_KEY && !part->acc[i].isnull &&
			!datumIsEqual(part->acc[i].v.value, g->acc[i].v.value,
						  ds->cols[i].typbyval, ds->cols[i].typlen))
			ownkey = true;
	if (p != NULL)
		*(*p)++ = part == NULL ? 0 : ownkey ? 2 : 1;
	if (part == NULL)
		return size;
	for (int i = 0; ownkey && i < ds->ncols; i++)
	{
		FastColumn *col = &ds->cols[i];

		if (col->acc != ACC_KEY)
			continue;
		if (p != NULL)
			datumSerialize(part->acc[i].v.value, part->acc[i].isnull,
						   col->typbyval, col->typlen, p);
		else
			size += datumEstimateSpace(part->acc[i].v.value,
									   part->acc[i].isnull, col->typbyval,
									   col->typlen);
	}
	for (int i = 0; i < ds->ncols; i++)
	{
		FastColumn *col = &ds->cols[i];
		Acc		   *acc = &part->acc[i];
		Datum		v;

		if (col->acc == ACC_KEY)
			continue;
		if (col->acc == ACC_SUM_INT)
		{
			char		buf[SUM_MAX_BYTES];
			Size		len = sum_serialize(acc, buf);

			size += len;
			if (p != NULL)
			{
				memcpy(*p, buf, len);
				*p += len;
			}
			continue;
		}
		v = acc->isnull ? (Datum) 0 : whole_value(col, acc->v.value);
		if (p != NULL)
			datumSerialize(v, acc->isnull, col->typbyval, col->typlen, p);
		else
			size += datumEstimateSpace(v, acc->isnull, col->typbyval,
									   col->typlen);
	}
	return size;
}

/* the batch part of speed group g's key: NULL when it has no batch rows */
static Group *
part_of(DeltaScan *ds, Group *g)
{
	Group	   *part = delta_linked_part(ds, g);

	if (part == NULL)
	{
		for (int i = 0; i < ds->ncols; i++)
		{
			ds->values[i] = g->acc[i].v.value;
			ds->nulls[i] = ds->cols[i].acc != ACC_KEY || g->acc[i].isnull;
		}
		part = group_table_find(&ds->batch, ds->cols, ds->ncols,
								CHANGED_HASH(g->hash), ds->values, ds->nulls,
								false);
	}
	return part != NULL && !part->matched ? part : NULL;
}

/*
 * delta_state
 *		The speed groups as the state to save, with their keys' batch parts
 *		when ds has them all, under batch watch version (0: the next
 *		refresh reads the batch layer); NULL when it would exceed a bytea.
 */
bytea *
delta_state(DeltaScan *ds, int64 version)
{
	Size		size = VARHDRSZ + STATE_HEADER_SIZE;
	bytea	   *out;
	char	   *p;
	bool		copy = ds->skip_batch && ds->parts;
	MemoryContext oldcxt = MemoryContextSwitchTo(ds->rowcxt);

	/*
	 * When the batch layer was not read, the entry of a group unchanged
	 * since the last refresh is the saved one, byte for byte: copied, and
	 * only the changed groups are written anew.
	 */
	for (int64 n = 0; copy && n < ds->nkept; n++)
		size += ds->keptlen[n];
	for (uint64 i = 0; i <= ds->speed.mask; i++)
	{
		Group	   *g = ds->speed.groups[i];
		ItemPointerData tid;

		if (ds->speed.tags[i] == 0 || (copy && !g->matched))
			continue;
		size += DELTA_ENTRY_HEADER;
		if (tidmap_get(ds->tids, g->hash, &tid))
			size += sizeof(ItemPointerData);
		for (int c = 0; c < ds->ncols; c++)
			if (ds->cols[c].acc == ACC_KEY)
				size += datumEstimateSpace(g->acc[c].v.value, g->acc[c].isnull,
										   ds->cols[c].typbyval,
										   ds->cols[c].typlen);
		if (ds->parts)
			size += part_bytes(ds, g, part_of(ds, g), NULL);
		if (size > MaxAllocSize)
		{
			MemoryContextSwitchTo(oldcxt);
			MemoryContextReset(ds->rowcxt);
			return NULL;
		}
		CHECK_FOR_INTERRUPTS();
	}
	MemoryContextSwitchTo(oldcxt);
	out = sl_alloc_large(CurrentMemoryContext, size, false);
	SET_VARSIZE(out, size);
	p = VARDATA(out);
	if (!ds->parts)
		version = 0;
	memcpy(p, &version, sizeof(int64));
	p[sizeof(int64)] = ds->parts ? 1 : 0;
	p += STATE_HEADER_SIZE;
	for (int64 n = 0; copy && n < ds->nkept; n++)
	{
		memcpy(p, ds->kept[n], ds->keptlen[n]);
		p += ds->keptlen[n];
	}
	for (uint64 i = 0; i <= ds->speed.mask; i++)
	{
		Group	   *g = ds->speed.groups[i];
		char	   *entry = p;
		uint64		h;
		uint32		len;
		ItemPointerData tid;

		if (ds->speed.tags[i] == 0 || (copy && !g->matched))
			continue;
		p += sizeof(uint32);	/* the length, once known */
		memcpy(p, &g->hash, sizeof(uint64));
		p += sizeof(uint64);
		h = delta_group_hash(ds, g);
		memcpy(p, &h, sizeof(uint64));
		p += sizeof(uint64);
		if (tidmap_get(ds->tids, g->hash, &tid))
		{
			memcpy(p, &tid, sizeof(ItemPointerData));
			p += sizeof(ItemPointerData);
		}
		for (int c = 0; c < ds->ncols; c++)
			if (ds->cols[c].acc == ACC_KEY)
				datumSerialize(g->acc[c].v.value, g->acc[c].isnull,
							   ds->cols[c].typbyval, ds->cols[c].typlen, &p);
		if (ds->parts)
		{
			oldcxt = MemoryContextSwitchTo(ds->rowcxt);
			(void) part_bytes(ds, g, part_of(ds, g), &p);
			MemoryContextSwitchTo(oldcxt);
			MemoryContextReset(ds->rowcxt);
		}
		len = (uint32) (p - entry) |
			(ItemPointerIsValid(&tid) ? DELTA_ENTRY_HAS_TID : 0);
		memcpy(entry, &len, sizeof(uint32));
	}
	Assert(p == (char *) out + size);
	MemoryContextReset(ds->rowcxt);
	return out;
}

/*
 * delta_state_with_places
 *		The saved state, each entry given the place of its key's serving row
 *		that place_of() finds (false: none, and an earlier place is
 *		dropped): after a whole comparison, which saw every serving row, so
 *		that the next refresh finds the rows of the keys that change without
 *		a lookup (apply_tids.c).  place_of() receives the key in the merge's
 *		columns (plan->ncolumns values, the measures NULL).  The state as it
 *		was when the places would make it too large.
 */
bytea *
delta_state_with_places(bytea *state, const MergePlan *plan,
						DeltaPlaceFn place_of, void *arg)
{
	DeltaScan	ds;
	MemoryContext rowcxt;
	MemoryContext oldcxt;
	char	   *end;
	char	   *first;
	char	   *q;
	Size		nentries = 0;
	Size		bound;
	bytea	   *out;

	memset(&ds, 0, sizeof(ds));
	ds.ncols = plan->ncolumns;
	ds.cols = fast_columns(plan);
	ds.values = palloc(sizeof(Datum) * ds.ncols);
	ds.nulls = palloc(sizeof(bool) * ds.ncols);
	first = delta_state_entries(&ds, state, &end);
	if (first == NULL)
		return state;
	for (char *e = first; e < end; e = delta_next_entry(e, end))
		nentries++;
	bound = VARSIZE_ANY(state) + nentries * sizeof(ItemPointerData);
	if (bound > MaxAllocSize)
		return state;
	out = sl_alloc_large(CurrentMemoryContext, bound, false);
	q = VARDATA(out);
	memcpy(q, VARDATA_ANY(state), STATE_HEADER_SIZE);
	q += STATE_HEADER_SIZE;
	rowcxt = AllocSetContextCreate(CurrentMemoryContext,
								   "serving_layer state places",
								   ALLOCSET_DEFAULT_SIZES);
	for (char *e = first; e < end;)
	{
		char	   *next = delta_next_entry(e, end);
		char	   *key = delta_entry_key(e);
		char	   *kp = key;
		Size		rest = next - key;
		ItemPointerData tid;
		bool		found;
		uint32		len;

		CHECK_FOR_INTERRUPTS();
		oldcxt = MemoryContextSwitchTo(rowcxt);
		delta_restore_key(&ds, &kp);
		found = place_of(arg, ds.values, ds.nulls, &tid) &&
			ItemPointerIsValid(&tid);
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(rowcxt);
		len = (uint32) (DELTA_ENTRY_TID + rest +
						(found ? sizeof(ItemPointerData) : 0));
		if (found)
			len |= DELTA_ENTRY_HAS_TID;
		memcpy(q, &len, sizeof(uint32));
		memcpy(q + sizeof(uint32), e + sizeof(uint32),
			   DELTA_ENTRY_TID - sizeof(uint32));
		q += DELTA_ENTRY_TID;
		if (found)
		{
			memcpy(q, &tid, sizeof(ItemPointerData));
			q += sizeof(ItemPointerData);
		}
		memcpy(q, key, rest);
		q += rest;
		e = next;
	}
	MemoryContextDelete(rowcxt);
	SET_VARSIZE(out, q - (char *) out);
	return out;
}
