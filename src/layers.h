/*-------------------------------------------------------------------------
 *
 * layers.h
 *	  Find a definition's batch and speed tables by the names it stores.
 *
 * See layers.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_LAYERS_H
#define SL_LAYERS_H

#include "definition.h"

extern void layers_resolve(Definition *def);
extern char *layers_name(Oid relid);
extern Oid	layers_find(const char *name);

#endif							/* SL_LAYERS_H */
