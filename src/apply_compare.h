/*-------------------------------------------------------------------------
 *
 * apply_compare.h
 *	  Hashing and comparing the serving table's rows for mode 'apply'
 *	  (apply_compare.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_APPLY_COMPARE_H
#define SL_APPLY_COMPARE_H

#include "executor/tuptable.h"
#include "fmgr.h"
#include "utils/relcache.h"

#include "hash_mix.h"
#include "merge_types.h"

/* The serving table's row layout and its key columns' functions. */
typedef struct RowShape
{
	Relation	rel;
	int			natts;			/* dropped columns included */
	int			nkeys;
	AttrNumber *keyatt;			/* key columns, 0-based attribute numbers */
	FmgrInfo   *keyhash;		/* their extended hash functions */
	FmgrInfo   *keyeq;			/* their equality functions */
	Oid		   *keycoll;
} RowShape;

extern uint64 sl_image_hash(Datum value, bool byval, int16 len,
							   uint64 seed);
extern void row_shape_init(RowShape *shape, Relation rel,
						   const MergePlan *plan);
extern uint64 row_key_hash(const RowShape *shape, Datum *values, bool *nulls);
extern uint64 row_image_hash(const RowShape *shape, Datum *values,
							 bool *nulls);
extern bool row_same_image(const RowShape *shape, TupleTableSlot *a,
						   TupleTableSlot *b);
extern bool row_same_key(const RowShape *shape, TupleTableSlot *a,
						 TupleTableSlot *b);

extern void apply_check_keys(const MergePlan *plan, const char *display);

#endif							/* SL_APPLY_COMPARE_H */
