/*-------------------------------------------------------------------------
 *
 * swap_files.h
 *	  Exchange two relations' storage in pg_class and name their TOAST
 *	  tables, adapted from PostgreSQL's cluster.c and pg_repack
 *	  (swap_files.c, whose header names the sources and deviations).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_SWAP_FILES_H
#define SL_SWAP_FILES_H

#include "storage/block.h"

/* size statistics to give a new heap before its storage is swapped */
typedef struct RelSizeStats
{
	BlockNumber pages;
	float4		tuples;
	BlockNumber allvisible;
	BlockNumber allfrozen;		/* pg_class.relallfrozen, from 18 on */
} RelSizeStats;

extern void swap_relations(Oid r1, Oid r2, bool toast_links,
						   const RelSizeStats *r2_stats);
extern void swap_toast_names(Oid heap1, Oid heap2);

#endif							/* SL_SWAP_FILES_H */
