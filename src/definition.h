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

#endif							/* SL_DEFINITION_H */
