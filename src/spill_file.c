/*-------------------------------------------------------------------------
 *
 * spill_file.c
 *	  The records of the C merge's temporary files (spill.c): rows and
 *	  groups with their key hashes, and bare key hashes, written compactly
 *	  and read back.
 *
 * A record is its length (the top bit set for a group), its key hash and
 * its bytes, written with one BufFileWrite.  The bytes are a null bitmap
 * and the values of the columns that are not NULL, packed as a heap tuple
 * packs them, without its header: values passed by value as their bytes,
 * unaligned (read back with memcpy), varlenas with a one-byte header where
 * the type allows it (TOAST undone first), so also unaligned, anything
 * else aligned as its type wants, relative to the start of the bytes,
 * which are read back into a MAXALIGNed buffer, so that the values can be
 * used in place.  A group's integer sums take 8 bytes, or their 16 when
 * they do not fit in 64 bits, said by a second bitmap.  Written whole, a
 * row was about twice as long (a tuple header, a group's 24 bytes per
 * column), and all of it went through the kernel's page cache twice.
 *
 * The files are BufFiles of the transaction's resource owner: an error
 * removes them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "utils/memutils.h"

#include "spill_file.h"

#define RECORD_HEADER	(sizeof(uint32) + sizeof(uint64))
#define RECORD_GROUP	((uint32) 1 << 31)

/* the byte and bit of column i in a bitmap */
#define BIT_SET(map, i)		((map)[(i) / 8] |= (uint8) (1 << ((i) % 8)))
#define BIT_TEST(map, i)	(((map)[(i) / 8] & (1 << ((i) % 8))) != 0)

/*
 * file_write / file_read
 *		Write to a temporary file, created on first use in the merge's
 *		memory context; read exactly len bytes, or nothing at the end of
 *		the file if eof_ok (false then).
 */
static void
file_write(FastMerge *fm, BufFile **file, const void *data, size_t len)
{
	if (*file == NULL)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(fm->cxt);

		*file = BufFileCreateTemp(false);
		MemoryContextSwitchTo(oldcxt);
	}
	BufFileWrite(*file, (void *) data, len);
	fm->spill_bytes += len;
}

static bool
file_read(BufFile *file, void *data, size_t len, bool eof_ok)
{
	size_t		got = BufFileRead(file, data, len);

	if (got == len)
		return true;
	if (got == 0 && eof_ok)
		return false;
	ereport(ERROR,
			(errcode_for_file_access(),
			 errmsg("could not read from a temporary file of the C merge: read only %zu of %zu bytes",
					got, len)));
	return false;				/* keep the compiler quiet */
}

/*
 * spill_file_rewind / spill_file_close
 *		Back to the start of a file; close it (which removes it), if open.
 */
void
spill_file_rewind(BufFile *file)
{
	if (BufFileSeek(file, 0, 0, SEEK_SET) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not rewind a temporary file of the C merge")));
}

void
spill_file_close(BufFile **file)
{
	if (*file != NULL)
		BufFileClose(*file);
	*file = NULL;
}

/* the alignment a type asks for, in bytes */
static inline Size
align_of(char typalign)
{
	switch (typalign)
	{
		case TYPALIGN_CHAR:
			return 1;
		case TYPALIGN_SHORT:
			return ALIGNOF_SHORT;
		case TYPALIGN_INT:
			return ALIGNOF_INT;
		default:
			return ALIGNOF_DOUBLE;
	}
}

/* zeros up to an alignment, counted from the record's bytes after its header */
static inline void
pad(StringInfo buf, Size align)
{
	while ((buf->len - RECORD_HEADER) % align != 0)
		appendStringInfoChar(buf, '\0');
}

/*
 * put_value / get_value
 *		A column's value into the record being built, and back from the
 *		record's bytes at *off (advanced past it); by-reference values
 *		point into the bytes.  A one-byte varlena header is never zero, so
 *		a zero byte where a varlena starts is padding before an aligned
 *		four-byte header, as in a heap tuple.
 */
static void
put_value(StringInfo buf, FastColumn *col, Datum d)
{
	if (col->typbyval)
	{
		switch (col->typlen)
		{
			case 1:
				{
					char		v = DatumGetChar(d);

					appendBinaryStringInfo(buf, &v, 1);
					break;
				}
			case 2:
				{
					int16		v = DatumGetInt16(d);

					appendBinaryStringInfo(buf, (char *) &v, 2);
					break;
				}
			case 4:
				{
					int32		v = DatumGetInt32(d);

					appendBinaryStringInfo(buf, (char *) &v, 4);
					break;
				}
			default:
				appendBinaryStringInfo(buf, (char *) &d, sizeof(Datum));
		}
	}
	else if (col->typlen == -1)
	{
		struct varlena *v = PG_DETOAST_DATUM_PACKED(d);

		if (VARATT_IS_SHORT(v))
			appendBinaryStringInfo(buf, (char *) v, VARSIZE_SHORT(v));
		else if (col->typstorage != TYPSTORAGE_PLAIN && VARATT_CAN_MAKE_SHORT(v))
		{
			uint8		hdr;
			Size		len = VARATT_CONVERTED_SHORT_SIZE(v);

			SET_VARSIZE_SHORT(&hdr, len);
			appendBinaryStringInfo(buf, (char *) &hdr, 1);
			appendBinaryStringInfo(buf, VARDATA(v), len - 1);
		}
		else
		{
			pad(buf, align_of(col->typalign));
			appendBinaryStringInfo(buf, (char *) v, VARSIZE(v));
		}
		if ((Pointer) v != DatumGetPointer(d))
			pfree(v);
	}
	else if (col->typlen == -2)
		appendBinaryStringInfo(buf, DatumGetCString(d),
							   strlen(DatumGetCString(d)) + 1);
	else
	{
		pad(buf, align_of(col->typalign));
		appendBinaryStringInfo(buf, DatumGetPointer(d), col->typlen);
	}
}

static Datum
get_value(char *data, Size *off, FastColumn *col)
{
	char	   *p = data + *off;

	if (col->typbyval)
	{
		*off += col->typlen;
		switch (col->typlen)
		{
			case 1:
				return CharGetDatum(*p);
			case 2:
				{
					int16		v;

					memcpy(&v, p, 2);
					return Int16GetDatum(v);
				}
			case 4:
				{
					int32		v;

					memcpy(&v, p, 4);
					return Int32GetDatum(v);
				}
			default:
				{
					Datum		v;

					memcpy(&v, p, sizeof(Datum));
					return v;
				}
		}
	}
	if (col->typlen == -1)
	{
		if (*p == 0)
		{
			*off = TYPEALIGN(align_of(col->typalign), *off);
			p = data + *off;
		}
		*off += VARSIZE_ANY(p);
		return PointerGetDatum(p);
	}
	if (col->typlen == -2)
	{
		*off += strlen(p) + 1;
		return CStringGetDatum(p);
	}
	*off = TYPEALIGN(align_of(col->typalign), *off);
	p = data + *off;
	*off += col->typlen;
	return PointerGetDatum(p);
}

/*
 * record_begin / record_end
 *		Start a record in fm->sbuf with room for its header and its
 *		bitmaps (nmaps of them, zeroed); fill in the header and write it
 *		all at once.
 */
static void
record_begin(FastMerge *fm, int nmaps)
{
	StringInfo	buf = &fm->sbuf;
	int			mapbytes = nmaps * ((fm->ncols + 7) / 8);

	resetStringInfo(buf);
	enlargeStringInfo(buf, RECORD_HEADER + mapbytes);
	memset(buf->data, 0, RECORD_HEADER + mapbytes);
	buf->len = RECORD_HEADER + mapbytes;
}

static void
record_end(FastMerge *fm, BufFile **file, uint64 h, uint32 flags)
{
	StringInfo	buf = &fm->sbuf;
	uint32		word = (uint32) (buf->len - RECORD_HEADER) | flags;

	memcpy(buf->data, &word, sizeof(word));
	memcpy(buf->data + sizeof(word), &h, sizeof(h));
	file_write(fm, file, buf->data, buf->len);
}

/*
 * spill_write_row
 *		A row (values and nulls in plan column order) with its key hash.
 */
void
spill_write_row(FastMerge *fm, BufFile **file, uint64 h, Datum *values,
				bool *nulls)
{
	uint8	   *nullmap;

	record_begin(fm, 1);
	for (int i = 0; i < fm->ncols; i++)
	{
		if (nulls[i])
		{
			nullmap = (uint8 *) fm->sbuf.data + RECORD_HEADER;
			BIT_SET(nullmap, i);
			continue;
		}
		put_value(&fm->sbuf, &fm->cols[i], values[i]);
	}
	record_end(fm, file, h, 0);
}

/*
 * spill_write_group
 *		A group's accumulators (keys included) with its key hash.
 */
void
spill_write_group(FastMerge *fm, BufFile **file, uint64 h, Acc *accs)
{
	int			mapbytes = (fm->ncols + 7) / 8;

	record_begin(fm, 2);
	for (int i = 0; i < fm->ncols; i++)
	{
		FastColumn *col = &fm->cols[i];
		uint8	   *maps = (uint8 *) fm->sbuf.data + RECORD_HEADER;

		if (accs[i].isnull)
		{
			BIT_SET(maps, i);
			continue;
		}
		if (col->acc != ACC_SUM_INT)
		{
			put_value(&fm->sbuf, col, accs[i].v.value);
			continue;
		}
		if (int128_compare(accs[i].v.isum, int64_to_int128(PG_INT64_MIN)) >= 0 &&
			int128_compare(accs[i].v.isum, int64_to_int128(PG_INT64_MAX)) <= 0)
		{
			int64		v = int128_to_int64(accs[i].v.isum);

			appendBinaryStringInfo(&fm->sbuf, (char *) &v, sizeof(v));
		}
		else
		{
			BIT_SET(maps + mapbytes, i);
			appendBinaryStringInfo(&fm->sbuf, (char *) &accs[i].v.isum,
								   sizeof(INT128));
		}
	}
	record_end(fm, file, h, RECORD_GROUP);
}

/*
 * spill_read_record
 *		The next record of a file into fm->readbuf (MAXALIGNed), its key
 *		hash into *h; SPILL_END at the end of the file.
 */
SpillRecord
spill_read_record(FastMerge *fm, BufFile *file, uint64 *h)
{
	char		hdr[RECORD_HEADER];
	uint32		len;

	if (!file_read(file, hdr, RECORD_HEADER, true))
		return SPILL_END;
	memcpy(&fm->readword, hdr, sizeof(uint32));
	memcpy(h, hdr + sizeof(uint32), sizeof(uint64));
	fm->readhash = *h;
	len = fm->readword & ~RECORD_GROUP;
	if (len > fm->readbuf_size)
	{
		if (fm->readbuf != NULL)
			pfree(fm->readbuf);
		fm->readbuf_size = Max(len, 2 * fm->readbuf_size);
		fm->readbuf = MemoryContextAlloc(fm->cxt, fm->readbuf_size);
	}
	if (len > 0)
		file_read(file, fm->readbuf, len, false);
	return (fm->readword & RECORD_GROUP) ? SPILL_GROUP : SPILL_ROW;
}

/*
 * spill_write_again
 *		The record last read, as it is, into another file.
 */
void
spill_write_again(FastMerge *fm, BufFile **file)
{
	file_write(fm, file, &fm->readword, sizeof(uint32));
	file_write(fm, file, &fm->readhash, sizeof(uint64));
	file_write(fm, file, fm->readbuf, fm->readword & ~RECORD_GROUP);
}

/*
 * spill_decode_row / spill_decode_group
 *		The row or group last read: a row's values and nulls, or a group's
 *		keys (values, nulls; NULL for the measures) and accumulators.
 *		By-reference values point into fm->readbuf.
 */
void
spill_decode_row(FastMerge *fm, Datum *values, bool *nulls)
{
	uint8	   *nullmap = (uint8 *) fm->readbuf;
	Size		off = (fm->ncols + 7) / 8;

	for (int i = 0; i < fm->ncols; i++)
	{
		nulls[i] = BIT_TEST(nullmap, i);
		values[i] = nulls[i] ? (Datum) 0 :
			get_value(fm->readbuf, &off, &fm->cols[i]);
	}
}

void
spill_decode_group(FastMerge *fm, Datum *values, bool *nulls, Acc *accs)
{
	int			mapbytes = (fm->ncols + 7) / 8;
	uint8	   *nullmap = (uint8 *) fm->readbuf;
	uint8	   *widemap = nullmap + mapbytes;
	Size		off = 2 * mapbytes;

	for (int i = 0; i < fm->ncols; i++)
	{
		FastColumn *col = &fm->cols[i];

		accs[i].isnull = BIT_TEST(nullmap, i);
		nulls[i] = accs[i].isnull || col->acc != ACC_KEY;
		values[i] = (Datum) 0;
		if (accs[i].isnull)
			continue;
		if (col->acc != ACC_SUM_INT)
		{
			accs[i].v.value = get_value(fm->readbuf, &off, col);
			if (col->acc == ACC_KEY)
				values[i] = accs[i].v.value;
		}
		else if (BIT_TEST(widemap, i))
		{
			memcpy(&accs[i].v.isum, fm->readbuf + off, sizeof(INT128));
			off += sizeof(INT128);
		}
		else
		{
			int64		v;

			memcpy(&v, fm->readbuf + off, sizeof(v));
			accs[i].v.isum = int64_to_int128(v);
			off += sizeof(v);
		}
	}
}

/*
 * spill_write_hash / spill_read_hash
 *		A bare key hash; false at the end of the file.
 */
void
spill_write_hash(FastMerge *fm, BufFile **file, uint64 h)
{
	file_write(fm, file, &h, sizeof(h));
}

bool
spill_read_hash(BufFile *file, uint64 *h)
{
	return file_read(file, h, sizeof(*h), true);
}

/*
 * row_slot
 *		The slot spilled batch rows are read back into: virtual, of the
 *		plan's columns.
 */
static TupleTableSlot *
row_slot(FastMerge *fm)
{
	if (fm->rowslot == NULL)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(fm->cxt);

		fm->rowdesc = CreateTemplateTupleDesc(fm->ncols);
		for (int i = 0; i < fm->ncols; i++)
			TupleDescInitEntry(fm->rowdesc, i + 1, NULL, fm->cols[i].typid,
							   fm->cols[i].typmod, 0);
		fm->rowslot = MakeSingleTupleTableSlot(fm->rowdesc, &TTSOpsVirtual);
		MemoryContextSwitchTo(oldcxt);
	}
	return fm->rowslot;
}

/*
 * spill_row_write / spill_row_read
 *		A batch row with its key hash into a file; read back into a virtual
 *		slot (valid until the next read), or NULL at the end of the file.
 */
void
spill_row_write(FastMerge *fm, BufFile **file, uint64 h, TupleTableSlot *slot)
{
	slot_getallattrs(slot);
	spill_write_row(fm, file, h, slot->tts_values, slot->tts_isnull);
}

TupleTableSlot *
spill_row_read(FastMerge *fm, BufFile *file, uint64 *h)
{
	TupleTableSlot *slot = row_slot(fm);

	if (spill_read_record(fm, file, h) == SPILL_END)
		return NULL;
	ExecClearTuple(slot);
	spill_decode_row(fm, slot->tts_values, slot->tts_isnull);
	ExecStoreVirtualTuple(slot);
	return slot;
}
