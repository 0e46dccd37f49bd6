/*-------------------------------------------------------------------------
 *
 * spill_file.h
 *	  The records of the C merge's temporary files: rows, groups and key
 *	  hashes written compactly and read back (spill_file.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_SPILL_FILE_H
#define SL_SPILL_FILE_H

#include "storage/buffile.h"

#include "fast_merge.h"

/* what spill_read_record() found */
typedef enum SpillRecord
{
	SPILL_END,					/* the end of the file */
	SPILL_ROW,					/* a row: spill_decode_row() */
	SPILL_GROUP					/* a group: spill_decode_group() */
} SpillRecord;

extern void spill_write_row(FastMerge *fm, BufFile **file, uint64 h,
							Datum *values, bool *nulls);
extern void spill_write_group(FastMerge *fm, BufFile **file, uint64 h,
							  Acc *accs);
extern void spill_write_again(FastMerge *fm, BufFile **file);
extern SpillRecord spill_read_record(FastMerge *fm, BufFile *file,
									 uint64 *h);
extern void spill_decode_row(FastMerge *fm, Datum *values, bool *nulls);
extern void spill_decode_group(FastMerge *fm, Datum *values, bool *nulls,
							   Acc *accs);
extern void spill_write_hash(FastMerge *fm, BufFile **file, uint64 h);
extern bool spill_read_hash(BufFile *file, uint64 *h);
extern void spill_file_close(BufFile **file);

#endif							/* SL_SPILL_FILE_H */
