/*-------------------------------------------------------------------------
 *
 * assign_typmod.c
 *	  serving_layer_typmod(value, typmod): apply a type modifier to a value
 *	  the way an assignment (INSERT) applies it, not the way CAST does.
 *
 * Speed values are converted to the batch column's type with an assignment
 * cast.  SQL has no syntax for an assignment cast: CAST is explicit, and an
 * explicit length coercion truncates (varchar(3), char(n), bit(n)) where an
 * assignment raises string_data_right_truncation.  The merge query therefore
 * casts to the type without its modifier and then calls this function, which
 * calls the type's length coercion function with "is explicit" false, for
 * the value itself or for each element of an array (varchar(3)[]).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "parser/parse_coerce.h"
#include "utils/array.h"
#include "utils/lsyscache.h"

PG_FUNCTION_INFO_V1(serving_layer_typmod);

/*
 * apply_typmod
 *		Call a length coercion function (2 or 3 arguments) on one value.
 */
static Datum
apply_typmod(Oid funcid, Datum value, int32 typmod, Oid collation)
{
	if (get_func_nargs(funcid) == 3)
		return OidFunctionCall3Coll(funcid, collation, value,
									Int32GetDatum(typmod), BoolGetDatum(false));
	return OidFunctionCall2Coll(funcid, collation, value, Int32GetDatum(typmod));
}

/*
 * serving_layer_typmod(value anyelement, typmod integer) RETURNS anyelement
 */
Datum
serving_layer_typmod(PG_FUNCTION_ARGS)
{
	Oid			type = get_fn_expr_argtype(fcinfo->flinfo, 0);
	Datum		value = PG_GETARG_DATUM(0);
	int32		typmod = PG_GETARG_INT32(1);
	Oid			funcid;
	Oid			elemtype;
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int16		elmlen;
	bool		elmbyval;
	char		elmalign;

	switch (find_typmod_coercion_function(type, &funcid))
	{
		case COERCION_PATH_FUNC:
			PG_RETURN_DATUM(apply_typmod(funcid, value, typmod,
										 PG_GET_COLLATION()));
		case COERCION_PATH_ARRAYCOERCE:
			elemtype = get_element_type(type);
			if (find_typmod_coercion_function(elemtype, &funcid) != COERCION_PATH_FUNC)
				PG_RETURN_DATUM(value);
			arr = PG_GETARG_ARRAYTYPE_P(0);
			get_typlenbyvalalign(elemtype, &elmlen, &elmbyval, &elmalign);
			deconstruct_array(arr, elemtype, elmlen, elmbyval, elmalign,
							  &elems, &nulls, &n);
			for (int i = 0; i < n; i++)
				if (!nulls[i])
					elems[i] = apply_typmod(funcid, elems[i], typmod,
											PG_GET_COLLATION());
			PG_RETURN_ARRAYTYPE_P(construct_md_array(elems, nulls,
													 ARR_NDIM(arr), ARR_DIMS(arr),
													 ARR_LBOUND(arr), elemtype,
													 elmlen, elmbyval, elmalign));
		default:
			PG_RETURN_DATUM(value);
	}
}
