/*-------------------------------------------------------------------------
 *
 * build.h
 *	  Build a serving table's new contents beside it: new heap, rows,
 *	  index copies, statistics (build.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_BUILD_H
#define SL_BUILD_H

#include "nodes/pg_list.h"

#include "merge_types.h"

/* What the build made, and the counts it produced. */
typedef struct BuildResult
{
	Oid			target_relid;
	Oid			new_relid;
	List	   *index_pairs;	/* list of (old index oid, new index oid),
								 * as a flat list of OIDs */
	int64		batch_rows;
	int64		speed_rows;
	int64		output_rows;
	bool		retired;		/* old storage left for retire.c to drop */
	const char *merged_by;		/* how the rows were merged, for verbose */
} BuildResult;

extern BuildResult *build_new_contents(const MergePlan *plan,
									   Oid target_relid,
									   const char *display);

#endif							/* SL_BUILD_H */
