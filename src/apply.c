/*-------------------------------------------------------------------------
 *
 * apply.c
 *	  Refresh mode 'apply': compute the new contents with the same merge as
 *	  a swap, compare them with the serving table's rows, and apply only the
 *	  differences in place, as ordinary row changes (apply_rows.c).
 *
 * A swap exchanges storage under an ACCESS EXCLUSIVE lock; that lock is
 * WAL-logged and replayed on hot standbys, where it waits for long queries
 * and stalls every reader behind it, and the swap emits no row changes, so
 * logical replication subscribers and row triggers never see it.  Here the
 * serving table keeps the SHARE UPDATE EXCLUSIVE lock the build takes (no
 * reader or writer waits, nothing is replayed on standbys).  Readers see
 * the old or the new contents, never a mix: the changes become visible
 * together at commit.
 *
 * There are two ways to find the differences, and this file picks one:
 *	- following the change (apply_delta.c): when the last refresh left its
 *	  state (apply_state.c), nothing else changed the serving table since
 *	  (apply_watch.c), the batch layer is as it was (known without reading
 *	  it when its table's watch trigger logged no change: apply_batch_watch.c),
 *	  the merge is one the C merge does and the table has a unique index on
 *	  the key (apply_lookup.c), only the keys whose speed groups changed are
 *	  recomputed and looked up: the cost follows the change;
 *	- the whole comparison (apply_full.c): every serving row compared with
 *	  the merge's rows.
 * Either way every read sees one snapshot, and a refresh that compared in
 * full leaves the state for the next one to follow the change from.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "apply.h"
#include "apply_batch_watch.h"
#include "apply_compare.h"
#include "apply_delta.h"
#include "apply_full.h"
#include "apply_lookup.h"
#include "apply_rows.h"
#include "apply_state.h"
#include "apply_watch.h"
#include "batch_guard.h"
#include "build.h"
#include "fast_merge_api.h"
#include "heap_writer.h"
#include "util.h"

/* the storage (relfilenode) of a relation, 0 for one that has none */
static Oid
storage_of(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			node;

	if (!HeapTupleIsValid(tup))
		return InvalidOid;
	node = ((Form_pg_class) GETSTRUCT(tup))->relfilenode;
	ReleaseSysCache(tup);
	return node;
}

/*
 * serving_gives_parts
 *		Whether a serving row is exactly the merge's accumulators for its
 *		key (apply_delta.c, serving_part()): every column of the serving
 *		table has the type the merge computes.
 */
static bool
serving_gives_parts(FullCompare *st, const MergePlan *plan)
{
	TupleDesc	desc = RelationGetDescr(st->rel);
	int			live = 0;

	for (int a = 0; a < desc->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, a);

		if (att->attisdropped)
			continue;
		if (live >= plan->ncolumns ||
			att->atttypid != plan->columns[live].typid)
			return false;
		live++;
	}
	return live == plan->ncolumns;
}

/*
 * follow_change
 *		Refresh by following the change (apply_delta.c) when the state the
 *		last refresh left describes the serving table; true if done.  Else
 *		*state is the state to save after the whole comparison (NULL: none
 *		can be kept), and result->compared_why says why.  *guarded says
 *		whether the half-loaded batch check has run.
 */
static bool
follow_change(FullCompare *st, const Definition *def, const MergePlan *plan,
			  BuildResult *result, ApplyState **state, bool *guarded)
{
	Oid			relid = RelationGetRelid(st->rel);
	ApplyState *saved;
	ApplyState *next;
	DeltaScan  *ds;
	Oid			index;
	int64		batch_version;
	int64		watch_version;
	bool		usable;
	bool		scanned;
	instr_time	start;

	*state = NULL;
	*guarded = false;
	if (!fast_merge_possible(plan))
	{
		result->compared_why = "the merge is not one the C merge does";
		return false;
	}
	index = lookup_find_index(st->rel, &st->shape, plan);
	if (!OidIsValid(index))
	{
		result->compared_why = "no unique index on the key";
		return false;
	}
	if (!apply_watch_current(relid, &watch_version))
	{
		result->compared_why = "no serving_layer_watch trigger";
		return false;
	}

	INSTR_TIME_SET_CURRENT(start);
	saved = apply_state_load(def->target);
	next = palloc0(sizeof(ApplyState));
	next->serving = relid;
	next->serving_node = storage_of(relid);
	next->watch_version = watch_version;
	next->batch = plan->batch;
	next->batch_node = storage_of(plan->batch);
	next->plan_hash = apply_plan_hash(plan);

	usable = saved != NULL;
	if (saved == NULL)
		result->compared_why = "no state of an earlier refresh";
	else if (saved->serving != next->serving ||
			 saved->serving_node != next->serving_node ||
			 saved->watch_version != next->watch_version)
	{
		result->compared_why = "the serving table was rewritten or its trigger changed";
		usable = false;
	}
	else if (saved->plan_hash != next->plan_hash)
	{
		result->compared_why = "the merge changed";
		usable = false;
	}
	else if (saved->batch != next->batch ||
			 saved->batch_node != next->batch_node)
	{
		result->compared_why = "the batch table was replaced or truncated";
		usable = false;
	}
	else if (apply_watch_logged(relid, st->snapshot, false))
	{
		result->compared_why = "other statements changed the serving table";
		usable = false;
	}

	ds = delta_read_speed(plan, saved != NULL ? saved->speed_groups : 0);
	if (ds == NULL)
	{
		result->compared_why = "the speed groups exceed serving_layer.fast_merge_memory";
		return false;
	}
	if (usable)
		delta_compare_speed(ds, saved->speed_state);

	/*
	 * The batch layer is read unless its watch trigger shows it unchanged
	 * since the last refresh (apply_batch_watch.c) and the state's batch
	 * parts cover the changed keys.
	 */
	batch_version = batch_watch_version(plan->batch, st->snapshot);
	if (usable && !batch_watch_logged(def->target, st->snapshot, false) &&
		delta_use_saved_parts(ds, batch_version, serving_gives_parts(st, plan)))
		result->batch_unread = true;
	else
		delta_read_batch(ds);
	delta_counts(ds, &next->batch_rows, &next->batch_hash,
				 &result->speed_rows, &next->speed_groups,
				 &result->changed_keys);
	if (result->batch_unread)
	{
		next->batch_rows = saved->batch_rows;
		next->batch_hash = saved->batch_hash;
	}

	/*
	 * The half-loaded batch check, before anything changes, on the batch
	 * rows just counted under the same snapshot (rather than counting them
	 * once more), or, unread, those of the last refresh.
	 */
	batch_guard_check(def, next->batch_rows);
	*guarded = true;
	result->batch_rows = next->batch_rows;
	result->speed_groups = next->speed_groups;
	if (usable && (next->batch_rows != saved->batch_rows ||
				   next->batch_hash != saved->batch_hash))
	{
		result->compared_why = "the batch layer changed";
		usable = false;
	}
	result->scan_ms = sl_elapsed_ms(start);
	if (!usable)
	{
		next->speed_state = delta_state(ds, batch_version);
		delta_end(ds);
		*state = next->speed_state != NULL ? next : NULL;
		return false;
	}

	INSTR_TIME_SET_CURRENT(start);
	{
		KeyLookup  *lookup = lookup_begin(st->rel, index, st->snapshot);

		st->ch = changes_begin(st->rel, &st->shape, st->snapshot);
		scanned = delta_apply(ds, st->rel, &st->shape, st->snapshot, lookup,
							  st->ch);
		changes_counts(st->ch, &st->inserted, &st->updated, &st->deleted);
		changes_end(st->ch);
		lookup_end(lookup);
	}
	/* the state after the changes: new keys' parts came from the table */
	next->speed_state = delta_state(ds, batch_version);
	result->followed = true;
	result->merged_by = scanned ?
		"in C, serving rows found by a scan of the table" :
		psprintf("in C, serving rows found by the index (%lld where the last refresh left them)",
				 (long long) delta_rows_found_in_place(ds));
	delta_end(ds);
	result->output_rows = saved->output_rows + st->inserted -
		st->deleted;
	result->apply_ms = sl_elapsed_ms(start);
	if (next->speed_state != NULL)
	{
		next->output_rows = result->output_rows;
		apply_state_save(def->target, next);
	}
	else
		apply_state_forget(def->target);
	return true;
}

/*
 * apply_new_contents
 *		Refresh the serving table in place: the differences between the
 *		merge's rows and its rows applied, found by following the change
 *		or by the whole comparison.  The caller holds SHARE UPDATE
 *		EXCLUSIVE on it, and nothing stronger is taken.
 */
BuildResult *
apply_new_contents(const Definition *def, const MergePlan *plan,
				   Oid target_relid)
{
	BuildResult *result = palloc0(sizeof(BuildResult));
	FullCompare *st = palloc0(sizeof(FullCompare));
	ApplyState *state;
	bool		guarded;
	OwnerContext ctx;

	result->target_relid = target_relid;
	result->applied = true;
	st->rel = table_open(target_relid, NoLock);
	row_shape_init(&st->shape, st->rel, plan);

	/*
	 * A published table without a replica identity cannot take UPDATE or
	 * DELETE (PostgreSQL refuses them, 55000): refuse before any work rather
	 * than at the first row that changes.  A table created in this
	 * transaction is left to that first row: the one this refresh creates
	 * when the target does not exist (under a FOR ALL TABLES publication,
	 * published at once) is empty and takes INSERTs only, which need no
	 * identity; one a user created earlier in the transaction fails at its
	 * first UPDATE or DELETE, and the transaction with it.
	 */
	if (st->rel->rd_createSubid == InvalidSubTransactionId)
	{
		CheckCmdReplicaIdentity(st->rel, CMD_UPDATE);
		CheckCmdReplicaIdentity(st->rel, CMD_DELETE);
	}
	st->rowcxt = AllocSetContextCreate(CurrentMemoryContext,
									   "serving_layer apply row",
									   ALLOCSET_DEFAULT_SIZES);

	build_enter_owner(st->rel, &ctx);

	/*
	 * One snapshot for every read: the layers, the serving table, the log
	 * of other changes.  The state saved for the next refresh describes
	 * what this snapshot saw.
	 */
	PushActiveSnapshot(GetTransactionSnapshot());
	st->snapshot = RegisterSnapshot(GetActiveSnapshot());
	build_merge_prepare(plan, result, NULL);
	if (!follow_change(st, def, plan, result, &state, &guarded))
	{
		/* the half-loaded batch check first: the merge changes the table */
		if (!guarded)
			batch_guard_check_first(def, plan);
		compare_in_full(st, plan, result, state);
		/* every change the log records, this comparison has seen */
		(void) apply_watch_logged(target_relid, st->snapshot, true);
		if (state != NULL)
		{
			state->output_rows = result->output_rows;
			apply_state_save(def->target, state);
		}
		else
			apply_state_forget(def->target);
	}
	/*
	 * Unless the batch layer went unread (its log then had no row for the
	 * target), it was read under this snapshot, following the change or in
	 * the whole comparison: the log rows the snapshot sees are done with.
	 */
	if (!result->batch_unread)
		(void) batch_watch_logged(def->target, st->snapshot, true);
	PopActiveSnapshot();
	result->changed_rows = st->inserted + st->updated + st->deleted;
	result->inserted = st->inserted;
	result->updated = st->updated;
	result->deleted = st->deleted;

	/*
	 * The serving table may be another target's batch table: tell its
	 * watch, which these row changes do not fire.  And a batch table
	 * without the watch trigger gets it, for the refreshes after the next
	 * one (only for a merge that can follow the change); last, so that its
	 * lock is held only until the commit.
	 */
	if (result->changed_rows > 0)
		batch_watch_note(target_relid);
	if (fast_merge_possible(plan))
		batch_watch_ensure(plan->batch);

	UnregisterSnapshot(st->snapshot);
	build_leave_owner(&ctx);
	table_close(st->rel, NoLock);
	MemoryContextDelete(st->rowcxt);
	return result;
}
