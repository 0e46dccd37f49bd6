/*-------------------------------------------------------------------------
 *
 * apply_batch_watch.c
 *	  Whether the batch table of a target in mode 'apply' changed since the
 *	  target's last refresh, known without reading the table.
 *
 * A refresh in mode 'apply' that follows the change (apply_delta.c) needs
 * the batch layer to be as the last refresh read it; until version 1.4 it
 * read and hashed the whole batch table to know, which cost more than the
 * change it applied when a few speed keys had moved.  Now the batch table
 * carries a statement trigger, serving_layer_watch_batch (enabled ALWAYS,
 * so that it fires under session_replication_role = replica too), which
 * logs, for every target in mode 'apply' reading the table, one row in
 * serving_layer_batch_dirty.  A refresh that reads the batch table deletes
 * its target's rows that its snapshot sees: it has seen their changes.  A
 * refresh that finds none, while the trigger is the one the last refresh
 * saw, takes the table to be as the last refresh read it.
 *
 * That holds only if every change the last refresh's snapshot did not see
 * fired the trigger, so:
 *	- the last refresh records the trigger's version (its pg_trigger row's
 *	  xmin) only if the row was committed before its snapshot was taken
 *	  (apply_watch_trigger()); CREATE TRIGGER waits for the transactions
 *	  that changed the table, so every later change fired it.  A trigger
 *	  made by the refresh itself is trusted from the next one on;
 *	- any ALTER TABLE ... TRIGGER rewrites the row, so a trigger disabled
 *	  for a while is noticed;
 *	- the table must be a plain table without inheritance children (whose
 *	  statements do not fire the parent's trigger) and not a subscriber's
 *	  (logical replication's apply worker fires row triggers only);
 *	- a refresh changing a table in place (mode 'apply' changes rows
 *	  through the executor's row routines, which fire no statement
 *	  trigger) logs for the targets reading that table as their batch
 *	  (batch_watch_note()).
 * TRUNCATE, VACUUM FULL, CLUSTER and the like give the table new storage,
 * which the state records too (apply.c).
 *
 * The trigger is created by serving_layer_define() and by a refresh that
 * finds its batch table without one (dbt and Spark replace the table on
 * every run), if the role may create it (TRIGGER privilege) and the table's
 * lock is free at once: a refresh never waits for a batch job.
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
#include "catalog/pg_class.h"
#include "catalog/pg_subscription_rel.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "apply_batch_watch.h"
#include "apply_watch.h"
#include "util.h"

/*
 * batch_watchable
 *		Whether a statement trigger on relid sees every change of its rows:
 *		a plain table without inheritance children that no subscription
 *		writes.
 */
static bool
batch_watchable(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	bool		plain;
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	bool		subscribed;

	if (!HeapTupleIsValid(tup))
		return false;
	plain = ((Form_pg_class) GETSTRUCT(tup))->relkind == RELKIND_RELATION &&
		!((Form_pg_class) GETSTRUCT(tup))->relhassubclass;
	ReleaseSysCache(tup);
	if (!plain)
		return false;

	rel = table_open(SubscriptionRelRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_subscription_rel_srrelid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, SubscriptionRelSrrelidSrsubidIndexId, true,
							  NULL, 1, &key);
	subscribed = HeapTupleIsValid(systable_getnext(scan));
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return !subscribed;
}

/*
 * batch_watch_version
 *		The version of the batch table's watch trigger, if every change of
 *		the table that snapshot does not see fired it; else 0.
 */
int64
batch_watch_version(Oid batch, Snapshot snapshot)
{
	int64		version = 0;
	bool		exists;
	bool		trusted;

	if (!batch_watchable(batch))
		return 0;
	if (!apply_watch_trigger(batch, BATCH_WATCH_TRIGGER, snapshot, &version,
							 &exists, &trusted) || !trusted)
		return 0;
	return version;
}

/*
 * batch_watch_ensure
 *		Put the watch trigger on the batch table if it has none, the current
 *		role may create it and the table's lock (SHARE ROW EXCLUSIVE) is
 *		free at once; else leave the table as it is (its refreshes then read
 *		it).  A trigger that exists but is disabled was disabled by someone:
 *		it is left so.
 */
void
batch_watch_ensure(Oid batch)
{
	int64		version;
	bool		exists;
	char	   *table;

	if (!batch_watchable(batch))
		return;
	(void) apply_watch_trigger(batch, BATCH_WATCH_TRIGGER, NULL, &version,
							   &exists, NULL);
	if (exists ||
		pg_class_aclcheck(batch, GetUserId(), ACL_TRIGGER) != ACLCHECK_OK ||
		!ConditionalLockRelationOid(batch, ShareRowExclusiveLock))
		return;
	/* once more under the lock: another refresh may have made it meanwhile */
	(void) apply_watch_trigger(batch, BATCH_WATCH_TRIGGER, NULL, &version,
							   &exists, NULL);
	if (exists)
		return;
	table = quote_qualified_identifier(get_namespace_name(get_rel_namespace(batch)),
									   get_rel_name(batch));
	(void) sl_spi_run(psprintf("CREATE TRIGGER %s AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s"
							   " FOR EACH STATEMENT EXECUTE FUNCTION %s()",
							   quote_identifier(BATCH_WATCH_TRIGGER), table,
							   sl_qualified("serving_layer_watch_batch")),
					  SPI_OK_UTILITY, NULL);
	(void) sl_spi_run(psprintf("ALTER TABLE %s ENABLE ALWAYS TRIGGER %s",
							   table, quote_identifier(BATCH_WATCH_TRIGGER)),
					  SPI_OK_UTILITY, NULL);
}

/*
 * batch_watch_release
 *		Drop the batch table's watch trigger when no target in mode 'apply'
 *		reads the table any more (the trigger would log nothing, but DROP
 *		EXTENSION would need CASCADE), if the role may and the table's lock
 *		is free at once; else it stays, harmless.
 */
void
batch_watch_release(Oid batch)
{
	int64		version;
	bool		exists;
	Datum		arg = ObjectIdGetDatum(batch);
	Oid			argtype = OIDOID;
	SpiCall		call;

	if (!OidIsValid(batch))
		return;
	(void) apply_watch_trigger(batch, BATCH_WATCH_TRIGGER, NULL, &version,
							   &exists, NULL);
	if (!exists ||
		!has_privs_of_role(GetUserId(), sl_relation_owner(batch)))
		return;
	/* (not read-only: a new snapshot sees the definition just forgotten) */
	memset(&call, 0, sizeof(call));
	call.nargs = 1;
	call.argtypes = &argtype;
	call.values = &arg;
	if (sl_spi_run(psprintf("SELECT FROM %s AS c"
							" WHERE c.mode OPERATOR(pg_catalog.=) 'apply'"
							" AND pg_catalog.to_regclass(c.batch) OPERATOR(pg_catalog.=) $1",
							sl_qualified("serving_layer_config")),
				   SPI_OK_SELECT, &call) > 0)
		return;
	if (!ConditionalLockRelationOid(batch, AccessExclusiveLock))
		return;
	/* once more under the lock: another session may have dropped it */
	(void) apply_watch_trigger(batch, BATCH_WATCH_TRIGGER, NULL, &version,
							   &exists, NULL);
	if (!exists)
		return;
	(void) sl_spi_run(psprintf("DROP TRIGGER %s ON %s",
							   quote_identifier(BATCH_WATCH_TRIGGER),
							   quote_qualified_identifier(get_namespace_name(get_rel_namespace(batch)),
														  get_rel_name(batch))),
					  SPI_OK_UTILITY, NULL);
}

/* a row of serving_layer_batch_dirty for the target *arg */
static bool
target_row(HeapTuple tup, TupleDesc desc, const void *arg)
{
	const TargetName *target = arg;
	bool		isnull1;
	bool		isnull2;
	Datum		schema = heap_getattr(tup, 1, desc, &isnull1);
	Datum		name = heap_getattr(tup, 2, desc, &isnull2);

	return !isnull1 && !isnull2 &&
		namestrcmp(DatumGetName(schema), target->schema) == 0 &&
		namestrcmp(DatumGetName(name), target->name) == 0;
}

/*
 * batch_watch_logged
 *		Whether the log has a row for the target that snapshot sees; with
 *		consume, delete every such row (the refresh read the batch table
 *		and has seen their changes).
 */
bool
batch_watch_logged(const TargetName *target, Snapshot snapshot, bool consume)
{
	return apply_watch_log_scan("serving_layer_batch_dirty", target_row,
								target, snapshot, consume);
}

/*
 * log_statement
 *		One SPI statement on the log, with parameters $1..$nargs, as the
 *		extension's owner (the log is internal: no other role may write it).
 */
static void
log_statement(const char *sql, int nargs, Oid *argtypes, Datum *values,
			  int expected)
{
	SpiCall		call;

	memset(&call, 0, sizeof(call));
	call.run_as = sl_relation_owner(get_relname_relid("serving_layer_batch_dirty",
													  sl_extension_schema()));
	call.nargs = nargs;
	call.argtypes = argtypes;
	call.values = values;
	(void) sl_spi_run(sql, expected, &call);
}

/*
 * batch_watch_note
 *		A refresh changed the rows of relid in place: log the change for the
 *		targets in mode 'apply' reading relid as their batch table, as its
 *		watch trigger would for any other statement.
 */
void
batch_watch_note(Oid relid)
{
	int64		version;
	bool		exists;
	Oid			argtype = OIDOID;
	Datum		arg = ObjectIdGetDatum(relid);

	(void) apply_watch_trigger(relid, BATCH_WATCH_TRIGGER, NULL, &version,
							   &exists, NULL);
	if (!exists)
		return;
	log_statement(psprintf("INSERT INTO %s SELECT c.target_schema, c.target_name"
						   " FROM %s AS c WHERE c.mode OPERATOR(pg_catalog.=) 'apply'"
						   " AND pg_catalog.to_regclass(c.batch) OPERATOR(pg_catalog.=) $1",
						   sl_qualified("serving_layer_batch_dirty"),
						   sl_qualified("serving_layer_config")),
				  1, &argtype, &arg, SPI_OK_INSERT);
}

/*
 * batch_watch_forget
 *		Delete the target's rows from the log: a new definition or a
 *		forgotten target starts from a refresh that reads its batch table.
 */
void
batch_watch_forget(const TargetName *target)
{
	char	   *sql = psprintf("DELETE FROM %s"
							   " WHERE target_schema OPERATOR(pg_catalog.=) $1"
							   " AND target_name OPERATOR(pg_catalog.=) $2",
							   sl_qualified("serving_layer_batch_dirty"));
	Oid			types[2] = {NAMEOID, NAMEOID};
	Datum		values[2];

	values[0] = DirectFunctionCall1(namein, CStringGetDatum(target->schema));
	values[1] = DirectFunctionCall1(namein, CStringGetDatum(target->name));
	log_statement(sql, 2, types, values, SPI_OK_DELETE);
}
