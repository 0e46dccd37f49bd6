/*-------------------------------------------------------------------------
 *
 * fast_merge.h
 *	  Types shared by the files of the C merge: fast_merge.c (the passes),
 *	  group_table.c (hash tables of groups and of key hashes) and
 *	  merge_acc.c (merging measure values).
 *
 *-------------------------------------------------------------------------
 */
#ifndef FAST_MERGE_H
#define FAST_MERGE_H

#include "fmgr.h"

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
	Oid			collid;
	FmgrInfo	hash;			/* keys: extended hash function */
	FmgrInfo	eq;				/* keys: equality */
	FmgrInfo	cmp;			/* min, max: btree comparison */
} FastColumn;

/* One measure or key of a group. */
typedef struct Acc
{
	int128		isum;			/* ACC_SUM_INT */
	Datum		value;			/* everything else */
	bool		isnull;
} Acc;

typedef struct Group
{
	uint64		hash;
	bool		matched;		/* a speed group some batch key merged */
	Acc			acc[FLEXIBLE_ARRAY_MEMBER];
} Group;

/*
 * Open-addressing hash table of groups, by key; hashes kept inline.  A
 * one-byte tag per slot, in an array small enough to stay in the CPU
 * caches, answers most lookups of batch keys that have no speed group
 * without touching the slots.
 */
#define SLOT_TAG(h) ((uint8) (((h) >> 57) + 1))
typedef struct GroupSlot
{
	uint64		hash;
	Group	   *group;
} GroupSlot;

typedef struct GroupTable
{
	uint8	   *tags;			/* per slot: 0 empty, else 7 bits of hash + 1 */
	GroupSlot  *slots;
	uint64		mask;
	uint64		count;
	MemoryContext cxt;
} GroupTable;

/* Open-addressing set of 64-bit key hashes; 0 marks an empty slot. */
typedef struct HashSet
{
	MemoryContext cxt;
	uint64	   *slots;
	uint64		mask;
	uint64		count;
} HashSet;

/* group_table.c */
extern uint64 group_key_hash(FastColumn *cols, int ncols, Datum *values,
							 bool *nulls);
extern bool group_key_equal(FastColumn *cols, int ncols, Group *g,
							Datum *values, bool *nulls);
extern void group_table_init(GroupTable *t);
extern Group *group_table_find(GroupTable *t, FastColumn *cols, int ncols,
							   uint64 h, Datum *values, bool *nulls,
							   bool insert);
extern void hashset_init(HashSet *s, uint64 expected, Size maxbytes);
extern bool hashset_add(HashSet *s, uint64 h, Size maxbytes, bool *full);
extern bool hashset_contains(HashSet *s, uint64 h);

/* merge_acc.c */
extern void acc_add(FastColumn *col, Acc *acc, Datum value, bool isnull);
extern void acc_merge(FastColumn *col, Acc *dst, Acc *src);
extern Datum acc_result(FastColumn *col, Acc *acc);

#endif							/* FAST_MERGE_H */
