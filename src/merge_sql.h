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

#include "lib/stringinfo.h"

#include "definition.h"
#include "merge_types.h"

extern char *merge_sql_select(const MergePlan *plan, bool batch_side,
							  int *nparams, Oid **paramtypes,
							  Datum **paramvalues);
extern char *merge_sql_layer(const MergePlan *plan, bool speed,
							 bool keys_only);
extern int	merge_sql_layer_params(const MergePlan *plan, bool speed,
								   Oid **paramtypes, Datum **paramvalues);
extern char *merge_sql_type(Oid typid, int32 typmod);
extern char *merge_sql_operator(Oid opr);
extern void merge_sql_collation(StringInfo buf, Oid collid);
extern char *merge_sql_create_table(const MergePlan *plan,
									const TargetName *target);

#endif							/* SL_MERGE_SQL_H */
