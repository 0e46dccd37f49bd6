/*-------------------------------------------------------------------------
 *
 * entry.c
 *	  The SQL-callable functions of serving_layer and its settings.
 *
 * Each function is a thin wrapper that reads its arguments and hands off to
 * the file doing the work.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "access/xact.h"
#include "utils/acl.h"

#include "apply_batch_watch.h"
#include "apply_state.h"
#include "apply_watch.h"
#include "catalog.h"
#include "compat.h"
#include "definition.h"
#include "fast_merge_api.h"
#include "boundary.h"
#include "layers.h"
#include "live_view.h"
#include "merge_plan.h"
#include "merge_types.h"
#include "refresh.h"
#include "settings.h"
#include "target.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(serving_layer_define);
PG_FUNCTION_INFO_V1(serving_layer_refresh);
PG_FUNCTION_INFO_V1(serving_layer_forget);
PG_FUNCTION_INFO_V1(serving_layer_set_boundary);

int			sl_swap_lock_timeout = 100;
int			sl_swap_max_wait = 60000;
int			sl_if_running = IF_RUNNING_WAIT;
bool		sl_progress = false;
bool		sl_progress_old_name = false;
bool		sl_fast_merge = true;
int			sl_fast_merge_memory = 192 * 1024;
bool		sl_transparent_huge_pages = true;
int			sl_apply_find_rows = APPLY_FIND_AUTO;
int			sl_apply_fillfactor = 90;

static const struct config_enum_entry if_running_options[] = {
	{"wait", IF_RUNNING_WAIT, false},
	{"skip", IF_RUNNING_SKIP, false},
	{NULL, 0, false}
};

static const struct config_enum_entry apply_find_rows_options[] = {
	{"auto", APPLY_FIND_AUTO, false},
	{"index", APPLY_FIND_INDEX, false},
	{"scan", APPLY_FIND_SCAN, false},
	{NULL, 0, false}
};

void		_PG_init(void);

/*
 * _PG_init
 *		Define the serving_layer.* settings.
 */
void
_PG_init(void)
{
	DefineCustomIntVariable("serving_layer.swap_lock_timeout",
							"How long one attempt to take the swap lock may wait.",
							"Readers arriving meanwhile wait behind the attempt, so this bounds their stall.",
							&sl_swap_lock_timeout,
							100, 1, INT_MAX,
							PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("serving_layer.swap_max_wait",
							"How long to keep retrying the swap lock before giving up.",
							NULL,
							&sl_swap_max_wait,
							60000, 0, INT_MAX,
							PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomEnumVariable("serving_layer.if_running",
							 "What a refresh does when another session is refreshing the same target.",
							 "\"wait\" waits for it; \"skip\" returns at once with status \"skipped\".",
							 &sl_if_running,
							 IF_RUNNING_WAIT, if_running_options,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("serving_layer.progress",
							 "Report each phase of a refresh with rows and milliseconds.",
							 NULL,
							 &sl_progress,
							 false,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);

	/*
	 * Version 1 named it serving_layer.verbose, which SET cannot name
	 * unquoted (VERBOSE is an SQL keyword).  The old name keeps working as
	 * a setting of its own: the lines are printed when either is on.
	 */
	DefineCustomBoolVariable("serving_layer.verbose",
							 "Old name of serving_layer.progress: either one on reports each phase of a refresh.",
							 NULL,
							 &sl_progress_old_name,
							 false,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("serving_layer.fast_merge",
							 "Merge sums, mins and maxes of numeric measures in C rather than with GROUP BY.",
							 "For diagnosis: both give the same rows; off forces the GROUP BY query.",
							 &sl_fast_merge,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("serving_layer.fast_merge_memory",
							"Memory the C merge may use before it spills to temporary files.",
							NULL,
							&sl_fast_merge_memory,
							192 * 1024, 8, MAX_KILOBYTES,
							PGC_USERSET, GUC_UNIT_KB,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("serving_layer.transparent_huge_pages",
							 "Ask Linux for transparent huge pages for a refresh's large working memory.",
							 "Off leaves that memory to the kernel's default page size.",
							 &sl_transparent_huge_pages,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomEnumVariable("serving_layer.apply_find_rows",
							 "How a refresh in mode 'apply' that follows the change finds the serving rows of the changed keys.",
							 "For diagnosis: all give the same rows; auto looks each key up in the unique index when few keys changed and scans the table once when many did, index and scan force either way.",
							 &sl_apply_find_rows,
							 APPLY_FIND_AUTO, apply_find_rows_options,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("serving_layer.apply_fillfactor",
							"Fillfactor of a serving table that a refresh in mode 'apply' creates.",
							"The room left on each page is what lets the refreshes' UPDATEs stay on the page (HOT updates, no new index entry): about the share of rows a refresh changes. Tables that exist keep their own.",
							&sl_apply_fillfactor,
							90, 10, 100,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomRealVariable("serving_layer.min_batch_fraction",
							 "Smallest share of the last successful refresh's batch rows a refresh accepts.",
							 "A refresh whose batch layer has fewer rows than this times the batch rows of the target's last successful refresh fails, leaving the serving table as it is. 0 disables the check.",
							 &sl_min_batch_fraction,
							 0.5, 0.0, 1.0,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	MarkGUCPrefixReserved("serving_layer");
}

/*
 * text_array_to_list
 *		A text[] argument as a List of C strings (NULL for NULL elements).
 */
static List *
text_array_to_list(ArrayType *arr)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	List	   *result = NIL;

	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
		result = lappend(result, nulls[i] ? NULL : TextDatumGetCString(elems[i]));
	return result;
}

/*
 * parse_mode
 *		The "mode" argument: 'swap' (also for NULL) or 'apply'.
 */
static RefreshMode
parse_mode(FunctionCallInfo fcinfo, int argno)
{
	char	   *mode;

	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
		return REFRESH_MODE_SWAP;
	mode = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (strcmp(mode, "swap") == 0)
		return REFRESH_MODE_SWAP;
	if (strcmp(mode, "apply") == 0)
		return REFRESH_MODE_APPLY;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid refresh mode \"%s\"", mode),
			 errhint("The mode is \"swap\" or \"apply\".")));
	return REFRESH_MODE_SWAP;	/* keep compiler quiet */
}

/*
 * parse_live_view
 *		The "live_view" argument as a relation name, which needs a time
 *		column and must not name the serving table or a layer.
 */
static TargetName *
parse_live_view(FunctionCallInfo fcinfo, int argno, const Definition *def)
{
	TargetName *view;

	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
		return NULL;
	if (def->time_column == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a live view needs a time column"),
				 errdetail("The live view shows the serving table up to the boundary of its last refresh and the speed layer after it, so the definition needs a time_column."),
				 errhint("Name the time column with the \"time_column\" argument of serving_layer_define().")));
	view = target_parse(text_to_cstring(PG_GETARG_TEXT_PP(argno)), true);
	if (strcmp(view->schema, def->target->schema) == 0 &&
		strcmp(view->name, def->target->name) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("live view \"%s\" cannot be its own serving table",
						view->name)));
	{
		Oid			relid = target_relid(view);

		if (OidIsValid(relid) && (relid == def->batch || relid == def->speed))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("live view \"%s\" cannot be a batch or speed table",
							view->name)));
	}
	return view;
}

/*
 * serving_layer_define(target text, batch regclass, speed regclass,
 *						key text[], merge jsonb, speed_columns text[],
 *						time_column text, live_view text, mode text)
 *		Create or replace the definition of a serving table.
 */
Datum
serving_layer_define(PG_FUNCTION_ARGS)
{
	Definition	def;
	Definition *existing;
	MergePlan  *plan;
	Oid			relid;

	/* refused before any work */
	PreventCommandIfReadOnly("serving_layer_define()");
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("target, batch and speed must not be null")));

	memset(&def, 0, sizeof(def));
	def.target = target_parse(text_to_cstring(PG_GETARG_TEXT_PP(0)), true);
	def.batch = PG_GETARG_OID(1);
	def.speed = PG_GETARG_OID(2);
	if (!PG_ARGISNULL(3))
	{
		def.key = text_array_to_list(PG_GETARG_ARRAYTYPE_P(3));
		def.key_given = true;
	}
	if (!PG_ARGISNULL(4))
		def.merge = PG_GETARG_JSONB_P(4);
	if (!PG_ARGISNULL(5))
	{
		def.speed_columns = text_array_to_list(PG_GETARG_ARRAYTYPE_P(5));
		def.speed_columns_given = true;
	}
	if (PG_NARGS() > 6 && !PG_ARGISNULL(6))
		def.time_column = text_to_cstring(PG_GETARG_TEXT_PP(6));
	def.live_view = parse_live_view(fcinfo, 7, &def);
	def.mode = parse_mode(fcinfo, 8);
	def.definer = GetUserId();

	existing = catalog_lookup(def.target);
	if (existing != NULL)
		catalog_check_owner(existing, CATALOG_CHANGE);

	plan = merge_plan_build(&def);
	check_layer_privileges(plan);
	/* an existing serving table is read below: lock it, as a query would */
	relid = target_lock(def.target, AccessShareLock);
	check_target_privileges(def.target);
	if (OidIsValid(relid))
	{
		if (relid == def.batch || relid == def.speed)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("serving table \"%s\" cannot be its own batch or speed table",
							target_label(def.target))));
		merge_plan_check_target(plan, relid);
	}
	catalog_store(&def, plan);
	CommandCounterIncrement();

	/* mode 'apply': a new definition is followed from a whole comparison */
	apply_state_forget(def.target);
	batch_watch_forget(def.target);
	if (OidIsValid(relid))
		apply_watch_set(relid, def.mode == REFRESH_MODE_APPLY);
	/* the batch table's watch serves only merges that follow the change */
	if (def.mode == REFRESH_MODE_APPLY && fast_merge_possible(plan))
		batch_watch_ensure(def.batch);

	/* a live view renamed by this definition: drop the old one */
	if (existing != NULL && existing->live_view != NULL &&
		(def.live_view == NULL ||
		 strcmp(existing->live_view->schema, def.live_view->schema) != 0 ||
		 strcmp(existing->live_view->name, def.live_view->name) != 0))
		live_view_drop(existing);
	live_view_update(&def, plan, true);
	PG_RETURN_VOID();
}

/*
 * serving_layer_refresh(target text DEFAULT NULL)
 *		Refresh one target, or all, and return a row per target.
 */
Datum
serving_layer_refresh(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	List	   *outcomes;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, 0);
	outcomes = refresh_targets(PG_ARGISNULL(0) ? NULL :
							   text_to_cstring(PG_GETARG_TEXT_PP(0)));
	foreach(lc, outcomes)
	{
		RefreshOutcome *o = lfirst(lc);
		Datum		values[7];
		bool		nulls[7] = {false, false, false, false, false, false, false};

		values[0] = CStringGetTextDatum(o->target);
		values[1] = Int64GetDatum(o->batch_rows);
		values[2] = Int64GetDatum(o->speed_rows);
		values[3] = Int64GetDatum(o->output_rows);
		values[4] = CStringGetTextDatum(o->status);
		for (int i = 1; i <= 3; i++)
			nulls[i] = DatumGetInt64(values[i]) < 0;
		values[5] = o->boundary ? CStringGetTextDatum(o->boundary) : (Datum) 0;
		nulls[5] = o->boundary == NULL;
		values[6] = Int64GetDatum(o->changed_rows);
		nulls[6] = o->changed_rows < 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * serving_layer_forget(target text)
 *		Remove a definition; the serving table stays.
 */
Datum
serving_layer_forget(PG_FUNCTION_ARGS)
{
	TargetName *target;
	Definition *def;
	Oid			relid;

	/* refused before any work */
	PreventCommandIfReadOnly("serving_layer_forget()");
	target = target_parse(text_to_cstring(PG_GETARG_TEXT_PP(0)), false);
	def = catalog_lookup(target);

	if (def == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("serving table \"%s\" has no definition",
						target_label(target))));
	catalog_check_owner(def, CATALOG_FORGET);
	catalog_delete(def->target);
	apply_state_forget(def->target);
	batch_watch_forget(def->target);
	relid = target_lock(def->target, AccessShareLock);
	if (OidIsValid(relid))
		apply_watch_set(relid, false);
	CommandCounterIncrement();
	batch_watch_release(layers_find(def->batch_name));
	live_view_drop(def);
	PG_RETURN_VOID();
}

/*
 * serving_layer_set_boundary(target text, boundary text)
 *		Record that the batch layer covers every time up to boundary, or
 *		(NULL) return to the boundary derived at each refresh.
 *
 * The batch job calls it when it finishes, so the batch table's owner may
 * call it as well as the serving table's.
 */
Datum
serving_layer_set_boundary(PG_FUNCTION_ARGS)
{
	TargetName *target;
	Definition *def;
	MergePlan  *plan;
	char	   *boundary = NULL;
	Oid			relid;

	/* refused before any work */
	PreventCommandIfReadOnly("serving_layer_set_boundary()");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("target must not be null")));
	target = target_parse(text_to_cstring(PG_GETARG_TEXT_PP(0)), false);
	def = catalog_lookup(target);
	if (def == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("serving table \"%s\" has no definition",
						target_label(target)),
				 errhint("Define it with serving_layer_define().")));
	if (def->time_column == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("serving table \"%s\" has no time column",
						target_label(target)),
				 errdetail("A boundary splits the layers by the time column, and the definition names none."),
				 errhint("Define the serving table again with a \"time_column\".")));

	layers_resolve(def);
	relid = target_relid(def->target);
	if (!(OidIsValid(relid) &&
		  object_ownercheck(RelationRelationId, relid, GetUserId())) &&
		!object_ownercheck(RelationRelationId, def->batch, GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to set the boundary of serving table \"%s\"",
						target_label(target)),
				 errdetail("Only the owner of the serving table or of its batch table may set its boundary.")));

	plan = merge_plan_build(def);
	if (!PG_ARGISNULL(1))
		boundary = boundary_canonical(plan->columns[plan->boundary->column].typid,
									  text_to_cstring(PG_GETARG_TEXT_PP(1)));
	catalog_set_boundary(def->target, boundary);
	PG_RETURN_VOID();
}
