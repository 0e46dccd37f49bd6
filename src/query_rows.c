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
#include "tcop/dest.h"
#include "utils/memutils.h"

#include "query_rows.h"
#include "util.h"

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
	SpiCall		call;

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

	memset(&call, 0, sizeof(call));
	call.read_only = read_only;
	call.nargs = nparams;
	call.argtypes = paramtypes;
	call.values = paramvalues;
	call.dest = (DestReceiver *) &receiver;
	(void) sl_spi_run(sql, SPI_OK_SELECT, &call);
	MemoryContextDelete(receiver.rowcxt);
}

