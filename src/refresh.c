/*-------------------------------------------------------------------------
 *
 * refresh.c
 *	  Refresh one target or all of them.
 *
 * A refresh of several targets first builds every target's new contents,
 * then swaps them all in, so that no serving table stays locked ACCESS
 * EXCLUSIVE while another target is being built: the exclusive locks are
 * taken last and held only until the caller's transaction commits.
 *
 * Two sessions never build the same target at once: each refresh takes a
 * transaction-level lock on the target's name first (an advisory lock tag
 * of our own, so it cannot collide with the application's advisory locks,
 * and it works before the serving table exists).  With
 * serving_layer.if_running = 'skip' a refresh that finds the lock taken
 * reports 'skipped' instead of waiting.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "storage/lmgr.h"
#include "tcop/utility.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "apply.h"
#include "build.h"
#include "batch_guard.h"
#include "catalog.h"
#include "definition.h"
#include "history.h"
#include "history_worker.h"
#include "layers.h"
#include "live_view.h"
#include "merge_plan.h"
#include "merge_sql.h"
#include "merge_types.h"
#include "refresh.h"
#include "retire.h"
#include "settings.h"
#include "swap.h"
#include "target.h"
#include "util.h"

/* advisory lock tags with this 4th field are ours (pg_advisory_* use 1, 2) */
#define SL_LOCKTAG_FIELD4 0x534C

typedef struct RefreshJob
{
	Definition *def;
	MergePlan  *plan;
	TimestampTz started_at;
	BuildResult *result;		/* NULL when skipped */
	RefreshOutcome *outcome;
} RefreshJob;

/*
 * refresh_error_context
 *		Name the target in every error raised while refreshing it.
 */
static void
refresh_error_context(void *arg)
{
	errcontext("refresh of serving table %s", (const char *) arg);
}

/*
 * lock_target
 *		Take the target's refresh lock; without waiting when skip is set.
 *		Returns false if it was not available.
 */
static bool
lock_target(const TargetName *target, bool wait)
{
	LOCKTAG		tag;
	uint32		h1 = hash_bytes((const unsigned char *) target->schema,
								strlen(target->schema));
	uint32		h2 = hash_bytes((const unsigned char *) target->name,
								strlen(target->name));

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, h1, h2, SL_LOCKTAG_FIELD4);
	return LockAcquire(&tag, ExclusiveLock, false, !wait) != LOCKACQUIRE_NOT_AVAIL;
}

/*
 * classic_definition
 *		The original design's layout: serving_layer from batch_layer and
 *		speed_layer, found through search_path, with every default.
 */
static Definition *
classic_definition(void)
{
	Definition *def = palloc0(sizeof(Definition));

	def->batch = RangeVarGetRelid(makeRangeVar(NULL, "batch_layer", -1),
								  NoLock, false);
	def->speed = RangeVarGetRelid(makeRangeVar(NULL, "speed_layer", -1),
								  NoLock, false);
	def->target = target_parse("serving_layer", false);
	def->definer = GetUserId();
	return def;
}

/*
 * role_name
 *		A role's name for a message, also when the role was dropped.
 */
static char *
role_name(Oid roleid)
{
	char	   *name = GetUserNameFromId(roleid, true);

	return name ? name : psprintf("%u", roleid);
}

/*
 * lock_or_create_target
 *		Lock the serving table SHARE UPDATE EXCLUSIVE (readers and writers
 *		go on; DDL, VACUUM and another refresh wait), or create it when it
 *		does not exist yet.
 *
 * The build runs as the serving table's owner and runs code the definition
 * names (its aggregates, the functions of batch or speed views).  So that
 * code never runs with more rights than the role that defined it had, the
 * definer must have the privileges of the owner, and a table created here
 * belongs to the caller only when the definer has the caller's privileges
 * (the usual case: the definer refreshing); otherwise, say a superuser's
 * nightly refresh of a definition an ordinary role made, it is created as
 * the definer.
 */
static Oid
lock_or_create_target(const MergePlan *plan, const Definition *def)
{
	const TargetName *target = def->target;
	RangeVar   *rv = makeRangeVar(target->schema, target->name, -1);
	Oid			relid;
	Oid			owner;
	Oid			save_userid;
	int			save_sec_context;

	relid = RangeVarGetRelidExtended(rv, ShareUpdateExclusiveLock,
									 RVR_MISSING_OK, NULL, NULL);
	check_target_privileges(target);
	if (!OidIsValid(relid))
	{
		GetUserIdAndSecContext(&save_userid, &save_sec_context);
		if (!has_privs_of_role(def->definer, save_userid))
			SetUserIdAndSecContext(def->definer,
								   save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute(merge_sql_create_table(plan, target), false, 0) != SPI_OK_UTILITY)
			elog(ERROR, "could not create serving table \"%s\"", target->display);
		SPI_finish();
		SetUserIdAndSecContext(save_userid, save_sec_context);
		CommandCounterIncrement();
		relid = RangeVarGetRelidExtended(rv, ShareUpdateExclusiveLock, 0,
										 NULL, NULL);
	}

	owner = sl_relation_owner(relid);
	if (!has_privs_of_role(def->definer, owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("definition of serving table \"%s\" was made by role \"%s\", which does not have the privileges of its owner \"%s\"",
						target->name, role_name(def->definer),
						role_name(owner)),
				 errdetail("A refresh runs the definition's merges as the table's owner."),
				 errhint("Have the owner define it again with serving_layer_define().")));
	return relid;
}

/*
 * The state of one call, kept outside the PG_TRY block so that the error
 * path knows which targets were attempted.
 */
typedef struct RefreshRun
{
	List	   *jobs;			/* RefreshJob, in order */
	RefreshJob *current;		/* the one being built or swapped */
	char	   *pending;		/* a target named before its job exists */
	TimestampTz pending_started;
} RefreshRun;

/*
 * refresh_build
 *		Everything up to the swap for one target: serialize, validate, check
 *		privileges and build the new contents.
 */
static void
refresh_build(RefreshRun *run, Definition *def)
{
	RefreshJob *job = palloc0(sizeof(RefreshJob));
	MergePlan  *plan;
	Oid			relid;

	job->def = def;
	job->started_at = GetCurrentTimestamp();
	job->outcome = palloc0(sizeof(RefreshOutcome));
	job->outcome->target = def->target->display;
	job->outcome->changed_rows = -1;
	run->jobs = lappend(run->jobs, job);
	run->current = job;
	PreventCommandIfReadOnly("serving_layer_refresh()");

	if (!lock_target(def->target, sl_if_running == IF_RUNNING_WAIT))
	{
		job->outcome->status = "skipped";
		job->outcome->batch_rows = job->outcome->speed_rows =
			job->outcome->output_rows = -1;
		history_record(def->target->display, job->started_at, "skipped",
					   -1, -1, -1, NULL, -1, NULL);
		return;
	}

	layers_resolve(def);
	plan = merge_plan_build(def);
	check_layer_privileges(plan);
	if (def->mode == REFRESH_MODE_SWAP)
		publication_refuse_swap(target_relid(def->target),
								target_namespace(def->target),
								def->target->name);
	else
		apply_check_keys(plan, def->target->name);
	relid = lock_or_create_target(plan, def);
	if (relid == plan->batch || relid == plan->speed)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("serving table \"%s\" cannot be its own batch or speed table",
						def->target->name)));
	merge_plan_check_target(plan, relid);
	retire_drop_leftovers(relid);

	job->plan = plan;
	if (def->mode == REFRESH_MODE_APPLY)
		job->result = apply_new_contents(def, plan, relid);
	else
		job->result = build_new_contents(plan, relid, def->target->display);
	batch_guard_check(def, job->result->batch_rows);
}

/*
 * refresh_swap
 *		Swap one built target in, its serving table locked, and record it.
 */
static void
refresh_swap(RefreshRun *run, RefreshJob *job)
{
	BuildResult *result = job->result;
	instr_time	start;

	run->current = job;
	INSTR_TIME_SET_CURRENT(start);
	if (!result->applied)
		swap_storage(result);
	if (sl_verbose && !result->applied)
		ereport(INFO,
				(errmsg("refresh of %s: swap: relations swapped %d, %.1f ms",
						job->def->target->display,
						1 + list_length(result->index_pairs) / 2,
						sl_elapsed_ms(start))));

	/* what the live view and the next half-loaded batch check read */
	if (job->def->batch_name != NULL)
	{
		catalog_record_refresh(job->def->target, result->boundary,
							   result->batch_rows);
		CommandCounterIncrement();
		live_view_update(job->def, job->plan, false);
	}

	history_record(job->def->target->display, job->started_at, "ok",
				   result->batch_rows, result->speed_rows,
				   result->output_rows, result->boundary,
				   result->changed_rows, NULL);
	job->outcome->status = "ok";
	job->outcome->batch_rows = result->batch_rows;
	job->outcome->speed_rows = result->speed_rows;
	job->outcome->output_rows = result->output_rows;
	job->outcome->boundary = result->boundary;
	job->outcome->changed_rows = result->changed_rows;
}

static void push_target_context(ErrorContextCallback *cb, const char *display);

/*
 * lock_for_swap
 *		Take the swap locks of every built target, all in the same attempts.
 */
static void
lock_for_swap(RefreshRun *run)
{
	List	   *relids = NIL;
	List	   *names = NIL;
	List	   *displays = NIL;
	ListCell   *lc;
	ErrorContextCallback cb;

	foreach(lc, run->jobs)
	{
		RefreshJob *job = lfirst(lc);

		if (job->result == NULL || job->result->applied)
			continue;
		relids = lappend_oid(relids, job->result->target_relid);
		names = lappend(names, job->def->target->name);
		displays = lappend(displays, job->def->target->display);
		run->current = job;
	}
	if (relids == NIL)
		return;

	/*
	 * The build wrote the new contents to WAL, and the commit must flush
	 * all of it; flush it now, before the exclusive locks, so that the
	 * commit (which readers wait for) only flushes the swap's few records.
	 */
	XLogFlush(XactLastRecEnd);

	/* the message names the table; with one target, so does the context */
	if (list_length(displays) == 1)
		push_target_context(&cb, linitial(displays));
	swap_lock_serving_tables(relids, names, displays);
	if (list_length(displays) == 1)
		error_context_stack = cb.previous;
}

/*
 * push_target_context
 *		Name the target in the context of errors raised until the caller
 *		pops cb again.
 */
static void
push_target_context(ErrorContextCallback *cb, const char *display)
{
	cb->callback = refresh_error_context;
	cb->arg = (void *) display;
	cb->previous = error_context_stack;
	error_context_stack = cb;
}

/*
 * refresh_run
 *		The body of refresh_targets(): resolve the targets, build them all,
 *		then swap them all in.
 */
static List *
refresh_run(RefreshRun *run, const char *target_text)
{
	List	   *defs;
	List	   *outcomes = NIL;
	List	   *retired = NIL;
	ListCell   *lc;

	run->pending_started = GetCurrentTimestamp();
	if (target_text == NULL)
	{
		defs = catalog_list();
		if (defs == NIL)
		{
			run->pending = "serving_layer";
			defs = list_make1(classic_definition());
		}
	}
	else
	{
		TargetName *target = target_parse(target_text, false);
		Definition *def;

		run->pending = target->display;
		def = catalog_lookup(target);
		if (def == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("serving table \"%s\" has no definition",
							target->name),
					 errhint("Define it with serving_layer_define().")));
		defs = list_make1(def);
	}
	run->pending = NULL;

	foreach(lc, defs)
	{
		Definition *def = lfirst(lc);
		ErrorContextCallback cb;

		push_target_context(&cb, def->target->display);
		refresh_build(run, def);
		error_context_stack = cb.previous;
	}

	lock_for_swap(run);
	foreach(lc, run->jobs)
	{
		RefreshJob *job = lfirst(lc);
		ErrorContextCallback cb;

		if (job->result != NULL)
		{
			push_target_context(&cb, job->def->target->display);
			refresh_swap(run, job);
			error_context_stack = cb.previous;
			if (job->result->retired)
				retired = lappend_oid(retired, job->result->new_relid);
		}
		outcomes = lappend(outcomes, job->outcome);
	}
	retire_launch_cleanup(retired);
	return outcomes;
}

/*
 * failure_entries
 *		The history rows of a failed call: every attempted target failed
 *		(the call's transaction rolls back, including refreshes that had
 *		finished), except those that were skipped.
 */
static List *
failure_entries(RefreshRun *run, ErrorData *edata)
{
	List	   *entries = NIL;
	char	   *error;
	const char *culprit;
	ListCell   *lc;

	error = psprintf("%s: %s", unpack_sql_state(edata->sqlerrcode),
					 edata->message ? edata->message : "");
	culprit = run->current ? run->current->def->target->display : run->pending;

	if (run->jobs == NIL && run->pending != NULL)
	{
		HistoryEntry *e = palloc0(sizeof(HistoryEntry));

		e->target = run->pending;
		e->started_at = run->pending_started;
		e->status = "failed";
		e->batch_rows = e->speed_rows = e->output_rows = -1;
		e->error = error;
		return list_make1(e);
	}

	foreach(lc, run->jobs)
	{
		RefreshJob *job = lfirst(lc);
		HistoryEntry *e = palloc0(sizeof(HistoryEntry));
		bool		skipped = job->outcome->status != NULL &&
			strcmp(job->outcome->status, "skipped") == 0;

		e->target = job->def->target->display;
		e->started_at = job->started_at;
		e->status = skipped ? "skipped" : "failed";
		e->batch_rows = e->speed_rows = e->output_rows = -1;
		if (!skipped)
			e->error = (job == run->current) ? error :
				psprintf("%s (raised while refreshing %s)", error, culprit);
		entries = lappend(entries, e);
	}
	return entries;
}

/*
 * refresh_targets
 *		Refresh the named target, or every defined one in target order (the
 *		classic layout when there is no definition), and return a
 *		RefreshOutcome per target.  A failure is recorded in the history by
 *		a background worker, then re-raised.
 */
List *
refresh_targets(const char *target_text)
{
	MemoryContext cxt = CurrentMemoryContext;
	RefreshRun *run = palloc0(sizeof(RefreshRun));
	List	   *outcomes = NIL;

	history_worker_prepare();
	PG_TRY();
	{
		outcomes = refresh_run(run, target_text);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		history_record_failures(failure_entries(run, edata));
		PG_RE_THROW();
	}
	PG_END_TRY();
	return outcomes;
}
