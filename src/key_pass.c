/*-------------------------------------------------------------------------
 *
 * key_pass.c
 *	  The C merge's first pass over the batch keys, shared with a parallel
 *	  worker.
 *
 * The first pass (fast_merge.c, step 1) reads every batch key to find the
 * hashes that occur more than once; it is a fifth of a refresh and needs
 * nothing from the new heap, so the leader and one parallel worker (as for
 * a parallel CREATE INDEX, under max_parallel_maintenance_workers) each read
 * part of the batch table with a parallel heap scan and add its key hashes
 * to one set in the parallel context's dynamic shared memory, slots claimed
 * with compare-and-swap.  The set cannot grow while both use it, so it is
 * sized from pg_class.reltuples; if it or the set of repeated hashes gets
 * too full, the pass is abandoned and fast_merge.c runs its own, serial
 * one.  The ParallelContext machinery gives the worker the leader's
 * transaction, snapshot, user and settings, and reports its errors.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/parallel.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/bufmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "serving_layer.h"
#include "fast_merge.h"

#define KEY_PASS_SHARED		UINT64CONST(0x534C000000000001)
#define KEY_PASS_SCAN		UINT64CONST(0x534C000000000002)
#define KEY_PASS_KEYS		UINT64CONST(0x534C000000000003)
#define KEY_PASS_DUPS		UINT64CONST(0x534C000000000004)

/* a table with fewer pages is not worth a worker */
#define KEY_PASS_MIN_PAGES	4096

/* each participant adds its count to the shared one this often */
#define KEY_PASS_BATCH		4096

typedef struct KeyPassColumn
{
	bool		key;
	Oid			typid;
	Oid			collid;
} KeyPassColumn;

typedef struct KeyPassShared
{
	Oid			relid;
	uint64		keymask;		/* slots of the key set - 1 */
	uint64		dupmask;		/* slots of the set of repeated hashes - 1 */
	pg_atomic_uint64 keycount;
	pg_atomic_uint64 dupcount;
	pg_atomic_uint32 full;		/* a set went past 70% */
	int			ncols;
	KeyPassColumn cols[FLEXIBLE_ARRAY_MEMBER];
} KeyPassShared;

PGDLLEXPORT void sl_key_pass_worker(dsm_segment *seg, shm_toc *toc);

/*
 * shared_add
 *		Add a fingerprint (never 0) to a shared set; false if it was there.
 *		The participants stop soon after the set is 70% full, so a free slot
 *		is found; were it not, the set is marked full, which abandons the
 *		pass.
 */
static bool
shared_add(KeyPassShared *shared, pg_atomic_uint32 *slots, uint64 mask,
		   uint32 fp)
{
	uint64		i = fp & mask;

	for (uint64 probes = 0; probes <= mask; probes++, i = (i + 1) & mask)
	{
		uint32		cur = pg_atomic_read_u32(&slots[i]);

		if (cur == 0)
		{
			if (pg_atomic_compare_exchange_u32(&slots[i], &cur, fp))
				return true;
			/* another participant took the slot: cur is its value now */
		}
		if (cur == fp)
			return false;
	}
	pg_atomic_write_u32(&shared->full, 1);
	return true;
}

/*
 * count_added
 *		Add a participant's new entries to a shared count; true when the set
 *		is too full to go on.
 */
static bool
count_added(KeyPassShared *shared, pg_atomic_uint64 *count, uint64 mask,
			uint64 added)
{
	uint64		total = pg_atomic_add_fetch_u64(count, added);

	if (total * 10 > (mask + 1) * 7)
		pg_atomic_write_u32(&shared->full, 1);
	return pg_atomic_read_u32(&shared->full) != 0;
}

/*
 * participate
 *		Read this participant's share of the batch table and add its key
 *		hashes; hashes already there go into the set of repeated hashes.
 */
static void
participate(KeyPassShared *shared, ParallelTableScanDesc pscan,
			pg_atomic_uint32 *keys, pg_atomic_uint32 *dups)
{
	Relation	rel = table_open(shared->relid, AccessShareLock);
	TableScanDesc scan = table_beginscan_parallel(rel, pscan);
	TupleTableSlot *slot = MakeSingleTupleTableSlot(RelationGetDescr(rel),
													&TTSOpsHeapTuple);
	MemoryContext rowcxt = AllocSetContextCreate(CurrentMemoryContext,
												 "serving_layer key pass row",
												 ALLOCSET_DEFAULT_SIZES);
	FastColumn *cols = palloc0(sizeof(FastColumn) * shared->ncols);
	int			lastkey = 0;
	uint64		nkeys = 0;
	uint64		ndups = 0;
	HeapTuple	tuple;

	for (int i = 0; i < shared->ncols; i++)
	{
		cols[i].acc = ACC_SUM_INT;	/* not a key: not looked at */
		if (shared->cols[i].key)
		{
			fast_key_column(&cols[i], shared->cols[i].typid,
							shared->cols[i].collid);
			lastkey = i + 1;
		}
	}

	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		MemoryContext oldcxt;
		uint32		fp;

		CHECK_FOR_INTERRUPTS();
		ExecStoreHeapTuple(tuple, slot, false);
		slot_getsomeattrs(slot, lastkey);
		oldcxt = MemoryContextSwitchTo(rowcxt);
		fp = HASHSET_FP(group_key_hash(cols, shared->ncols, slot->tts_values,
									   slot->tts_isnull));
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(rowcxt);

		if (shared_add(shared, keys, shared->keymask, fp))
			nkeys++;
		else if (shared_add(shared, dups, shared->dupmask, fp))
			ndups++;
		if (nkeys + ndups >= KEY_PASS_BATCH)
		{
			bool		full;

			full = count_added(shared, &shared->keycount, shared->keymask, nkeys);
			full |= count_added(shared, &shared->dupcount, shared->dupmask, ndups);
			nkeys = ndups = 0;
			if (full)
				break;
		}
	}
	(void) count_added(shared, &shared->keycount, shared->keymask, nkeys);
	(void) count_added(shared, &shared->dupcount, shared->dupmask, ndups);

	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, NoLock);
}

/*
 * sl_key_pass_worker
 *		The parallel worker's entry point.
 */
void
sl_key_pass_worker(dsm_segment *seg pg_attribute_unused(), shm_toc *toc)
{
	participate(shm_toc_lookup(toc, KEY_PASS_SHARED, false),
				shm_toc_lookup(toc, KEY_PASS_SCAN, false),
				shm_toc_lookup(toc, KEY_PASS_KEYS, false),
				shm_toc_lookup(toc, KEY_PASS_DUPS, false));
}

/*
 * pow2_slots
 *		Slots for n entries at most 70% full, a power of two.
 */
static uint64
pow2_slots(uint64 n)
{
	uint64		size = 1024;

	while (size * 7 < n * 10)
		size *= 2;
	return size;
}

/*
 * key_pass_parallel
 *		The first pass with a parallel worker, over the batch table rel
 *		(read directly: see batch_scan.c) expected to hold about reltuples
 *		rows: the repeated hashes go into duphashes, and the number of
 *		workers that took part into *nworkers.  False, with nothing done,
 *		when it cannot be run or was abandoned; *over_budget is set when the
 *		sets would not fit maxbytes.
 */
bool
key_pass_parallel(Relation rel, FastColumn *cols, int ncols, double reltuples,
				  Size maxbytes, HashSet *duphashes, bool *over_budget,
				  int *nworkers)
{
	ParallelContext *pcxt;
	KeyPassShared *shared;
	ParallelTableScanDesc pscan;
	pg_atomic_uint32 *keys;
	pg_atomic_uint32 *dups;
	Snapshot	snapshot = GetActiveSnapshot();
	Size		sharedsize = add_size(offsetof(KeyPassShared, cols),
									  mul_size(sizeof(KeyPassColumn), ncols));
	Size		scansize;
	uint64		nkeyslots;
	uint64		ndupslots;
	bool		done;

	if (max_parallel_maintenance_workers < 1 || reltuples <= 0 ||
		RelationGetNumberOfBlocks(rel) < KEY_PASS_MIN_PAGES ||
		!IsMVCCSnapshot(snapshot))
		return false;
	/*
	 * Room for 10% more rows than counted, and for one repeated hash in 16
	 * rows; at least 64k slots, more than the participants can add between
	 * two looks at the counts.
	 */
	nkeyslots = pow2_slots(Max((uint64) (reltuples * 1.1), 65536));
	ndupslots = pow2_slots(Max((uint64) (reltuples / 16), 65536));
	if ((nkeyslots + ndupslots) * sizeof(pg_atomic_uint32) > maxbytes ||
		nkeyslots > PG_UINT32_MAX)
	{
		*over_budget = true;
		return false;
	}

	EnterParallelMode();
	pcxt = CreateParallelContext("serving_layer", "sl_key_pass_worker", 1);
	scansize = table_parallelscan_estimate(rel, snapshot);
	shm_toc_estimate_chunk(&pcxt->estimator, sharedsize);
	shm_toc_estimate_chunk(&pcxt->estimator, scansize);
	shm_toc_estimate_chunk(&pcxt->estimator, sizeof(pg_atomic_uint32) * nkeyslots);
	shm_toc_estimate_chunk(&pcxt->estimator, sizeof(pg_atomic_uint32) * ndupslots);
	shm_toc_estimate_keys(&pcxt->estimator, 4);
	InitializeParallelDSM(pcxt);

	shared = shm_toc_allocate(pcxt->toc, sharedsize);
	shared->relid = RelationGetRelid(rel);
	shared->keymask = nkeyslots - 1;
	shared->dupmask = ndupslots - 1;
	pg_atomic_init_u64(&shared->keycount, 0);
	pg_atomic_init_u64(&shared->dupcount, 0);
	pg_atomic_init_u32(&shared->full, 0);
	shared->ncols = ncols;
	for (int i = 0; i < ncols; i++)
	{
		shared->cols[i].key = cols[i].acc == ACC_KEY;
		shared->cols[i].typid = cols[i].typid;
		shared->cols[i].collid = cols[i].collid;
	}
	pscan = shm_toc_allocate(pcxt->toc, scansize);
	table_parallelscan_initialize(rel, pscan, snapshot);
	keys = shm_toc_allocate(pcxt->toc, sizeof(pg_atomic_uint32) * nkeyslots);
	for (uint64 i = 0; i < nkeyslots; i++)
		pg_atomic_init_u32(&keys[i], 0);
	dups = shm_toc_allocate(pcxt->toc, sizeof(pg_atomic_uint32) * ndupslots);
	for (uint64 i = 0; i < ndupslots; i++)
		pg_atomic_init_u32(&dups[i], 0);
	shm_toc_insert(pcxt->toc, KEY_PASS_SHARED, shared);
	shm_toc_insert(pcxt->toc, KEY_PASS_SCAN, pscan);
	shm_toc_insert(pcxt->toc, KEY_PASS_KEYS, keys);
	shm_toc_insert(pcxt->toc, KEY_PASS_DUPS, dups);

	/* the leader reads its part whether or not a worker could start */
	LaunchParallelWorkers(pcxt);
	participate(shared, pscan, keys, dups);
	WaitForParallelWorkersToFinish(pcxt);
	*nworkers = pcxt->nworkers_launched;

	done = pg_atomic_read_u32(&shared->full) == 0;
	for (uint64 i = 0; done && i < ndupslots; i++)
	{
		uint32		fp = pg_atomic_read_u32(&dups[i]);

		if (fp != 0)
			(void) hashset_add(duphashes, fp, maxbytes, over_budget);
	}

	DestroyParallelContext(pcxt);
	ExitParallelMode();
	return done;
}
