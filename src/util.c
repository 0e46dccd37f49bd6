/*-------------------------------------------------------------------------
 *
 * util.c
 *	  Small helpers shared by several modules: the extension's schema and
 *	  relations, relation owners, elapsed time for the progress lines,
 *	  starting the extension's background workers and setting up their
 *	  signals, and running one SQL statement through SPI.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/pg_class.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/params.h"
#include "postmaster/bgworker.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "util.h"

/* the version of the extension's SQL objects this library works with */
#define SL_SCHEMA_VERSION "1.5"

/*
 * sl_extension_schema
 *		The schema serving_layer is installed in.
 */
Oid
sl_extension_schema(void)
{
	Oid			extoid = get_extension_oid("serving_layer", true);
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			nspid = InvalidOid;

	if (!OidIsValid(extoid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("extension \"serving_layer\" is not installed in this database"),
				 errhint("Run CREATE EXTENSION serving_layer.")));

	/* PostgreSQL 15 does not export get_extension_schema() */
	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(extoid));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		version = heap_getattr(tup, Anum_pg_extension_extversion,
										   RelationGetDescr(rel), &isnull);

		/* this library reads and writes the objects of SL_SCHEMA_VERSION */
		if (isnull || strcmp(TextDatumGetCString(version), SL_SCHEMA_VERSION) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("extension \"serving_layer\" must be updated to version %s",
							SL_SCHEMA_VERSION),
					 errdetail("The installed library works with the objects of version %s, and the database has version %s.",
							   SL_SCHEMA_VERSION,
							   isnull ? "unknown" : TextDatumGetCString(version)),
					 errhint("Run ALTER EXTENSION serving_layer UPDATE.")));
		nspid = ((Form_pg_extension) GETSTRUCT(tup))->extnamespace;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (!OidIsValid(nspid))
		elog(ERROR, "could not find the schema of extension serving_layer");
	return nspid;
}

/*
 * sl_qualified
 *		One of the extension's relations, schema-qualified and quoted.
 */
char *
sl_qualified(const char *relname)
{
	return quote_qualified_identifier(get_namespace_name(sl_extension_schema()),
									  relname);
}

/*
 * sl_relation_owner
 *		The owner of a relation.
 */
Oid
sl_relation_owner(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * sl_elapsed_ms
 *		Milliseconds since start, for the verbose progress lines.
 */
double
sl_elapsed_ms(instr_time start)
{
	instr_time	now;

	INSTR_TIME_SET_CURRENT(now);
	INSTR_TIME_SUBTRACT(now, start);
	return INSTR_TIME_GET_MILLISEC(now);
}

/*
 * sl_start_worker
 *		Start a dynamic background worker of this library that connects to a
 *		database, never restarted, whose end this backend is notified of.
 *		extra (at most BGW_EXTRALEN bytes) is copied to bgw_extra.  Returns
 *		false when no worker slot is free.
 */
bool
sl_start_worker(const char *function, const char *name, Datum main_arg,
				const void *extra, Size extralen,
				BackgroundWorkerHandle **handle)
{
	BackgroundWorker worker;

	Assert(extralen <= BGW_EXTRALEN);
	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "serving_layer");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "%s", function);
	snprintf(worker.bgw_name, BGW_MAXLEN, "%s", name);
	snprintf(worker.bgw_type, BGW_MAXLEN, "%s", name);
	worker.bgw_main_arg = main_arg;
	worker.bgw_notify_pid = MyProcPid;
	if (extralen > 0)
		memcpy(worker.bgw_extra, extra, extralen);
	return RegisterDynamicBackgroundWorker(&worker, handle);
}

/*
 * sl_worker_unblock_signals
 *		In a worker sl_start_worker() started, first thing: handle SIGTERM
 *		as a backend does, then unblock signals.
 *
 * A background worker's default SIGTERM handler, bgworker_die(), raises
 * FATAL inside the signal handler, wherever the worker is.  Terminated in
 * the COMMIT of a transaction whose commit record is written (a cleanup
 * worker unlinking an old heap's files, the history worker's insert), the
 * worker then aborts a committed transaction: "AbortTransaction while in
 * COMMIT state", then PANIC "cannot abort transaction N, it was already
 * committed", and the postmaster reinitializes every backend (a crash
 * restart).  die() only sets a flag that the next CHECK_FOR_INTERRUPTS()
 * acts on, and COMMIT holds interrupts, so a worker terminated in its
 * COMMIT finishes it and exits after; lock waits still end at once.  Core's
 * parallel and logical replication workers do the same.
 */
void
sl_worker_unblock_signals(void)
{
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
}

/*
 * sl_spi_run
 *		Run one SQL statement through SPI: connect, switch to call->run_as
 *		(if set) for the statement only, execute with the parameters, check
 *		that SPI returned expected, hand each row to call->row_fn in the
 *		caller's memory context, finish.  Returns the number of rows
 *		processed.  call may be NULL (no parameters, as the current user).
 *
 * With call->dest the rows go to that receiver instead, one at a time, and
 * are not collected; SPI then reports a SELECT as SPI_OK_UTILITY, which is
 * taken for SPI_OK_SELECT here.  A role switch is a local one
 * (SECURITY_LOCAL_USERID_CHANGE): an error aborts the transaction, which
 * restores the user, so nothing needs restoring on the error path.
 */
uint64
sl_spi_run(const char *sql, int expected, const SpiCall *call)
{
	static const SpiCall none;
	MemoryContext outer = CurrentMemoryContext;
	SPIExecuteOptions options;
	Oid			save_userid = InvalidOid;
	int			save_sec_context = 0;
	uint64		processed;
	int			rc;

	if (call == NULL)
		call = &none;
	memset(&options, 0, sizeof(options));
	options.read_only = call->read_only;
	options.dest = call->dest;
	if (call->nargs > 0)
	{
		options.params = makeParamList(call->nargs);
		for (int i = 0; i < call->nargs; i++)
		{
			ParamExternData *p = &options.params->params[i];

			p->value = call->values[i];
			p->isnull = call->nulls != NULL && call->nulls[i] == 'n';
			p->pflags = PARAM_FLAG_CONST;
			p->ptype = call->argtypes[i];
		}
	}

	if (OidIsValid(call->run_as))
	{
		GetUserIdAndSecContext(&save_userid, &save_sec_context);
		SetUserIdAndSecContext(call->run_as,
							   save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute_extended(sql, &options);
	if (call->dest != NULL && rc == SPI_OK_UTILITY)
		rc = SPI_OK_SELECT;
	if (rc != expected)
		elog(ERROR, "SPI_execute_extended returned %s for \"%s\"",
			 SPI_result_code_string(rc), sql);
	processed = SPI_processed;
	if (call->row_fn != NULL && SPI_tuptable != NULL)
	{
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			MemoryContext spicxt = MemoryContextSwitchTo(outer);

			call->row_fn(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
						 call->row_arg);
			MemoryContextSwitchTo(spicxt);
		}
	}
	SPI_finish();
	if (OidIsValid(call->run_as))
		SetUserIdAndSecContext(save_userid, save_sec_context);
	return processed;
}
