/*-------------------------------------------------------------------------
 *
 * serving_layer.h
 *	  Types and functions shared by the files of the serving_layer extension.
 *
 * A refresh goes through these steps, each in its own file:
 *	  target.c		parse and resolve the target name
 *	  catalog.c		read and write definitions (serving_layer_config)
 *	  merge_plan.c	validate a definition and turn it into a merge plan
 *					and the SQL text that computes the new contents
 *	  build.c		create the new heap beside the serving table, fill it
 *					with frozen tuples and build its indexes
 *	  swap.c		take the swap lock with bounded waits and exchange the
 *					storage of the old and new relations
 *	  history.c		record each refresh in serving_layer_history
 *	  refresh.c		run the steps above for one or all targets
 *	  entry.c		the SQL-callable functions and the settings
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERVING_LAYER_H
#define SERVING_LAYER_H

#include "postgres.h"

#include "nodes/pg_list.h"
#include "postmaster/bgworker.h"
#include "portability/instr_time.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/relcache.h"
#include "executor/tuptable.h"

/* settings (entry.c) */
typedef enum
{
	IF_RUNNING_WAIT,
	IF_RUNNING_SKIP
} IfRunningMode;

extern int	sl_swap_lock_timeout;
extern int	sl_swap_max_wait;
extern int	sl_if_running;
extern bool sl_verbose;
extern bool sl_fast_merge;
extern int	sl_fast_merge_memory;

/*
 * A parsed target: the schema and relation name of the serving table, and
 * the text shown to users (qualified only when the user qualified it).
 */
typedef struct TargetName
{
	char	   *display;
	char	   *schema;
	char	   *name;
} TargetName;

/* target.c */
extern TargetName *target_parse(const char *text, bool for_define);
extern Oid	target_relid(const TargetName *target);
extern Oid	target_namespace(const TargetName *target);

/*
 * A definition as stored: key, merge and speed_columns are either what the
 * user gave (NIL/NULL for the defaults) or, once stored, the effective ones.
 */
typedef struct Definition
{
	TargetName *target;
	Oid			batch;
	Oid			speed;
	List	   *key;			/* list of C strings, NIL for the default */
	Jsonb	   *merge;			/* NULL for the default */
	List	   *speed_columns;	/* list of C strings (NULL elements not
								 * allowed), NIL for the default */
	bool		speed_columns_given;
	bool		key_given;
	bool		from_catalog;	/* stored merges: bare names are pg_catalog */
	Oid			definer;
} Definition;

/* How one output column is computed. */
typedef enum MergeKind
{
	MERGE_KEY,					/* grouped on */
	MERGE_AGGREGATE,			/* an aggregate over batch and speed values */
	MERGE_SPEED,				/* the speed row's value, else the batch one */
	MERGE_BATCH					/* the batch row's value, else the speed one */
} MergeKind;

typedef struct PlanColumn
{
	char	   *name;			/* batch column name */
	Oid			typid;
	int32		typmod;
	Oid			collid;
	MergeKind	kind;
	char	   *merge;			/* effective merge as shown to users */
	Oid			aggoid;			/* MERGE_AGGREGATE */
	Oid			aggtype;		/* its result type */
	char	   *speed_name;		/* the speed column merged into this one */
	Oid			speed_typid;
	int32		speed_typmod;
	Oid			speed_collid;
} PlanColumn;

typedef struct MergePlan
{
	Oid			batch;
	Oid			speed;
	int			ncolumns;
	PlanColumn *columns;		/* in batch column order */
	int			nkeys;
	bool		picks;			/* some column is MERGE_SPEED/MERGE_BATCH */
} MergePlan;

/* merge_plan.c */
extern bool sl_is_numeric_type(Oid typid);
extern MergePlan *merge_plan_build(const Definition *def);
extern void merge_plan_check_target(const MergePlan *plan, Oid relid);
extern List *merge_plan_key_names(const MergePlan *plan);

/* merge_kinds.c */
extern void merge_plan_merges(MergePlan *plan, const Definition *def,
							  const char *batchname);
extern Jsonb *merge_plan_merge_json(const MergePlan *plan);
extern List *merge_plan_speed_names(const MergePlan *plan);

/* merge_sql.c */
extern char *merge_sql_select(const MergePlan *plan, int *nparams,
							  Oid **paramtypes, Datum **paramvalues);
extern char *merge_sql_layer(const MergePlan *plan, bool speed,
							 bool keys_only);
extern char *merge_sql_create_table(const MergePlan *plan,
									const TargetName *target);

/* catalog.c */
extern Oid	sl_extension_schema(void);
extern char *sl_qualified(const char *relname);
extern Oid	sl_relation_owner(Oid relid);
extern Definition *catalog_lookup(const TargetName *target);
extern List *catalog_list(void);
extern void catalog_store(const Definition *def, const MergePlan *plan);
extern void catalog_delete(const TargetName *target);
extern void catalog_check_owner(const Definition *def, const char *action);
extern void check_layer_privileges(const MergePlan *plan);
extern void check_target_privileges(const TargetName *target);

/* Counts produced by the build. */
typedef struct BuildResult
{
	Oid			target_relid;
	Oid			new_relid;
	List	   *index_pairs;	/* list of (old index oid, new index oid),
								 * as a flat list of OIDs */
	int64		batch_rows;
	int64		speed_rows;
	int64		output_rows;
	bool		retired;		/* old storage left for retire.c to drop */
	const char *merged_by;		/* how the rows were merged, for verbose */
} BuildResult;

/* heap_writer.c */
typedef struct HeapWriter HeapWriter;
extern HeapWriter *writer_begin(Relation oldrel, Relation newrel);
extern void writer_put(HeapWriter *w, Datum *values, bool *nulls);
extern void writer_put_slot(HeapWriter *w, TupleTableSlot *src);
extern int64 writer_end(HeapWriter *w);

/* query_rows.c */
typedef void (*QueryRowFn) (TupleTableSlot *slot, void *arg);
extern void query_rows(const char *sql, int nparams, Oid *paramtypes,
					   Datum *paramvalues, bool read_only, QueryRowFn fn,
					   void *arg);

/* batch_scan.c */
extern Relation batch_scan_open(const MergePlan *plan);
extern void batch_scan(Relation rel, int natts, QueryRowFn fn, void *arg);

/* fast_merge.c */
extern bool fast_merge_possible(const MergePlan *plan);
extern bool fast_merge(const MergePlan *plan, HeapWriter *writer,
					   BuildResult *result);

/* build.c */
extern BuildResult *build_new_contents(const MergePlan *plan,
									   Oid target_relid,
									   const char *display);
extern double sl_elapsed_ms(instr_time start);

/* swap.c */
extern void swap_lock_serving_tables(List *relids, List *names,
									 List *displays);
extern void swap_storage(BuildResult *result);

/* retire.c */
#define RETIRE_MIN_BYTES ((Size) 64 * 1024 * 1024)
extern void retire_old_heap(Oid serving, Oid oldheap);
extern void retire_name_toast(Oid serving);
extern void retire_drop_leftovers(Oid serving);
extern void retire_launch_cleanup(List *relids);

/* history.c */
extern void history_record(const char *target, TimestampTz started_at,
						   const char *status, int64 batch_rows,
						   int64 speed_rows, int64 output_rows,
						   const char *error);

/* history_worker.c */
typedef struct HistoryEntry
{
	char	   *target;
	TimestampTz started_at;
	const char *status;
	int64		batch_rows;
	int64		speed_rows;
	int64		output_rows;
	char	   *error;
} HistoryEntry;

extern bool sl_start_worker(const char *function, const char *name,
							Datum main_arg, const void *extra, Size extralen,
							BackgroundWorkerHandle **handle);
extern void history_worker_prepare(void);
extern void history_record_failures(List *entries);

/* refresh.c */
typedef struct RefreshOutcome
{
	char	   *target;
	const char *status;
	int64		batch_rows;
	int64		speed_rows;
	int64		output_rows;
} RefreshOutcome;

extern List *refresh_targets(const char *target_text);

#endif							/* SERVING_LAYER_H */
