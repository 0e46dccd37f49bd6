/*-------------------------------------------------------------------------
 *
 * fast_merge.c
 *	  The merge for the common case, in C: keys of hashable types, measures
 *	  merged with sum, min or max over the built-in numeric types.
 *
 * The general merge is one GROUP BY over batch UNION ALL speed, which hashes
 * or sorts every batch row.  But a batch layer usually holds one row per key
 * and the speed layer is small, so here:
 *	  1. the speed layer is aggregated by key into a hash table in memory;
 *	  2. a first pass over the batch keys records the 64-bit hash of every
 *		 key and which hashes occur more than once;
 *	  3. a second pass streams the batch rows: a row whose key hash occurs
 *		 once is merged with its speed group, if any, and written at once; a
 *		 row whose hash occurs more than once (a duplicate key, or a hash
 *		 collision) is aggregated into a second hash table;
 *	  4. those groups are merged with their speed groups and written, then
 *		 the speed groups no batch row matched.
 * The three queries see one snapshot.  The results are those of the GROUP
 * BY: NULL keys group together, sums are exact for integer and numeric
 * types and raise the same overflow errors, min and max use the types'
 * ordering.  When the speed groups or the duplicate groups would not fit
 * the memory budget, nothing has been written yet, and the caller runs the
 * GROUP BY instead.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "common/int128.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/float.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "utils/typcache.h"

#include "serving_layer.h"

/*
 * The memory budget is serving_layer.fast_merge_memory (kB), for the speed
 * groups and the set of batch key hashes together; duplicate groups are
 * allowed one per 256 bytes of it.  Past it the GROUP BY query is used.
 */
#define BUDGET_BYTES	((Size) sl_fast_merge_memory * 1024)
#define DUP_GROUPS_MAX	((uint64) (BUDGET_BYTES / 256))

typedef enum AccKind
{
	ACC_KEY,
	ACC_SUM_INT,				/* int2, int4, int8: exact in 128 bits */
	ACC_SUM_FLOAT4,
	ACC_SUM_FLOAT8,
	ACC_SUM_NUMERIC,
	ACC_MIN,
	ACC_MAX
} AccKind;

typedef struct FastColumn
{
	AccKind		acc;
	Oid			typid;
	int32		typmod;
	int16		typlen;
	bool		typbyval;
	Oid			collid;
	FmgrInfo	hash;			/* keys: extended hash function */
	FmgrInfo	eq;				/* keys: equality */
	FmgrInfo	cmp;			/* min, max: btree comparison */
} FastColumn;

/* One measure or key of a group. */
typedef struct Acc
{
	int128		isum;			/* ACC_SUM_INT */
	Datum		value;			/* everything else */
	bool		isnull;
} Acc;

typedef struct Group
{
	uint64		hash;
	bool		matched;		/* a speed group some batch key merged */
	Acc			acc[FLEXIBLE_ARRAY_MEMBER];
} Group;

/*
 * Open-addressing hash table of groups, by key; hashes kept inline.  A
 * one-byte tag per slot, in an array small enough to stay in the CPU
 * caches, answers most lookups of batch keys that have no speed group
 * without touching the slots.
 */
#define SLOT_TAG(h) ((uint8) (((h) >> 57) + 1))
typedef struct GroupSlot
{
	uint64		hash;
	Group	   *group;
} GroupSlot;

typedef struct GroupTable
{
	uint8	   *tags;			/* per slot: 0 empty, else 7 bits of hash + 1 */
	GroupSlot  *slots;
	uint64		mask;
	uint64		count;
	MemoryContext cxt;
} GroupTable;

/* Open-addressing set of 64-bit key hashes; 0 marks an empty slot. */
typedef struct HashSet
{
	MemoryContext cxt;
	uint64	   *slots;
	uint64		mask;
	uint64		count;
} HashSet;

typedef struct FastMerge
{
	int			ncols;
	FastColumn *cols;
	GroupTable	speed;
	GroupTable	dups;
	HashSet		keys;			/* every batch key hash */
	HashSet		duphashes;		/* hashes seen more than once */
	HeapWriter *writer;
	MemoryContext rowcxt;		/* reset per written row */
	Datum	   *values;
	bool	   *nulls;
	int64		batch_rows;
	int64		speed_rows;
	bool		over_budget;
	/* batch key hashes waiting to go into the set, their slots prefetched */
	uint64		pending[32];
	int			npending;
} FastMerge;

/*
 * fast_merge_possible
 *		Whether every key can be hashed and every measure is a pg_catalog
 *		sum, min or max over smallint, integer, bigint, real, double
 *		precision or numeric.
 */
bool
fast_merge_possible(const MergePlan *plan)
{
	if (!sl_fast_merge)
		return false;
	for (int i = 0; i < plan->ncolumns; i++)
	{
		const PlanColumn *col = &plan->columns[i];
		char	   *name;

		if (col->kind == MERGE_KEY)
		{
			TypeCacheEntry *tce = lookup_type_cache(col->typid,
													TYPECACHE_HASH_EXTENDED_PROC |
													TYPECACHE_EQ_OPR);

			if (!OidIsValid(tce->hash_extended_proc) || !OidIsValid(tce->eq_opr))
				return false;
			continue;
		}
		if (col->kind != MERGE_AGGREGATE ||
			get_func_namespace(col->aggoid) != PG_CATALOG_NAMESPACE)
			return false;
		switch (col->typid)
		{
			case INT2OID:
			case INT4OID:
			case INT8OID:
			case FLOAT4OID:
			case FLOAT8OID:
			case NUMERICOID:
				break;
			default:
				return false;
		}
		name = get_func_name(col->aggoid);
		if (strcmp(name, "sum") != 0 && strcmp(name, "min") != 0 &&
			strcmp(name, "max") != 0)
			return false;
	}
	return true;
}

/*
 * fast_columns
 *		Look up the functions each column needs.
 */
static void
fast_columns(FastMerge *fm, const MergePlan *plan)
{
	fm->ncols = plan->ncolumns;
	fm->cols = palloc0(sizeof(FastColumn) * fm->ncols);
	for (int i = 0; i < fm->ncols; i++)
	{
		const PlanColumn *pc = &plan->columns[i];
		FastColumn *col = &fm->cols[i];
		TypeCacheEntry *tce;

		col->typid = pc->typid;
		col->typmod = pc->typmod;
		col->collid = pc->collid;
		get_typlenbyval(col->typid, &col->typlen, &col->typbyval);
		tce = lookup_type_cache(col->typid,
								TYPECACHE_HASH_EXTENDED_PROC_FINFO |
								TYPECACHE_EQ_OPR_FINFO | TYPECACHE_CMP_PROC_FINFO);
		if (pc->kind == MERGE_KEY)
		{
			col->acc = ACC_KEY;
			fmgr_info(tce->hash_extended_proc_finfo.fn_oid, &col->hash);
			fmgr_info(tce->eq_opr_finfo.fn_oid, &col->eq);
			continue;
		}
		if (strcmp(get_func_name(pc->aggoid), "sum") == 0)
		{
			switch (col->typid)
			{
				case FLOAT4OID:
					col->acc = ACC_SUM_FLOAT4;
					break;
				case FLOAT8OID:
					col->acc = ACC_SUM_FLOAT8;
					break;
				case NUMERICOID:
					col->acc = ACC_SUM_NUMERIC;
					break;
				default:
					col->acc = ACC_SUM_INT;
			}
		}
		else
		{
			col->acc = strcmp(get_func_name(pc->aggoid), "min") == 0 ?
				ACC_MIN : ACC_MAX;
			fmgr_info(tce->cmp_proc_finfo.fn_oid, &col->cmp);
		}
	}
}

/*
 * key_hash
 *		64-bit hash of a row's key (never 0).
 */
static uint64
key_hash(FastMerge *fm, Datum *values, bool *nulls)
{
	uint64		h = 0;

	for (int i = 0; i < fm->ncols; i++)
	{
		FastColumn *col = &fm->cols[i];
		uint64		kh;

		if (col->acc != ACC_KEY)
			continue;
		if (nulls[i])
			kh = UINT64CONST(0x9e3779b97f4a7c15);
		else
			kh = DatumGetUInt64(FunctionCall2Coll(&col->hash, col->collid,
												  values[i], UInt64GetDatum(0)));
		h = hash_combine64(h, kh);
	}
	return h == 0 ? 1 : h;
}

/*
 * key_equal
 *		Whether a group's key equals a row's key; NULL equals NULL, as in
 *		GROUP BY.
 */
static bool
key_equal(FastMerge *fm, Group *g, Datum *values, bool *nulls)
{
	for (int i = 0; i < fm->ncols; i++)
	{
		FastColumn *col = &fm->cols[i];

		if (col->acc != ACC_KEY)
			continue;
		if (g->acc[i].isnull || nulls[i])
		{
			if (g->acc[i].isnull != nulls[i])
				return false;
			continue;
		}
		if (!DatumGetBool(FunctionCall2Coll(&col->eq, col->collid,
											g->acc[i].value, values[i])))
			return false;
	}
	return true;
}

/*
 * accumulate
 *		Merge one value into an accumulator, with the aggregate's semantics:
 *		NULLs are ignored, the first non-NULL value starts the state.
 */
static void
accumulate(FastColumn *col, Acc *acc, Datum value, bool isnull)
{
	if (isnull)
		return;
	if (acc->isnull)
	{
		acc->isnull = false;
		switch (col->acc)
		{
			case ACC_SUM_INT:
				acc->isum = col->typid == INT2OID ? DatumGetInt16(value) :
					col->typid == INT4OID ? DatumGetInt32(value) :
					DatumGetInt64(value);
				break;
			default:
				acc->value = datumCopy(value, col->typbyval, col->typlen);
		}
		return;
	}
	switch (col->acc)
	{
		case ACC_KEY:
			break;
		case ACC_SUM_INT:
			acc->isum += col->typid == INT2OID ? DatumGetInt16(value) :
				col->typid == INT4OID ? DatumGetInt32(value) :
				DatumGetInt64(value);
			break;
		case ACC_SUM_FLOAT4:
			acc->value = DirectFunctionCall2(float4pl, acc->value, value);
			break;
		case ACC_SUM_FLOAT8:
			acc->value = DirectFunctionCall2(float8pl, acc->value, value);
			break;
		case ACC_SUM_NUMERIC:
			acc->value = DirectFunctionCall2(numeric_add, acc->value, value);
			break;
		case ACC_MIN:
		case ACC_MAX:
			{
				int32		c = DatumGetInt32(FunctionCall2Coll(&col->cmp, col->collid,
																value, acc->value));

				if ((col->acc == ACC_MIN && c < 0) || (col->acc == ACC_MAX && c > 0))
					acc->value = datumCopy(value, col->typbyval, col->typlen);
				break;
			}
	}
}

/*
 * merge_acc
 *		Merge accumulator src into dst (a group of the other layer).
 */
static void
merge_acc(FastColumn *col, Acc *dst, Acc *src)
{
	if (src->isnull)
		return;
	if (col->acc == ACC_SUM_INT)
	{
		if (dst->isnull)
			dst->isum = src->isum;
		else
			dst->isum += src->isum;
		dst->isnull = false;
		return;
	}
	accumulate(col, dst, src->value, false);
}

/*
 * acc_result
 *		The final value of an accumulator in the column's type: integer sums
 *		are range-checked with the errors of the cast the GROUP BY query
 *		makes, numeric sums get the column's type modifier.
 */
static Datum
acc_result(FastColumn *col, Acc *acc)
{
	switch (col->acc)
	{
		case ACC_SUM_INT:
			if (col->typid == INT2OID)
			{
				if (acc->isum < PG_INT16_MIN || acc->isum > PG_INT16_MAX)
					ereport(ERROR,
							(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
							 errmsg("smallint out of range")));
				return Int16GetDatum((int16) acc->isum);
			}
			if (col->typid == INT4OID)
			{
				if (acc->isum < PG_INT32_MIN || acc->isum > PG_INT32_MAX)
					ereport(ERROR,
							(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
							 errmsg("integer out of range")));
				return Int32GetDatum((int32) acc->isum);
			}
			if (acc->isum < PG_INT64_MIN || acc->isum > PG_INT64_MAX)
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("bigint out of range")));
			return Int64GetDatum((int64) acc->isum);
		case ACC_SUM_NUMERIC:
			if (col->typmod >= 0)
				return DirectFunctionCall2(numeric, acc->value,
										   Int32GetDatum(col->typmod));
			return acc->value;
		default:
			return acc->value;
	}
}

/*
 * table_init / table_find
 *		The group hash table.  table_find returns the group of the key, a
 *		new one when insert is set, or NULL.
 */
static void
table_init(GroupTable *t)
{
	t->cxt = AllocSetContextCreate(CurrentMemoryContext,
								   "serving_layer groups",
								   ALLOCSET_DEFAULT_SIZES);
	t->mask = 1023;
	t->count = 0;
	t->slots = MemoryContextAllocZero(t->cxt, sizeof(GroupSlot) * (t->mask + 1));
	t->tags = MemoryContextAllocZero(t->cxt, t->mask + 1);
}

static void
table_grow(GroupTable *t)
{
	uint64		newmask = t->mask * 2 + 1;
	GroupSlot  *slots = MemoryContextAllocHuge(t->cxt,
											   sizeof(GroupSlot) * (newmask + 1));
	uint8	   *tags = MemoryContextAllocHuge(t->cxt, newmask + 1);

	memset(slots, 0, sizeof(GroupSlot) * (newmask + 1));
	memset(tags, 0, newmask + 1);
	for (uint64 i = 0; i <= t->mask; i++)
	{
		uint64		j;

		if (t->tags[i] == 0)
			continue;
		for (j = t->slots[i].hash & newmask; tags[j] != 0; j = (j + 1) & newmask)
			;
		slots[j] = t->slots[i];
		tags[j] = t->tags[i];
	}
	pfree(t->slots);
	pfree(t->tags);
	t->slots = slots;
	t->tags = tags;
	t->mask = newmask;
}

static Group *
table_find(FastMerge *fm, GroupTable *t, uint64 h, Datum *values,
		   bool *nulls, bool insert)
{
	uint64		i;
	Group	   *g;
	MemoryContext oldcxt;

	for (i = h & t->mask; t->tags[i] != 0; i = (i + 1) & t->mask)
		if (t->tags[i] == SLOT_TAG(h) && t->slots[i].hash == h &&
			key_equal(fm, t->slots[i].group, values, nulls))
			return t->slots[i].group;
	if (!insert)
		return NULL;

	oldcxt = MemoryContextSwitchTo(t->cxt);
	g = palloc0(offsetof(Group, acc) + sizeof(Acc) * fm->ncols);
	g->hash = h;
	for (int c = 0; c < fm->ncols; c++)
	{
		FastColumn *col = &fm->cols[c];

		g->acc[c].isnull = true;
		if (col->acc == ACC_KEY && !nulls[c])
		{
			g->acc[c].isnull = false;
			g->acc[c].value = datumCopy(values[c], col->typbyval, col->typlen);
		}
	}
	MemoryContextSwitchTo(oldcxt);
	t->slots[i].hash = h;
	t->slots[i].group = g;
	t->tags[i] = SLOT_TAG(h);
	if (++t->count * 10 > (t->mask + 1) * 7)
		table_grow(t);
	return g;
}

/*
 * hashset_add
 *		Add a hash; returns false if it was there already.
 */
static bool
hashset_add(FastMerge *fm, HashSet *s, uint64 h)
{
	uint64		i;

	for (i = h & s->mask; s->slots[i] != 0; i = (i + 1) & s->mask)
		if (s->slots[i] == h)
			return false;
	s->slots[i] = h;
	if (++s->count * 10 > (s->mask + 1) * 7)
	{
		uint64		newmask = s->mask * 2 + 1;
		uint64	   *slots;

		if (sizeof(uint64) * (newmask + 1) +
			MemoryContextMemAllocated(fm->speed.cxt, true) > BUDGET_BYTES)
		{
			fm->over_budget = true;
			return true;
		}
		slots = MemoryContextAllocExtended(s->cxt, sizeof(uint64) * (newmask + 1),
										   MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
		for (uint64 j = 0; j <= s->mask; j++)
		{
			uint64		k;

			if (s->slots[j] == 0)
				continue;
			for (k = s->slots[j] & newmask; slots[k] != 0; k = (k + 1) & newmask)
				;
			slots[k] = s->slots[j];
		}
		pfree(s->slots);
		s->slots = slots;
		s->mask = newmask;
	}
	return true;
}

static bool
hashset_contains(HashSet *s, uint64 h)
{
	for (uint64 i = h & s->mask; s->slots[i] != 0; i = (i + 1) & s->mask)
		if (s->slots[i] == h)
			return true;
	return false;
}

static void
hashset_init(HashSet *s, uint64 expected)
{
	uint64		size = 1024;

	while (size * 7 < expected * 10 && size * sizeof(uint64) < BUDGET_BYTES / 2)
		size *= 2;
	s->cxt = CurrentMemoryContext;
	s->mask = size - 1;
	s->count = 0;
	s->slots = MemoryContextAllocExtended(s->cxt, sizeof(uint64) * size,
										  MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
}

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
			fm->values[i] = acc.value;
			fm->nulls[i] = acc.isnull;
			continue;
		}
		if (g2 != NULL)
			merge_acc(col, &acc, &g2->acc[i]);
		fm->nulls[i] = acc.isnull;
		fm->values[i] = acc.isnull ? (Datum) 0 : acc_result(col, &acc);
	}
	writer_put(fm->writer, fm->values, fm->nulls);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(fm->rowcxt);
}

/* step 1: a speed row into its group */
static void
speed_row(TupleTableSlot *slot, void *arg)
{
	FastMerge  *fm = arg;
	uint64		h;
	Group	   *g;
	MemoryContext oldcxt;

	if (fm->over_budget)
		return;
	h = key_hash(fm, slot->tts_values, slot->tts_isnull);
	g = table_find(fm, &fm->speed, h, slot->tts_values, slot->tts_isnull, true);
	oldcxt = MemoryContextSwitchTo(fm->speed.cxt);
	for (int i = 0; i < fm->ncols; i++)
		if (fm->cols[i].acc != ACC_KEY)
			accumulate(&fm->cols[i], &g->acc[i], slot->tts_values[i],
					   slot->tts_isnull[i]);
	MemoryContextSwitchTo(oldcxt);
	fm->speed_rows++;
	if ((fm->speed_rows & 1023) == 0 &&
		MemoryContextMemAllocated(fm->speed.cxt, true) > BUDGET_BYTES)
		fm->over_budget = true;
}

/*
 * keys_flush
 *		Add the pending key hashes to the set.  Their slots are fetched into
 *		the CPU cache first, all at once: the set is larger than the caches,
 *		and waiting for one slot after the other dominated this pass.
 */
static void
keys_flush(FastMerge *fm)
{
	for (int i = 0; i < fm->npending; i++)
		__builtin_prefetch(&fm->keys.slots[fm->pending[i] & fm->keys.mask]);
	for (int i = 0; i < fm->npending && !fm->over_budget; i++)
	{
		if (!hashset_add(fm, &fm->keys, fm->pending[i]))
		{
			(void) hashset_add(fm, &fm->duphashes, fm->pending[i]);
			if (fm->duphashes.count > DUP_GROUPS_MAX)
				fm->over_budget = true;
		}
	}
	fm->npending = 0;
}

/* step 2: a batch key into the set of hashes */
static void
batch_key(TupleTableSlot *slot, void *arg)
{
	FastMerge  *fm = arg;
	int			k = 0;
	uint64		h;

	if (fm->over_budget)
		return;
	/* the query returns only the keys: spread them over the columns */
	for (int i = 0; i < fm->ncols; i++)
	{
		fm->values[i] = fm->cols[i].acc == ACC_KEY ? slot->tts_values[k] : (Datum) 0;
		fm->nulls[i] = fm->cols[i].acc == ACC_KEY ? slot->tts_isnull[k++] : true;
	}
	h = key_hash(fm, fm->values, fm->nulls);
	fm->pending[fm->npending++] = h;
	if (fm->npending == lengthof(fm->pending))
		keys_flush(fm);
}

/* step 3: a batch row, written at once or kept with its duplicates */
static void
batch_row(TupleTableSlot *slot, void *arg)
{
	FastMerge  *fm = arg;
	uint64		h = key_hash(fm, slot->tts_values, slot->tts_isnull);
	Group	   *g;
	MemoryContext oldcxt;

	fm->batch_rows++;
	if (fm->duphashes.count > 0 && hashset_contains(&fm->duphashes, h))
	{
		g = table_find(fm, &fm->dups, h, slot->tts_values, slot->tts_isnull,
					   true);
		oldcxt = MemoryContextSwitchTo(fm->dups.cxt);
		for (int i = 0; i < fm->ncols; i++)
			if (fm->cols[i].acc != ACC_KEY)
				accumulate(&fm->cols[i], &g->acc[i], slot->tts_values[i],
						   slot->tts_isnull[i]);
		MemoryContextSwitchTo(oldcxt);
		return;
	}

	g = table_find(fm, &fm->speed, h, slot->tts_values, slot->tts_isnull, false);
	if (g == NULL)
	{
		/* a key of the batch only: the row as it is */
		writer_put(fm->writer, slot->tts_values, slot->tts_isnull);
		return;
	}

	/* the batch value first, then the speed group's, as the GROUP BY adds */
	g->matched = true;
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
		accumulate(col, &acc, slot->tts_values[i], slot->tts_isnull[i]);
		merge_acc(col, &acc, &g->acc[i]);
		fm->nulls[i] = acc.isnull;
		fm->values[i] = acc.isnull ? (Datum) 0 : acc_result(col, &acc);
	}
	writer_put(fm->writer, fm->values, fm->nulls);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(fm->rowcxt);
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
		values[i] = g->acc[i].value;
		nulls[i] = fm->cols[i].acc != ACC_KEY || g->acc[i].isnull;
	}
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
 * fast_merge
 *		Compute the new contents into writer; false (with nothing written)
 *		when the memory budget would be exceeded.
 */
bool
fast_merge(const MergePlan *plan, HeapWriter *writer, BuildResult *result)
{
	FastMerge  *fm = palloc0(sizeof(FastMerge));
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "serving_layer fast merge",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext oldcxt = MemoryContextSwitchTo(cxt);
	bool		done = false;
	float4		reltuples;

	fast_columns(fm, plan);
	fm->writer = writer;
	fm->values = palloc(sizeof(Datum) * fm->ncols);
	fm->nulls = palloc(sizeof(bool) * fm->ncols);
	fm->rowcxt = AllocSetContextCreate(cxt, "serving_layer fast merge row",
									   ALLOCSET_DEFAULT_SIZES);
	table_init(&fm->speed);
	table_init(&fm->dups);
	reltuples = reltuples_of(plan->batch);
	hashset_init(&fm->keys, reltuples > 0 ? (uint64) reltuples : 0);
	hashset_init(&fm->duphashes, 0);

	/* one snapshot for the three queries */
	PushActiveSnapshot(GetTransactionSnapshot());

	query_rows(merge_sql_layer(plan, true, false), 0, NULL, NULL, true,
			   speed_row, fm);
	if (!fm->over_budget)
	{
		query_rows(merge_sql_layer(plan, false, true), 0, NULL, NULL, true,
				   batch_key, fm);
		keys_flush(fm);
	}
	if (!fm->over_budget)
	{
		/* the key set is not needed any more: only the duplicates are */
		pfree(fm->keys.slots);
		fm->keys.slots = NULL;
		query_rows(merge_sql_layer(plan, false, false), 0, NULL, NULL, true,
				   batch_row, fm);

		/* step 4: duplicate keys with their speed groups, then speed only */
		for (uint64 i = 0; i <= fm->dups.mask; i++)
		{
			Group	   *g = fm->dups.slots[i].group;
			Group	   *sg;
			Datum	   *values = palloc(sizeof(Datum) * fm->ncols);
			bool	   *nulls = palloc(sizeof(bool) * fm->ncols);

			if (g == NULL)
				continue;
			CHECK_FOR_INTERRUPTS();
			group_key(fm, g, values, nulls);
			sg = table_find(fm, &fm->speed, g->hash, values, nulls, false);
			if (sg != NULL)
				sg->matched = true;
			write_group(fm, g, sg);
		}
		for (uint64 i = 0; i <= fm->speed.mask; i++)
		{
			Group	   *g = fm->speed.slots[i].group;

			if (g == NULL || g->matched)
				continue;
			CHECK_FOR_INTERRUPTS();
			write_group(fm, g, NULL);
		}
		done = true;
	}
	PopActiveSnapshot();

	MemoryContextSwitchTo(oldcxt);
	result->batch_rows = fm->batch_rows;
	result->speed_rows = fm->speed_rows;
	MemoryContextDelete(cxt);
	return done;
}
