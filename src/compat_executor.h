/*-------------------------------------------------------------------------
 *
 * compat_executor.h
 *	  The differences between the supported PostgreSQL majors in the
 *	  executor interfaces that mode 'apply' (apply.c) uses to change rows.
 *
 * Kept apart from compat.h because it needs the executor's headers, which
 * most files do not include (and whose plan node "Group" would clash with
 * the C merge's).  Written against 18's API, as compat.h is.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERVING_LAYER_COMPAT_EXECUTOR_H
#define SERVING_LAYER_COMPAT_EXECUTOR_H

#include "executor/executor.h"
#include "nodes/bitmapset.h"
#include "parser/parse_relation.h"

/*
 * 16 gave EvalPlanQualInit() the list of result relations (NIL: none, as
 * the logical replication apply worker passes).
 */
#if PG_VERSION_NUM < 160000
#define EvalPlanQualInit(epqstate, parentestate, subplan, auxrowmarks, \
						 epqParam, resultRelations) \
	EvalPlanQualInit(epqstate, parentestate, subplan, auxrowmarks, epqParam)
#endif

/*
 * exec_init_one_relation
 *		Give an executor state a range table of the one relation rte.
 *
 * 16 moved a relation's permissions out of its range table entry into a
 * list of RTEPermissionInfo that ExecInitRangeTable() takes too; 18 added
 * the set of relations left after pruning.
 */
static inline void
exec_init_one_relation(EState *estate, RangeTblEntry *rte)
{
#if PG_VERSION_NUM >= 160000
	List	   *perminfos = NIL;

	addRTEPermissionInfo(&perminfos, rte);
#endif
#if PG_VERSION_NUM >= 180000
	ExecInitRangeTable(estate, list_make1(rte), perminfos,
					   bms_make_singleton(1));
#elif PG_VERSION_NUM >= 160000
	ExecInitRangeTable(estate, list_make1(rte), perminfos);
#else
	ExecInitRangeTable(estate, list_make1(rte));
#endif
}

#endif							/* SERVING_LAYER_COMPAT_EXECUTOR_H */
