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
 *		 than once (in a set of 32 bits per key, freed after the pass);
 *	  2. the speed layer is aggregated by key into a hash table in memory;
 *	  3. a second pass streams the batch rows: a row whose key hash occurs
 *		 once is merged with its speed group, if any, and written at once; a
 *		 row whose hash occurs more than once (a duplicate key, or a hash
 *		 collision) is aggregated into a second hash table;
 *	  4. those groups are merged with their speed groups and written, then
 *		 the speed groups no batch row matched.
 * The three reads see one snapshot.  A plain batch table is read with a
 * table scan rather than a query, and its unchanged rows copied as stored
 * (batch_scan.c); the speed layer, whose values may need casting, always
 * through its query.  The results are those of the GROUP
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
#include "access/table.h"
#include "catalog/pg_class.h"
#include "utils/typcache.h"

#include "batch_scan.h"
#include "fast_merge_api.h"
#include "heap_writer.h"
#include "merge_sql.h"
#include "merge_types.h"
#include "query_rows.h"
#include "settings.h"
#include "fast_merge.h"

/*
 * The memory budget is serving_layer.fast_merge_memory (kB), for the set of
 * batch key hashes (step 1) and then for the speed groups, the set of
 * duplicate hashes and the duplicate groups together (steps 2-4), each
 * counted with the values its groups hold.  Past it the GROUP BY query is
 * used.
 */
#define BUDGET_BYTES	((Size) sl_fast_merge_memory * 1024)

typedef struct FastMerge
{
	int			ncols;
	FastColumn *cols;
	GroupTable	speed;
	GroupTable	dups;
	HashSet		keys;			/* every batch key hash */
	HashSet		duphashes;		/* hashes seen more than once */
	HeapWriter *writer;
	Relation	batchrel;		/* the batch table when read directly */
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
 * fast_key_column
 *		Make col a key column of type typid and collation collid, with its
 *		type's hash and equality functions.
 */
static void
fast_key_column(FastColumn *col, Oid typid, Oid collid)
{
	TypeCacheEntry *tce = lookup_type_cache(typid,
											TYPECACHE_HASH_EXTENDED_PROC_FINFO |
											TYPECACHE_EQ_OPR_FINFO);

	col->acc = ACC_KEY;
	col->typid = typid;
	col->collid = collid;
	get_typlenbyval(typid, &col->typlen, &col->typbyval);
	col->bytes_key = (typid == TEXTOID || typid == VARCHAROID) &&
		OidIsValid(collid) && get_collation_isdeterministic(collid);
	fmgr_info(tce->hash_extended_proc_finfo.fn_oid, &col->hash);
	fmgr_info(tce->eq_opr_finfo.fn_oid, &col->eq);
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
			fast_key_column(col, col->typid, col->collid);
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
			acc_merge(col, &acc, &g2->acc[i]);
		fm->nulls[i] = acc.isnull;
		fm->values[i] = acc.isnull ? (Datum) 0 : acc_result(col, &acc);
	}
	writer_put(fm->writer, fm->values, fm->nulls);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(fm->rowcxt);
}

/*
 * add_to_group
 *		Merge a row's measures into its key's group in table t (a new group
 *		if the key has none), the values kept in the table's memory.
 */
static void
add_to_group(FastMerge *fm, GroupTable *t, uint64 h, TupleTableSlot *slot)
{
	Group	   *g = group_table_find(t, fm->cols, fm->ncols, h, slot->tts_values,
									 slot->tts_isnull, true);
	MemoryContext oldcxt = MemoryContextSwitchTo(t->cxt);

	for (int i = 0; i < fm->ncols; i++)
		if (fm->cols[i].acc != ACC_KEY)
			acc_add(&fm->cols[i], &g->acc[i], slot->tts_values[i],
					slot->tts_isnull[i]);
	MemoryContextSwitchTo(oldcxt);
}

/* step 2: a speed row into its group */
static void
speed_row(TupleTableSlot *slot, void *arg)
{
	FastMerge  *fm = arg;
	uint64		h;

	if (fm->over_budget)
		return;
	h = group_key_hash(fm->cols, fm->ncols, slot->tts_values, slot->tts_isnull);
	add_to_group(fm, &fm->speed, h, slot);
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
		SL_PREFETCH(&fm->keys.slots[fm->pending[i] & fm->keys.mask]);
	for (int i = 0; i < fm->npending && !fm->over_budget; i++)
	{
		Size		maxbytes = BUDGET_BYTES;

		if (!hashset_add(&fm->keys, fm->pending[i], maxbytes,
						 &fm->over_budget))
		{
			(void) hashset_add(&fm->duphashes, fm->pending[i], maxbytes,
							   &fm->over_budget);
		}
	}
	fm->npending = 0;
}

/* step 1: a batch key into the set of hashes */
static void
batch_key(TupleTableSlot *slot, void *arg)
{
	FastMerge  *fm = arg;
	int			k = 0;
	uint64		h;

	if (fm->over_budget)
		return;
	if (fm->batchrel != NULL)
		h = group_key_hash(fm->cols, fm->ncols, slot->tts_values, slot->tts_isnull);
	else
	{
		/* the query returns only the keys: spread them over the columns */
		for (int i = 0; i < fm->ncols; i++)
		{
			fm->values[i] = fm->cols[i].acc == ACC_KEY ? slot->tts_values[k] : (Datum) 0;
			fm->nulls[i] = fm->cols[i].acc == ACC_KEY ? slot->tts_isnull[k++] : true;
		}
		h = group_key_hash(fm->cols, fm->ncols, fm->values, fm->nulls);
	}
	fm->pending[fm->npending++] = h;
	if (fm->npending == lengthof(fm->pending))
		keys_flush(fm);
}

/* step 3: a batch row, written at once or kept with its duplicates */
static void
batch_row(TupleTableSlot *slot, void *arg)
{
	FastMerge  *fm = arg;
	uint64		h = group_key_hash(fm->cols, fm->ncols, slot->tts_values, slot->tts_isnull);
	Group	   *g;
	MemoryContext oldcxt;

	fm->batch_rows++;
	if (fm->duphashes.count > 0 && hashset_contains(&fm->duphashes, h))
	{
		add_to_group(fm, &fm->dups, h, slot);
		return;
	}

	g = group_table_find(&fm->speed, fm->cols, fm->ncols, h, slot->tts_values, slot->tts_isnull, false);
	if (g == NULL)
	{
		/* a key of the batch only: the row as it is */
		if (fm->batchrel != NULL)
			writer_put_slot(fm->writer, slot);
		else
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
		acc_add(col, &acc, slot->tts_values[i], slot->tts_isnull[i]);
		acc_merge(col, &acc, &g->acc[i]);
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
		values[i] = g->acc[i].v.value;
		nulls[i] = fm->cols[i].acc != ACC_KEY || g->acc[i].isnull;
	}
}

/*
 * last_key
 *		The number of the last key column: how far a batch row is deformed
 *		to hash its key.
 */
static int
last_key(FastMerge *fm)
{
	int			last = 0;

	for (int i = 0; i < fm->ncols; i++)
		if (fm->cols[i].acc == ACC_KEY)
			last = i + 1;
	return last;
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
 *		Compute the new contents into writer and count the rows read from
 *		each layer; false (with nothing written) when the memory budget
 *		would be exceeded.
 */
bool
fast_merge(const MergePlan *plan, HeapWriter *writer, int64 *batch_rows,
		   int64 *speed_rows)
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
	group_table_init(&fm->speed);
	group_table_init(&fm->dups);
	/*
	 * A speed layer whose rows, were each its own group, would need more
	 * than twice the budget is left to the GROUP BY before it is read (the
	 * rows of a key arriving in several micro-batches are why only twice).
	 */
	reltuples = reltuples_of(plan->speed);
	if (reltuples > 0 &&
		reltuples * (offsetof(Group, acc) + sizeof(Acc) * fm->ncols + 32) >
		2.0 * BUDGET_BYTES)
	{
		MemoryContextSwitchTo(oldcxt);
		MemoryContextDelete(cxt);
		return false;
	}
	reltuples = reltuples_of(plan->batch);
	hashset_init(&fm->duphashes, 0, BUDGET_BYTES);

	/* the three reads see the snapshot of the build (build.c) */
	PushActiveSnapshot(GetActiveSnapshot());

	/*
	 * The batch keys first: the key set is freed before the speed groups
	 * are made, so that the two never take memory together.
	 */
	fm->batchrel = batch_scan_open(plan);
	hashset_init(&fm->keys, reltuples > 0 ? (uint64) reltuples : 0,
				 BUDGET_BYTES);
	if (fm->batchrel != NULL)
		batch_scan(fm->batchrel, last_key(fm), batch_key, fm);
	else
		query_layer_rows(plan, false, true, batch_key, fm);
	keys_flush(fm);
	pfree(fm->keys.slots);
	fm->keys.slots = NULL;

	if (!fm->over_budget)
		query_layer_rows(plan, true, false, speed_row, fm);
	/*
	 * speed_row looks at the memory every 1024 rows: look at the last ones,
	 * and count the duplicate groups step 3 will make, one per duplicate
	 * hash, each taken as large as a speed group (or a group's struct and a
	 * short key when there is none).
	 */
	if (!fm->over_budget)
	{
		Size		speed_mem = MemoryContextMemAllocated(fm->speed.cxt, true);
		double		per_group = fm->speed.count > 0 ?
			(double) speed_mem / fm->speed.count :
			offsetof(Group, acc) + sizeof(Acc) * fm->ncols + 64;

		if (speed_mem + sizeof(uint32) * (fm->duphashes.mask + 1) +
			per_group * fm->duphashes.count > BUDGET_BYTES)
			fm->over_budget = true;
	}
	if (!fm->over_budget)
	{
		Datum	   *values = palloc(sizeof(Datum) * fm->ncols);
		bool	   *nulls = palloc(sizeof(bool) * fm->ncols);

		if (fm->batchrel != NULL)
			batch_scan(fm->batchrel, fm->ncols, batch_row, fm);
		else
			query_layer_rows(plan, false, false, batch_row, fm);

		/* step 4: duplicate keys with their speed groups, then speed only */
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
		for (uint64 i = 0; i <= fm->speed.mask; i++)
		{
			Group	   *g = fm->speed.groups[i];

			if (fm->speed.tags[i] == 0 || g->matched)
				continue;
			CHECK_FOR_INTERRUPTS();
			write_group(fm, g, NULL);
		}
		done = true;
	}
	PopActiveSnapshot();
	if (fm->batchrel != NULL)
		table_close(fm->batchrel, NoLock);

	MemoryContextSwitchTo(oldcxt);
	*batch_rows = fm->batch_rows;
	*speed_rows = fm->speed_rows;
	MemoryContextDelete(cxt);
	return done;
}
