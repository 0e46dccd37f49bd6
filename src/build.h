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

#include "definition.h"
#include "heap_writer.h"
#include "merge_types.h"
#include "utils/relcache.h"

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
	int64		changed_rows;	/* mode 'apply': rows changed; else -1 */
	char	   *boundary;		/* the boundary used, as text, or NULL */
	bool		applied;		/* mode 'apply': changed in place, no swap */
	const char *merged_by;		/* how the rows were merged */
	/* milliseconds of each phase, for the progress lines */
	double		fill_ms;
	double		index_ms;
	double		analyze_ms;
	/* mode 'apply' (apply.c): the serving rows scanned, the changes made */
	int64		serving_rows;
	int64		inserted;
	int64		updated;
	int64		deleted;
	double		scan_ms;
	double		apply_ms;
	/* mode 'apply' following the change (apply_delta.c) */
	bool		followed;		/* only the changed keys were compared */
	bool		batch_unread;	/* ... with the batch parts the state kept */
	const char *compared_why;	/* else why the whole table was compared */
	int64		changed_keys;
	int64		speed_groups;
} BuildResult;

/* the caller's identity and settings, while the build runs as the owner */
typedef struct OwnerContext
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
} OwnerContext;

extern void build_enter_owner(Relation oldrel, OwnerContext *ctx);
extern void build_leave_owner(OwnerContext *ctx);
extern void build_merge_prepare(const MergePlan *plan, BuildResult *result,
								const Definition *guard_first);
extern void build_merge_fill(const MergePlan *plan, HeapWriter *writer,
							 BuildResult *result);
extern void build_merge_rows(const MergePlan *plan, HeapWriter *writer,
							 BuildResult *result,
							 const Definition *guard_first);
extern BuildResult *build_new_contents(const MergePlan *plan,
									   Oid target_relid);

#endif							/* SL_BUILD_H */
