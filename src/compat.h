/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  The differences between the PostgreSQL majors serving_layer supports
 *	  (15, 17 and 18; 16 builds too but is not tested), in one place.
 *
 * The code is written against the newest API (18's); this header maps it
 * onto the older majors, as TimescaleDB's compat.h does, so that no
 * #if PG_VERSION_NUM appears in the logic.  Each block names the major that
 * changed the API.  Include it after postgres.h in every file that uses one
 * of the names below.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERVING_LAYER_COMPAT_H
#define SERVING_LAYER_COMPAT_H

#include "access/genam.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "utils/acl.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/regproc.h"

#if PG_VERSION_NUM < 150000
#error "serving_layer needs PostgreSQL 15 or later"
#endif

/*
 * 16 moved the varlena macros (VARDATA_ANY, VARSIZE_ANY_EXHDR, ...) out of
 * postgres.h into varatt.h.
 */
#if PG_VERSION_NUM >= 160000
#include "varatt.h"
#endif

/*
 * 16 replaced the per-class ownership and privilege checks
 * (pg_class_ownercheck, pg_namespace_aclcheck, ...) by object_ownercheck()
 * and object_aclcheck(), which take the catalog's OID.  On 15 the classes
 * serving_layer checks map to the old functions; any other class is a
 * programming error.
 */
#if PG_VERSION_NUM < 160000
static inline bool
object_ownercheck(Oid classid, Oid objectid, Oid roleid)
{
	switch (classid)
	{
		case RelationRelationId:
			return pg_class_ownercheck(objectid, roleid);
		case NamespaceRelationId:
			return pg_namespace_ownercheck(objectid, roleid);
		default:
			elog(ERROR, "object_ownercheck: catalog %u is not mapped for PostgreSQL 15",
				 classid);
	}
	return false;				/* keep the compiler quiet */
}

static inline AclResult
object_aclcheck(Oid classid, Oid objectid, Oid roleid, AclMode mode)
{
	switch (classid)
	{
		case NamespaceRelationId:
			return pg_namespace_aclcheck(objectid, roleid, mode);
		default:
			elog(ERROR, "object_aclcheck: catalog %u is not mapped for PostgreSQL 15",
				 classid);
	}
	return ACLCHECK_NO_PRIV;	/* keep the compiler quiet */
}
#endif

/*
 * 16 gave stringToQualifiedNameList() a soft-error context; NULL keeps the
 * old behaviour (errors are raised).  regproc.h is included above, so its
 * declaration is not rewritten by this macro.
 */
#if PG_VERSION_NUM < 160000
#define stringToQualifiedNameList(string, escontext) \
	stringToQualifiedNameList(string)
#endif

/*
 * 16 renamed relfilenodes to relfilelocators in the relation cache: the
 * rd_*Subid fields that say in which subtransaction a relation got new
 * storage, and the function that records it.
 */
#if PG_VERSION_NUM < 160000
#define rd_newRelfilelocatorSubid rd_newRelfilenodeSubid
#define rd_firstRelfilelocatorSubid rd_firstRelfilenodeSubid
#define RelationAssumeNewRelfilelocator(relation) \
	RelationAssumeNewRelfilenode(relation)
#endif

/*
 * relation_forget_smgr
 *		After swapping two relations' storage, close their smgr links.
 *
 * Up to 16, both relation cache entries keep an smgr link that the
 * invalidation at the next CommandCounterIncrement() leaves dangling, so
 * core's swap_relation_files() closes them (RelationCloseSmgrByOid).  17
 * gave smgr relations a lifetime of their own (they are closed at the end
 * of the transaction and survive invalidation), removed that function and
 * its call in swap_relation_files(); nothing is left to do.
 */
static inline void
relation_forget_smgr(Oid relid)
{
#if PG_VERSION_NUM < 170000
	RelationCloseSmgrByOid(relid);
#else
	(void) relid;
#endif
}

/*
 * 18 added pg_class.relallfrozen, the number of all-frozen pages, which a
 * storage swap exchanges with relpages, reltuples and relallvisible (as
 * 18's swap_relation_files() does).  Before 18 there is nothing to set.
 */
static inline void
class_swap_allfrozen(Form_pg_class f1, Form_pg_class f2)
{
#if PG_VERSION_NUM >= 180000
	int32		tmp = f1->relallfrozen;

	f1->relallfrozen = f2->relallfrozen;
	f2->relallfrozen = tmp;
#else
	(void) f1;
	(void) f2;
#endif
}

static inline void
class_set_allfrozen(Form_pg_class form, int32 pages)
{
#if PG_VERSION_NUM >= 180000
	form->relallfrozen = pages;
#else
	(void) form;
	(void) pages;
#endif
}

/*
 * 18 gave index_beginscan() the scan's instrumentation (for EXPLAIN's index
 * search counts), NULL when nobody counts.
 */
static inline IndexScanDesc
index_scan_begin(Relation heap, Relation index, Snapshot snapshot, int nkeys)
{
#if PG_VERSION_NUM >= 180000
	return index_beginscan(heap, index, snapshot, NULL, nkeys, 0);
#else
	return index_beginscan(heap, index, snapshot, nkeys, 0);
#endif
}

#endif							/* SERVING_LAYER_COMPAT_H */
