/*-------------------------------------------------------------------------
 *
 * boundary.c
 *	  The time boundary between the batch and the speed layer.
 *
 * In a Lambda Architecture the batch layer covers every event up to some
 * time and the speed layer what came after, but the speed layer usually
 * still holds hours the batch already counted.  With a time column (a key
 * column of both layers) a refresh counts each time once: batch rows are
 * taken where the time is at or before the boundary, speed rows where it is
 * after it, and rows whose time is NULL are taken from both layers.  The
 * boundary is the one recorded with serving_layer_set_boundary(), or else
 * the greatest time in the batch layer, read under the snapshot the merge
 * reads the rows with (the caller pushes it), so that both agree.
 *
 * The comparisons are those of the type's default btree operator class, the
 * ones ORDER BY uses, found by OID and written into SQL qualified with their
 * schema, so search_path cannot change them.
 *
 * Boundaries are kept as text in the catalog and shown as text.  The text is
 * written with DateStyle ISO and TimeZone UTC whatever the session uses, so
 * that it reads back as the same value in any session (the live view casts
 * it back at query time, with the reader's settings).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/stratnum.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

#include "boundary.h"
#include "definition.h"
#include "layers.h"
#include "merge_sql.h"
#include "merge_types.h"
#include "util.h"

/*
 * boundary_plan
 *		Check a definition's time column against the plan and set up the
 *		plan's boundary: the recorded one, or one to derive at the refresh.
 *
 * The time column must be a key column (else a row's time would not say
 * which side of the boundary its key is on) whose type has a total order.
 */
void
boundary_plan(MergePlan *plan, const Definition *def)
{
	TimeBoundary *b;
	PlanColumn *col = NULL;
	TypeCacheEntry *tce;

	plan->boundary = NULL;
	if (def->time_column == NULL)
		return;

	b = palloc0(sizeof(TimeBoundary));
	for (int i = 0; i < plan->ncolumns; i++)
	{
		if (strcmp(plan->columns[i].name, def->time_column) == 0)
		{
			col = &plan->columns[i];
			b->column = i;
		}
	}
	if (col == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("time column \"%s\" does not exist in the batch table",
						def->time_column)));
	if (col->kind != MERGE_KEY)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("time column \"%s\" is not a key column",
						def->time_column),
				 errdetail("The time column splits keys between the batch and the speed layer, so it must be one of the key columns.")));

	tce = lookup_type_cache(col->typid, TYPECACHE_BTREE_OPFAMILY);
	if (OidIsValid(tce->btree_opf))
	{
		b->le_opr = get_opfamily_member(tce->btree_opf, tce->btree_opintype,
										tce->btree_opintype,
										BTLessEqualStrategyNumber);
		b->gt_opr = get_opfamily_member(tce->btree_opf, tce->btree_opintype,
										tce->btree_opintype,
										BTGreaterStrategyNumber);
	}
	if (!OidIsValid(b->le_opr) || !OidIsValid(b->gt_opr))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("could not identify an ordering operator for type %s of time column \"%s\"",
						format_type_be(col->typid), def->time_column),
				 errdetail("The boundary splits times by order, so the time column's type needs a default btree operator class.")));

	b->typid = col->typid;
	if (def->boundary != NULL)
	{
		Oid			typinput;
		Oid			typioparam;

		getTypeInputInfo(col->typid, &typinput, &typioparam);
		b->value = OidInputFunctionCall(typinput, def->boundary, typioparam,
										col->typmod);
		b->is_explicit = true;
		b->has_value = true;
	}
	plan->boundary = b;
}

/*
 * boundary_from_tuple
 *		sl_spi_run() row callback: the greatest batch time (never NULL: the
 *		query skips those), copied into the caller's memory context, which
 *		sl_spi_run() calls this in.
 */
static void
boundary_from_tuple(HeapTuple tuple, TupleDesc desc, void *arg)
{
	TimeBoundary *b = (TimeBoundary *) arg;
	bool		isnull;
	Datum		value = SPI_getbinval(tuple, desc, 1, &isnull);
	int16		typlen;
	bool		typbyval;

	get_typlenbyval(b->typid, &typlen, &typbyval);
	b->value = datumCopy(value, typbyval, typlen);
	b->has_value = true;
}

/*
 * boundary_derive
 *		Without a recorded boundary, take the greatest non-NULL time of the
 *		batch layer, read under the active snapshot.  An empty batch layer
 *		(or one whose times are all NULL) gives no boundary.
 */
void
boundary_derive(const MergePlan *plan)
{
	TimeBoundary *b = plan->boundary;
	const PlanColumn *col;
	char	   *ref;
	SpiCall		call;

	if (b == NULL || b->is_explicit)
		return;

	col = &plan->columns[b->column];
	ref = psprintf("b.%s", quote_identifier(col->name));
	b->has_value = false;
	memset(&call, 0, sizeof(call));
	call.read_only = true;
	call.row_fn = boundary_from_tuple;
	call.row_arg = b;
	(void) sl_spi_run(psprintf("SELECT %s FROM %s AS b WHERE %s IS NOT NULL"
							   " ORDER BY %s USING OPERATOR(%s) LIMIT 1",
							   ref, layers_name(plan->batch), ref, ref,
							   merge_sql_operator(b->gt_opr)),
					  SPI_OK_SELECT, &call);
}

/*
 * value_text
 *		A value as text that reads back as the same value in any session:
 *		written with DateStyle ISO and TimeZone UTC.
 */
static char *
value_text(Oid typid, Datum value)
{
	Oid			typoutput;
	bool		varlena;
	int			nestlevel = NewGUCNestLevel();
	char	   *result;

	(void) set_config_option("datestyle", "ISO, YMD", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("timezone", "UTC", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("intervalstyle", "postgres", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	getTypeOutputInfo(typid, &typoutput, &varlena);
	result = OidOutputFunctionCall(typoutput, value);
	AtEOXact_GUC(true, nestlevel);
	return result;
}

/*
 * boundary_text
 *		The boundary a refresh uses, as text, or NULL when there is none.
 */
char *
boundary_text(const MergePlan *plan)
{
	if (plan->boundary == NULL || !plan->boundary->has_value)
		return NULL;
	return value_text(plan->boundary->typid, plan->boundary->value);
}

/*
 * boundary_canonical
 *		A boundary given to serving_layer_set_boundary(), converted to the
 *		time column's type by its input function (with the caller's
 *		settings, which raises the type's own error for bad input), as the
 *		text the catalog keeps.
 */
char *
boundary_canonical(Oid typid, const char *text)
{
	Oid			typinput;
	Oid			typioparam;
	Datum		value;

	getTypeInputInfo(typid, &typinput, &typioparam);
	value = OidInputFunctionCall(typinput, (char *) text, typioparam, -1);
	return value_text(typid, value);
}

/*
 * boundary_takes_batch
 *		Whether batch rows must be filtered: only a recorded boundary can
 *		have batch rows after it (a derived one is the greatest batch time).
 */
bool
boundary_takes_batch(const MergePlan *plan)
{
	return plan->boundary != NULL && plan->boundary->is_explicit;
}
