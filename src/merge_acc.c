/*-------------------------------------------------------------------------
 *
 * merge_acc.c
 *	  Merge measure values the way the merge's aggregate would: sums exact
 *	  for integers (128 bits) and numeric, float sums with the overflow
 *	  checks of sum(real) and sum(double precision), min and max with the
 *	  type's ordering; and the final value in the column's type, with the
 *	  errors of the cast the GROUP BY query makes.
 *
 * Also which plans the C merge takes (fast_merge_possible) and the
 * functions its columns need (fast_columns).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/float.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

#include "fast_merge.h"
#include "fast_merge_api.h"
#include "settings.h"

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

		if (col->kind == MERGE_KEY)
		{
			TypeCacheEntry *tce = lookup_type_cache(col->typid,
													TYPECACHE_HASH_EXTENDED_PROC |
													TYPECACHE_EQ_OPR);

			if (!OidIsValid(tce->hash_extended_proc) || !OidIsValid(tce->eq_opr))
				return false;
			continue;
		}
		if (col->kind != MERGE_AGGREGATE || col->builtin == BUILTIN_NONE)
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
	get_typlenbyvalalign(typid, &col->typlen, &col->typbyval, &col->typalign);
	col->typstorage = get_typstorage(typid);
	col->bytes_key = (typid == TEXTOID || typid == VARCHAROID) &&
		OidIsValid(collid) && get_collation_isdeterministic(collid);
	fmgr_info(tce->hash_extended_proc_finfo.fn_oid, &col->hash);
	fmgr_info(tce->eq_opr_finfo.fn_oid, &col->eq);
}

/*
 * fast_columns
 *		The C merge's columns of a plan, with the functions each needs.
 */
FastColumn *
fast_columns(const MergePlan *plan)
{
	FastColumn *cols = palloc0(sizeof(FastColumn) * plan->ncolumns);

	for (int i = 0; i < plan->ncolumns; i++)
	{
		const PlanColumn *pc = &plan->columns[i];
		FastColumn *col = &cols[i];
		TypeCacheEntry *tce;

		col->typid = pc->typid;
		col->typmod = pc->typmod;
		col->collid = pc->collid;
		get_typlenbyvalalign(col->typid, &col->typlen, &col->typbyval,
							 &col->typalign);
		col->typstorage = get_typstorage(col->typid);
		tce = lookup_type_cache(col->typid,
								TYPECACHE_HASH_EXTENDED_PROC_FINFO |
								TYPECACHE_EQ_OPR_FINFO | TYPECACHE_CMP_PROC_FINFO);
		if (pc->kind == MERGE_KEY)
		{
			fast_key_column(col, col->typid, col->collid);
			continue;
		}
		if (pc->builtin == BUILTIN_SUM)
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
			col->acc = pc->builtin == BUILTIN_MIN ? ACC_MIN : ACC_MAX;
			fmgr_info(tce->cmp_proc_finfo.fn_oid, &col->cmp);
		}
	}
	return cols;
}

/* an integer measure's value, widened */
static inline int64
int_value(FastColumn *col, Datum value)
{
	return col->typid == INT2OID ? DatumGetInt16(value) :
		col->typid == INT4OID ? DatumGetInt32(value) : DatumGetInt64(value);
}

/*
 * replace_value
 *		Make new the accumulator's value, freeing the old one if it was not
 *		passed by value.
 */
static inline void
replace_value(FastColumn *col, Acc *acc, Datum new)
{
	if (!col->typbyval && DatumGetPointer(acc->v.value) != DatumGetPointer(new))
		pfree(DatumGetPointer(acc->v.value));
	acc->v.value = new;
}

/*
 * acc_add
 *		Merge one value into an accumulator, with the aggregate's semantics:
 *		NULLs are ignored, the first non-NULL value starts the state.  New
 *		values are allocated in the current memory context.
 */
void
acc_add(FastColumn *col, Acc *acc, Datum value, bool isnull)
{
	if (isnull)
		return;
	if (acc->isnull)
	{
		acc->isnull = false;
		switch (col->acc)
		{
			case ACC_SUM_INT:
				acc->v.isum = int64_to_int128(int_value(col, value));
				break;
			default:
				acc->v.value = datumCopy(value, col->typbyval, col->typlen);
		}
		return;
	}
	switch (col->acc)
	{
		case ACC_KEY:
			break;
		case ACC_SUM_INT:
			int128_add_int64(&acc->v.isum, int_value(col, value));
			break;
		case ACC_SUM_FLOAT4:
			acc->v.value = DirectFunctionCall2(float4pl, acc->v.value, value);
			break;
		case ACC_SUM_FLOAT8:
			replace_value(col, acc,
						  DirectFunctionCall2(float8pl, acc->v.value, value));
			break;
		case ACC_SUM_NUMERIC:
			replace_value(col, acc,
						  DirectFunctionCall2(numeric_add, acc->v.value, value));
			break;
		case ACC_MIN:
		case ACC_MAX:
			{
				int32		c = DatumGetInt32(FunctionCall2Coll(&col->cmp, col->collid,
																value, acc->v.value));

				if ((col->acc == ACC_MIN && c < 0) || (col->acc == ACC_MAX && c > 0))
					replace_value(col, acc,
								  datumCopy(value, col->typbyval, col->typlen));
				break;
			}
	}
}

/*
 * acc_free
 *		Free an accumulator's value (a measure's, not passed by value).
 */
void
acc_free(FastColumn *col, Acc *acc)
{
	if (col->acc != ACC_KEY && col->acc != ACC_SUM_INT && !acc->isnull &&
		!col->typbyval)
		pfree(DatumGetPointer(acc->v.value));
	acc->isnull = true;
}

/*
 * acc_merge
 *		Merge accumulator src into dst (a group of the other layer, or an
 *		earlier part of the same group); dst's old value is freed when
 *		replaced, src's is left alone.
 */
void
acc_merge(FastColumn *col, Acc *dst, Acc *src)
{
	if (src->isnull)
		return;
	if (col->acc == ACC_SUM_INT)
	{
		if (dst->isnull)
			dst->v.isum = src->v.isum;
		else
		{
#if USE_NATIVE_INT128
			dst->v.isum += src->v.isum;
#else
			/* the halves of the two's complement value: low with carry */
			int128_add_uint64(&dst->v.isum, src->v.isum.lo);
			dst->v.isum.hi += src->v.isum.hi;
#endif
		}
		dst->isnull = false;
		return;
	}
	acc_add(col, dst, src->v.value, false);
}

/* whether an integer sum is outside [min, max] */
static inline bool
isum_outside(INT128 v, int64 min, int64 max)
{
	return int128_compare(v, int64_to_int128(min)) < 0 ||
		int128_compare(v, int64_to_int128(max)) > 0;
}

/*
 * acc_result
 *		The final value of an accumulator in the column's type: integer sums
 *		are range-checked with the errors of the cast the GROUP BY query
 *		makes, numeric sums get the column's type modifier.
 */
Datum
acc_result(FastColumn *col, Acc *acc)
{
	switch (col->acc)
	{
		case ACC_SUM_INT:
			if (col->typid == INT2OID)
			{
				if (isum_outside(acc->v.isum, PG_INT16_MIN, PG_INT16_MAX))
					ereport(ERROR,
							(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
							 errmsg("smallint out of range")));
				return Int16GetDatum((int16) int128_to_int64(acc->v.isum));
			}
			if (col->typid == INT4OID)
			{
				if (isum_outside(acc->v.isum, PG_INT32_MIN, PG_INT32_MAX))
					ereport(ERROR,
							(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
							 errmsg("integer out of range")));
				return Int32GetDatum((int32) int128_to_int64(acc->v.isum));
			}
			if (isum_outside(acc->v.isum, PG_INT64_MIN, PG_INT64_MAX))
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("bigint out of range")));
			return Int64GetDatum(int128_to_int64(acc->v.isum));
		case ACC_SUM_NUMERIC:
			if (col->typmod >= 0)
				return DirectFunctionCall2(numeric, acc->v.value,
										   Int32GetDatum(col->typmod));
			return acc->v.value;
		default:
			return acc->v.value;
	}
}
