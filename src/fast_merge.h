/*-------------------------------------------------------------------------
 *
 * fast_merge.h
 *	  Types shared by the files of the C merge: fast_merge.c (the passes),
 *	  spill.c (partitions in temporary files when memory is short, the
 *	  batch rows' way into them in spill_batch.c, their records in
 *	  spill_file.c, spill_file.h), group_table.c (hash tables
 *	  of groups, sets and filters of key hashes) and merge_acc.c (merging
 *	  measure values, the columns).
 *
 *-------------------------------------------------------------------------
 */
#ifndef FAST_MERGE_H
#define FAST_MERGE_H

#include "access/htup.h"
#include "common/int128.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "storage/buffile.h"
#include "utils/relcache.h"

#include "hash_mix.h"
#include "heap_writer.h"
#include "merge_types.h"

/*
 * Prefetch a cache line where the compiler can (GCC and clang); elsewhere
 * nothing, which is only slower.
 */
#if defined(__GNUC__) || defined(__clang__)
#define SL_PREFETCH(addr)	__builtin_prefetch(addr)
#else
#define SL_PREFETCH(addr)	((void) (addr))
#endif

typedef enum AccKind
{
	ACC_KEY,
	ACC_SUM_INT,				/* int2, int4, int8: exact in 128 bits */
	ACC_SUM_FLOAT4,
	ACC_SUM_FLOAT8,
	ACC_SUM_NUMERIC,
	ACC_MIN,
	ACC_MAX
} AccKind;

typedef struct FastColumn
{
	AccKind		acc;
	Oid			typid;
	int32		typmod;
	int16		typlen;
	bool		typbyval;
	char		typalign;
	char		typstorage;		/* TYPSTORAGE_PLAIN: no short varlena */
	Oid			collid;
	bool		bytes_key;		/* keys: text compared and hashed as bytes */
	FmgrInfo	hash;			/* keys: extended hash function */
	FmgrInfo	eq;				/* keys: equality */
	FmgrInfo	cmp;			/* min, max: btree comparison */
} FastColumn;

/*
 * One measure or key of a group (24 bytes).  Integer sums use core's INT128
 * (common/int128.h): a native 128-bit integer where the compiler has one,
 * else a pair of 64-bit halves.
 */
typedef struct Acc
{
	union
	{
		INT128		isum;		/* ACC_SUM_INT */
		Datum		value;		/* everything else */
	}			v;
	bool		isnull;
} Acc;

typedef struct Group
{
	uint64		hash;
	bool		matched;		/* a speed group some batch key merged */
	bool		applied;		/* apply_delta_scan.c: its row applied */
	uint32		part;			/* apply_delta.c: its batch part, linked */
	Acc			acc[FLEXIBLE_ARRAY_MEMBER];
} Group;

/*
 * Open-addressing hash table of groups, by key.  A one-byte tag per slot,
 * in an array small enough to stay in the CPU caches, answers most lookups
 * of batch keys that have no speed group without touching the groups.
 * Groups and their keys are carved out of large blocks (an arena): a
 * palloc per group would round each one up to a power of two and add a
 * chunk header, which nearly doubled the memory of the speed groups.
 */
#define SLOT_TAG(h) ((uint8) (((h) >> 57) + 1))

typedef struct GroupTable
{
	uint8	   *tags;			/* per slot: 0 empty, else 7 bits of hash + 1 */
	Group	  **groups;
	uint64		mask;
	uint64		count;
	MemoryContext cxt;
	char	   *arena;			/* free space left in the current block */
	Size		arena_left;
	Size		arena_block;	/* size of the first blocks */
	Size		arena_next;		/* size of the next block */
} GroupTable;

/*
 * Open-addressing set of key hashes, of which it keeps the low 32 bits (0
 * marks an empty slot; a hash whose low bits are 0 is kept as 1), half the
 * memory of whole hashes.  Two keys whose kept bits agree are taken for
 * duplicates (about n * n / 2^33 pairs of n keys: some thousands at 10M):
 * that costs them a trip through the table of duplicate groups, which
 * still merges rows by their real keys.
 */
typedef struct HashSet
{
	MemoryContext cxt;
	uint32	   *slots;
	uint64		mask;
	uint64		count;
} HashSet;

#define HASHSET_FP(h)	((uint32) (h) != 0 ? (uint32) (h) : 1)
/* the slot of a kept hash: mixed once more (hash_mix.h) */
#define HASHSET_SLOT(fp)	sl_mix64((uint64) (fp))

/*
 * A Bloom filter of key hashes, blocked: the bits of a hash all lie in one
 * cache line, so that a test costs at most one miss.  About ten bits per
 * key, a few percent of false positives: a fifth of the memory of a set of
 * 32-bit hashes, for uses that only lose time on a false positive.
 */
typedef struct KeyFilter
{
	uint64	   *words;			/* nblocks blocks of 8 words, 64-aligned */
	void	   *raw;			/* as allocated */
	uint64		nblocks;		/* 0: no filter */
	int			k;				/* bits per key */
	uint64		pending[32];	/* hashes added, not yet set */
	int			npending;
} KeyFilter;

/*
 * The partitions of one level (spill.c): the first nmem stay in memory,
 * the others are written to their files.
 */
typedef struct SpillSet
{
	int			nparts;			/* a power of 2 */
	int			shift;			/* partition = (hash >> shift) % nparts */
	int			bits;			/* log2(nparts) */
	int			nmem;			/* partitions below this one stay in memory */
	BufFile   **speed;			/* speed rows and groups */
	BufFile   **rows;			/* batch rows */
	BufFile   **hashes;			/* batch key hashes (without global_dups) */
	int64	   *nspeed;
	int64	   *nrows;
	bool	   *nosplit;		/* splitting its parent did not divide it */
} SpillSet;

static inline int
spill_part_of(SpillSet *set, uint64 h)
{
	return (int) ((h >> set->shift) & (set->nparts - 1));
}

typedef struct BatchRing BatchRing; /* spill_batch.c */

/*
 * Once the merge spills, its tables are kept to this size (or the budget,
 * if smaller) rather than the whole budget: more, smaller partitions are
 * cheaper, as their tables stay in the CPU caches better and the memory
 * freed after one partition is reused for the next instead of being given
 * back to the kernel and faulted in again (measured: a third fewer page
 * faults, and less CPU time, at 16MB than at 192MB).
 */
#define SPILL_TABLE_BYTES	((Size) 16 * 1024 * 1024)

/*
 * The state of one merge.  The memory budget (bytes) bounds what the
 * tables hold together: the key set of the first pass alone, then the
 * speed groups, the duplicate hashes and the duplicate groups.
 */
typedef struct FastMerge
{
	int			ncols;
	FastColumn *cols;
	Size		budget;
	MemoryContext cxt;			/* the merge's; everything below is in it */
	GroupTable	speed;
	GroupTable	dups;
	HashSet		keys;			/* every batch key hash (first pass) */
	KeyFilter	keyfilter;		/* ... when the set would not fit */
	HashSet		duphashes;		/* hashes seen more than once */
	bool		global_dups;	/* duphashes covers the whole batch layer */
	Size		speed_limit;	/* memory the speed groups may fill */
	bool		speed_direct;	/* speed rows straight to the partitions */
	HeapWriter *writer;
	struct LayerReader *batch;	/* the batch layer (layer_read.h) */
	float4		batch_reltuples;
	float4		speed_reltuples;
	MemoryContext rowcxt;		/* reset per written row */
	Datum	   *values;
	bool	   *nulls;
	int64		batch_rows;
	int64		speed_rows;
	bool		over_budget;	/* the first pass's key set did not fit */
	/* spilling (spill.c) */
	SpillSet   *spill;			/* the partitions, once the speed groups spilled */
	BatchRing  *ring;			/* batch rows waiting for the filter */
	BufFile    *dupfile;		/* duplicate rows left for a later round */
	bool		dups_full;
	double		group_bytes;	/* memory one speed group takes, measured */
	KeyFilter	speedfilter;	/* speed key hashes of spilled partitions */
	bool		filter_batch;	/* batch rows not in it written at once */
	TupleDesc	rowdesc;		/* the plan's columns */
	TupleTableSlot *rowslot;	/* a spilled batch row read back */
	char	   *readbuf;		/* the record last read (spill_file.c) */
	Size		readbuf_size;
	uint32		readword;		/* its length and kind */
	uint64		readhash;
	StringInfoData sbuf;		/* a record being written */
	int			spill_partitions;	/* partitions made, at every depth */
	int			spill_inmem;	/* partitions kept in memory */
	int			spill_depth;	/* deepest repartitioning */
	int64		spill_bytes;	/* bytes written to temporary files */
	int64		batch_direct;	/* batch rows written without a partition */
	double		mem_expected;	/* speed rows expected in memory (spill.c) */
	int64		mem_rows;		/* ... read so far */
	bool		mem_checked;	/* whether they were projected */
	/* batch key hashes waiting to go into the set, their slots prefetched */
	uint64		pending[32];
	int			npending;
} FastMerge;

/* fast_merge.c */
extern Size fm_groups_memory(FastMerge *fm);
extern void fm_batch_row_hashed(FastMerge *fm, TupleTableSlot *slot, uint64 h);
extern void fm_write_groups(FastMerge *fm);
extern void fm_add_group(FastMerge *fm, GroupTable *t, uint64 h,
						 Datum *values, bool *nulls, Acc *accs);

/* spill.c */
extern void spill_start(FastMerge *fm);
extern void spill_speed_groups(FastMerge *fm);
extern void spill_speed_row(FastMerge *fm, TupleTableSlot *slot, uint64 h);
extern void spill_speed_done(FastMerge *fm);
extern void spill_merge(FastMerge *fm);

/* spill_batch.c */
extern void spill_batch_row(TupleTableSlot *slot, void *arg);
extern void spill_batch_done(FastMerge *fm);

/* spill_file.c (the rest in spill_file.h) */
extern void spill_row_write(FastMerge *fm, BufFile **file, uint64 h,
							TupleTableSlot *slot);
extern TupleTableSlot *spill_row_read(FastMerge *fm, BufFile *file,
									  uint64 *h);
extern void spill_file_rewind(BufFile *file);

/* group_table.c */
extern uint64 group_key_hash(FastColumn *cols, int ncols, Datum *values,
							 bool *nulls);
extern bool group_key_equal(FastColumn *cols, int ncols, Group *g,
							Datum *values, bool *nulls);
extern void group_table_init(GroupTable *t, Size arena_block);
extern void group_table_reset(GroupTable *t);
extern void group_table_reserve(GroupTable *t, uint64 expected);
extern Group *group_table_find(GroupTable *t, FastColumn *cols, int ncols,
							   uint64 h, Datum *values, bool *nulls,
							   bool insert);
extern void group_table_prefetch_slot(GroupTable *t, uint64 h);
extern void group_table_prefetch_group(GroupTable *t, uint64 h);
extern void hashset_init(HashSet *s, uint64 expected, Size maxbytes);
extern bool hashset_add(HashSet *s, uint64 h, Size maxbytes, bool *full);
extern bool hashset_contains(HashSet *s, uint64 h);
extern void keyfilter_init(KeyFilter *f, uint64 expected, Size maxbytes);
extern void keyfilter_free(KeyFilter *f);
extern Size keyfilter_bytes(KeyFilter *f);
extern void keyfilter_prefetch(KeyFilter *f, uint64 h);
extern void keyfilter_add(KeyFilter *f, uint64 h);
extern bool keyfilter_test(KeyFilter *f, uint64 h);
extern bool keyfilter_test_add(KeyFilter *f, uint64 h);

/* merge_acc.c */
extern FastColumn *fast_columns(const MergePlan *plan);
extern void acc_add(FastColumn *col, Acc *acc, Datum value, bool isnull);
extern void acc_free(FastColumn *col, Acc *acc);
extern void acc_merge(FastColumn *col, Acc *dst, Acc *src);
extern Datum acc_result(FastColumn *col, Acc *acc);

#endif							/* FAST_MERGE_H */
