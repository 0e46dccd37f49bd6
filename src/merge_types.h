/*-------------------------------------------------------------------------
 *
 * merge_types.h
 *	  The merge plan: a definition validated against the batch and speed
 *	  tables, one PlanColumn per batch column saying how it is computed.
 *
 * Types only: merge_plan.c builds a plan (merge_plan.h), merge_kinds.c
 * fills in the measures' merges (merge_kinds.h), and the build reads it
 * (merge_sql.c, fast_merge.c, batch_scan.c).  Keeping the types apart from
 * the functions keeps merge_plan.c and merge_kinds.c from including each
 * other.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_MERGE_TYPES_H
#define SL_MERGE_TYPES_H

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

#endif							/* SL_MERGE_TYPES_H */
