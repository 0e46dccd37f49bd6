/*-------------------------------------------------------------------------
 *
 * batch_guard.c
 *	  Refuse to replace a serving table from a half-loaded batch layer.
 *
 * Spark's JDBC writer with truncate=true empties the batch table in one
 * transaction and refills it in others.  A refresh in between would
 * replace the serving table with a few rows, and dashboards would show
 * near-zero until the next refresh.  So a refresh whose batch layer has
 * fewer than serving_layer.min_batch_fraction times the batch rows of the
 * target's last successful refresh fails before it changes anything; 0
 * disables the check.  A definition records those rows in its catalog row
 * (the history's target names are not unique across schemas, and the
 * history may be pruned); the classic layout, which has no catalog row,
 * records them per schema in serving_layer_classic_state (1.4), and reads
 * them from serving_layer_history for a schema that has no row there yet.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "batch_guard.h"
#include "merge_sql.h"
#include "settings.h"
#include "target.h"
#include "util.h"

double		sl_min_batch_fraction = 0.5;

/*
 * int64_from_tuple
 *		sl_spi_run() row callback: the first column of the row, a bigint
 *		(a NULL leaves *arg alone).
 */
static void
int64_from_tuple(HeapTuple tuple, TupleDesc desc, void *arg)
{
	bool		isnull;
	Datum		value = SPI_getbinval(tuple, desc, 1, &isnull);

	if (!isnull)
		*(int64 *) arg = DatumGetInt64(value);
}

/*
 * last_batch_rows
 *		The batch rows of the target's last successful refresh, or -1 when
 *		the history has none.
 */
static int64
last_batch_rows(const char *target)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	int64		result = -1;
	SpiCall		call;

	values[0] = CStringGetTextDatum(target);
	memset(&call, 0, sizeof(call));
	call.read_only = true;
	call.nargs = 1;
	call.argtypes = argtypes;
	call.values = values;
	call.row_fn = int64_from_tuple;
	call.row_arg = &result;
	(void) sl_spi_run(psprintf("SELECT h.batch_rows FROM %s AS h"
							   " WHERE h.target OPERATOR(pg_catalog.=) $1"
							   " AND h.status OPERATOR(pg_catalog.=) 'ok'"
							   " AND h.batch_rows IS NOT NULL"
							   " ORDER BY h.finished_at DESC LIMIT 1",
							   sl_qualified("serving_layer_history")),
					  SPI_OK_SELECT, &call);
	return result;
}

/* an SPI call naming the classic serving table's schema as $1 */
static void
classic_call(SpiCall *call, const TargetName *target, Oid *types,
			 Datum *values)
{
	memset(call, 0, sizeof(SpiCall));
	call->run_as = sl_relation_owner(get_relname_relid("serving_layer_classic_state",
													   sl_extension_schema()));
	call->nargs = 1;
	call->argtypes = types;
	call->values = values;
	types[0] = NAMEOID;
	values[0] = DirectFunctionCall1(namein, CStringGetDatum(target->schema));
}

/*
 * classic_batch_rows
 *		The batch rows of the last successful refresh of the classic layout
 *		in the target's schema, -1 when none was recorded there, -2 when
 *		none was recorded at all (an extension updated from 1.3 since: the
 *		history then tells).
 */
static int64
classic_batch_rows(const TargetName *target)
{
	Oid			types[2];
	Datum		values[2];
	int64		result = -1;
	SpiCall		call;

	classic_call(&call, target, types, values);
	call.read_only = true;
	call.row_fn = int64_from_tuple;
	call.row_arg = &result;
	(void) sl_spi_run(psprintf("SELECT coalesce((SELECT last_batch_rows FROM %s"
							   " WHERE target_schema OPERATOR(pg_catalog.=) $1),"
							   " CASE WHEN EXISTS (SELECT FROM %s) THEN -1 ELSE -2 END)",
							   sl_qualified("serving_layer_classic_state"),
							   sl_qualified("serving_layer_classic_state")),
					  SPI_OK_SELECT, &call);
	return result;
}

/*
 * batch_guard_record_classic
 *		Record the batch rows of a successful refresh of the classic layout,
 *		for the next one in the same schema.
 */
void
batch_guard_record_classic(const TargetName *target, int64 batch_rows)
{
	Oid			types[2];
	Datum		values[2];
	SpiCall		call;

	classic_call(&call, target, types, values);
	call.nargs = 2;
	types[1] = INT8OID;
	values[1] = Int64GetDatum(batch_rows);
	(void) sl_spi_run(psprintf("INSERT INTO %s AS c VALUES ($1, $2)"
							   " ON CONFLICT (target_schema) DO UPDATE"
							   " SET last_batch_rows = excluded.last_batch_rows",
							   sl_qualified("serving_layer_classic_state")),
					  SPI_OK_INSERT, &call);
}

/*
 * last_refresh_rows
 *		The batch rows of the target's last successful refresh, or -1: a
 *		definition records them; the classic layout per schema, or, when
 *		no schema's was recorded yet, its history.
 */
static int64
last_refresh_rows(const Definition *def)
{
	int64		rows;

	if (def->batch_name != NULL)
		return def->last_batch_rows;
	rows = classic_batch_rows(def->target);
	return rows != -2 ? rows : last_batch_rows(def->target->display);
}

/*
 * batch_guard_check
 *		Raise object_not_in_prerequisite_state when the batch layer the
 *		refresh read looks half-loaded.
 */
void
batch_guard_check(const Definition *def, int64 batch_rows)
{
	const TargetName *target = def->target;
	int64		last;

	if (sl_min_batch_fraction <= 0.0)
		return;
	last = last_refresh_rows(def);
	if (last <= 0 || (double) batch_rows >= sl_min_batch_fraction * (double) last)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("batch layer of serving table \"%s\" looks half-loaded",
					target_label(target)),
			 errdetail("The batch layer has %lld rows, fewer than %g times the %lld rows of the last successful refresh, so the serving table was left as it is.",
					   (long long) batch_rows, sl_min_batch_fraction,
					   (long long) last),
			 errhint("Refresh again once the batch job has finished; if the batch layer really is that small now, set serving_layer.min_batch_fraction to 0 for this refresh.")));
}

/*
 * batch_guard_check_first
 *		The same check before the merge, for a refresh that changes the
 *		serving table while it merges (mode 'apply'): the batch rows the
 *		merge will take are counted first, under the active snapshot.  Only
 *		when the check applies at all, so a disabled check costs nothing.
 */
void
batch_guard_check_first(const Definition *def, const MergePlan *plan)
{
	int64		rows = 0;
	SpiCall		call;

	if (sl_min_batch_fraction <= 0.0 || last_refresh_rows(def) <= 0)
		return;
	memset(&call, 0, sizeof(call));
	call.read_only = true;
	call.nargs = merge_sql_layer_params(plan, false, &call.argtypes,
										&call.values);
	call.row_fn = int64_from_tuple;
	call.row_arg = &rows;
	if (sl_spi_run(psprintf("SELECT pg_catalog.count(*) FROM (%s) AS l",
							merge_sql_layer(plan, false, true)),
				   SPI_OK_SELECT, &call) != 1)
		elog(ERROR, "could not count the rows of the batch layer");
	batch_guard_check(def, rows);
}
