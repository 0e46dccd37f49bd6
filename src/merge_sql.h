/*-------------------------------------------------------------------------
 *
 * merge_sql.h
 *	  A merge plan as SQL text: the GROUP BY query computing the new
 *	  contents, one layer's SELECT, and the CREATE TABLE of a serving table
 *	  that does not exist yet (merge_sql.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_MERGE_SQL_H
#define SL_MERGE_SQL_H

#include "definition.h"
#include "merge_types.h"

extern char *merge_sql_select(const MergePlan *plan, int *nparams,
							  Oid **paramtypes, Datum **paramvalues);
extern char *merge_sql_layer(const MergePlan *plan, bool speed,
							 bool keys_only);
extern char *merge_sql_create_table(const MergePlan *plan,
									const TargetName *target);

#endif							/* SL_MERGE_SQL_H */
