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
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "parser/parse_coerce.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "definition.h"
#include "merge_sql.h"
#include "merge_types.h"
#include "util.h"

/*
 * qualified_relation
 *		schema.relation, both quoted.
 */
static char *
qualified_relation(Oid relid)
{
	char	   *relname = get_rel_name(relid);

	if (relname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  relname);
}

/*
 * type_sql
 *		A type name that means the same type whatever search_path is.
 */
static char *
type_sql(Oid typid, int32 typmod)
{
	return format_type_extended(typid, typmod,
								FORMAT_TYPE_TYPEMOD_GIVEN |
								FORMAT_TYPE_FORCE_QUALIFY);
}

/*
 * append_collation
 *		" COLLATE schema.name" for a valid collation.
 */
static void
append_collation(StringInfo buf, Oid collid)
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
		result = psprintf("CAST(%s AS %s)", result, type_sql(basetype, -1));
	if (basetypmod >= 0)
	{
		if (find_typmod_coercion_function(basetype, &funcid) != COERCION_PATH_NONE)
			result = psprintf("%s.serving_layer_typmod(%s, %d)",
							  quote_identifier(get_namespace_name(sl_extension_schema())),
							  result, basetypmod);
		else
			result = psprintf("CAST(%s AS %s)", result,
							  type_sql(basetype, basetypmod));
	}
	if (domain)
		result = psprintf("CAST(%s AS %s)", result, type_sql(dsttype, -1));
	appendStringInfoString(buf, result);
}

/*
 * merge_sql_select
 *		The query computing the new contents: the batch columns in order,
 *		then the count of all input rows and the count of speed rows.
 *
 * Returns the parameters (column names for the pick aggregate's messages)
 * through the output arguments.
 */
char *
merge_sql_select(const MergePlan *plan, int *nparams, Oid **paramtypes,
				 Datum **paramvalues)
{
	StringInfoData buf;
	StringInfoData bside;
	StringInfoData sside;
	char	   *extschema = get_namespace_name(sl_extension_schema());
	bool		first;

	*nparams = 0;
	*paramtypes = palloc(sizeof(Oid) * Max(plan->ncolumns, 1));
	*paramvalues = palloc(sizeof(Datum) * Max(plan->ncolumns, 1));

	initStringInfo(&bside);
	initStringInfo(&sside);
	for (int i = 0; i < plan->ncolumns; i++)
	{
		const PlanColumn *col = &plan->columns[i];
		char	   *sexpr;

		appendStringInfo(&bside, "b.%s AS c%d, ", quote_identifier(col->name),
						 i + 1);

		sexpr = psprintf("p.%s", quote_identifier(col->speed_name));
		append_assignment(&sside, sexpr, col->speed_typid, col->speed_typmod,
						  col->typid, col->typmod);
		if (OidIsValid(col->collid) && col->collid != col->speed_collid)
			append_collation(&sside, col->collid);
		appendStringInfoString(&sside, ", ");
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
	appendStringInfo(&buf,
					 "pg_catalog.count(*), pg_catalog.count(*) FILTER (WHERE u.s)"
					 " FROM (SELECT %sfalse AS s FROM %s AS b"
					 " UNION ALL SELECT %strue FROM %s AS p) AS u GROUP BY ",
					 bside.data, qualified_relation(plan->batch),
					 sside.data, qualified_relation(plan->speed));

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
 *		converted to the batch types: all columns, or only the keys.
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

		if (keys_only && col->kind != MERGE_KEY)
			continue;
		if (!first)
			appendStringInfoString(&buf, ", ");
		first = false;
		if (!speed)
			appendStringInfo(&buf, "l.%s", quote_identifier(col->name));
		else
		{
			append_assignment(&buf,
							  psprintf("l.%s", quote_identifier(col->speed_name)),
							  col->speed_typid, col->speed_typmod,
							  col->typid, col->typmod);
			if (OidIsValid(col->collid) && col->collid != col->speed_collid)
				append_collation(&buf, col->collid);
		}
	}
	appendStringInfo(&buf, " FROM %s AS l",
					 qualified_relation(speed ? plan->speed : plan->batch));
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
						 type_sql(col->typid, col->typmod));
		append_collation(&buf, col->collid);
	}
	appendStringInfoChar(&buf, ')');
	return buf.data;
}
