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
extern Definition *catalog_lock(const TargetName *target, bool wait,
								bool *busy);
extern List *catalog_list(void);
extern void catalog_store(const Definition *def, const MergePlan *plan);
extern void catalog_delete(const TargetName *target);
extern void catalog_set_boundary(const TargetName *target,
								 const char *boundary);
extern void catalog_record_refresh(const TargetName *target,
								   const char *boundary, int64 batch_rows);

/* what the caller of catalog_check_owner() is about to do */
typedef enum CatalogAction
{
	CATALOG_CHANGE,
	CATALOG_FORGET
} CatalogAction;

extern void catalog_check_owner(const Definition *def, CatalogAction action);
extern void check_layer_privileges(const MergePlan *plan);
extern void check_target_privileges(const TargetName *target);

#endif							/* SL_CATALOG_H */
