/*-------------------------------------------------------------------------
 *
 * live_view.c
 *	  The live view of a definition: what a refresh run now would produce,
 *	  without running one.
 *
 * In Marz's Lambda Architecture a query merges the batch view with the
 * real-time view, so it is always fresh.  The live view does that: it shows
 * the serving table's rows whose time is at or before the boundary its last
 * refresh used (and its rows with a NULL time), plus the speed layer's rows
 * after that boundary, merged by key as a refresh merges them:
 *
 *	  CREATE VIEW v AS
 *		SELECT s.* FROM serving AS s
 *		WHERE s.t IS NULL OR s.t <= (the last refresh's boundary, read from
 *									 serving_layer_config at query time)
 *	  UNION ALL
 *		SELECT * FROM serving_layer_live_speed('schema', 'serving')
 *		  AS l(columns of the serving table)
 *
 * The two parts never hold the same key (their times differ), so the union
 * needs no second merge.  A dashboard's filter on key columns is pushed
 * into the first part and can use the serving table's indexes.  The
 * boundary is read from the catalog row, which a refresh updates in its own
 * transaction, so a refresh that moves the boundary changes what the view
 * shows in the same commit as the new rows.
 *
 * The speed part is a function rather than a subquery so that the view does
 * not depend on the speed table: the speed job may drop and recreate it
 * without being blocked by the view, and the function finds it by name at
 * each query.  It never touches the batch layer, whose job may be replacing
 * it meanwhile: the merge is planned on the serving table's columns, which
 * are the batch table's.  It runs the speed query as the serving table's
 * owner, for a caller that may SELECT from the live view, so a reader needs
 * SELECT on the view only.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/tuplestore.h"

#include "catalog.h"
#include "compat.h"
#include "definition.h"
#include "live_view.h"
#include "merge_plan.h"
#include "merge_sql.h"
#include "merge_types.h"
#include "query_rows.h"
#include "target.h"
#include "util.h"

PG_FUNCTION_INFO_V1(serving_layer_live_speed);

/*
 * live_view_sql
 *		CREATE OR REPLACE VIEW of a definition's live view.
 */
static char *
live_view_sql(const Definition *def, const MergePlan *plan)
{
	const TimeBoundary *b = plan->boundary;
	const PlanColumn *tcol = &plan->columns[b->column];
	const char *ext = quote_identifier(get_namespace_name(sl_extension_schema()));
	char	   *tref = psprintf("s.%s", quote_identifier(tcol->name));
	StringInfoData cols;
	StringInfoData coldefs;
	StringInfoData buf;

	initStringInfo(&cols);
	initStringInfo(&coldefs);
	for (int i = 0; i < plan->ncolumns; i++)
	{
		const PlanColumn *col = &plan->columns[i];

		appendStringInfo(&cols, "%ss.%s", i > 0 ? ", " : "",
						 quote_identifier(col->name));
		appendStringInfo(&coldefs, "%s%s %s", i > 0 ? ", " : "",
						 quote_identifier(col->name),
						 merge_sql_type(col->typid, col->typmod));
		merge_sql_collation(&coldefs, col->collid);
	}

	initStringInfo(&buf);
	appendStringInfo(&buf,
					 "CREATE OR REPLACE VIEW %s AS"
					 " SELECT %s FROM %s AS s"
					 " WHERE %s IS NULL OR %s OPERATOR(%s)"
					 " (SELECT CAST(c.last_boundary AS %s)"
					 " FROM %s.serving_layer_config AS c"
					 " WHERE c.target_schema OPERATOR(pg_catalog.=) %s"
					 " AND c.target_name OPERATOR(pg_catalog.=) %s)"
					 " UNION ALL"
					 " SELECT %s FROM %s.serving_layer_live_speed(%s, %s) AS s(%s)",
					 quote_qualified_identifier(def->live_view->schema,
												def->live_view->name),
					 cols.data,
					 quote_qualified_identifier(def->target->schema,
												def->target->name),
					 tref, tref, merge_sql_operator(b->le_opr),
					 merge_sql_type(tcol->typid, tcol->typmod),
					 ext,
					 quote_literal_cstr(def->target->schema),
					 quote_literal_cstr(def->target->name),
					 cols.data, ext,
					 quote_literal_cstr(def->target->schema),
					 quote_literal_cstr(def->target->name),
					 coldefs.data);
	return buf.data;
}

/*
 * run_as
 *		Run one utility statement as role (sl_spi_run() switches to it for
 *		the statement), with search_path pinned around the call.
 */
static void
run_as(Oid role, const char *sql)
{
	int			save_nestlevel;
	SpiCall		call;

	memset(&call, 0, sizeof(call));
	call.run_as = role;
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	(void) sl_spi_run(sql, SPI_OK_UTILITY, &call);
	AtEOXact_GUC(true, save_nestlevel);
	CommandCounterIncrement();
}

/*
 * live_view_relid
 *		The live view's OID, or InvalidOid when it does not exist.
 */
static Oid
live_view_relid(const Definition *def)
{
	Oid			nspid = get_namespace_oid(def->live_view->schema, true);

	return OidIsValid(nspid) ?
		get_relname_relid(def->live_view->name, nspid) : InvalidOid;
}

/*
 * live_view_update
 *		Create the live view of a definition whose serving table exists, as
 *		the serving table's owner; with replace, replace it when it exists
 *		(CREATE OR REPLACE keeps its grants), else leave it alone, so that a
 *		refresh takes no lock on it.
 */
void
live_view_update(const Definition *def, const MergePlan *plan, bool replace)
{
	Oid			relid;
	Oid			viewid;

	if (def->live_view == NULL || plan->boundary == NULL)
		return;
	relid = target_relid(def->target);
	if (!OidIsValid(relid))
		return;
	viewid = live_view_relid(def);
	if (OidIsValid(viewid) && !replace)
		return;
	if (OidIsValid(viewid) && get_rel_relkind(viewid) != RELKIND_VIEW)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("live view \"%s\" of serving table \"%s\" is not a view",
						def->live_view->name, target_label(def->target)),
				 errhint("Drop the relation of that name, or name another live view.")));
	run_as(sl_relation_owner(relid), live_view_sql(def, plan));
}

/*
 * live_view_drop
 *		Drop a definition's live view, when it is there and is a view.
 */
void
live_view_drop(const Definition *def)
{
	Oid			viewid;

	if (def->live_view == NULL)
		return;
	viewid = live_view_relid(def);
	if (!OidIsValid(viewid) || get_rel_relkind(viewid) != RELKIND_VIEW)
		return;
	run_as(GetUserId(),
		   psprintf("DROP VIEW %s",
					quote_qualified_identifier(def->live_view->schema,
											   def->live_view->name)));
}

/* state of serving_layer_live_speed() while it reads the speed rows */
typedef struct LiveRows
{
	Tuplestorestate *store;
	TupleDesc	desc;
} LiveRows;

/*
 * live_row
 *		One merged speed row: the data columns go to the result.
 */
static void
live_row(TupleTableSlot *slot, void *arg)
{
	LiveRows   *rows = arg;

	tuplestore_putvalues(rows->store, rows->desc, slot->tts_values,
						 slot->tts_isnull);
}

/*
 * serving_layer_live_speed(target_schema name, target_name name)
 *		The speed part of a live view: the speed layer's rows after the
 *		boundary of the target's last refresh, merged by key.
 */
Datum
serving_layer_live_speed(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TargetName	target;
	Definition *def;
	MergePlan  *plan;
	Oid			relid;
	Oid			viewid;
	LiveRows	rows;
	int			nparams;
	Oid		   *paramtypes;
	Datum	   *paramvalues;
	char	   *sql;
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;

	target.schema = NameStr(*PG_GETARG_NAME(0));
	target.name = NameStr(*PG_GETARG_NAME(1));
	target.display = quote_qualified_identifier(target.schema, target.name);
	def = catalog_lookup(&target);
	if (def == NULL || def->live_view == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("serving table \"%s\" has no live view", target.name)));
	relid = target_relid(def->target);
	viewid = live_view_relid(def);
	if (!OidIsValid(relid) || !OidIsValid(viewid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("live view \"%s\" of serving table \"%s\" does not exist",
						def->live_view->name, target.name)));
	if (pg_class_aclcheck(viewid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_VIEW, def->live_view->name);

	/* plan the merge on the serving table's columns: never on the batch's */
	if (def->speed_name != NULL)
	{
		List	   *names = stringToQualifiedNameList(def->speed_name, NULL);

		def->speed = RangeVarGetRelid(makeRangeVarFromNameList(names),
									  AccessShareLock, false);
	}
	def->batch = relid;
	def->boundary = def->last_boundary;
	plan = merge_plan_build(def);
	if (plan->boundary == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("serving table \"%s\" has no time column", target.name)));
	plan->boundary->live = true;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	rows.store = rsinfo->setResult;
	rows.desc = rsinfo->setDesc;
	if (rows.desc->natts != plan->ncolumns)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("live view \"%s\" does not match serving table \"%s\"",
						def->live_view->name, target.name),
				 errhint("Define the serving table again with serving_layer_define() to replace its live view.")));

	sql = merge_sql_select(plan, false, &nparams, &paramtypes, &paramvalues);

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(sl_relation_owner(relid),
						   save_sec_context | SECURITY_RESTRICTED_OPERATION);
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	query_rows(sql, nparams, paramtypes, paramvalues, true, live_row, &rows);
	AtEOXact_GUC(false, save_nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	return (Datum) 0;
}
