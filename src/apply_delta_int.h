/*-------------------------------------------------------------------------
 *
 * apply_delta_int.h
 *	  The state of one refresh following the change, shared by the files
 *	  that read the layers (apply_delta.c), that apply the changed keys'
 *	  rows (apply_delta_apply.c, apply_delta_scan.c) and that save and
 *	  restore what a refresh leaves for the next one (apply_delta_state.c).
 *	  Private to them; apply_delta.h is the interface.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_APPLY_DELTA_INT_H
#define SL_APPLY_DELTA_INT_H

#include "apply_compare.h"
#include "apply_delta.h"
#include "apply_tids.h"
#include "fast_merge.h"
#include "heap_writer.h"

/*
 * The changed keys are a selection of the keys, and a selection can share
 * the low bits of its hashes (say, keys picked by hashtext(key) % 1024,
 * which are the low bits of the key hash here): the open-addressing tables
 * that hold only some of the keys index them by the hash mixed once more,
 * or their entries cluster and lookups walk the clusters (measured: 112
 * probes a batch row, a third of the refresh).
 */
#define CHANGED_HASH(h)	sl_mix64(h)

struct DeltaScan
{
	const MergePlan *plan;
	int			ncols;
	FastColumn *cols;
	Size		budget;
	MemoryContext cxt;
	MemoryContext rowcxt;		/* reset per row */
	GroupTable	speed;			/* speed groups; matched: the key changed */

	/*
	 * The batch parts: per key, its batch rows merged, hashed by
	 * CHANGED_HASH.  matched marks a key known to have no batch rows (only
	 * parts restored from the state or taken from the serving table have
	 * it; after a read of the batch layer, a key without a part has none).
	 */
	GroupTable	batch;

	/*
	 * A speed group's link to its key's batch part: 1 + its index in partv
	 * (Group.part; 0: not linked, look the part up in batch).  Set where
	 * the part is made for the group, so that merging and saving find it
	 * without probing batch again; cleared when batch is emptied.
	 */
	Group	  **partv;
	uint32		npartv;
	uint32		maxpartv;
	HashSet		changed;		/* hashes of the changed keys */
	bool		over_budget;	/* the speed groups did not fit */
	bool		collect_all;	/* the batch rows of every speed key kept */
	bool		parts;			/* batch has every speed key's part */
	bool		skip_batch;		/* parts restored: the batch layer not read */
	bool		stored;			/* batch rows are the table's tuples */
	bool		saved_parts;	/* the saved state has the parts */
	int64		saved_version;	/* ... and this batch watch version */
	int64		speed_rows;
	int64		batch_rows;
	uint64		batch_hash;
	int64		changed_keys;
	int64		new_keys;		/* changed keys the saved state has not */
	char	  **gone;			/* saved entries of keys gone from speed */
	int			ngone;
	int			maxgone;
	char	  **kept;			/* saved entries of unchanged groups ... */
	uint32	   *keptlen;		/* ... and their lengths */
	int64		nkept;
	int64		maxkept;
	TidMap	   *tids;			/* where the compared keys' rows are */
	int64		tid_hits;		/* rows found where the state had them */
	Datum	   *values;
	bool	   *nulls;
	/* delta_apply() */
	HeapWriter *writer;
	KeyLookup  *lookup;
	const RowShape *shape;
	ApplyChanges *ch;
	TupleTableSlot *keyslot;	/* a key to look up, of the serving type */
	AttrNumber *servatt;		/* per column: serving attribute, 0-based */
	bool		deleting;
	uint64		row_keyhash;	/* the key hash of the next row */
	/* the next row's key: not looked up yet, found (in the old slot), none */
	enum
	{
		LOOKED_UP_NOT,
		LOOKED_UP_FOUND,
		LOOKED_UP_NONE
	}			looked_up;
};

/* apply_delta.c */
extern void delta_link_part(DeltaScan *ds, Group *sg, Group *part);
extern Group *delta_linked_part(DeltaScan *ds, Group *sg);

/* apply_delta_apply.c */
extern void delta_apply_group(DeltaScan *ds, Group *sg, TupleTableSlot *found,
							  bool absent);

/* apply_delta_scan.c */
extern bool delta_scan_pays(Relation rel, uint64 nlookups,
							uint64 nplaced);
extern void delta_scan_apply(DeltaScan *ds, Relation rel, Snapshot snapshot);

/*
 * apply_delta_state.c.  An entry of a saved state begins with its length in
 * bytes (uint32, the header included; its top bit set when a place
 * follows), the hash of its key (as the speed group had it) and the hash
 * of its accumulators (uint64 each), and, when the refresh knew it, where
 * the key's serving row was (ItemPointerData: apply_tids.c), unaligned.
 * The key columns follow (delta_entry_key()).
 */
#define DELTA_ENTRY_HAS_TID	0x80000000
#define DELTA_ENTRY_TID		(sizeof(uint32) + 2 * sizeof(uint64))
/* the shortest header, of an entry without a place */
#define DELTA_ENTRY_HEADER	DELTA_ENTRY_TID

static inline uint32
delta_entry_length(const char *entry)
{
	uint32		len;

	memcpy(&len, entry, sizeof(uint32));
	return len & ~DELTA_ENTRY_HAS_TID;
}

static inline bool
delta_entry_has_tid(const char *entry)
{
	uint32		len;

	memcpy(&len, entry, sizeof(uint32));
	return (len & DELTA_ENTRY_HAS_TID) != 0;
}

static inline uint64
delta_entry_key_hash(const char *entry)
{
	uint64		h;

	memcpy(&h, entry + sizeof(uint32), sizeof(uint64));
	return h;
}

static inline uint64
delta_entry_group_hash(const char *entry)
{
	uint64		h;

	memcpy(&h, entry + sizeof(uint32) + sizeof(uint64), sizeof(uint64));
	return h;
}

/* the place in the entry into *tid, or an invalid one */
static inline void
delta_entry_tid(const char *entry, ItemPointer tid)
{
	if (delta_entry_has_tid(entry))
		memcpy(tid, entry + DELTA_ENTRY_TID, sizeof(ItemPointerData));
	else
		ItemPointerSetInvalid(tid);
}

/* where the entry's key columns begin */
static inline char *
delta_entry_key(char *entry)
{
	return entry + DELTA_ENTRY_TID +
		(delta_entry_has_tid(entry) ? sizeof(ItemPointerData) : 0);
}

extern uint64 delta_group_hash(DeltaScan *ds, Group *g);
extern char *delta_state_entries(DeltaScan *ds, bytea *saved, char **end);
extern char *delta_next_entry(char *entry, char *end);
extern void delta_restore_key(DeltaScan *ds, char **p);
extern void delta_keep_entry(DeltaScan *ds, char *start, char *end);
extern void delta_restore_part(DeltaScan *ds, char **p, uint64 keyhash,
							   bool keep, Group *sg);

#endif							/* SL_APPLY_DELTA_INT_H */
