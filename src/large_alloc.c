/*-------------------------------------------------------------------------
 *
 * large_alloc.c
 *	  The large working memory of a refresh (the C merge's group tables
 *	  and their arenas, the state mode 'apply' saves), allocated from a
 *	  memory context as any other and marked for transparent huge pages.
 *
 * A refresh runs in a backend of its own (a session, a pg_cron job) and
 * fills tens of megabytes it has just allocated: every 4 kB page of it
 * costs a page fault and the kernel's zeroing at its first touch.  On the
 * virtual machines measured here (test/bench/report/apply.md) that was a
 * fifth of a refresh in which 1 % of the keys changed, about 2 us a page;
 * a 2 MB huge page costs one fault.  PostgreSQL's own memory takes 4 kB
 * pages (its huge_pages setting is for shared memory), so the extension
 * asks for huge pages itself: madvise(MADV_HUGEPAGE) over the part of a
 * large allocation that covers whole 2 MB pages, before anything touches
 * it.  The kernel decides: with transparent_hugepage "never" nothing
 * changes, with "madvise" (Debian's default) these ranges get huge pages,
 * with "always" they had them already.  serving_layer.transparent_huge_pages
 * = off leaves the kernel's defaults alone.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#ifdef __linux__
#include <sys/mman.h>
#endif

#include "large_alloc.h"
#include "settings.h"

#define HUGE_PAGE_SIZE	((uintptr_t) 2 * 1024 * 1024)

/*
 * sl_alloc_large
 *		size bytes from cxt (zeroed with zero), of which the whole 2 MB
 *		pages are marked for transparent huge pages when size is at least
 *		SL_LARGE_ALLOC_MIN and the setting allows.  The memory is freed with
 *		cxt or pfree() as any other; the mark stays on the address range,
 *		where it only lets the kernel use huge pages.  A kernel that refuses
 *		the advice (EINVAL without THP) is not an error.
 */
void *
sl_alloc_large(MemoryContext cxt, Size size, bool zero)
{
	char	   *p = MemoryContextAllocExtended(cxt, size, MCXT_ALLOC_HUGE);

#if defined(__linux__) && defined(MADV_HUGEPAGE)
	if (sl_transparent_huge_pages && size >= SL_LARGE_ALLOC_MIN)
	{
		uintptr_t	start = TYPEALIGN(HUGE_PAGE_SIZE, p);
		uintptr_t	end = TYPEALIGN_DOWN(HUGE_PAGE_SIZE, (uintptr_t) p + size);

		if (start < end)
			(void) madvise((void *) start, end - start, MADV_HUGEPAGE);
	}
#endif
	if (zero)
		memset(p, 0, size);
	return p;
}
