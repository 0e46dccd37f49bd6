/*-------------------------------------------------------------------------
 *
 * refresh.c
 *	  Refresh one target or all of them: the pipeline, in one direction.
 *
 * For each target, in target order:
 *	  1. serialize	lock the target's definition (catalog.c), then read it;
 *	  2. validate	find the layers by name (layers.c), turn the definition
 *					into a merge plan (merge_plan.c), check the privileges,
 *					lock or create the serving table;
 *	  3. build		build the new contents beside it (build.c);
 *	  4. check		checks on the built result, before anything changes
 *					(batch_guard.c);
 * then, for every target at once:
 *	  5. lock		take the serving tables' swap locks (swap.c);
 * and for each target again:
 *	  6. swap		swap the new storage in (swap.c);
 *	  7. retire		get rid of the old storage (retire.c);
 *	  8. history	record the refresh: the definition's last boundary and
 *					batch rows (catalog.c), its live view (live_view.c), and
 *					its history row (history.c).
 * Every target is built before any is swapped, so that no serving table
 * stays locked ACCESS EXCLUSIVE while another is being built: the exclusive
 * locks are taken last and held only until the caller's transaction
 * commits.  A failure is recorded by history_worker.c.  The progress lines
 * of serving_layer.progress are printed here, and only here.
 *
 * Two sessions never refresh the same target at once: step 1 locks the
 * definition's catalog row.  With serving_layer.if_running = 'skip' a
 * refresh that finds it locked reports 'skipped' instead of waiting.
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
#include "storage/lock.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "apply.h"
#include "apply_compare.h"
#include "batch_guard.h"
#include "build.h"
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
#include "target_create.h"
#include "util.h"

/* advisory lock tags with this 4th field are ours (pg_advisory_* use 1, 2) */
#define SL_LOCKTAG_FIELD4 0x534C

typedef struct RefreshJob
{
	int			row;			/* the target's row in the failure log */
	Definition *def;
	TimestampTz started_at;
	MergePlan  *plan;
	Oid			relid;			/* the serving table */
	bool		skipped;		/* another session is refreshing it */
	BuildResult *result;		/* the new contents, once built or applied */
	RefreshOutcome *outcome;
} RefreshJob;

/*
 * The state of one call, kept outside the PG_TRY block so that the error
 * path knows which targets were attempted.
 */
typedef struct RefreshRun
{
	List	   *targets;		/* TargetName, in order; NIL: classic */
	List	   *jobs;			/* RefreshJob, in order */
	int			current;		/* row of the target being worked on */
	FailureLog *log;			/* what history_worker.c records on failure */
} RefreshRun;

/*
 * refresh_error_context
 *		Name the target in every error raised while refreshing it.
 */
static void
refresh_error_context(void *arg)
{
	errcontext("refresh of serving table \"%s\"", (const char *) arg);
}

/*
 * push_target_context
 *		Name the target in the context of errors raised until the caller
 *		pops cb again, as the messages name it.
 */
static void
push_target_context(ErrorContextCallback *cb, const TargetName *target)
{
	cb->callback = refresh_error_context;
	cb->arg = (void *) target_label(target);
	cb->previous = error_context_stack;
	error_context_stack = cb;
}

/*
 * progress
 *		One line of serving_layer.progress: "refresh of <target>: <phase>:
 *		<details>, <ms> ms".  Every progress line is printed here.
 */
static void
progress(const RefreshJob *job, const char *phase, const char *details,
		 double ms)
{
	if (!SL_PROGRESS())
		return;
	ereport(INFO,
			(errmsg("refresh of %s: %s: %s%s%.1f ms",
					job->def->target->display, phase,
					details ? details : "", details ? ", " : "", ms)));
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
 * lock_classic
 *		The classic layout has no catalog row to lock: its refreshes lock an
 *		advisory lock tag of our own instead, keyed on the target's 64-bit
 *		name hash (there is only one classic target, so it cannot collide
 *		with another).  Returns false if it was not available.
 */
static bool
lock_classic(const TargetName *target, bool wait)
{
	LOCKTAG		tag;
	char	   *key = psprintf("%s.%s", target->schema, target->name);
	uint64		h = hash_bytes_extended((const unsigned char *) key,
										strlen(key), 0);

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (h >> 32), (uint32) h,
						 SL_LOCKTAG_FIELD4);
	return LockAcquire(&tag, ExclusiveLock, false, !wait) != LOCKACQUIRE_NOT_AVAIL;
}

/*
 * new_job
 *		Start the job of one target: its history row starts now.
 */
static RefreshJob *
new_job(RefreshRun *run, int row, Definition *def, bool skipped)
{
	RefreshJob *job = palloc0(sizeof(RefreshJob));

	job->row = row;
	job->def = def;
	job->started_at = GetCurrentTimestamp();
	job->outcome = palloc0(sizeof(RefreshOutcome));
	job->outcome->target = def->target->display;
	job->outcome->changed_rows = -1;
	run->jobs = lappend(run->jobs, job);
	run->current = row;
	failure_log_target(run->log, row, def->target->display, job->started_at,
					   skipped);
	return job;
}

/*
 * refresh_serialize
 *		Step 1: lock the target and read its definition under the lock.
 *		Returns the job, or NULL when a target of the list was forgotten
 *		meanwhile; a job whose target another session is refreshing, with
 *		if_running = 'skip', is recorded as skipped and has no definition
 *		to build.
 */
static RefreshJob *
refresh_serialize(RefreshRun *run, int row, const TargetName *target,
				  bool classic)
{
	bool		wait = sl_if_running == IF_RUNNING_WAIT;
	bool		busy = false;
	Definition *def;
	RefreshJob *job;

	/* a failure from here on is this target's */
	failure_log_target(run->log, row,
					   classic ? "serving_layer" : target->display,
					   GetCurrentTimestamp(), false);
	if (classic)
	{
		def = classic_definition();
		busy = !lock_classic(def->target, wait);
	}
	else
	{
		def = catalog_lock(target, wait, &busy);
		if (def == NULL && !busy)
			return NULL;
		if (def == NULL)
		{
			/* a skipped target's definition is not read: show it as named */
			def = palloc0(sizeof(Definition));
			def->target = (TargetName *) target;
		}
	}

	job = new_job(run, row, def, busy);
	job->skipped = busy;
	if (busy)
	{
		job->outcome->status = "skipped";
		job->outcome->batch_rows = job->outcome->speed_rows =
			job->outcome->output_rows = -1;
		history_record(def->target->display, job->started_at, "skipped",
					   -1, -1, -1, NULL, -1, NULL);
	}
	return job;
}

/*
 * refresh_validate
 *		Step 2: the merge plan from the current tables, the privileges, the
 *		mode's own checks, and the serving table, locked or created and
 *		checked against the plan.
 */
static void
refresh_validate(RefreshJob *job)
{
	Definition *def = job->def;
	Oid			relid;

	layers_resolve(def);
	job->plan = merge_plan_build(def);
	check_layer_privileges(job->plan);
	if (def->mode == REFRESH_MODE_SWAP)
		publication_refuse_swap(target_relid(def->target),
								target_namespace(def->target),
								target_label(def->target));
	else
		apply_check_keys(job->plan, target_label(def->target));
	relid = target_lock_or_create(job->plan, def);
	if (relid == job->plan->batch || relid == job->plan->speed)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("serving table \"%s\" cannot be its own batch or speed table",
						target_label(def->target))));
	merge_plan_check_target(job->plan, relid);
	job->relid = relid;
}

/*
 * refresh_swaps
 *		The branch point between the refresh modes: whether this job's new
 *		contents are built aside (step 3) and go in by a storage swap (steps
 *		5 to 7).  A job of mode 'apply' (REFRESH_MODE_APPLY) answers false:
 *		it merges and applies the differences in place in step 6
 *		(refresh_change(), apply.c), under its SHARE UPDATE EXCLUSIVE lock.
 */
static bool
refresh_swaps(const RefreshJob *job)
{
	return !job->skipped && job->def->mode == REFRESH_MODE_SWAP;
}

/*
 * refresh_build
 *		Step 3: build the new contents beside the serving table.  (Mode
 *		'apply' builds nothing aside: it merges and applies in step 6.)
 */
static void
refresh_build(RefreshJob *job)
{
	BuildResult *result;
	char	   *details;

	if (!refresh_swaps(job))
		return;
	result = build_new_contents(job->plan, job->relid);
	job->result = result;
	details = psprintf("rows read %lld batch + %lld speed, rows written %lld, merged %s",
					   (long long) result->batch_rows,
					   (long long) result->speed_rows,
					   (long long) result->output_rows, result->merged_by);
	progress(job, "build", details, result->fill_ms);
	progress(job, "index",
			 psprintf("indexes built %d", list_length(result->index_pairs) / 2),
			 result->index_ms);
	progress(job, "analyze", NULL, result->analyze_ms);
}

/*
 * refresh_check_built
 *		Step 4: checks on the built result, before anything is changed.  A
 *		check that fails raises its error here, and the serving table stays
 *		as it was.
 */
static void
refresh_check_built(RefreshJob *job)
{
	/* mode 'apply' checks the batch layer before it changes anything */
	if (job->result == NULL)
		return;
	/* serving_layer.min_batch_fraction: not from a half-loaded batch */
	batch_guard_check(job->def, job->result->batch_rows);
}

/*
 * refresh_lock
 *		Step 5: take the swap locks of every job that swaps, all in the same
 *		attempts.
 */
static void
refresh_lock(RefreshRun *run)
{
	List	   *relids = NIL;
	List	   *names = NIL;
	List	   *jobs = NIL;
	ListCell   *lc;
	ErrorContextCallback cb;
	instr_time	start;
	int			attempts;

	foreach(lc, run->jobs)
	{
		RefreshJob *job = lfirst(lc);

		if (!refresh_swaps(job))
			continue;
		relids = lappend_oid(relids, job->result->target_relid);
		names = lappend(names, (char *) target_label(job->def->target));
		jobs = lappend(jobs, job);
		run->current = job->row;
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
	if (list_length(jobs) == 1)
		push_target_context(&cb, ((RefreshJob *) linitial(jobs))->def->target);
	INSTR_TIME_SET_CURRENT(start);
	attempts = swap_lock_serving_tables(relids, names);
	if (list_length(jobs) == 1)
		error_context_stack = cb.previous;

	foreach(lc, jobs)
		progress(lfirst(lc), "lock", psprintf("attempts %d", attempts),
				 sl_elapsed_ms(start));
}

/*
 * refresh_change
 *		Steps 6 to 8 for one job: swap and retire (or, in mode 'apply',
 *		merge and apply), then history.  The retired heaps to drop after
 *		the commit are appended to *deferred.
 */
static void
refresh_change(RefreshRun *run, RefreshJob *job, List **deferred)
{
	BuildResult *result = job->result;
	RefreshOutcome *outcome = job->outcome;
	instr_time	start;

	run->current = job->row;
	if (!refresh_swaps(job))
	{
		result = job->result = apply_new_contents(job->def, job->plan,
												  job->relid);
		if (result->followed)
			progress(job, "delta",
					 psprintf("speed groups %lld, keys changed %lld, batch layer unchanged%s",
							  (long long) result->speed_groups,
							  (long long) result->changed_keys,
							  result->batch_unread ? " (not read: no change logged)" : ""),
					 result->scan_ms);
		else
			progress(job, "scan",
					 psprintf("serving rows %lld, compared in full: %s",
							  (long long) result->serving_rows,
							  result->compared_why),
					 result->scan_ms);
		progress(job, "apply",
				 psprintf("rows read %lld batch + %lld speed, %s %lld %s, inserted %lld, updated %lld, deleted %lld",
						  (long long) (result->batch_unread ? 0 : result->batch_rows),
						  (long long) result->speed_rows,
						  result->followed ? "rows in the table" : "rows merged",
						  (long long) result->output_rows, result->merged_by,
						  (long long) result->inserted,
						  (long long) result->updated,
						  (long long) result->deleted),
				 result->apply_ms);
	}
	else
	{
		INSTR_TIME_SET_CURRENT(start);
		swap_storage(result);
		progress(job, "swap",
				 psprintf("relations swapped %d",
						  1 + list_length(result->index_pairs) / 2),
				 sl_elapsed_ms(start));
		retire_storage(result->target_relid, result->new_relid, deferred);
	}

	/* what the live view and the next half-loaded batch check read */
	if (job->def->batch_name != NULL)
	{
		catalog_record_refresh(job->def->target, result->boundary,
							   result->batch_rows);
		CommandCounterIncrement();
		live_view_update(job->def, job->plan, false);
	}
	else
		batch_guard_record_classic(job->def->target, result->batch_rows);
	history_record(job->def->target->display, job->started_at, "ok",
				   result->batch_rows, result->speed_rows,
				   result->output_rows, result->boundary,
				   result->changed_rows, NULL);
	outcome->status = "ok";
	outcome->batch_rows = result->batch_rows;
	outcome->speed_rows = result->speed_rows;
	outcome->output_rows = result->output_rows;
	outcome->boundary = result->boundary;
	outcome->changed_rows = result->changed_rows;
}

/*
 * refresh_targets_named
 *		The targets of a call: the named one, or every defined one in target
 *		order; NIL for the classic layout (no definition at all).
 */
static List *
refresh_targets_named(const char *target_text)
{
	List	   *targets = NIL;
	ListCell   *lc;

	if (target_text != NULL)
		return list_make1(target_parse(target_text, false));
	foreach(lc, catalog_list())
		targets = lappend(targets, ((Definition *) lfirst(lc))->target);
	return targets;
}

/*
 * refresh_run
 *		The body of refresh_targets(): the steps of every target.
 */
static List *
refresh_run(RefreshRun *run, bool named)
{
	bool		classic = run->targets == NIL;
	List	   *targets = classic ? list_make1(NULL) : run->targets;
	List	   *outcomes = NIL;
	List	   *deferred = NIL;
	ListCell   *lc;

	foreach(lc, targets)
	{
		TargetName *target = lfirst(lc);
		ErrorContextCallback cb;
		RefreshJob *job;

		run->current = foreach_current_index(lc);
		job = refresh_serialize(run, run->current, target, classic);
		if (job == NULL)
		{
			if (!named)
			{
				/* forgotten since the list was made */
				failure_log_forget(run->log, run->current);
				continue;
			}
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("serving table \"%s\" has no definition",
							target_label(target)),
					 errhint("Define it with serving_layer_define().")));
		}
		if (job->outcome->status != NULL)
			continue;			/* skipped */

		push_target_context(&cb, job->def->target);
		refresh_validate(job);
		refresh_build(job);
		refresh_check_built(job);
		error_context_stack = cb.previous;
	}

	refresh_lock(run);
	foreach(lc, run->jobs)
	{
		RefreshJob *job = lfirst(lc);
		ErrorContextCallback cb;

		if (!job->skipped)
		{
			push_target_context(&cb, job->def->target);
			refresh_change(run, job, &deferred);
			error_context_stack = cb.previous;
		}
		outcomes = lappend(outcomes, job->outcome);
	}
	retire_launch_cleanup(deferred);
	return outcomes;
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

	/*
	 * Refused before any work, and before any worker is registered: on a
	 * hot standby (where every transaction is read-only) the history
	 * worker could never start.
	 */
	PreventCommandIfReadOnly("serving_layer_refresh()");

	run->targets = refresh_targets_named(target_text);
	run->log = failure_log_begin(Max(list_length(run->targets), 1));

	PG_TRY();
	{
		outcomes = refresh_run(run, target_text != NULL);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		/* copy the error into the failure log, and nothing else */
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		failure_log_error(run->log, run->current, edata->sqlerrcode,
						  edata->message);
		PG_RE_THROW();
	}
	PG_END_TRY();
	failure_log_end(run->log);
	return outcomes;
}
