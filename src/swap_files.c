/*-------------------------------------------------------------------------
 *
 * swap_files.c
 *	  Code adapted from PostgreSQL and pg_repack: exchange the storage of
 *	  two relations in pg_class, hand TOAST tables over by link, and give
 *	  TOAST tables the names of their heaps.
 *
 * Sources, followed as of PostgreSQL 15 (REL_15_STABLE), checked against
 * 17 and 18 (compat.h maps what differs: the relfilelocator names of 16,
 * the smgr close that 17 dropped, 18's relallfrozen):
 *	  - swap_relations() follows swap_relation_files() in
 *		src/backend/commands/cluster.c, which is static there;
 *	  - swap_toast_names() follows the end of finish_heap_swap() in the same
 *		file (the TOAST table renamed pg_toast_<heap oid> and its relrewrite
 *		reset) and pg_repack's repack_swap() (lib/repack.c), which renames
 *		two live TOAST tables through a temporary name because both exist
 *		at once.
 *
 * Deviations from swap_relation_files():
 *	  - only plain, non-mapped relations of the same kind, access method
 *		and persistence (a serving table and the new heap make_new_heap()
 *		made from it, or an index and its copy): relam and relpersistence
 *		are checked equal instead of swapped, the relation map is never
 *		involved, and no access method dependency changes;
 *	  - relfrozenxid and relminmxid are swapped, not set to a cutoff: the
 *		new heap's rows were inserted frozen and its horizons are the ones
 *		make_new_heap() gave it;
 *	  - the size statistics are swapped as there, but the caller may first
 *		set the second relation's (the new heap's) from what the build
 *		counted, in the same pg_class update: one update per relation;
 *	  - TOAST tables are always exchanged by link (swap_toast_by_content
 *		false), and for heaps only; index pairs are swapped by their own
 *		calls, as there is no REINDEX afterwards (the copies were built
 *		beforehand);
 *	  - no recursion, no pg_class-is-the-target case.
 * Deviations from finish_heap_swap(): the transient heap is not dropped
 * here (retire.c decides when), and when it still exists its TOAST table
 * is renamed after it, as pg_repack does, instead of being dropped first.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/toast_internals.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_class.h"
#include "commands/tablecmds.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/syscache.h"

#include "compat.h"
#include "swap_files.h"

/*
 * relink_toast
 *		Make a TOAST table (if any) depend on a new heap.  A TOAST table's
 *		only dependency is the INTERNAL one on its heap, as
 *		swap_relation_files() notes.
 */
static void
relink_toast(Oid heapid, Oid toastid)
{
	ObjectAddress heap;
	ObjectAddress toast;
	long		count;

	if (!OidIsValid(toastid))
		return;
	count = deleteDependencyRecordsFor(RelationRelationId, toastid, false);
	if (count != 1)
		elog(ERROR, "expected one dependency record for TOAST table, found %ld",
			 count);
	heap.classId = toast.classId = RelationRelationId;
	heap.objectSubId = toast.objectSubId = 0;
	heap.objectId = heapid;
	toast.objectId = toastid;
	recordDependencyOn(&toast, &heap, DEPENDENCY_INTERNAL);
}

/*
 * swap_relations
 *		Exchange the storage of r1 and r2: relfilenode, tablespace, size
 *		statistics and frozen horizons, and with toast_links their TOAST
 *		tables (by link).  With r2_stats, r2's size statistics are first set
 *		to those (they then go to r1).  Each pg_class row is updated once.
 */
void
swap_relations(Oid r1, Oid r2, bool toast_links, const RelSizeStats *r2_stats)
{
	Relation	pg_class = table_open(RelationRelationId, RowExclusiveLock);
	HeapTuple	tup1 = SearchSysCacheCopy1(RELOID, ObjectIdGetDatum(r1));
	HeapTuple	tup2 = SearchSysCacheCopy1(RELOID, ObjectIdGetDatum(r2));
	Form_pg_class f1;
	Form_pg_class f2;
	CatalogIndexState indstate;
	Relation	rel1;
	Relation	rel2;

	if (!HeapTupleIsValid(tup1))
		elog(ERROR, "cache lookup failed for relation %u", r1);
	if (!HeapTupleIsValid(tup2))
		elog(ERROR, "cache lookup failed for relation %u", r2);
	f1 = (Form_pg_class) GETSTRUCT(tup1);
	f2 = (Form_pg_class) GETSTRUCT(tup2);

	if (!OidIsValid(f1->relfilenode) || !OidIsValid(f2->relfilenode))
		elog(ERROR, "cannot swap the storage of mapped relations %u and %u",
			 r1, r2);
	if (f1->relkind != f2->relkind || f1->relam != f2->relam ||
		f1->relpersistence != f2->relpersistence)
		elog(ERROR, "cannot swap the storage of relations %u and %u of different kinds",
			 r1, r2);

	if (r2_stats != NULL)
	{
		f2->relpages = (int32) r2_stats->pages;
		f2->reltuples = r2_stats->tuples;
		f2->relallvisible = (int32) r2_stats->allvisible;
		class_set_allfrozen(f2, (int32) r2_stats->allfrozen);
	}

#define SWAP_FIELD(type, field) \
	do { type tmp = f1->field; f1->field = f2->field; f2->field = tmp; } while (0)
	SWAP_FIELD(Oid, relfilenode);
	SWAP_FIELD(Oid, reltablespace);
	SWAP_FIELD(int32, relpages);
	SWAP_FIELD(float4, reltuples);
	SWAP_FIELD(int32, relallvisible);
	SWAP_FIELD(TransactionId, relfrozenxid);
	SWAP_FIELD(MultiXactId, relminmxid);
	if (toast_links)
		SWAP_FIELD(Oid, reltoastrelid);
#undef SWAP_FIELD
	class_swap_allfrozen(f1, f2);

	/*
	 * r1's storage is now new in this transaction and r2's is not; tell the
	 * relation cache, as core does, so that wal_level=minimal skips WAL and
	 * syncs the right files at commit.
	 */
	rel1 = relation_open(r1, NoLock);
	rel2 = relation_open(r2, NoLock);
	rel2->rd_createSubid = rel1->rd_createSubid;
	rel2->rd_newRelfilelocatorSubid = rel1->rd_newRelfilelocatorSubid;
	rel2->rd_firstRelfilelocatorSubid = rel1->rd_firstRelfilelocatorSubid;
	RelationAssumeNewRelfilelocator(rel1);
	relation_close(rel1, NoLock);
	relation_close(rel2, NoLock);

	indstate = CatalogOpenIndexes(pg_class);
	CatalogTupleUpdateWithInfo(pg_class, &tup1->t_self, tup1, indstate);
	CatalogTupleUpdateWithInfo(pg_class, &tup2->t_self, tup2, indstate);
	CatalogCloseIndexes(indstate);

	/* as core: the change to r2 is internal, and so is ours to r1 */
	InvokeObjectPostAlterHookArg(RelationRelationId, r1, 0, InvalidOid, true);
	InvokeObjectPostAlterHookArg(RelationRelationId, r2, 0, InvalidOid, true);

	if (toast_links)
	{
		relink_toast(r1, f1->reltoastrelid);
		relink_toast(r2, f2->reltoastrelid);
	}

	heap_freetuple(tup1);
	heap_freetuple(tup2);
	table_close(pg_class, RowExclusiveLock);

	/* both smgr links are stale now, up to 16; see swap_relation_files() */
	relation_forget_smgr(r1);
	relation_forget_smgr(r2);
	CommandCounterIncrement();
}

/*
 * toast_of
 *		The TOAST table of a heap, or InvalidOid.
 */
static Oid
toast_of(Oid heap)
{
	Relation	rel = table_open(heap, NoLock);
	Oid			toast = rel->rd_rel->reltoastrelid;

	table_close(rel, NoLock);
	return toast;
}

/*
 * rename_toast
 *		Rename a TOAST table and its index to <prefix><heap oid><suffix> and
 *		<prefix><heap oid><suffix>_index.
 */
static void
rename_toast(Oid toast, Oid heap, const char *suffix)
{
	char		name[NAMEDATALEN];

	snprintf(name, sizeof(name), "pg_toast_%u%s", heap, suffix);
	RenameRelationInternal(toast, name, true, false);
	snprintf(name, sizeof(name), "pg_toast_%u%s_index", heap, suffix);
	RenameRelationInternal(toast_get_valid_index(toast, AccessExclusiveLock),
						   name, true, true);
	CommandCounterIncrement();
}

/*
 * swap_toast_names
 *		After swap_relations() with TOAST links: give heap1's TOAST table
 *		(and its index) the name pg_toast_<heap1>, and, when heap2 still
 *		exists, heap2's TOAST table the name pg_toast_<heap2>.
 *
 * The names are only names (TOAST tables are found by OID), but users and
 * tools reading the catalogs go by them.  heap1's TOAST table came from the
 * new heap made in this transaction, whose relrewrite points at the old
 * TOAST table; it is reset as finish_heap_swap() does, or logical decoding
 * would take the serving table's TOAST rows for a rewrite's and skip them.
 */
void
swap_toast_names(Oid heap1, Oid heap2)
{
	Oid			toast1 = toast_of(heap1);
	Oid			toast2 = OidIsValid(heap2) ? toast_of(heap2) : InvalidOid;

	/* toast2 holds the name toast1 needs: move toast1 out of its way first */
	if (OidIsValid(toast1) && OidIsValid(toast2))
		rename_toast(toast1, heap1, "_new");
	if (OidIsValid(toast2))
		rename_toast(toast2, heap2, "");
	if (OidIsValid(toast1))
	{
		rename_toast(toast1, heap1, "");
		ResetRelRewrite(toast1);
		CommandCounterIncrement();
	}
}
