/*-------------------------------------------------------------------------
 *
 * merge_kinds.c
 *	  The merges of a definition's measures: "sum", "min", "max", "speed",
 *	  "batch" or any aggregate by name, resolved for the column's type, the
 *	  default sum, and the effective merge of every measure as jsonb.
 *
 * Aggregate names are resolved as a function call resolves them, then kept
 * schema-qualified (unless in pg_catalog), so a later search_path cannot
 * change which aggregate a refresh calls.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_aggregate.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "parser/parse_coerce.h"
#include "parser/parse_func.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

#include "definition.h"
#include "merge_kinds.h"
#include "merge_types.h"

/*
 * sl_is_numeric_type
 *		The contract's numeric types (domains count by their base type).
 */
bool
sl_is_numeric_type(Oid typid)
{
	switch (getBaseType(typid))
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case NUMERICOID:
		case FLOAT4OID:
		case FLOAT8OID:
			return true;
		default:
			return false;
	}
}

/*
 * resolve_aggregate
 *		Find the aggregate a merge names, for one argument of the column's
 *		type, and fill in the column's aggregate and effective merge name.
 *
 * Names are resolved like a function call would resolve them.  Names read
 * back from the catalog are shown unqualified only when they are in
 * pg_catalog, so there a bare name means pg_catalog, whatever search_path
 * says.
 */
static void
resolve_aggregate(PlanColumn *col, const char *merge, bool from_catalog)
{
	char	   *raw = pstrdup(merge);
	List	   *parts;
	List	   *funcname = NIL;
	ListCell   *lc;
	FuncDetailCode code;
	Oid			funcid;
	Oid			rettype;
	bool		retset;
	int			nvargs;
	Oid			vatype;
	Oid		   *true_typeids;
	Oid			argtype = col->typid;
	HeapTuple	tup;
	char		aggkind;
	char	   *nspname;

	if (!SplitIdentifierString(raw, '.', &parts) || parts == NIL ||
		list_length(parts) > 2)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("unknown merge \"%s\" for column \"%s\"", merge, col->name),
				 errhint("A merge is \"sum\", \"min\", \"max\", \"speed\", \"batch\" or the name of an aggregate.")));

	if (list_length(parts) == 1 && from_catalog)
		funcname = list_make1(makeString("pg_catalog"));
	foreach(lc, parts)
		funcname = lappend(funcname, makeString(pstrdup(lfirst(lc))));

	code = func_get_detail(funcname, NIL, NIL, 1, &argtype, false, false,
						   false, &funcid, &rettype, &retset, &nvargs,
						   &vatype, &true_typeids, NULL);
	if (code != FUNCDETAIL_AGGREGATE)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("unknown merge \"%s\" for column \"%s\"", merge, col->name),
				 code == FUNCDETAIL_NOTFOUND ?
				 errdetail("There is no aggregate %s(%s).",
						   NameListToString(funcname),
						   format_type_be(col->typid)) :
				 errdetail("%s(%s) is not a plain aggregate.",
						   NameListToString(funcname),
						   format_type_be(col->typid)),
				 errhint("A merge is \"sum\", \"min\", \"max\", \"speed\", \"batch\" or the name of an aggregate.")));

	tup = SearchSysCache1(AGGFNOID, ObjectIdGetDatum(funcid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for aggregate %u", funcid);
	aggkind = ((Form_pg_aggregate) GETSTRUCT(tup))->aggkind;
	ReleaseSysCache(tup);
	if (aggkind != AGGKIND_NORMAL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("unknown merge \"%s\" for column \"%s\"", merge, col->name),
				 errdetail("%s is an ordered-set aggregate.",
						   NameListToString(funcname))));

	/* resolve a polymorphic result type from the argument */
	rettype = enforce_generic_type_consistency(&argtype, true_typeids, 1,
											   rettype, false);
	if (!can_coerce_type(1, &rettype, &col->typid, COERCION_ASSIGNMENT))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("result of merge \"%s\" cannot be assigned to column \"%s\"",
						merge, col->name),
				 errdetail("The merge returns type %s, the column is of type %s.",
						   format_type_be(rettype),
						   format_type_be(col->typid))));

	col->aggoid = funcid;
	col->aggtype = rettype;
	col->builtin = BUILTIN_NONE;
	if (get_func_namespace(funcid) == PG_CATALOG_NAMESPACE)
	{
		char	   *name = get_func_name(funcid);

		if (strcmp(name, "sum") == 0)
			col->builtin = BUILTIN_SUM;
		else if (strcmp(name, "min") == 0)
			col->builtin = BUILTIN_MIN;
		else if (strcmp(name, "max") == 0)
			col->builtin = BUILTIN_MAX;
	}
	nspname = get_namespace_name(get_func_namespace(funcid));
	if (get_func_namespace(funcid) == PG_CATALOG_NAMESPACE)
		col->merge = pstrdup(quote_identifier(get_func_name(funcid)));
	else
		col->merge = quote_qualified_identifier(nspname,
												get_func_name(funcid));
}

/*
 * set_merge
 *		Give a measure the merge named for it.
 */
static void
set_merge(PlanColumn *col, const char *merge, bool from_catalog)
{
	if (pg_strcasecmp(merge, "speed") == 0)
	{
		col->kind = MERGE_SPEED;
		col->merge = "speed";
	}
	else if (pg_strcasecmp(merge, "batch") == 0)
	{
		col->kind = MERGE_BATCH;
		col->merge = "batch";
	}
	else
	{
		/* sum, min and max are pg_catalog's, whatever search_path says */
		if (pg_strcasecmp(merge, "sum") == 0 ||
			pg_strcasecmp(merge, "min") == 0 ||
			pg_strcasecmp(merge, "max") == 0)
			from_catalog = true;
		col->kind = MERGE_AGGREGATE;
		resolve_aggregate(col, merge, from_catalog);
	}
}

/*
 * merge_plan_merges
 *		Apply the merge object, then the defaults to the measures it does
 *		not name.
 */
void
merge_plan_merges(MergePlan *plan, const Definition *def,
				  const char *batchname)
{
	bool	   *named = palloc0(sizeof(bool) * plan->ncolumns);

	if (def->merge != NULL)
	{
		JsonbIterator *it;
		JsonbValue	v;
		JsonbIteratorToken tok;
		char	   *column = NULL;

		if (!JB_ROOT_IS_OBJECT(def->merge) || JB_ROOT_IS_SCALAR(def->merge))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("merge must be a JSON object"),
					 errhint("Give an object such as {\"count_id\": \"sum\"}.")));

		it = JsonbIteratorInit(&def->merge->root);
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			int			i;

			if (tok == WJB_KEY)
			{
				column = pnstrdup(v.val.string.val, v.val.string.len);
				continue;
			}
			if (tok != WJB_VALUE)
				continue;

			for (i = 0; i < plan->ncolumns; i++)
				if (strcmp(plan->columns[i].name, column) == 0)
					break;
			if (i == plan->ncolumns)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("merge column \"%s\" does not exist in batch table \"%s\"",
								column, batchname)));
			if (plan->columns[i].kind == MERGE_KEY)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("key column \"%s\" cannot have a merge", column),
						 errdetail("Key columns are grouped on, not merged.")));
			if (v.type != jbvString)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("merge of column \"%s\" must be a string", column)));
			set_merge(&plan->columns[i],
					  pnstrdup(v.val.string.val, v.val.string.len),
					  def->from_catalog);
			named[i] = true;
		}
	}

	for (int i = 0; i < plan->ncolumns; i++)
	{
		PlanColumn *col = &plan->columns[i];

		if (col->kind == MERGE_KEY || named[i])
			continue;
		if (!sl_is_numeric_type(col->typid))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of type %s is neither a key nor a numeric measure",
							col->name, format_type_be(col->typid)),
					 errhint("Add it to \"key\", or name its merge in \"merge\", for example {\"%s\": \"max\"}.",
							 col->name)));
		set_merge(col, "sum", true);
	}
	for (int i = 0; i < plan->ncolumns; i++)
		if (plan->columns[i].kind == MERGE_SPEED ||
			plan->columns[i].kind == MERGE_BATCH)
			plan->picks = true;
}

/*
 * merge_plan_merge_json
 *		The effective merge of every measure, as a jsonb object.
 */
Jsonb *
merge_plan_merge_json(const MergePlan *plan)
{
	JsonbParseState *state = NULL;
	JsonbValue *res;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (int i = 0; i < plan->ncolumns; i++)
	{
		const PlanColumn *col = &plan->columns[i];
		JsonbValue	k;
		JsonbValue	v;

		if (col->kind == MERGE_KEY)
			continue;
		k.type = jbvString;
		k.val.string.val = col->name;
		k.val.string.len = strlen(col->name);
		v.type = jbvString;
		v.val.string.val = col->merge;
		v.val.string.len = strlen(col->merge);
		pushJsonbValue(&state, WJB_KEY, &k);
		pushJsonbValue(&state, WJB_VALUE, &v);
	}
	res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}
