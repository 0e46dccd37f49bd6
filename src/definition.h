/*-------------------------------------------------------------------------
 *
 * definition.h
 *	  What a serving table is made from: its name (TargetName) and its
 *	  definition (Definition), as serving_layer_define() receives it and
 *	  serving_layer_config stores it.
 *
 * These two structs travel through the whole refresh: target.c parses the
 * name, catalog.c reads and writes definitions, merge_plan.c validates one
 * into a merge plan (merge_types.h), refresh.c runs it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_DEFINITION_H
#define SL_DEFINITION_H

#include "nodes/pg_list.h"
#include "utils/jsonb.h"

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

/* How a refresh puts the new contents in place (define's "mode"). */
typedef enum RefreshMode
{
	REFRESH_MODE_SWAP,			/* build beside, swap the storage */
	REFRESH_MODE_APPLY			/* apply the differences as row changes */
} RefreshMode;

/*
 * A definition as stored: key, merge and speed_columns are either what the
 * user gave (NIL/NULL for the defaults) or, once stored, the effective ones.
 *
 * The layers are bound by name: batch_name and speed_name are the stored,
 * schema-qualified and quoted names (NULL for the classic layout, which
 * finds its tables through search_path), and batch and speed the relations
 * they name now, found again by every refresh (layers_resolve()).
 */
typedef struct Definition
{
	TargetName *target;
	char	   *batch_name;
	char	   *speed_name;
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
	char	   *time_column;	/* NULL: no time boundary */
	char	   *boundary;		/* set with serving_layer_set_boundary(), as
								 * text; NULL: derived at each refresh */
	char	   *last_boundary;	/* the boundary the last refresh used */
	int64		last_batch_rows;	/* batch rows of the last successful
									 * refresh; -1: none */
	TargetName *live_view;		/* NULL: none */
	RefreshMode mode;
} Definition;

#endif							/* SL_DEFINITION_H */
