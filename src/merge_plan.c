/*-------------------------------------------------------------------------
 *
 * merge_plan.c
 *	  Validate a definition against the batch and speed tables and turn it
 *	  into a merge plan: for each batch column, whether it is a key or a
 *	  measure, how it is merged and which speed column feeds it.
 *
 * This is where the contract's defaults live (keys are the non-numeric
 * columns, speed columns match by name, else by position; the merges are
 * in merge_kinds.c) and where definition errors are raised, so that define
 * and refresh report the same problems the same way.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/heap.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "parser/parse_coerce.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "definition.h"
#include "boundary.h"
#include "merge_kinds.h"
#include "merge_plan.h"
#include "merge_types.h"
#include "target.h"

/*
 * open_layer
 *		Open a batch or speed relation for reading its columns, with an
 *		error the user can act on when it is gone or is not a table.
 */
static Relation
open_layer(Oid relid, bool speed, const Definition *def)
{
	Relation	rel = try_relation_open(relid, AccessShareLock);

	if (rel == NULL && speed)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("speed table of serving table \"%s\" does not exist",
						target_label(def->target)),
				 errdetail("It was the relation with OID %u.", relid),
				 errhint("Define the serving table again with serving_layer_define().")));
	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("batch table of serving table \"%s\" does not exist",
						target_label(def->target)),
				 errdetail("It was the relation with OID %u.", relid),
				 errhint("Define the serving table again with serving_layer_define().")));

	if (rel->rd_rel->relpersistence == RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 speed ?
				 errmsg("speed table \"%s\" cannot be temporary",
						RelationGetRelationName(rel)) :
				 errmsg("batch table \"%s\" cannot be temporary",
						RelationGetRelationName(rel)),
				 errdetail("A definition outlives the session, a temporary table does not.")));

	switch (rel->rd_rel->relkind)
	{
		case RELKIND_RELATION:
		case RELKIND_VIEW:
		case RELKIND_MATVIEW:
		case RELKIND_FOREIGN_TABLE:
		case RELKIND_PARTITIONED_TABLE:
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("\"%s\" is not a table or view",
							RelationGetRelationName(rel)),
					 speed ?
					 errdetail("The speed layer of a serving table is a table or a view.") :
					 errdetail("The batch layer of a serving table is a table or a view.")));
	}
	return rel;
}

/*
 * find_column
 *		Index of a live column of the relation by name, or -1.
 */
static int
find_column(TupleDesc desc, const char *name)
{
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return i;
	}
	return -1;
}

/*
 * live_columns
 *		The relation's live attributes, in order.
 */
static List *
live_columns(TupleDesc desc)
{
	List	   *result = NIL;

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped)
			result = lappend(result, att);
	}
	return result;
}

/*
 * plan_keys
 *		Mark the key columns: the given ones, or every non-numeric column.
 */
static void
plan_keys(MergePlan *plan, const Definition *def, const char *batchname)
{
	ListCell   *lc;

	if (def->key_given)
	{
		foreach(lc, def->key)
		{
			char	   *name = lfirst(lc);
			bool		found = false;

			if (name == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("key column names must not be null")));
			for (int i = 0; i < plan->ncolumns; i++)
			{
				PlanColumn *col = &plan->columns[i];

				if (strcmp(col->name, name) != 0)
					continue;
				if (col->kind == MERGE_KEY)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("key column \"%s\" is listed more than once",
									name)));
				col->kind = MERGE_KEY;
				found = true;
			}
			if (!found)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("key column \"%s\" does not exist in batch table \"%s\"",
								name, batchname)));
		}
	}
	else
	{
		for (int i = 0; i < plan->ncolumns; i++)
			if (!sl_is_numeric_type(plan->columns[i].typid))
				plan->columns[i].kind = MERGE_KEY;
	}

	plan->nkeys = 0;
	for (int i = 0; i < plan->ncolumns; i++)
	{
		PlanColumn *col = &plan->columns[i];
		TypeCacheEntry *tce;

		if (col->kind != MERGE_KEY)
			continue;
		plan->nkeys++;
		col->merge = NULL;

		/* grouping needs an equality operator, as GROUP BY does */
		tce = lookup_type_cache(col->typid, TYPECACHE_EQ_OPR);
		if (!OidIsValid(tce->eq_opr))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("could not identify an equality operator for type %s of key column \"%s\"",
							format_type_be(col->typid), col->name),
					 errdetail("Rows are merged by key, so key columns must be comparable for equality.")));
	}

	if (plan->nkeys == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch table \"%s\" has no key column", batchname),
				 errdetail("By default every column of a type other than smallint, integer, bigint, numeric, real and double precision is a key column."),
				 errhint("Name the key columns with the \"key\" argument of serving_layer_define().")));
}

/*
 * plan_speed_columns
 *		Match each batch column with a speed column: the given names, else
 *		by name, else by position; check that each converts.
 */
static void
plan_speed_columns(MergePlan *plan, const Definition *def,
				   TupleDesc speeddesc, const char *speedname)
{
	List	   *speedcols = live_columns(speeddesc);

	if (def->speed_columns_given)
	{
		ListCell   *lc;
		int			i = 0;

		if (list_length(def->speed_columns) != plan->ncolumns &&
			def->from_catalog)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("batch table of serving table \"%s\" has changed since it was defined",
							target_label(def->target)),
					 errdetail("The definition matches %d speed columns to the batch table's columns, and the batch table now has %d.",
							   list_length(def->speed_columns), plan->ncolumns),
					 errhint("Define the serving table again with serving_layer_define().")));
		if (list_length(def->speed_columns) != plan->ncolumns)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("speed_columns must name one speed column per batch column"),
					 errdetail("It names %d columns, and the batch table has %d.",
							   list_length(def->speed_columns), plan->ncolumns),
					 errhint("List one speed column for each batch column, in batch column order.")));
		foreach(lc, def->speed_columns)
		{
			char	   *name = lfirst(lc);
			int			idx;

			if (name == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("speed column names must not be null")));
			idx = find_column(speeddesc, name);
			if (idx < 0)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("column \"%s\" does not exist in speed table \"%s\"",
								name, speedname)));
			plan->columns[i++].speed_name = pstrdup(name);
		}
	}
	else
	{
		int			missing = -1;

		for (int i = 0; i < plan->ncolumns && missing < 0; i++)
			if (find_column(speeddesc, plan->columns[i].name) < 0)
				missing = i;

		if (missing < 0)
		{
			for (int i = 0; i < plan->ncolumns; i++)
				plan->columns[i].speed_name = plan->columns[i].name;
		}
		else if (list_length(speedcols) == plan->ncolumns)
		{
			for (int i = 0; i < plan->ncolumns; i++)
			{
				Form_pg_attribute att = list_nth(speedcols, i);

				plan->columns[i].speed_name = pstrdup(NameStr(att->attname));
			}
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" does not exist in speed table \"%s\"",
							plan->columns[missing].name, speedname),
					 errdetail("Columns match by name when every batch column name exists in the speed table, else by position when both tables have as many columns; the speed table has %d columns, the batch table %d.",
							   list_length(speedcols), plan->ncolumns),
					 errhint("Name the speed columns with the \"speed_columns\" argument of serving_layer_define().")));
	}

	for (int i = 0; i < plan->ncolumns; i++)
	{
		PlanColumn *col = &plan->columns[i];
		Form_pg_attribute att;

		att = TupleDescAttr(speeddesc, find_column(speeddesc, col->speed_name));
		col->speed_typid = att->atttypid;
		col->speed_typmod = att->atttypmod;
		col->speed_collid = att->attcollation;
		if (!can_coerce_type(1, &col->speed_typid, &col->typid,
							 COERCION_ASSIGNMENT))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("speed column \"%s\" cannot be assigned to batch column \"%s\"",
							col->speed_name, col->name),
					 errdetail("The speed column is of type %s, the batch column of type %s.",
							   format_type_be(col->speed_typid),
							   format_type_with_typemod(col->typid, col->typmod))));
	}
}

/*
 * merge_plan_build
 *		Validate a definition and return its merge plan.
 *
 * The batch and speed tables stay locked (AccessShareLock) until the end of
 * the transaction, so their columns cannot change under the refresh.
 */
MergePlan *
merge_plan_build(const Definition *def)
{
	MergePlan  *plan = palloc0(sizeof(MergePlan));
	Relation	batch = open_layer(def->batch, false, def);
	Relation	speed = open_layer(def->speed, true, def);
	const char *batchname = RelationGetRelationName(batch);
	List	   *cols = live_columns(RelationGetDescr(batch));
	ListCell   *lc;
	int			i = 0;

	plan->batch = def->batch;
	plan->speed = def->speed;
	plan->ncolumns = list_length(cols);
	plan->columns = palloc0(sizeof(PlanColumn) * Max(plan->ncolumns, 1));
	foreach(lc, cols)
	{
		Form_pg_attribute att = lfirst(lc);
		PlanColumn *col = &plan->columns[i++];

		col->name = pstrdup(NameStr(att->attname));
		col->typid = att->atttypid;
		col->typmod = att->atttypmod;
		col->collid = att->attcollation;
		col->kind = MERGE_AGGREGATE;
	}

	plan_keys(plan, def, batchname);
	merge_plan_merges(plan, def, batchname);
	plan_speed_columns(plan, def, RelationGetDescr(speed),
					   RelationGetRelationName(speed));
	boundary_plan(plan, def);

	relation_close(speed, NoLock);
	relation_close(batch, NoLock);
	return plan;
}

/*
 * merge_plan_check_target
 *		An existing serving table must be a plain table with the batch
 *		table's columns, names and types.
 */
void
merge_plan_check_target(const MergePlan *plan, Oid relid)
{
	Relation	rel = table_open(relid, NoLock);
	List	   *cols;
	int			i = 0;
	ListCell   *lc;

	if (rel->rd_rel->relkind != RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("serving table \"%s\" is not a table",
						RelationGetRelationName(rel)),
				 errdetail("A serving table must be a plain table (not partitioned, not a view).")));

	/*
	 * Rows are replaced wholesale, bypassing foreign key triggers, so
	 * foreign keys in either direction could not be kept valid; refuse them
	 * as TRUNCATE refuses a referenced table.
	 */
	if (RelationGetFKeyList(rel) != NIL ||
		heap_truncate_find_FKs(list_make1_oid(relid)) != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("serving table \"%s\" has a foreign key constraint",
						RelationGetRelationName(rel)),
				 errdetail("A refresh replaces every row without firing foreign key checks, so a serving table can neither reference another table nor be referenced."),
				 errhint("Drop the foreign key constraint.")));

	cols = live_columns(RelationGetDescr(rel));
	foreach(lc, cols)
	{
		Form_pg_attribute att = lfirst(lc);
		PlanColumn *col;

		if (i >= plan->ncolumns)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("serving table \"%s\" does not match its batch table",
							RelationGetRelationName(rel)),
					 errdetail("The serving table has column \"%s\", which the batch table does not have.",
							   NameStr(att->attname))));
		col = &plan->columns[i++];
		if (strcmp(col->name, NameStr(att->attname)) != 0 ||
			col->typid != att->atttypid || col->typmod != att->atttypmod)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("serving table \"%s\" does not match its batch table",
							RelationGetRelationName(rel)),
					 errdetail("Column %d is \"%s\" %s in the serving table but \"%s\" %s in the batch table.",
							   i, NameStr(att->attname),
							   format_type_with_typemod(att->atttypid, att->atttypmod),
							   col->name,
							   format_type_with_typemod(col->typid, col->typmod))));
	}
	if (i < plan->ncolumns)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("serving table \"%s\" does not match its batch table",
						RelationGetRelationName(rel)),
				 errdetail("The batch table has column \"%s\", which the serving table does not have.",
						   plan->columns[i].name)));
	table_close(rel, NoLock);
}

/*
 * merge_plan_key_names
 *		The effective key, for the catalog.
 */
List *
merge_plan_key_names(const MergePlan *plan)
{
	List	   *result = NIL;

	for (int i = 0; i < plan->ncolumns; i++)
		if (plan->columns[i].kind == MERGE_KEY)
			result = lappend(result, plan->columns[i].name);
	return result;
}

/*
 * merge_plan_speed_names
 *		The effective speed columns in batch column order, for the catalog.
 */
List *
merge_plan_speed_names(const MergePlan *plan)
{
	List	   *result = NIL;

	for (int i = 0; i < plan->ncolumns; i++)
		result = lappend(result, plan->columns[i].speed_name);
	return result;
}
