/*-------------------------------------------------------------------------
 *
 * target.h
 *	  Parse the "target" argument and find the serving table it names
 *	  (target.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_TARGET_H
#define SL_TARGET_H

#include "storage/lockdefs.h"

#include "definition.h"

extern TargetName *target_parse(const char *text, bool for_define);
extern Oid	target_relid(const TargetName *target);
extern Oid	target_namespace(const TargetName *target);
extern Oid	target_lock(const TargetName *target, LOCKMODE lockmode);
extern const char *target_label(const TargetName *target);

#endif							/* SL_TARGET_H */
