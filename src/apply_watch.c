/*-------------------------------------------------------------------------
 *
 * apply_watch.c
 *	  Whether anything but mode 'apply' changed a serving table since its
 *	  last refresh.
 *
 * A refresh in mode 'apply' that follows the change (apply_delta.c) takes
 * the serving table to be what the last refresh left, and only recomputes
 * the keys whose layers changed.  Any other change of the table, an UPDATE
 * by hand, a COPY, a TRUNCATE, must send the next refresh back to the
 * whole comparison, which puts every row right.  So a serving table in
 * mode 'apply' carries a statement trigger, serving_layer_watch, enabled
 * ALWAYS (it fires under session_replication_role = replica too), that
 * logs its table's OID in serving_layer_apply_dirty.  The refresh's own
 * changes go through the executor's row routines (apply_rows.c), which fire
 * row triggers only, so they never log themselves.
 *
 * The log is only ever inserted into by other transactions, so that no
 * statement on a serving table ever waits for a refresh; the whole
 * comparison deletes the entries its snapshot sees, the ones whose
 * changes it has seen and put right.  An entry its snapshot cannot see
 * (committed later) stays for the next refresh.
 *
 * A trigger dropped, disabled, or re-enabled in another mode is noticed by
 * its pg_trigger row's version (xmin), which the last refresh recorded
 * (apply_state.c): any ALTER TABLE ... TRIGGER rewrites that row.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "apply_watch.h"
#include "util.h"

/*
 * version_committed_before
 *		Whether the trigger row whose header is td was committed before
 *		snapshot was taken (not by this transaction, nor by one the snapshot
 *		takes for running).  CREATE TRIGGER waits for every transaction that
 *		changed the table (it locks it SHARE ROW EXCLUSIVE), so then every
 *		change snapshot does not see came after the trigger and fired it.
 */
static bool
version_committed_before(HeapTupleHeader td, Snapshot snapshot)
{
	TransactionId xmin = HeapTupleHeaderGetRawXmin(td);

	if (HeapTupleHeaderXminFrozen(td))
		return true;
	return !TransactionIdIsCurrentTransactionId(xmin) &&
		!XidInMVCCSnapshot(xmin, snapshot);
}

/*
 * apply_watch_trigger
 *		Whether relid has the trigger named name enabled ALWAYS; its
 *		pg_trigger row's xmin into *version.  exists: whether it has the
 *		trigger at all.  trusted (may be NULL): whether the row was
 *		committed before snapshot was taken, so that every statement that
 *		changed the table and that snapshot does not see fired it.
 */
bool
apply_watch_trigger(Oid relid, const char *name, Snapshot snapshot,
					int64 *version, bool *exists, bool *trusted)
{
	Relation	rel = table_open(TriggerRelationId, AccessShareLock);
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	tup;
	bool		enabled = false;

	*exists = false;
	if (trusted != NULL)
		*trusted = false;
	ScanKeyInit(&key[0], Anum_pg_trigger_tgrelid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(relid));
	ScanKeyInit(&key[1], Anum_pg_trigger_tgname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum(name));
	scan = systable_beginscan(rel, TriggerRelidNameIndexId, true, NULL, 2,
							  key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		Form_pg_trigger trig = (Form_pg_trigger) GETSTRUCT(tup);

		*exists = true;
		enabled = trig->tgenabled == TRIGGER_FIRES_ALWAYS;
		*version = (int64) HeapTupleHeaderGetRawXmin(tup->t_data);
		if (trusted != NULL)
			*trusted = version_committed_before(tup->t_data, snapshot);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return enabled;
}

/*
 * apply_watch_current
 *		Whether the serving table's changes are watched; the trigger's
 *		version into *version, to tell it from a later one.
 */
bool
apply_watch_current(Oid relid, int64 *version)
{
	bool		exists;

	*version = 0;
	return apply_watch_trigger(relid, APPLY_WATCH_TRIGGER, NULL, version,
							   &exists, NULL);
}

/*
 * apply_watch_set
 *		Create the watch trigger on the serving table relid (watch), or drop
 *		it; nothing when it is already so.  CREATE TRIGGER locks the table
 *		SHARE ROW EXCLUSIVE: this runs in serving_layer_define(), never in a
 *		refresh.  As the table's owner may create triggers on it and others
 *		may not, a caller without the owner's privileges leaves the table
 *		as it is (its refreshes then always compare in full).
 */
void
apply_watch_set(Oid relid, bool watch)
{
	int64		version;
	bool		exists;
	char	   *table;
	char	   *sql;

	(void) apply_watch_trigger(relid, APPLY_WATCH_TRIGGER, NULL, &version,
							   &exists, NULL);
	if (exists == watch && (!watch || apply_watch_current(relid, &version)))
		return;
	if (!has_privs_of_role(GetUserId(), sl_relation_owner(relid)))
		return;
	table = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									   get_rel_name(relid));
	if (exists)
		(void) sl_spi_run(psprintf("DROP TRIGGER %s ON %s",
								   quote_identifier(APPLY_WATCH_TRIGGER), table),
						  SPI_OK_UTILITY, NULL);
	if (watch)
	{
		sql = psprintf("CREATE TRIGGER %s AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s"
					   " FOR EACH STATEMENT EXECUTE FUNCTION %s()",
					   quote_identifier(APPLY_WATCH_TRIGGER), table,
					   sl_qualified("serving_layer_watch"));
		(void) sl_spi_run(sql, SPI_OK_UTILITY, NULL);
		(void) sl_spi_run(psprintf("ALTER TABLE %s ENABLE ALWAYS TRIGGER %s",
								   table, quote_identifier(APPLY_WATCH_TRIGGER)),
						  SPI_OK_UTILITY, NULL);
	}
}

/*
 * apply_watch_log_scan
 *		Whether the log table logname has a row for which match(tuple,
 *		desc, arg) holds that snapshot sees; with consume, delete every such
 *		row (the refresh has seen their changes).  Read and deleted with the
 *		table AM under that snapshot, not through SPI, whose statements may
 *		take newer snapshots: a row committed after it must stay.
 */
bool
apply_watch_log_scan(const char *logname, WatchLogMatch match, const void *arg,
					 Snapshot snapshot, bool consume)
{
	Oid			logid = get_relname_relid(logname, sl_extension_schema());
	Relation	log;
	TableScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	if (!OidIsValid(logid))
		elog(ERROR, "could not find relation %s", logname);
	log = table_open(logid, consume ? RowExclusiveLock : AccessShareLock);
	scan = table_beginscan(log, snapshot, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		if (!match(tup, RelationGetDescr(log), arg))
			continue;
		found = true;
		if (!consume)
			break;
		simple_heap_delete(log, &tup->t_self);
	}
	table_endscan(scan);
	table_close(log, NoLock);
	return found;
}

/* a row of serving_layer_apply_dirty for the serving table *arg */
static bool
serving_row(HeapTuple tup, TupleDesc desc, const void *arg)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, 1, desc, &isnull);

	return !isnull && DatumGetObjectId(d) == *(const Oid *) arg;
}

/*
 * apply_watch_logged
 *		Whether the log has an entry for relid that snapshot sees; with
 *		consume, delete every such entry (the whole comparison has seen
 *		their changes).
 */
bool
apply_watch_logged(Oid relid, Snapshot snapshot, bool consume)
{
	return apply_watch_log_scan("serving_layer_apply_dirty", serving_row,
								&relid, snapshot, consume);
}
