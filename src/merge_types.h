/*-------------------------------------------------------------------------
 *
 * merge_types.h
 *	  The merge plan: a definition validated against the batch and speed
 *	  tables, one PlanColumn per batch column saying how it is computed.
 *
 * Types only: merge_plan.c builds a plan (merge_plan.h), merge_kinds.c
 * fills in the measures' merges (merge_kinds.h), and the build reads it
 * (merge_sql.c, fast_merge.c, layer_read.c).  Keeping the types apart from
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

/* A MERGE_AGGREGATE that is pg_catalog's sum, min or max (the C merge's). */
typedef enum MergeBuiltin
{
	BUILTIN_NONE,				/* any other aggregate */
	BUILTIN_SUM,
	BUILTIN_MIN,
	BUILTIN_MAX
} MergeBuiltin;

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
	MergeBuiltin builtin;		/* which of pg_catalog's sum, min, max */
	char	   *speed_name;		/* the speed column merged into this one */
	Oid			speed_typid;
	int32		speed_typmod;
	Oid			speed_collid;
} PlanColumn;

/*
 * The time boundary of a plan (boundary.c).  Batch rows are taken where the
 * time column is at or before the boundary, speed rows where it is after it;
 * rows whose time is NULL are always taken.  Without a boundary value
 * (derived from an empty batch layer) every speed row is taken.
 */
typedef struct TimeBoundary
{
	int			column;			/* index in MergePlan.columns */
	Oid			typid;			/* the batch column's type */
	Oid			le_opr;			/* <= and > of its btree opclass */
	Oid			gt_opr;
	bool		is_explicit;	/* set with serving_layer_set_boundary() */
	bool		has_value;		/* false: no boundary (no batch row) */
	Datum		value;
	bool		live;			/* the live view's speed part: speed rows
								 * with a NULL time are in the serving table
								 * already, so leave them out */
} TimeBoundary;

typedef struct MergePlan
{
	Oid			batch;
	Oid			speed;
	int			ncolumns;
	PlanColumn *columns;		/* in batch column order */
	int			nkeys;
	bool		picks;			/* some column is MERGE_SPEED/MERGE_BATCH */
	TimeBoundary *boundary;		/* NULL without a time column */
} MergePlan;

#endif							/* SL_MERGE_TYPES_H */
