/*-------------------------------------------------------------------------
 *
 * hash_mix.h
 *	  Mixing a 64-bit hash once more, for the open-addressing tables and
 *	  filters of the C merge and of mode 'apply'.
 *
 * Those tables hold selections of the keys, and a selection is often made
 * by the keys' hashes (rows picked by hashtext(key) % N: a shard, a sample,
 * a batch job split in parts).  The key hashes here are the key types'
 * hash functions with seed 0, whose low 32 bits are hashtext()'s, so the
 * keys of such a selection share their low bits; placed in a table by
 * those bits, they fill a narrow band of its slots and every lookup walks
 * it.  Every table is indexed by the hash mixed once more.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_HASH_MIX_H
#define SL_HASH_MIX_H

/*
 * sl_mix64
 *		A 64-bit finalizer (splitmix64's), for hashing a value passed by
 *		value in one step, and for placing a hash in a table.
 */
static inline uint64
sl_mix64(uint64 x)
{
	x ^= x >> 30;
	x *= UINT64CONST(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64CONST(0x94d049bb133111eb);
	x ^= x >> 31;
	return x;
}

#endif							/* SL_HASH_MIX_H */
