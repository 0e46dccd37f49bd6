/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  The definition catalog (serving_layer_config) and the privilege rules
 *	  around it.
 *
 * Users can read the catalog but not write it: serving_layer_define() and
 * serving_layer_forget() check that the caller owns the serving table (or,
 * while the table does not exist yet, defined it), then write the row as
 * the catalog's owner, the way pg_cron's job functions act on cron.job.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "catalog.h"
#include "compat.h"
#include "definition.h"
#include "layers.h"
#include "merge_kinds.h"
#include "merge_plan.h"
#include "merge_types.h"
#include "target.h"
#include "util.h"

#define CONFIG_COLUMNS \
	"target, batch, speed, key, merge, speed_columns, definer, " \
	"target_schema, target_name, time_column, boundary, live_view, " \
	"live_view_schema, live_view_name, mode, last_boundary, last_batch_rows"

/*
 * text_list_to_array / array_to_text_list
 *		Between a List of C strings and a text[] Datum.
 */
static Datum
text_list_to_array(List *list)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(list_length(list), 1));
	int			n = 0;
	ListCell   *lc;

	foreach(lc, list)
		elems[n++] = CStringGetTextDatum((char *) lfirst(lc));
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false,
										   TYPALIGN_INT));
}

static List *
array_to_text_list(Datum arr)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	List	   *result = NIL;

	deconstruct_array(DatumGetArrayTypeP(arr), TEXTOID, -1, false,
					  TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
		result = lappend(result, nulls[i] ? NULL : TextDatumGetCString(elems[i]));
	return result;
}

/*
 * optional_text
 *		A text column of a catalog row as a C string, NULL for NULL.
 */
static char *
optional_text(HeapTuple tup, TupleDesc desc, int attno)
{
	bool		isnull;
	Datum		value = SPI_getbinval(tup, desc, attno, &isnull);

	return isnull ? NULL : TextDatumGetCString(value);
}

/*
 * definition_from_tuple
 *		Build a Definition (in the current memory context) from a catalog
 *		row selected with CONFIG_COLUMNS, and append it to the list *arg.
 */
static void
definition_from_tuple(HeapTuple tup, TupleDesc desc, void *arg)
{
	List	  **defs = (List **) arg;
	Definition *def = palloc0(sizeof(Definition));
	bool		isnull;

	def->target = palloc0(sizeof(TargetName));
	def->target->display = TextDatumGetCString(SPI_getbinval(tup, desc, 1, &isnull));
	def->batch_name = TextDatumGetCString(SPI_getbinval(tup, desc, 2, &isnull));
	def->speed_name = TextDatumGetCString(SPI_getbinval(tup, desc, 3, &isnull));
	def->key = array_to_text_list(SPI_getbinval(tup, desc, 4, &isnull));
	def->key_given = true;
	def->merge = DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 5, &isnull));
	def->speed_columns = array_to_text_list(SPI_getbinval(tup, desc, 6, &isnull));
	def->speed_columns_given = true;
	def->definer = DatumGetObjectId(SPI_getbinval(tup, desc, 7, &isnull));
	def->target->schema = pstrdup(NameStr(*DatumGetName(SPI_getbinval(tup, desc, 8, &isnull))));
	def->target->name = pstrdup(NameStr(*DatumGetName(SPI_getbinval(tup, desc, 9, &isnull))));
	def->time_column = optional_text(tup, desc, 10);
	def->boundary = optional_text(tup, desc, 11);
	if (optional_text(tup, desc, 12) != NULL)
	{
		def->live_view = palloc0(sizeof(TargetName));
		def->live_view->display = optional_text(tup, desc, 12);
		def->live_view->schema = pstrdup(NameStr(*DatumGetName(SPI_getbinval(tup, desc, 13, &isnull))));
		def->live_view->name = pstrdup(NameStr(*DatumGetName(SPI_getbinval(tup, desc, 14, &isnull))));
	}
	def->mode = strcmp(optional_text(tup, desc, 15), "apply") == 0 ?
		REFRESH_MODE_APPLY : REFRESH_MODE_SWAP;
	def->last_boundary = optional_text(tup, desc, 16);
	{
		Datum		rows = SPI_getbinval(tup, desc, 17, &isnull);

		def->last_batch_rows = isnull ? -1 : DatumGetInt64(rows);
	}
	def->from_catalog = true;
	*defs = lappend(*defs, def);
}

/*
 * catalog_query
 *		Run a read-only query on the catalog and return its rows as
 *		Definitions allocated in the caller's memory context.
 */
static List *
catalog_query(const char *where, int nargs, Oid *argtypes, Datum *values)
{
	List	   *result = NIL;
	SpiCall		call;
	bool		locking = strstr(where, " FOR UPDATE") != NULL;

	memset(&call, 0, sizeof(call));
	/* locking a row needs UPDATE on the catalog, which only its owner has */
	if (locking)
		call.run_as = sl_relation_owner(get_relname_relid("serving_layer_config",
														  sl_extension_schema()));
	call.read_only = !locking;
	call.nargs = nargs;
	call.argtypes = argtypes;
	call.values = values;
	call.row_fn = definition_from_tuple;
	call.row_arg = &result;
	(void) sl_spi_run(psprintf("SELECT " CONFIG_COLUMNS " FROM %s %s",
							   sl_qualified("serving_layer_config"), where),
					  SPI_OK_SELECT, &call);
	return result;
}

/*
 * catalog_lookup
 *		The stored definition of a target, or NULL.
 */
Definition *
catalog_lookup(const TargetName *target)
{
	Oid			argtypes[2] = {NAMEOID, NAMEOID};
	Datum		values[2];
	List	   *defs;

	values[0] = CStringGetDatum(target->schema);
	values[1] = CStringGetDatum(target->name);
	/* name parameters are passed as C strings padded by the input function */
	values[0] = DirectFunctionCall1(namein, values[0]);
	values[1] = DirectFunctionCall1(namein, values[1]);
	defs = catalog_query("WHERE target_schema OPERATOR(pg_catalog.=) $1"
						 " AND target_name OPERATOR(pg_catalog.=) $2",
						 2, argtypes, values);
	return defs == NIL ? NULL : linitial(defs);
}

/*
 * catalog_lock
 *		Lock the stored definition of a target (its catalog row, FOR
 *		UPDATE) and return it as it is once the lock is granted, or NULL
 *		when the target has no definition.  Without wait, a definition
 *		locked by another transaction is not waited for: NULL, and *busy
 *		set.
 *
 * This is a refresh's lock on its target: two refreshes of one target, or
 * a refresh and a define or forget of it, never run at once, and the
 * refresh reads the definition only once it holds the lock, so it never
 * builds from a definition that changed while it waited.  Being a row
 * lock, it cannot collide with another target's.
 */
Definition *
catalog_lock(const TargetName *target, bool wait, bool *busy)
{
	Oid			argtypes[2] = {NAMEOID, NAMEOID};
	Datum		values[2];
	List	   *defs;

	values[0] = DirectFunctionCall1(namein, CStringGetDatum(target->schema));
	values[1] = DirectFunctionCall1(namein, CStringGetDatum(target->name));
	defs = catalog_query(wait ?
						 "WHERE target_schema OPERATOR(pg_catalog.=) $1"
						 " AND target_name OPERATOR(pg_catalog.=) $2 FOR UPDATE" :
						 "WHERE target_schema OPERATOR(pg_catalog.=) $1"
						 " AND target_name OPERATOR(pg_catalog.=) $2"
						 " FOR UPDATE SKIP LOCKED",
						 2, argtypes, values);
	*busy = false;
	if (defs != NIL)
		return linitial(defs);
	if (!wait && catalog_lookup(target) != NULL)
		*busy = true;
	return NULL;
}

/*
 * catalog_list
 *		Every stored definition, in target order.
 */
List *
catalog_list(void)
{
	return catalog_query("ORDER BY target, target_schema, target_name",
						 0, NULL, NULL);
}

/*
 * catalog_write
 *		Run one statement that changes the catalog, as the catalog's owner.
 */
static void
catalog_write(const char *sql, int nargs, Oid *argtypes, Datum *values,
			  const char *nulls, int expected)
{
	SpiCall		call;

	memset(&call, 0, sizeof(call));
	call.run_as = sl_relation_owner(get_relname_relid("serving_layer_config",
													  sl_extension_schema()));
	call.nargs = nargs;
	call.argtypes = argtypes;
	call.values = values;
	call.nulls = nulls;
	(void) sl_spi_run(sql, expected, &call);
}

/*
 * catalog_store
 *		Insert or replace the definition of a target with the effective key,
 *		merge and speed columns of its plan.
 */
#define SAME_TIME_COLUMN \
	"(c.time_column OPERATOR(pg_catalog.=) excluded.time_column" \
	" OR (c.time_column IS NULL AND excluded.time_column IS NULL))"

void
catalog_store(const Definition *def, const MergePlan *plan)
{
	Oid			argtypes[15] = {TEXTOID, NAMEOID, NAMEOID, TEXTOID,
		TEXTOID, TEXTARRAYOID, JSONBOID, TEXTARRAYOID, REGROLEOID, TEXTOID,
	TEXTOID, NAMEOID, NAMEOID, TEXTOID, TEXTOID};
	Datum		values[15];
	char		nulls[16] = "               ";
	char	   *sql;

	values[0] = CStringGetTextDatum(def->target->display);
	values[1] = DirectFunctionCall1(namein, CStringGetDatum(def->target->schema));
	values[2] = DirectFunctionCall1(namein, CStringGetDatum(def->target->name));
	values[3] = CStringGetTextDatum(layers_name(def->batch));
	values[4] = CStringGetTextDatum(layers_name(def->speed));
	values[5] = text_list_to_array(merge_plan_key_names(plan));
	values[6] = JsonbPGetDatum(merge_plan_merge_json(plan));
	values[7] = text_list_to_array(merge_plan_speed_names(plan));
	values[8] = ObjectIdGetDatum(GetUserId());
	values[9] = def->time_column ? CStringGetTextDatum(def->time_column) : (Datum) 0;
	nulls[9] = def->time_column ? ' ' : 'n';
	if (def->live_view != NULL)
	{
		values[10] = CStringGetTextDatum(def->live_view->display);
		values[11] = DirectFunctionCall1(namein, CStringGetDatum(def->live_view->schema));
		values[12] = DirectFunctionCall1(namein, CStringGetDatum(def->live_view->name));
	}
	else
		nulls[10] = nulls[11] = nulls[12] = 'n';
	values[13] = CStringGetTextDatum(def->mode == REFRESH_MODE_APPLY ?
									 "apply" : "swap");
	values[14] = def->boundary ? CStringGetTextDatum(def->boundary) : (Datum) 0;
	nulls[14] = def->boundary ? ' ' : 'n';

	/*
	 * A boundary recorded with serving_layer_set_boundary() and the one the
	 * last refresh used stay when the time column does not change.
	 */
	sql = psprintf("INSERT INTO %s AS c (target, target_schema, target_name,"
				   " batch, speed, key, merge, speed_columns, definer,"
				   " time_column, live_view, live_view_schema, live_view_name,"
				   " mode, boundary)"
				   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,"
				   " $13, $14, $15)"
				   " ON CONFLICT (target_schema, target_name) DO UPDATE SET"
				   " target = excluded.target, batch = excluded.batch,"
				   " speed = excluded.speed, key = excluded.key,"
				   " merge = excluded.merge,"
				   " speed_columns = excluded.speed_columns,"
				   " definer = excluded.definer,"
				   " boundary = CASE WHEN " SAME_TIME_COLUMN " THEN c.boundary END,"
				   " last_boundary = CASE WHEN " SAME_TIME_COLUMN
				   " THEN c.last_boundary END,"
				   " time_column = excluded.time_column,"
				   " live_view = excluded.live_view,"
				   " live_view_schema = excluded.live_view_schema,"
				   " live_view_name = excluded.live_view_name,"
				   " mode = excluded.mode",
				   sl_qualified("serving_layer_config"));
	catalog_write(sql, 15, argtypes, values, nulls, SPI_OK_INSERT);
}

/*
 * catalog_set_boundary
 *		Record the boundary set with serving_layer_set_boundary(); NULL
 *		clears it.
 */
void
catalog_set_boundary(const TargetName *target, const char *boundary)
{
	Oid			argtypes[3] = {NAMEOID, NAMEOID, TEXTOID};
	Datum		values[3];
	char		nulls[4] = "   ";

	values[0] = DirectFunctionCall1(namein, CStringGetDatum(target->schema));
	values[1] = DirectFunctionCall1(namein, CStringGetDatum(target->name));
	values[2] = boundary ? CStringGetTextDatum(boundary) : (Datum) 0;
	nulls[2] = boundary ? ' ' : 'n';
	catalog_write(psprintf("UPDATE %s SET boundary = $3"
						   " WHERE target_schema OPERATOR(pg_catalog.=) $1"
						   " AND target_name OPERATOR(pg_catalog.=) $2",
						   sl_qualified("serving_layer_config")),
				  3, argtypes, values, nulls, SPI_OK_UPDATE);
}

/*
 * catalog_record_refresh
 *		Record what a successful refresh of a target used: the boundary,
 *		which the live view reads, and the batch rows, which the next
 *		refresh's half-loaded batch check compares with.
 */
void
catalog_record_refresh(const TargetName *target, const char *boundary,
					   int64 batch_rows)
{
	Oid			argtypes[4] = {NAMEOID, NAMEOID, TEXTOID, INT8OID};
	Datum		values[4];
	char		nulls[5] = "    ";

	values[0] = DirectFunctionCall1(namein, CStringGetDatum(target->schema));
	values[1] = DirectFunctionCall1(namein, CStringGetDatum(target->name));
	values[2] = boundary ? CStringGetTextDatum(boundary) : (Datum) 0;
	nulls[2] = boundary ? ' ' : 'n';
	values[3] = Int64GetDatum(batch_rows);
	catalog_write(psprintf("UPDATE %s SET last_boundary = $3,"
						   " last_batch_rows = $4"
						   " WHERE target_schema OPERATOR(pg_catalog.=) $1"
						   " AND target_name OPERATOR(pg_catalog.=) $2",
						   sl_qualified("serving_layer_config")),
				  4, argtypes, values, nulls, SPI_OK_UPDATE);
}

/*
 * catalog_delete
 *		Remove the definition of a target.
 */
void
catalog_delete(const TargetName *target)
{
	Oid			argtypes[2] = {NAMEOID, NAMEOID};
	Datum		values[2];

	values[0] = DirectFunctionCall1(namein, CStringGetDatum(target->schema));
	values[1] = DirectFunctionCall1(namein, CStringGetDatum(target->name));
	catalog_write(psprintf("DELETE FROM %s"
						   " WHERE target_schema OPERATOR(pg_catalog.=) $1"
						   " AND target_name OPERATOR(pg_catalog.=) $2",
						   sl_qualified("serving_layer_config")),
				  2, argtypes, values, NULL, SPI_OK_DELETE);
}

/*
 * catalog_check_owner
 *		Only the owner of the serving table may change or forget its
 *		definition; while the table does not exist, the role that defined it.
 */
void
catalog_check_owner(const Definition *def, CatalogAction action)
{
	Oid			relid = target_relid(def->target);

	if (OidIsValid(relid))
	{
		if (!object_ownercheck(RelationRelationId, relid, GetUserId()))
			aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE,
						   target_label(def->target));
		return;
	}
	if (has_privs_of_role(GetUserId(), def->definer))
		return;
	if (action == CATALOG_FORGET)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to forget the definition of serving table \"%s\"",
						target_label(def->target)),
				 errdetail("Its serving table does not exist yet, so only the role that defined it can forget it.")));
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to change the definition of serving table \"%s\"",
					target_label(def->target)),
			 errdetail("Its serving table does not exist yet, so only the role that defined it can change it.")));
}

/*
 * check_select
 *		The current user must be able to read every column of a layer that
 *		the merge uses.
 */
static void
check_select(Oid relid, const MergePlan *plan, bool speed)
{
	Oid			userid = GetUserId();

	if (pg_class_aclcheck(relid, userid, ACL_SELECT) == ACLCHECK_OK)
		return;
	for (int i = 0; i < plan->ncolumns; i++)
	{
		const char *name = speed ? plan->columns[i].speed_name : plan->columns[i].name;
		AttrNumber	attnum = get_attnum(relid, name);

		if (pg_attribute_aclcheck(relid, attnum, userid, ACL_SELECT) != ACLCHECK_OK)
			aclcheck_error(ACLCHECK_NO_PRIV,
						   get_relkind_objtype(get_rel_relkind(relid)),
						   get_rel_name(relid));
	}
}

/*
 * check_layer_privileges
 *		SELECT on the batch and speed tables.
 */
void
check_layer_privileges(const MergePlan *plan)
{
	check_select(plan->batch, plan, false);
	check_select(plan->speed, plan, true);
}

/*
 * check_target_privileges
 *		Ownership of the serving table where it exists (as REFRESH
 *		MATERIALIZED VIEW requires), or CREATE on its schema where it does
 *		not.
 */
void
check_target_privileges(const TargetName *target)
{
	Oid			relid = target_relid(target);
	Oid			nspid;

	if (OidIsValid(relid))
	{
		if (!object_ownercheck(RelationRelationId, relid, GetUserId()))
			aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE,
						   target_label(target));
		return;
	}
	nspid = target_namespace(target);
	if (!OidIsValid(nspid))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_SCHEMA_NAME),
				 errmsg("schema \"%s\" does not exist", target->schema)));
	if (object_aclcheck(NamespaceRelationId, nspid, GetUserId(),
						ACL_CREATE) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_SCHEMA, target->schema);
}
