/*-------------------------------------------------------------------------
 *
 * query_rows.c
 *	  Run a query through SPI and hand each of its rows to a callback.
 *
 * SPI would otherwise collect the rows in a tuple table; the merge streams
 * millions of them into the new heap, so they go through a DestReceiver of
 * ours, one row at a time, with the executor's per-row memory.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "nodes/params.h"
#include "tcop/dest.h"
#include "utils/memutils.h"

#include "query_rows.h"
#include "merge_sql.h"

typedef struct CallbackReceiver
{
	DestReceiver pub;
	QueryRowFn	fn;
	void	   *arg;
	MemoryContext rowcxt;
} CallbackReceiver;

/*
 * callback_receive
 *		Call the callback in a memory context reset after each row, so that
 *		what it allocates without choosing a context does not pile up over
 *		millions of rows.
 */
static bool
callback_receive(TupleTableSlot *slot, DestReceiver *self)
{
	CallbackReceiver *r = (CallbackReceiver *) self;
	MemoryContext oldcxt;

	slot_getallattrs(slot);
	oldcxt = MemoryContextSwitchTo(r->rowcxt);
	r->fn(slot, r->arg);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(r->rowcxt);
	return true;
}

/* the receiver has nothing to set up or tear down */
static void
callback_startup(DestReceiver *self pg_attribute_unused(),
				 int operation pg_attribute_unused(),
				 TupleDesc typeinfo pg_attribute_unused())
{
}

static void
callback_nothing(DestReceiver *self pg_attribute_unused())
{
}

/*
 * query_rows
 *		Run sql with the given parameters and call fn(slot, arg) for each
 *		row.  With read_only, the query runs with the current snapshot, so
 *		several queries can see the same data.
 */
void
query_rows(const char *sql, int nparams, Oid *paramtypes, Datum *paramvalues,
		   bool read_only, QueryRowFn fn, void *arg)
{
	CallbackReceiver receiver;
	SPIExecuteOptions options;
	ParamListInfo params = makeParamList(nparams);
	int			rc;

	for (int i = 0; i < nparams; i++)
	{
		params->params[i].value = paramvalues[i];
		params->params[i].isnull = false;
		params->params[i].pflags = PARAM_FLAG_CONST;
		params->params[i].ptype = paramtypes[i];
	}

	memset(&receiver, 0, sizeof(receiver));
	receiver.pub.receiveSlot = callback_receive;
	receiver.pub.rStartup = callback_startup;
	receiver.pub.rShutdown = callback_nothing;
	receiver.pub.rDestroy = callback_nothing;
	receiver.pub.mydest = DestNone;
	receiver.fn = fn;
	receiver.arg = arg;
	receiver.rowcxt = AllocSetContextCreate(CurrentMemoryContext,
											"serving_layer query row",
											ALLOCSET_DEFAULT_SIZES);

	memset(&options, 0, sizeof(options));
	options.params = params;
	options.read_only = read_only;
	options.dest = (DestReceiver *) &receiver;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute_extended(sql, &options);
	/* SPI reports a query sent to a receiver of ours as a utility command */
	if (rc != SPI_OK_SELECT && rc != SPI_OK_UTILITY)
		elog(ERROR, "query failed: %s", SPI_result_code_string(rc));
	SPI_finish();
	MemoryContextDelete(receiver.rowcxt);
}

/*
 * query_layer_rows
 *		Call fn(slot, arg) for each row of one layer that the merge takes
 *		(merge_sql_layer()), under the active snapshot: all columns in batch
 *		column order, or only the keys.
 */
void
query_layer_rows(const MergePlan *plan, bool speed, bool keys_only,
				 QueryRowFn fn, void *arg)
{
	Oid		   *paramtypes;
	Datum	   *paramvalues;
	int			nparams;

	nparams = merge_sql_layer_params(plan, speed, &paramtypes, &paramvalues);
	query_rows(merge_sql_layer(plan, speed, keys_only), nparams, paramtypes,
			   paramvalues, true, fn, arg);
}
