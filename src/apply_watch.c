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

#include "apply_watch.h"
#include "util.h"

/*
 * watch_tuple_version
 *		Whether relid has the watch trigger enabled ALWAYS; its pg_trigger
 *		row's xmin into *version.  exists: whether it has the trigger at
 *		all.
 */
static bool
watch_tuple_version(Oid relid, int64 *version, bool *exists)
{
	Relation	rel = table_open(TriggerRelationId, AccessShareLock);
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	tup;
	bool		enabled = false;

	*exists = false;
	ScanKeyInit(&key[0], Anum_pg_trigger_tgrelid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(relid));
	ScanKeyInit(&key[1], Anum_pg_trigger_tgname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum(APPLY_WATCH_TRIGGER));
	scan = systable_beginscan(rel, TriggerRelidNameIndexId, true, NULL, 2,
							  key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		Form_pg_trigger trig = (Form_pg_trigger) GETSTRUCT(tup);

		*exists = true;
		enabled = trig->tgenabled == TRIGGER_FIRES_ALWAYS;
		*version = (int64) HeapTupleHeaderGetRawXmin(tup->t_data);
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
	return watch_tuple_version(relid, version, &exists);
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

	(void) watch_tuple_version(relid, &version, &exists);
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
 * apply_watch_logged
 *		Whether the log has an entry for relid that snapshot sees; with
 *		consume, delete every such entry (the whole comparison has seen
 *		their changes).  Read and deleted with the table AM under that
 *		snapshot, not through SPI, whose statements may take newer
 *		snapshots: an entry committed after it must stay.
 */
bool
apply_watch_logged(Oid relid, Snapshot snapshot, bool consume)
{
	Oid			logid = get_relname_relid("serving_layer_apply_dirty",
										  sl_extension_schema());
	Relation	log;
	TableScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	if (!OidIsValid(logid))
		elog(ERROR, "could not find relation serving_layer_apply_dirty");
	log = table_open(logid, consume ? RowExclusiveLock : AccessShareLock);
	scan = table_beginscan(log, snapshot, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, 1, RelationGetDescr(log), &isnull);

		if (isnull || DatumGetObjectId(d) != relid)
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
