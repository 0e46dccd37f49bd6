/*-------------------------------------------------------------------------
 *
 * apply_tids.c
 *	  Where the serving rows of changed keys were left, by key hash, for
 *	  mode 'apply' following the change (apply_delta.c).
 *
 * A refresh that follows the change finds each changed key's serving row
 * through the unique index on the key: a descent of the index, the largest
 * part of a refresh in which few keys changed after reading the speed
 * layer.  But the last refresh that changed the key knew where its row
 * then was, and the saved state keeps that place (the tuple's TID) with
 * the key's entry.  The next refresh fetches the row there instead, and
 * takes it only if it is still the key's row (find_serving_row() in
 * apply_delta_apply.c; else it looks the key up as before): nothing but
 * the refreshes changes the table while the state is used (apply_watch.c),
 * a VACUUM FULL or CLUSTER gives it a new relfilenode (which the state
 * notes), and a plain VACUUM never moves a row.
 *
 * The map holds the places of the keys the refresh compares (the changed
 * ones, from the state, then where their rows are after the refresh
 * changed them), for delta_state() to save.  Keyed by the 64-bit key hash:
 * two keys of one hash share a place, which only costs a lookup.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "apply_tids.h"
#include "hash_mix.h"

typedef struct TidEntry
{
	uint64		keyhash;
	ItemPointerData tid;
	char		status;			/* simplehash's */
} TidEntry;

#define SH_PREFIX		tidhash
#define SH_ELEMENT_TYPE TidEntry
#define SH_KEY_TYPE		uint64
#define SH_KEY			keyhash
#define SH_HASH_KEY(tb, key)	((uint32) sl_mix64(key))
#define SH_EQUAL(tb, a, b)		((a) == (b))
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

struct TidMap
{
	tidhash_hash *hash;
};

/*
 * tidmap_create
 *		An empty map, in cxt.
 */
TidMap *
tidmap_create(MemoryContext cxt)
{
	TidMap	   *map = MemoryContextAlloc(cxt, sizeof(TidMap));

	map->hash = tidhash_create(cxt, 1024, NULL);
	return map;
}

/*
 * tidmap_put
 *		Note the place of the row of the key of hash keyhash (an invalid
 *		tid: not known).
 */
void
tidmap_put(TidMap *map, uint64 keyhash, ItemPointer tid)
{
	bool		found;
	TidEntry   *e = tidhash_insert(map->hash, keyhash, &found);

	e->tid = *tid;
}

/*
 * tidmap_get
 *		The place noted for the key of hash keyhash into *tid; false (and an
 *		invalid *tid) if none is.
 */
bool
tidmap_get(TidMap *map, uint64 keyhash, ItemPointer tid)
{
	TidEntry   *e = tidhash_lookup(map->hash, keyhash);

	if (e == NULL || !ItemPointerIsValid(&e->tid))
	{
		ItemPointerSetInvalid(tid);
		return false;
	}
	*tid = e->tid;
	return true;
}
