/*-------------------------------------------------------------------------
 *
 * apply_compare.c
 *	  How mode 'apply' tells rows apart: a hash of a row's key, a hash of
 *	  its stored image, and the exact comparisons behind them.
 *
 * A key is hashed and compared with its types' hash and equality functions
 * (NULL equal to NULL), so that two rows have the same key exactly when
 * GROUP BY would group them.  A row's image is hashed as datum_image_eq()
 * compares it: pass-by-value datums by value, others by their bytes,
 * varlena values detoasted and without their header, so that a value
 * stored compressed or out of line hashes as the merge's plain value does.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "fmgr.h"
#include "utils/datum.h"
#include "utils/rel.h"
#include "utils/typcache.h"

#include "apply_compare.h"
#include "compat.h"

/* seeds of the two hashes, so that they are independent */
#define KEY_SEED	UINT64CONST(0x5e5a1a7e4b3d2c19)
#define IMAGE_SEED	UINT64CONST(0x2f6c8e91d3b5a047)

/*
 * sl_image_hash
 *		Hash of a datum's image, as datum_image_eq() compares: a value passed
 *		by value by its value (one 64-bit mix instead of hash_bytes_extended()
 *		over 8 bytes, which was 9 % of a refresh), else its bytes, varlena
 *		values detoasted and without their header, seeded with seed.
 */
uint64
sl_image_hash(Datum value, bool byval, int16 len, uint64 seed)
{
	if (byval)
		return sl_mix64((uint64) value ^ seed);
	if (len == -1)
	{
		struct varlena *p = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(value));
		uint64		h = hash_bytes_extended((const unsigned char *) VARDATA_ANY(p),
											VARSIZE_ANY_EXHDR(p), seed);

		if ((Pointer) p != DatumGetPointer(value))
			pfree(p);
		return h;
	}
	if (len > 0)
		return hash_bytes_extended((const unsigned char *) DatumGetPointer(value),
								   len, seed);
	return hash_bytes_extended((const unsigned char *) DatumGetCString(value),
							   strlen(DatumGetCString(value)), seed);
}

/*
 * apply_check_keys
 *		Mode 'apply' finds the serving row of a key by its hash: every key
 *		type needs a hash function (as GROUP BY by hashing does).
 */
void
apply_check_keys(const MergePlan *plan, const char *display)
{
	for (int i = 0; i < plan->ncolumns; i++)
	{
		const PlanColumn *col = &plan->columns[i];
		TypeCacheEntry *tce;

		if (col->kind != MERGE_KEY)
			continue;
		tce = lookup_type_cache(col->typid, TYPECACHE_HASH_EXTENDED_PROC |
								TYPECACHE_EQ_OPR);
		if (!OidIsValid(tce->hash_extended_proc) || !OidIsValid(tce->eq_opr))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("key column \"%s\" of serving table \"%s\" has a type without hash support",
							col->name, display),
					 errdetail("Mode 'apply' matches rows by a hash of their key."),
					 errhint("Use mode 'swap' for this table.")));
	}
}

/*
 * row_shape_init
 *		The serving table's key columns (plan's keys, as attribute numbers
 *		of rel, dropped columns counted) with their hash and equality
 *		functions.
 */
void
row_shape_init(RowShape *shape, Relation rel, const MergePlan *plan)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			live = 0;

	shape->rel = rel;
	shape->natts = desc->natts;
	shape->nkeys = 0;
	shape->keyatt = palloc(sizeof(AttrNumber) * plan->ncolumns);
	shape->keyhash = palloc(sizeof(FmgrInfo) * plan->ncolumns);
	shape->keyeq = palloc(sizeof(FmgrInfo) * plan->ncolumns);
	shape->keycoll = palloc(sizeof(Oid) * plan->ncolumns);
	for (int a = 0; a < desc->natts; a++)
	{
		const PlanColumn *col;
		TypeCacheEntry *tce;

		if (TupleDescAttr(desc, a)->attisdropped)
			continue;
		col = &plan->columns[live++];
		if (col->kind != MERGE_KEY)
			continue;
		tce = lookup_type_cache(col->typid,
								TYPECACHE_HASH_EXTENDED_PROC_FINFO |
								TYPECACHE_EQ_OPR_FINFO);
		shape->keyatt[shape->nkeys] = a;
		fmgr_info(tce->hash_extended_proc_finfo.fn_oid,
				  &shape->keyhash[shape->nkeys]);
		fmgr_info(tce->eq_opr_finfo.fn_oid, &shape->keyeq[shape->nkeys]);
		shape->keycoll[shape->nkeys] = TupleDescAttr(desc, a)->attcollation;
		shape->nkeys++;
	}
}

/*
 * row_key_hash
 *		Hash of the key columns of a row given as the serving table's
 *		attributes.  NULL is a value like any other.
 */
uint64
row_key_hash(const RowShape *shape, Datum *values, bool *nulls)
{
	uint64		h = KEY_SEED;

	for (int k = 0; k < shape->nkeys; k++)
	{
		AttrNumber	a = shape->keyatt[k];
		uint64		v;

		if (nulls[a])
			v = UINT64CONST(0x9e3779b97f4a7c15);
		else
			v = DatumGetUInt64(FunctionCall2Coll(&shape->keyhash[k],
												 shape->keycoll[k], values[a],
												 UInt64GetDatum(KEY_SEED)));
		h = hash_combine64(h, v);
	}
	return h;
}

/*
 * row_image_hash
 *		Hash of a row's stored image, column by column as datum_image_eq()
 *		compares: by value for pass-by-value types, else the bytes, varlena
 *		values detoasted and without their header.
 */
uint64
row_image_hash(const RowShape *shape, Datum *values, bool *nulls)
{
	TupleDesc	desc = RelationGetDescr(shape->rel);
	uint64		h = IMAGE_SEED;

	for (int i = 0; i < shape->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		uint64		v;

		if (att->attisdropped)
			continue;
		if (nulls[i])
			v = UINT64CONST(0x7f4a7c159e3779b9);
		else
			v = sl_image_hash(values[i], att->attbyval, att->attlen,
								 att->attbyval ? IMAGE_SEED + i : IMAGE_SEED);
		h = hash_combine64(h, v);
	}
	return h;
}

/*
 * row_same_image
 *		Whether two rows of the serving table's type are stored alike.
 */
bool
row_same_image(const RowShape *shape, TupleTableSlot *a, TupleTableSlot *b)
{
	TupleDesc	desc = RelationGetDescr(shape->rel);

	slot_getallattrs(a);
	slot_getallattrs(b);
	for (int i = 0; i < shape->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped)
			continue;
		if (a->tts_isnull[i] != b->tts_isnull[i])
			return false;
		if (!a->tts_isnull[i] &&
			!datum_image_eq(a->tts_values[i], b->tts_values[i],
							att->attbyval, att->attlen))
			return false;
	}
	return true;
}

/*
 * row_same_key
 *		Whether two rows have equal keys, by the key types' equality (NULL
 *		equal to NULL, as GROUP BY groups).
 */
bool
row_same_key(const RowShape *shape, TupleTableSlot *a, TupleTableSlot *b)
{
	slot_getallattrs(a);
	slot_getallattrs(b);
	for (int k = 0; k < shape->nkeys; k++)
	{
		AttrNumber	i = shape->keyatt[k];

		if (a->tts_isnull[i] || b->tts_isnull[i])
		{
			if (a->tts_isnull[i] != b->tts_isnull[i])
				return false;
			continue;
		}
		if (!DatumGetBool(FunctionCall2Coll(&shape->keyeq[k], shape->keycoll[k],
											a->tts_values[i],
											b->tts_values[i])))
			return false;
	}
	return true;
}
