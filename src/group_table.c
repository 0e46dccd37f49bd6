/*-------------------------------------------------------------------------
 *
 * group_table.c
 *	  The hash tables of the C merge: groups by key (open addressing, the
 *	  hash and a one-byte tag per slot kept inline), sets of 64-bit key
 *	  hashes and Bloom filters of them; and how keys are hashed and
 *	  compared.
 *
 * Keys are hashed with their type's extended hash function and compared
 * with its equality operator, under the column's collation, and a NULL
 * equals a NULL, which is how GROUP BY groups them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "utils/datum.h"
#include "utils/memutils.h"

#include "compat.h"
#include "fast_merge.h"
#include "hash_mix.h"
#include "large_alloc.h"

/*
 * key_text
 *		A text key, detoasted if it has to be.
 */
static inline text *
key_text(Datum d)
{
	return (text *) PG_DETOAST_DATUM_PACKED(d);
}

/*
 * group_key_hash
 *		64-bit hash of a row's key (never 0).  Text keys of a deterministic
 *		collation are hashed as bytes, which is what their hash function
 *		does after looking the collation up, once per call.
 */
uint64
group_key_hash(FastColumn *cols, int ncols, Datum *values, bool *nulls)
{
	uint64		h = 0;

	for (int i = 0; i < ncols; i++)
	{
		FastColumn *col = &cols[i];
		uint64		kh;

		if (col->acc != ACC_KEY)
			continue;
		if (nulls[i])
			kh = UINT64CONST(0x9e3779b97f4a7c15);
		else if (col->bytes_key)
		{
			text	   *t = key_text(values[i]);

			kh = hash_bytes_extended((unsigned char *) VARDATA_ANY(t),
									 VARSIZE_ANY_EXHDR(t), 0);
		}
		else
			kh = DatumGetUInt64(FunctionCall2Coll(&col->hash, col->collid,
												  values[i], UInt64GetDatum(0)));
		h = hash_combine64(h, kh);
	}
	return h == 0 ? 1 : h;
}

/*
 * group_key_equal
 *		Whether a group's key equals a row's key; NULL equals NULL, as in
 *		GROUP BY.  Text of a deterministic collation is equal when its bytes
 *		are, as texteq decides.
 */
bool
group_key_equal(FastColumn *cols, int ncols, Group *g, Datum *values,
				bool *nulls)
{
	for (int i = 0; i < ncols; i++)
	{
		FastColumn *col = &cols[i];

		if (col->acc != ACC_KEY)
			continue;
		if (g->acc[i].isnull || nulls[i])
		{
			if (g->acc[i].isnull != nulls[i])
				return false;
			continue;
		}
		if (col->bytes_key)
		{
			text	   *a = key_text(g->acc[i].v.value);
			text	   *b = key_text(values[i]);
			Size		len = VARSIZE_ANY_EXHDR(a);

			if (len != VARSIZE_ANY_EXHDR(b) ||
				memcmp(VARDATA_ANY(a), VARDATA_ANY(b), len) != 0)
				return false;
			continue;
		}
		if (!DatumGetBool(FunctionCall2Coll(&col->eq, col->collid,
											g->acc[i].v.value, values[i])))
			return false;
	}
	return true;
}

/* how many times arena_block the arena's blocks grow to */
#define ARENA_GROWTH	8

/*
 * arena_alloc
 *		size bytes (MAXALIGNed) from the table's arena.  Its blocks double
 *		from arena_block up to ARENA_GROWTH times that, so that a large
 *		table's blocks are large enough for huge pages (large_alloc.c)
 *		while a small one's stay small.
 */
static void *
arena_alloc(GroupTable *t, Size size)
{
	void	   *p;

	size = MAXALIGN(size);
	if (size > t->arena_block / 8)
		return MemoryContextAlloc(t->cxt, size);
	if (size > t->arena_left)
	{
		t->arena = sl_alloc_large(t->cxt, t->arena_next, false);
		t->arena_left = t->arena_next;
		if (t->arena_next < ARENA_GROWTH * t->arena_block)
			t->arena_next *= 2;
	}
	p = t->arena;
	t->arena += size;
	t->arena_left -= size;
	return p;
}

/*
 * group_table_init / group_table_find
 *		The group hash table, its groups carved out of blocks of
 *		arena_block bytes.  group_table_find returns the group of the key, a
 *		new one when insert is set, or NULL.
 */
void
group_table_init(GroupTable *t, Size arena_block)
{
	t->arena_block = arena_block;
	t->cxt = AllocSetContextCreate(CurrentMemoryContext,
								   "serving_layer groups",
								   ALLOCSET_DEFAULT_SIZES);
	t->mask = 1023;
	t->count = 0;
	t->groups = MemoryContextAllocZero(t->cxt, sizeof(Group *) * (t->mask + 1));
	t->tags = MemoryContextAllocZero(t->cxt, t->mask + 1);
	t->arena = NULL;
	t->arena_left = 0;
	t->arena_next = t->arena_block;
}

/*
 * group_table_reset
 *		Empty the table and free its groups and their values, keeping its
 *		memory context.
 */
void
group_table_reset(GroupTable *t)
{
	MemoryContextReset(t->cxt);
	t->mask = 1023;
	t->count = 0;
	t->groups = MemoryContextAllocZero(t->cxt, sizeof(Group *) * (t->mask + 1));
	t->tags = MemoryContextAllocZero(t->cxt, t->mask + 1);
	t->arena = NULL;
	t->arena_left = 0;
	t->arena_next = t->arena_block;
}

/*
 * group_table_reserve
 *		Size an empty table for expected groups at once: growing it later
 *		holds the old and the new arrays together.
 */
void
group_table_reserve(GroupTable *t, uint64 expected)
{
	uint64		size = t->mask + 1;

	if (t->count > 0)
		return;
	while (size * 7 < expected * 10 && size <= PG_UINT32_MAX)
		size *= 2;
	if (size == t->mask + 1)
		return;
	pfree(t->groups);
	pfree(t->tags);
	t->mask = size - 1;
	t->groups = sl_alloc_large(t->cxt, sizeof(Group *) * size, true);
	t->tags = sl_alloc_large(t->cxt, size, true);
}

static void
group_table_grow(GroupTable *t)
{
	uint64		newmask = t->mask * 2 + 1;
	Group	  **groups = sl_alloc_large(t->cxt, sizeof(Group *) * (newmask + 1),
										true);
	uint8	   *tags = sl_alloc_large(t->cxt, newmask + 1, true);

	for (uint64 i = 0; i <= t->mask; i++)
	{
		uint64		j;

		if (t->tags[i] == 0)
			continue;
		for (j = sl_mix64(t->groups[i]->hash) & newmask; tags[j] != 0;
			 j = (j + 1) & newmask)
			;
		groups[j] = t->groups[i];
		tags[j] = t->tags[i];
	}
	pfree(t->groups);
	pfree(t->tags);
	t->groups = groups;
	t->tags = tags;
	t->mask = newmask;
}

Group *
group_table_find(GroupTable *t, FastColumn *cols, int ncols, uint64 h,
				 Datum *values, bool *nulls, bool insert)
{
	/* placed by the hash mixed once more (hash_mix.h) */
	uint64		sh = sl_mix64(h);
	uint64		i;
	Group	   *g;

	for (i = sh & t->mask; t->tags[i] != 0; i = (i + 1) & t->mask)
		if (t->tags[i] == SLOT_TAG(sh) && t->groups[i]->hash == h &&
			group_key_equal(cols, ncols, t->groups[i], values, nulls))
			return t->groups[i];
	if (!insert)
		return NULL;

	g = arena_alloc(t, offsetof(Group, acc) + sizeof(Acc) * ncols);
	memset(g, 0, offsetof(Group, acc) + sizeof(Acc) * ncols);
	g->hash = h;
	for (int c = 0; c < ncols; c++)
	{
		FastColumn *col = &cols[c];

		g->acc[c].isnull = true;
		if (col->acc == ACC_KEY && !nulls[c])
		{
			Datum		d = values[c];
			Size		len;
			void	   *copy;

			g->acc[c].isnull = false;
			if (col->typbyval)
			{
				g->acc[c].v.value = d;
				continue;
			}
			/* the key is kept inline (not as a TOAST pointer) */
			if (col->typlen == -1)
				d = PointerGetDatum(PG_DETOAST_DATUM_PACKED(d));
			len = datumGetSize(d, false, col->typlen);
			copy = arena_alloc(t, len);
			memcpy(copy, DatumGetPointer(d), len);
			g->acc[c].v.value = PointerGetDatum(copy);
		}
	}
	t->groups[i] = g;
	t->tags[i] = SLOT_TAG(sh);
	if (++t->count * 10 > (t->mask + 1) * 7)
		group_table_grow(t);
	return g;
}

/*
 * group_table_prefetch_slot / group_table_prefetch_group
 *		For a caller that knows the keys it will look up a few lookups
 *		ahead: ask for the home slot of hash h (its tag and group pointer),
 *		and, some lookups later, once that has come in, for the first cache
 *		lines of the group it holds, which lie in the order their rows came.
 *		A group displaced to a further slot is not prefetched; that only
 *		costs its miss.
 */
void
group_table_prefetch_slot(GroupTable *t, uint64 h)
{
	uint64		i = sl_mix64(h) & t->mask;

	SL_PREFETCH(&t->tags[i]);
	SL_PREFETCH(&t->groups[i]);
}

void
group_table_prefetch_group(GroupTable *t, uint64 h)
{
	uint64		i = sl_mix64(h) & t->mask;

	if (t->tags[i] == SLOT_TAG(sl_mix64(h)))
	{
		const char *g = (const char *) t->groups[i];

		/* the header and accumulators, and the key after them */
		SL_PREFETCH(g);
		SL_PREFETCH(g + 64);
		SL_PREFETCH(g + 128);
	}
}

/*
 * hashset_add
 *		Add a hash; returns false if it (or another with the same low 32
 *		bits) was there already.  Sets *full instead of growing the set past
 *		maxbytes.
 */
bool
hashset_add(HashSet *s, uint64 h, Size maxbytes, bool *full)
{
	uint32		fp = HASHSET_FP(h);
	uint64		i;

	for (i = HASHSET_SLOT(fp) & s->mask; s->slots[i] != 0; i = (i + 1) & s->mask)
		if (s->slots[i] == fp)
			return false;
	s->slots[i] = fp;
	if (++s->count * 10 > (s->mask + 1) * 7)
	{
		uint64		newmask = s->mask * 2 + 1;
		uint32	   *slots;

		if (sizeof(uint32) * (newmask + 1) > maxbytes || newmask > PG_UINT32_MAX)
		{
			*full = true;
			return true;
		}

		slots = sl_alloc_large(s->cxt, sizeof(uint32) * (newmask + 1), true);
		for (uint64 j = 0; j <= s->mask; j++)
		{
			uint64		k;

			if (s->slots[j] == 0)
				continue;
			for (k = HASHSET_SLOT(s->slots[j]) & newmask; slots[k] != 0;
				 k = (k + 1) & newmask)
				;
			slots[k] = s->slots[j];
		}
		pfree(s->slots);
		s->slots = slots;
		s->mask = newmask;
	}
	return true;
}

/*
 * hashset_contains
 *		Whether a hash is in the set.
 */
bool
hashset_contains(HashSet *s, uint64 h)
{
	uint32		fp = HASHSET_FP(h);

	for (uint64 i = HASHSET_SLOT(fp) & s->mask; s->slots[i] != 0;
		 i = (i + 1) & s->mask)
		if (s->slots[i] == fp)
			return true;
	return false;
}

/*
 * hashset_init
 *		An empty set sized for the expected number of hashes, in the
 *		current memory context.  Sizing it at once, as far as maxbytes
 *		allows, avoids growing it, which holds the old and the new array
 *		together.
 */
void
hashset_init(HashSet *s, uint64 expected, Size maxbytes)
{
	uint64		size = 1024;

	while (size * 7 < expected * 10 && 2 * size * sizeof(uint32) <= maxbytes &&
		   size <= PG_UINT32_MAX / 2)
		size *= 2;
	s->cxt = CurrentMemoryContext;
	s->mask = size - 1;
	s->count = 0;
	s->slots = sl_alloc_large(s->cxt, sizeof(uint32) * size, true);
}

/* bits of filter per expected key; blocks of 512 bits */
#define KEYFILTER_BITS	10
#define KEYFILTER_BLOCK 64

/*
 * keyfilter_init / keyfilter_free / keyfilter_bytes
 *		A filter for the expected number of key hashes, in at most maxbytes
 *		(fewer bits per key then, and more false positives), in the current
 *		memory context; freed; the memory it takes.
 */
void
keyfilter_init(KeyFilter *f, uint64 expected, Size maxbytes)
{
	uint64		bytes = Max(expected, 1024) * KEYFILTER_BITS / 8;
	double		bits_per_key;

	bytes = Min(bytes, maxbytes > KEYFILTER_BLOCK ? maxbytes - KEYFILTER_BLOCK : 0);
	f->nblocks = Max(bytes / KEYFILTER_BLOCK, 1);
	bits_per_key = (double) f->nblocks * KEYFILTER_BLOCK * 8 / Max(expected, 1);
	/* about ln 2 bits per key set, as a Bloom filter wants */
	f->k = (int) Max(1, Min(8, bits_per_key * 0.69));
	f->raw = sl_alloc_large(CurrentMemoryContext,
							f->nblocks * KEYFILTER_BLOCK + KEYFILTER_BLOCK, true);
	f->words = (uint64 *) TYPEALIGN(KEYFILTER_BLOCK, f->raw);
	f->npending = 0;
}

void
keyfilter_free(KeyFilter *f)
{
	if (f->raw != NULL)
		pfree(f->raw);
	f->raw = NULL;
	f->words = NULL;
	f->nblocks = 0;
	f->npending = 0;
}

Size
keyfilter_bytes(KeyFilter *f)
{
	return f->nblocks > 0 ? f->nblocks * KEYFILTER_BLOCK + KEYFILTER_BLOCK : 0;
}

/*
 * filter_block
 *		The block of a hash mixed again (sl_mix64(), since the bits above 32
 *		also choose partitions and the low ones the table's slots): its
 *		high half chooses it.
 */

static inline uint64 *
filter_block(KeyFilter *f, uint64 m)
{
	return f->words + 8 * (((m >> 32) * f->nblocks) >> 32);
}

void
keyfilter_prefetch(KeyFilter *f, uint64 h)
{
	SL_PREFETCH(filter_block(f, sl_mix64(h)));
}

/*
 * keyfilter_test_add / keyfilter_add / keyfilter_test
 *		Whether the hash may be in the filter (false: it is not), adding it
 *		or not.  Its k bits in the block are chosen by double hashing from
 *		the low bits of the mixed hash.
 */
bool
keyfilter_test_add(KeyFilter *f, uint64 h)
{
	uint64		m = sl_mix64(h);
	uint64	   *block = filter_block(f, m);
	uint32		a = m & 511;
	uint32		b = ((m >> 9) & 511) | 1;
	bool		present = true;

	for (int j = 0; j < f->k; j++)
	{
		uint32		bit = (a + j * b) & 511;
		uint64		mask = UINT64CONST(1) << (bit & 63);

		if ((block[bit >> 6] & mask) == 0)
		{
			present = false;
			block[bit >> 6] |= mask;
		}
	}
	return present;
}

/*
 * keyfilter_add / keyfilter_flush
 *		Add a hash: kept pending with the next ones, and set when 32 are,
 *		their blocks fetched into the CPU cache first, all at once (one
 *		miss after the other was 8 % of a spilling refresh at 5M keys).
 */
static void
keyfilter_flush(KeyFilter *f)
{
	for (int i = 0; i < f->npending; i++)
		keyfilter_prefetch(f, f->pending[i]);
	for (int i = 0; i < f->npending; i++)
		(void) keyfilter_test_add(f, f->pending[i]);
	f->npending = 0;
}

void
keyfilter_add(KeyFilter *f, uint64 h)
{
	f->pending[f->npending++] = h;
	if (f->npending == lengthof(f->pending))
		keyfilter_flush(f);
}

bool
keyfilter_test(KeyFilter *f, uint64 h)
{
	uint64		m;
	uint64	   *block;
	uint32		a;
	uint32		b;

	if (f->npending > 0)
		keyfilter_flush(f);
	m = sl_mix64(h);
	block = filter_block(f, m);
	a = m & 511;
	b = ((m >> 9) & 511) | 1;

	for (int j = 0; j < f->k; j++)
	{
		uint32		bit = (a + j * b) & 511;

		if ((block[bit >> 6] & (UINT64CONST(1) << (bit & 63))) == 0)
			return false;
	}
	return true;
}
