/*-------------------------------------------------------------------------
 *
 * large_alloc.h
 *	  The large working memory of a refresh, in transparent huge pages
 *	  where Linux offers them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_LARGE_ALLOC_H
#define SL_LARGE_ALLOC_H

#include "utils/palloc.h"

/* below this, an allocation is left to the kernel's 4 kB pages */
#define SL_LARGE_ALLOC_MIN	((Size) 4 * 1024 * 1024)

extern void *sl_alloc_large(MemoryContext cxt, Size size, bool zero);

#endif							/* SL_LARGE_ALLOC_H */
