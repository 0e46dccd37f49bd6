/*-------------------------------------------------------------------------
 *
 * merge_sql.c
 *	  Turn a merge plan into SQL text: the query that computes the serving
 *	  table's new contents, and the CREATE TABLE of a serving table that does
 *	  not exist yet.
 *
 * The query is one GROUP BY over batch UNION ALL speed:
 *
 *	  SELECT u.c1, CAST(pg_catalog.sum(u.c2) AS integer), ...,
 *			 pg_catalog.count(*), pg_catalog.count(*) FILTER (WHERE u.s)
 *	  FROM (SELECT b.key AS c1, b.m AS c2, false AS s FROM batch b
 *			UNION ALL
 *			SELECT CAST(p.key AS ...), p.m, true FROM speed p) u
 *	  GROUP BY u.c1
 *
 * Grouping makes NULL a key like any other and merges duplicate keys in
 * either layer, which is what the contract asks for.  The two counts at the
 * end give the rows read from each layer; they are not stored.
 *
 * Nothing in the text depends on search_path: every identifier is quoted,
 * relations, functions, types and collations are schema-qualified (types
 * and collations through their catalog entries), and the only operator-like
 * constructs are GROUP BY, CAST and FILTER, which use the types' default
 * operator classes and pg_cast, not name lookup.  Column names passed to
 * the pick aggregate for its error messages are parameters.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "parser/parse_coerce.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "definition.h"
#include "layers.h"
#include "merge_sql.h"
#include "merge_types.h"
#include "util.h"

/*
 * merge_sql_type
 *		A type name that means the same type whatever search_path is.
 */
char *
merge_sql_type(Oid typid, int32 typmod)
{
	return format_type_extended(typid, typmod,
								FORMAT_TYPE_TYPEMOD_GIVEN |
								FORMAT_TYPE_FORCE_QUALIFY);
}

/*
 * merge_sql_collation
 *		" COLLATE schema.name" for a valid collation.
 */
void
merge_sql_collation(StringInfo buf, Oid collid)
{
	HeapTuple	tup;
	Form_pg_collation coll;

	if (!OidIsValid(collid))
		return;
	tup = SearchSysCache1(COLLOID, ObjectIdGetDatum(collid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for collation %u", collid);
	coll = (Form_pg_collation) GETSTRUCT(tup);
	appendStringInfo(buf, " COLLATE %s",
					 quote_qualified_identifier(get_namespace_name(coll->collnamespace),
												NameStr(coll->collname)));
	ReleaseSysCache(tup);
}

/*
 * append_assignment
 *		Append expr converted to dsttype/dsttypmod as an assignment would
 *		convert it.
 *
 * CAST is an explicit conversion, and explicit length coercions truncate
 * (varchar(5), char(n), bit(n), and their arrays) where assignments raise an
 * error.  So the value is cast to the base type without its modifier, then
 * serving_layer_typmod() applies the modifier the assignment way, then a
 * domain, if the target is one, is applied with its constraints.  Whether
 * the conversion exists at assignment level was checked with the plan.
 */
static void
append_assignment(StringInfo buf, const char *expr, Oid srctype,
				  int32 srctypmod, Oid dsttype, int32 dsttypmod)
{
	int32		basetypmod = dsttypmod;
	Oid			basetype = getBaseTypeAndTypmod(dsttype, &basetypmod);
	bool		domain = basetype != dsttype;
	Oid			funcid;
	char	   *result = (char *) expr;

	if (srctype == dsttype && (dsttypmod < 0 || srctypmod == dsttypmod))
	{
		appendStringInfoString(buf, expr);
		return;
	}
	if (srctype != basetype)
		result = psprintf("CAST(%s AS %s)", result, merge_sql_type(basetype, -1));
	if (basetypmod >= 0)
	{
		if (find_typmod_coercion_function(basetype, &funcid) != COERCION_PATH_NONE)
			result = psprintf("%s.serving_layer_typmod(%s, %d)",
							  quote_identifier(get_namespace_name(sl_extension_schema())),
							  result, basetypmod);
		else
			result = psprintf("CAST(%s AS %s)", result,
							  merge_sql_type(basetype, basetypmod));
	}
	if (domain)
		result = psprintf("CAST(%s AS %s)", result, merge_sql_type(dsttype, -1));
	appendStringInfoString(buf, result);
}

/*
 * merge_sql_operator
 *		An operator as OPERATOR() takes it: schema.name, found by OID.
 */
char *
merge_sql_operator(Oid opr)
{
	HeapTuple	tup = SearchSysCache1(OPEROID, ObjectIdGetDatum(opr));
	Form_pg_operator op;
	char	   *result;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for operator %u", opr);
	op = (Form_pg_operator) GETSTRUCT(tup);
	result = psprintf("%s.%s",
					  quote_identifier(get_namespace_name(op->oprnamespace)),
					  NameStr(op->oprname));
	ReleaseSysCache(tup);
	return result;
}

/*
 * speed_value
 *		A speed column's value converted to its batch column's type and
 *		collation, as the merge reads it.
 */
static char *
speed_value(const PlanColumn *col, const char *alias)
{
	StringInfoData buf;

	initStringInfo(&buf);
	append_assignment(&buf,
					  psprintf("%s.%s", alias, quote_identifier(col->speed_name)),
					  col->speed_typid, col->speed_typmod,
					  col->typid, col->typmod);
	if (OidIsValid(col->collid) && col->collid != col->speed_collid)
		merge_sql_collation(&buf, col->collid);
	return buf.data;
}

/*
 * append_boundary_filter
 *		The WHERE clause that keeps a layer's rows on its side of the time
 *		boundary, comparing with parameter $paramno: batch rows at or before
 *		it, speed rows after it, rows with a NULL time on both sides.
 *		Nothing when the layer keeps every row.
 */
static bool
append_boundary_filter(StringInfo buf, const MergePlan *plan, bool speed,
					   const char *alias, int paramno)
{
	const TimeBoundary *b = plan->boundary;
	const PlanColumn *col;
	char	   *value;

	if (b == NULL)
		return false;
	col = &plan->columns[b->column];
	value = speed ? speed_value(col, alias) :
		psprintf("%s.%s", alias, quote_identifier(col->name));
	if (speed && b->live)
	{
		/* the live view: speed rows after the boundary, not NULL ones */
		appendStringInfo(buf, " WHERE %s IS NOT NULL", value);
		if (!b->has_value)
			return false;
		appendStringInfo(buf, " AND %s OPERATOR(%s) $%d", value,
						 merge_sql_operator(b->gt_opr), paramno);
		return true;
	}
	if (!b->has_value || (!speed && !b->is_explicit))
		return false;
	appendStringInfo(buf, " WHERE (%s IS NULL OR %s OPERATOR(%s) $%d)",
					 value, value,
					 merge_sql_operator(speed ? b->gt_opr : b->le_opr),
					 paramno);
	return true;
}

/*
 * merge_sql_layer_params
 *		The parameters of merge_sql_layer()'s query: the boundary, when the
 *		layer is filtered by it.  Returns their number.
 */
int
merge_sql_layer_params(const MergePlan *plan, bool speed, Oid **paramtypes,
					   Datum **paramvalues)
{
	const TimeBoundary *b = plan->boundary;

	*paramtypes = NULL;
	*paramvalues = NULL;
	if (b == NULL || !b->has_value || (!speed && !b->is_explicit))
		return 0;
	*paramtypes = palloc(sizeof(Oid));
	*paramvalues = palloc(sizeof(Datum));
	(*paramtypes)[0] = b->typid;
	(*paramvalues)[0] = b->value;
	return 1;
}

/*
 * merge_sql_select
 *		The query computing the new contents: the batch columns in order,
 *		then the count of all input rows and the count of speed rows.
 *		Without batch_side, the same merge over the speed layer alone (the
 *		live view's speed part).
 *
 * Returns the parameters (column names for the pick aggregate's messages,
 * then the time boundary where a layer is filtered by it) through the
 * output arguments.
 */
char *
merge_sql_select(const MergePlan *plan, bool batch_side, int *nparams,
				 Oid **paramtypes, Datum **paramvalues)
{
	StringInfoData buf;
	StringInfoData bside;
	StringInfoData sside;
	char	   *extschema = get_namespace_name(sl_extension_schema());
	bool		first;

	*nparams = 0;
	*paramtypes = palloc(sizeof(Oid) * (plan->ncolumns + 2));
	*paramvalues = palloc(sizeof(Datum) * (plan->ncolumns + 2));

	initStringInfo(&bside);
	initStringInfo(&sside);
	for (int i = 0; i < plan->ncolumns; i++)
	{
		const PlanColumn *col = &plan->columns[i];

		appendStringInfo(&bside, "b.%s AS c%d, ", quote_identifier(col->name),
						 i + 1);
		appendStringInfo(&sside, "%s AS c%d, ", speed_value(col, "p"), i + 1);
	}

	initStringInfo(&buf);
	appendStringInfoString(&buf, "SELECT ");
	for (int i = 0; i < plan->ncolumns; i++)
	{
		const PlanColumn *col = &plan->columns[i];
		char	   *ref = psprintf("u.c%d", i + 1);

		switch (col->kind)
		{
			case MERGE_KEY:
				appendStringInfoString(&buf, ref);
				break;
			case MERGE_AGGREGATE:
				{
					char	   *call;

					call = psprintf("%s(%s)",
									quote_qualified_identifier(get_namespace_name(get_func_namespace(col->aggoid)),
															   get_func_name(col->aggoid)),
									ref);
					append_assignment(&buf, call, col->aggtype, -1,
									  col->typid, col->typmod);
					break;
				}
			case MERGE_SPEED:
			case MERGE_BATCH:
				(*paramtypes)[*nparams] = TEXTOID;
				(*paramvalues)[*nparams] = CStringGetTextDatum(col->name);
				(*nparams)++;
				appendStringInfo(&buf, "%s.serving_layer_pick(%s, u.s, %s, $%d)",
								 quote_identifier(extschema), ref,
								 col->kind == MERGE_SPEED ? "true" : "false",
								 *nparams);
				break;
		}
		appendStringInfoString(&buf, ", ");
	}
	appendStringInfoString(&buf,
						   "pg_catalog.count(*), pg_catalog.count(*) FILTER (WHERE u.s)"
						   " FROM (");
	if (batch_side)
	{
		appendStringInfo(&buf, "SELECT %sfalse AS s FROM %s AS b",
						 bside.data, layers_name(plan->batch));
		if (append_boundary_filter(&buf, plan, false, "b", *nparams + 1))
		{
			(*paramtypes)[*nparams] = plan->boundary->typid;
			(*paramvalues)[*nparams] = plan->boundary->value;
			(*nparams)++;
		}
		appendStringInfoString(&buf, " UNION ALL ");
	}
	appendStringInfo(&buf, "SELECT %strue AS s FROM %s AS p",
					 sside.data, layers_name(plan->speed));
	if (append_boundary_filter(&buf, plan, true, "p", *nparams + 1))
	{
		(*paramtypes)[*nparams] = plan->boundary->typid;
		(*paramvalues)[*nparams] = plan->boundary->value;
		(*nparams)++;
	}
	appendStringInfoString(&buf, ") AS u GROUP BY ");

	first = true;
	for (int i = 0; i < plan->ncolumns; i++)
	{
		if (plan->columns[i].kind != MERGE_KEY)
			continue;
		appendStringInfo(&buf, "%su.c%d", first ? "" : ", ", i + 1);
		first = false;
	}
	return buf.data;
}

/*
 * merge_sql_layer
 *		SELECT of one layer's columns in batch column order, speed values
 *		converted to the batch types: all columns, or only the keys (NULL
 *		in the place of the others, so that every column keeps its
 *		position).  Rows on the other side of the time boundary are left
 *		out; the boundary is parameter $1 when merge_sql_layer_params() says
 *		there is one.
 */
char *
merge_sql_layer(const MergePlan *plan, bool speed, bool keys_only)
{
	StringInfoData buf;
	bool		first = true;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "SELECT ");
	for (int i = 0; i < plan->ncolumns; i++)
	{
		const PlanColumn *col = &plan->columns[i];

		if (!first)
			appendStringInfoString(&buf, ", ");
		first = false;
		if (keys_only && col->kind != MERGE_KEY)
			appendStringInfoString(&buf, "NULL");
		else if (!speed)
			appendStringInfo(&buf, "l.%s", quote_identifier(col->name));
		else
			appendStringInfoString(&buf, speed_value(col, "l"));
	}
	appendStringInfo(&buf, " FROM %s AS l",
					 layers_name(speed ? plan->speed : plan->batch));
	(void) append_boundary_filter(&buf, plan, speed, "l", 1);
	return buf.data;
}

/*
 * merge_sql_create_table
 *		CREATE TABLE for a serving table that does not exist yet: the batch
 *		table's columns with their types and collations, nothing else.
 */
char *
merge_sql_create_table(const MergePlan *plan, const TargetName *target)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "CREATE TABLE %s (",
					 quote_qualified_identifier(target->schema, target->name));
	for (int i = 0; i < plan->ncolumns; i++)
	{
		const PlanColumn *col = &plan->columns[i];

		appendStringInfo(&buf, "%s%s %s", i > 0 ? ", " : "",
						 quote_identifier(col->name),
						 merge_sql_type(col->typid, col->typmod));
		merge_sql_collation(&buf, col->collid);
	}
	appendStringInfoChar(&buf, ')');
	return buf.data;
}
