/*-------------------------------------------------------------------------
 *
 * pick_agg.c
 *	  The aggregate behind the "speed" and "batch" merges.
 *
 * serving_layer_pick(value, from_speed, prefer_speed, column) returns the
 * value of the key's single row in the winning layer: the speed layer for a
 * "speed" merge when the key has a speed row, else the batch layer (and the
 * other way round for "batch").  Two rows of one key in the winning layer
 * are a cardinality_violation, the error a scalar subquery gives for two
 * rows: there is no single value to take.  Rows of the losing layer may
 * repeat freely, since they are not used.
 *
 * The value may be of any type, so the state keeps a copy of the first value
 * of each layer and a count of the rows.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"

PG_FUNCTION_INFO_V1(serving_layer_pick_transfn);
PG_FUNCTION_INFO_V1(serving_layer_pick_finalfn);

typedef struct PickState
{
	int16		typlen;
	bool		typbyval;
	bool		prefer_speed;
	char	   *column;			/* for the error message */
	int64		count[2];		/* rows seen: [0] batch, [1] speed */
	Datum		value[2];		/* first value of each layer */
	bool		isnull[2];
} PickState;

/*
 * serving_layer_pick_transfn(internal, anyelement, bool, bool, text)
 *		Count the row and keep the first value of its layer.
 */
Datum
serving_layer_pick_transfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	PickState  *st;
	int			layer;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "serving_layer_pick_transfn called in non-aggregate context");
	if (PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the layer and preference arguments of serving_layer_pick must not be null")));

	st = PG_ARGISNULL(0) ? NULL : (PickState *) PG_GETARG_POINTER(0);
	if (st == NULL)
	{
		Oid			type = get_fn_expr_argtype(fcinfo->flinfo, 1);

		st = MemoryContextAllocZero(aggcxt, sizeof(PickState));
		get_typlenbyval(type, &st->typlen, &st->typbyval);
		st->prefer_speed = PG_GETARG_BOOL(3);
		st->column = PG_ARGISNULL(4) ? "?" :
			MemoryContextStrdup(aggcxt, text_to_cstring(PG_GETARG_TEXT_PP(4)));
	}

	layer = PG_GETARG_BOOL(2) ? 1 : 0;
	if (st->count[layer]++ == 0)
	{
		st->isnull[layer] = PG_ARGISNULL(1);
		if (!st->isnull[layer])
		{
			MemoryContext old = MemoryContextSwitchTo(aggcxt);

			st->value[layer] = datumCopy(PG_GETARG_DATUM(1), st->typbyval,
										 st->typlen);
			MemoryContextSwitchTo(old);
		}
	}
	PG_RETURN_POINTER(st);
}

/*
 * serving_layer_pick_finalfn(internal, anyelement, bool, bool, text)
 *		The winning layer's value; an error if that layer has two rows.
 */
Datum
serving_layer_pick_finalfn(PG_FUNCTION_ARGS)
{
	PickState  *st = PG_ARGISNULL(0) ? NULL : (PickState *) PG_GETARG_POINTER(0);
	int			win;

	if (st == NULL)
		PG_RETURN_NULL();

	if (st->prefer_speed)
		win = st->count[1] > 0 ? 1 : 0;
	else
		win = st->count[0] > 0 ? 0 : 1;

	if (st->count[win] > 1 && win == 1)
		ereport(ERROR,
				(errcode(ERRCODE_CARDINALITY_VIOLATION),
				 errmsg("more than one speed row for one key of column \"%s\"",
						st->column),
				 st->prefer_speed ?
				 errdetail("A \"speed\" merge takes the value of the key's single speed row, and this key has %lld.",
						   (long long) st->count[win]) :
				 errdetail("A \"batch\" merge of a key without batch row takes the value of its single speed row, and this key has %lld.",
						   (long long) st->count[win]),
				 errhint("Aggregate the speed layer by key, or merge column \"%s\" with an aggregate such as \"max\".",
						 st->column)));
	if (st->count[win] > 1)
		ereport(ERROR,
				(errcode(ERRCODE_CARDINALITY_VIOLATION),
				 errmsg("more than one batch row for one key of column \"%s\"",
						st->column),
				 st->prefer_speed ?
				 errdetail("A \"speed\" merge of a key without speed row takes the value of its single batch row, and this key has %lld.",
						   (long long) st->count[win]) :
				 errdetail("A \"batch\" merge takes the value of the key's single batch row, and this key has %lld.",
						   (long long) st->count[win]),
				 errhint("Aggregate the batch layer by key, or merge column \"%s\" with an aggregate such as \"max\".",
						 st->column)));

	if (st->isnull[win])
		PG_RETURN_NULL();
	PG_RETURN_DATUM(st->value[win]);
}
