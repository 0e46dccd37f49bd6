/*-------------------------------------------------------------------------
 *
 * catalog.h
 *	  The definition catalog (serving_layer_config) and the privilege rules
 *	  around it (catalog.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_CATALOG_H
#define SL_CATALOG_H

#include "definition.h"
#include "merge_types.h"

extern Definition *catalog_lookup(const TargetName *target);
extern List *catalog_list(void);
extern void catalog_store(const Definition *def, const MergePlan *plan);
extern void catalog_delete(const TargetName *target);
extern void catalog_set_boundary(const TargetName *target,
								 const char *boundary);
extern void catalog_record_refresh(const TargetName *target,
								   const char *boundary, int64 batch_rows);
extern void catalog_check_owner(const Definition *def, const char *action);
extern void check_layer_privileges(const MergePlan *plan);
extern void check_target_privileges(const TargetName *target);

#endif							/* SL_CATALOG_H */
