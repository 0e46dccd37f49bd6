/*-------------------------------------------------------------------------
 *
 * history_worker.c
 *	  Record failed refreshes in serving_layer_history although the
 *	  refresh's transaction rolls back.
 *
 * A failed refresh raises its error to the caller, whose transaction then
 * rolls back, taking with it anything the refresh wrote.  So the failure is
 * written by a dynamic background worker, in a transaction of its own.  The
 * worker is started before the refresh does any work, with a dynamic
 * shared memory segment (the failure log) that the refresh fills as it
 * goes: the targets it attempts, and, on an error, the error's message.
 * The worker waits for the refresh's transaction to end, as the retire
 * worker does (retire.c), then writes the failure rows if the refresh
 * failed, and nothing if it succeeded.  So the error path does nothing but
 * copy the error into the log and rethrow it, and no caller ever waits for
 * the worker: the rows appear once the failing transaction is over.
 *
 * This needs neither shared_preload_libraries nor superuser setup: dynamic
 * workers can be started by any backend while max_worker_processes allows.
 * The worker connects as the bootstrap superuser (which can always log in,
 * as autovacuum does) and inserts as the history table's owner.  The
 * segment is pinned, so that it outlives the refresh's session (a psql -c
 * that fails and exits at once), and the worker unpins it; the refresh's
 * backend keeps it mapped until its transaction ends.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

#include "history.h"
#include "history_worker.h"
#include "util.h"

/* room for a target as displayed: two quoted names and a dot */
#define LOG_TARGET_LEN	(2 * (2 * NAMEDATALEN + 2) + 2)
/* room for an error: SQLSTATE and message, cut if longer */
#define LOG_ERROR_LEN	1024
/* calls and rows one log holds (a call with more targets gets its own) */
#define LOG_MAX_CALLS	32
#define LOG_MIN_ROWS	128

typedef enum LogRowState
{
	ROW_UNUSED,
	ROW_ATTEMPTED,
	ROW_SKIPPED
} LogRowState;

typedef struct LogRow
{
	LogRowState state;
	int			call;
	TimestampTz started_at;
	char		target[LOG_TARGET_LEN];
} LogRow;

typedef struct LogCall
{
	bool		failed;			/* set by failure_log_error() */
	int			culprit;		/* row of the target that raised the error */
	char		error[LOG_ERROR_LEN];
} LogCall;

/* a transaction's log in shared memory */
typedef struct FailureLogData
{
	Oid			dboid;
	TransactionId xid;			/* the refreshing top transaction */
	int			ncalls;
	int			nrows;
	int			maxrows;
	LogCall		calls[LOG_MAX_CALLS];
	LogRow		rows[FLEXIBLE_ARRAY_MEMBER];
} FailureLogData;

/* one call's part of it */
struct FailureLog
{
	FailureLogData *data;
	int			call;
	int			firstrow;
	int			nrows;
};

/* the log of the current transaction, and every segment it mapped */
static FailureLogData *xact_log = NULL;
static List *xact_segments = NIL;
static bool callback_registered = false;

PGDLLEXPORT void serving_layer_history_worker(Datum main_arg);

/*
 * failure_log_xact_end
 *		At the end of the transaction: unmap its logs (the worker has its
 *		own mapping; the segments are pinned until it unpins them).
 */
static void
failure_log_xact_end(XactEvent event, void *arg)
{
	ListCell   *lc;

	(void) arg;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			foreach(lc, xact_segments)
				dsm_detach((dsm_segment *) lfirst(lc));
			list_free(xact_segments);
			xact_segments = NIL;
			xact_log = NULL;
			break;
		default:
			break;
	}
}

/*
 * new_log
 *		Create a log for at least nrows rows and start its worker; NULL,
 *		with a warning, when either cannot be had.
 */
static FailureLogData *
new_log(int nrows)
{
	int			maxrows = Max(nrows, LOG_MIN_ROWS);
	Size		size = offsetof(FailureLogData, rows) + sizeof(LogRow) * maxrows;
	dsm_segment *seg;
	FailureLogData *log;
	BackgroundWorkerHandle *handle;
	MemoryContext oldcxt;

	seg = dsm_create(size, DSM_CREATE_NULL_IF_MAXSEGMENTS);
	if (seg == NULL)
	{
		ereport(WARNING,
				(errmsg("a failure of this refresh will not be recorded in serving_layer_history"),
				 errdetail("No dynamic shared memory segment is available.")));
		return NULL;
	}
	log = dsm_segment_address(seg);
	memset(log, 0, size);
	log->dboid = MyDatabaseId;
	log->xid = GetTopTransactionId();
	log->maxrows = maxrows;

	/* the segment outlives this backend's mapping; the worker unpins it */
	dsm_pin_segment(seg);
	if (!sl_start_worker("serving_layer_history_worker",
						 "serving_layer history writer",
						 UInt32GetDatum(dsm_segment_handle(seg)), NULL, 0,
						 &handle))
	{
		dsm_unpin_segment(dsm_segment_handle(seg));
		dsm_detach(seg);
		ereport(WARNING,
				(errmsg("a failure of this refresh will not be recorded in serving_layer_history"),
				 errdetail("No background worker slot is free."),
				 errhint("Raise max_worker_processes.")));
		return NULL;
	}

	/* mapped until the transaction ends, across its calls */
	dsm_pin_mapping(seg);
	if (!callback_registered)
	{
		RegisterXactCallback(failure_log_xact_end, NULL);
		callback_registered = true;
	}
	oldcxt = MemoryContextSwitchTo(TopMemoryContext);
	xact_segments = lappend(xact_segments, seg);
	MemoryContextSwitchTo(oldcxt);
	return log;
}

/*
 * failure_log_begin
 *		The failure log of a refresh call of up to nrows targets: a part of
 *		the transaction's log, or a new log and worker when there is none
 *		or it is full.  Returns NULL, with a warning, when no worker can be
 *		started (a failure will then not be recorded).  Called before the
 *		refresh does any work.
 */
FailureLog *
failure_log_begin(int nrows)
{
	FailureLog *result;

	nrows = Max(nrows, 1);
	if (xact_log == NULL || xact_log->ncalls >= LOG_MAX_CALLS ||
		xact_log->nrows + nrows > xact_log->maxrows)
	{
		FailureLogData *log = new_log(nrows);

		if (log == NULL)
			return NULL;
		xact_log = log;
	}
	result = palloc(sizeof(FailureLog));
	result->data = xact_log;
	result->call = xact_log->ncalls++;
	result->firstrow = xact_log->nrows;
	result->nrows = nrows;
	xact_log->nrows += nrows;
	xact_log->calls[result->call].culprit = -1;
	return result;
}

/*
 * failure_log_target
 *		Note that the refresh attempts target (row i of the call), or
 *		skipped it.
 */
void
failure_log_target(FailureLog *log, int i, const char *target,
				   TimestampTz started_at, bool skipped)
{
	LogRow	   *row;

	if (log == NULL || i < 0 || i >= log->nrows)
		return;
	row = &log->data->rows[log->firstrow + i];
	row->state = skipped ? ROW_SKIPPED : ROW_ATTEMPTED;
	row->call = log->call;
	row->started_at = started_at;
	strlcpy(row->target, target, LOG_TARGET_LEN);
}

/*
 * failure_log_forget
 *		Take row i out of the log: its target was not refreshed after all.
 */
void
failure_log_forget(FailureLog *log, int i)
{
	if (log != NULL && i >= 0 && i < log->nrows)
		log->data->rows[log->firstrow + i].state = ROW_UNUSED;
}

/*
 * failure_log_error
 *		Record that the call failed while working on its row culprit (-1
 *		for none) with this error.  Called in PG_CATCH: it only copies
 *		bytes, and can raise nothing.
 */
void
failure_log_error(FailureLog *log, int culprit, int sqlerrcode,
				  const char *message)
{
	LogCall    *call;

	if (log == NULL)
		return;
	call = &log->data->calls[log->call];
	snprintf(call->error, LOG_ERROR_LEN, "%s: %s",
			 unpack_sql_state(sqlerrcode), message ? message : "");
	call->culprit = (culprit >= 0 && culprit < log->nrows) ?
		log->firstrow + culprit : -1;
	call->failed = true;
}

/*
 * failure_log_end
 *		The call is over without error; the worker will write nothing for
 *		it.
 */
void
failure_log_end(FailureLog *log)
{
	if (log != NULL)
		pfree(log);
}

/*
 * write_failure_rows
 *		The history rows of the failed calls: every target such a call
 *		attempted failed (the call's transaction or subtransaction rolled
 *		back, including refreshes that had finished), except those it
 *		skipped.
 */
static void
write_failure_rows(FailureLogData *log)
{
	for (int i = 0; i < log->nrows; i++)
	{
		LogRow	   *r = &log->rows[i];
		LogCall    *call = &log->calls[r->call];
		const char *error;

		if (r->state == ROW_UNUSED || !call->failed)
			continue;
		if (r->state == ROW_SKIPPED)
		{
			history_record(r->target, r->started_at, "skipped", -1, -1, -1,
						   NULL, -1, NULL);
			continue;
		}
		if (i == call->culprit || call->culprit < 0)
			error = call->error;
		else
			error = psprintf("%s (raised while refreshing %s)", call->error,
							 log->rows[call->culprit].target);
		history_record(r->target, r->started_at, "failed", -1, -1, -1,
					   NULL, -1, error);
	}
}

/*
 * serving_layer_history_worker
 *		Background worker entry point: wait for the refreshing transaction
 *		to end, then insert the failure rows of the log whose segment
 *		handle is main_arg, in one transaction.
 */
void
serving_layer_history_worker(Datum main_arg)
{
	dsm_handle	handle = DatumGetUInt32(main_arg);
	dsm_segment *seg;
	FailureLogData *log;
	bool		failed = false;

	/* SIGTERM must not end the worker inside its COMMIT (see util.c) */
	sl_worker_unblock_signals();
	CurrentResourceOwner = ResourceOwnerCreate(NULL, "serving_layer history writer");
	seg = dsm_attach(handle);
	if (seg == NULL)
		proc_exit(0);
	log = dsm_segment_address(seg);

	BackgroundWorkerInitializeConnectionByOid(log->dboid,
											  BOOTSTRAP_SUPERUSERID, 0);
	pgstat_report_activity(STATE_RUNNING, "waiting for a refresh to end");
	StartTransactionCommand();
	XactLockTableWait(log->xid, NULL, NULL, XLTW_None);
	CommitTransactionCommand();

	for (int i = 0; i < log->ncalls; i++)
		failed |= log->calls[i].failed;
	if (failed)
	{
		pgstat_report_activity(STATE_RUNNING, "recording a failed refresh");
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		write_failure_rows(log);
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	pgstat_report_activity(STATE_IDLE, NULL);

	dsm_unpin_segment(handle);
	dsm_detach(seg);
	proc_exit(0);
}
