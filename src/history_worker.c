/*-------------------------------------------------------------------------
 *
 * history_worker.c
 *	  Record failed refreshes in serving_layer_history although the
 *	  refresh's transaction rolls back.
 *
 * A failed refresh raises its error to the caller, whose transaction then
 * rolls back, taking with it anything the refresh wrote.  So the failure is
 * written by a dynamic background worker, in a transaction of its own: the
 * refresh hands it the rows (in a dynamic shared memory segment), waits a
 * bounded time for it to commit them, then re-raises the error.  This needs
 * neither shared_preload_libraries nor superuser setup: dynamic workers can
 * be started by any backend while max_worker_processes allows.  The worker
 * connects as the bootstrap superuser (which can always log in, as
 * autovacuum does) and inserts as the history table's owner.
 *
 * Everything the error path needs (database, role) is looked up before the
 * refresh starts, so that nothing reads the catalogs after the error.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "catalog/pg_authid.h"
#include "pgstat.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

#include "history.h"
#include "history_worker.h"
#include "util.h"

/* how long a failed refresh waits for its history row to be committed */
#define HISTORY_WORKER_WAIT_MS 10000

/* One history row as handed to the worker; strings are offsets in text[]. */
typedef struct HistoryRow
{
	TimestampTz started_at;
	int64		counts[3];
	int			target;
	int			status;
	int			error;
} HistoryRow;

typedef struct HistoryMessage
{
	Oid			dboid;
	Oid			roleid;
	int			nrows;
	Size		textlen;
	HistoryRow	rows[FLEXIBLE_ARRAY_MEMBER];
	/* followed by the string area */
} HistoryMessage;

PGDLLEXPORT void serving_layer_history_worker(Datum main_arg);

/* the role the worker connects as, looked up before the refresh */
static Oid	history_owner = InvalidOid;

/*
 * history_worker_prepare
 *		Look up what the error path needs, while the catalogs are readable.
 */
void
history_worker_prepare(void)
{
	history_owner = sl_relation_owner(get_relname_relid("serving_layer_history",
														sl_extension_schema()));
}

/*
 * history_record_failures
 *		Have a background worker insert the given rows and wait for it.
 *		Called while an error is being handled: it must not read catalogs,
 *		and it only warns if the rows cannot be written.
 */
void
history_record_failures(List *rows)
{
	Size		textlen = 0;
	Size		size;
	dsm_segment *seg;
	HistoryMessage *msg;
	char	   *text;
	Size		off = 0;
	int			i = 0;
	ListCell   *lc;
	BackgroundWorkerHandle *handle;
	instr_time	start;

	if (rows == NIL || !OidIsValid(history_owner))
		return;

	foreach(lc, rows)
	{
		HistoryEntry *e = lfirst(lc);

		textlen += strlen(e->target) + strlen(e->status) + 3 +
			(e->error ? strlen(e->error) : 0);
	}
	size = offsetof(HistoryMessage, rows) +
		sizeof(HistoryRow) * list_length(rows) + textlen;

	seg = dsm_create(size, DSM_CREATE_NULL_IF_MAXSEGMENTS);
	if (seg == NULL)
	{
		ereport(WARNING,
				(errmsg("could not record the failed refresh in serving_layer_history"),
				 errdetail("No dynamic shared memory segment is available.")));
		return;
	}
	msg = dsm_segment_address(seg);
	msg->dboid = MyDatabaseId;
	msg->roleid = BOOTSTRAP_SUPERUSERID;
	msg->nrows = list_length(rows);
	msg->textlen = textlen;
	text = (char *) &msg->rows[msg->nrows];

#define PUT_STRING(field, s) \
	do { \
		(field) = (int) off; \
		strcpy(text + off, (s) ? (s) : ""); \
		off += strlen((s) ? (s) : "") + 1; \
	} while (0)

	foreach(lc, rows)
	{
		HistoryEntry *e = lfirst(lc);
		HistoryRow *r = &msg->rows[i++];

		r->started_at = e->started_at;
		r->counts[0] = e->batch_rows;
		r->counts[1] = e->speed_rows;
		r->counts[2] = e->output_rows;
		PUT_STRING(r->target, e->target);
		PUT_STRING(r->status, e->status);
		if (e->error)
			PUT_STRING(r->error, e->error);
		else
			r->error = -1;
	}
#undef PUT_STRING

	if (!sl_start_worker("serving_layer_history_worker",
						 "serving_layer history writer",
						 UInt32GetDatum(dsm_segment_handle(seg)), NULL, 0,
						 &handle))
	{
		ereport(WARNING,
				(errmsg("could not record the failed refresh in serving_layer_history"),
				 errdetail("No background worker slot is free."),
				 errhint("Raise max_worker_processes.")));
		dsm_detach(seg);
		return;
	}

	/* bounded wait, without serving interrupts: the error is re-raised next */
	INSTR_TIME_SET_CURRENT(start);
	for (;;)
	{
		pid_t		pid;

		if (GetBackgroundWorkerPid(handle, &pid) == BGWH_STOPPED)
			break;
		if (sl_elapsed_ms(start) > HISTORY_WORKER_WAIT_MS)
		{
			ereport(WARNING,
					(errmsg("the failed refresh may be missing from serving_layer_history"),
					 errdetail("The background worker writing it did not finish within %d ms.",
							   HISTORY_WORKER_WAIT_MS)));
			break;
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	dsm_detach(seg);
}

/*
 * serving_layer_history_worker
 *		Background worker entry point: insert the rows of the segment whose
 *		handle is main_arg, in one transaction, then exit.
 */
void
serving_layer_history_worker(Datum main_arg)
{
	dsm_segment *seg;
	HistoryMessage *msg;
	char	   *text;

	BackgroundWorkerUnblockSignals();
	CurrentResourceOwner = ResourceOwnerCreate(NULL, "serving_layer history writer");
	seg = dsm_attach(DatumGetUInt32(main_arg));
	if (seg == NULL)
	{
		/* the refresh gave up waiting and is gone */
		ereport(LOG,
				(errmsg("serving_layer history writer found no rows to write")));
		proc_exit(0);
	}
	msg = dsm_segment_address(seg);
	text = (char *) &msg->rows[msg->nrows];

	BackgroundWorkerInitializeConnectionByOid(msg->dboid, msg->roleid, 0);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "recording failed refresh");
	for (int i = 0; i < msg->nrows; i++)
	{
		HistoryRow *r = &msg->rows[i];

		history_record(text + r->target, r->started_at, text + r->status,
					   r->counts[0], r->counts[1], r->counts[2], NULL, -1,
					   r->error >= 0 ? text + r->error : NULL);
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);

	dsm_detach(seg);
	proc_exit(0);
}
