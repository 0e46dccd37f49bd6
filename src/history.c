/*-------------------------------------------------------------------------
 *
 * history.c
 *	  Record refreshes in serving_layer_history.
 *
 * Users may read the history but not write it, so rows are inserted as the
 * history table's owner (the extension's owner).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "history.h"
#include "util.h"

/*
 * history_record
 *		Insert one history row in the current transaction.  Negative counts
 *		are stored as NULL (a skipped refresh counts nothing).
 */
void
history_record(const char *target, TimestampTz started_at, const char *status,
			   int64 batch_rows, int64 speed_rows, int64 output_rows,
			   const char *boundary, int64 changed_rows, const char *error)
{
	Oid			argtypes[10] = {TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID,
	INT8OID, INT8OID, INT8OID, TEXTOID, TEXTOID, INT8OID};
	Datum		values[10];
	char		nulls[11] = "          ";
	Oid			relid;
	char	   *sql;
	SpiCall		call;

	values[0] = CStringGetTextDatum(target);
	values[1] = TimestampTzGetDatum(started_at);
	values[2] = TimestampTzGetDatum(GetCurrentTimestamp());
	values[3] = CStringGetTextDatum(status);
	values[4] = Int64GetDatum(batch_rows);
	values[5] = Int64GetDatum(speed_rows);
	values[6] = Int64GetDatum(output_rows);
	values[7] = error ? CStringGetTextDatum(error) : (Datum) 0;
	for (int i = 4; i < 7; i++)
		if (DatumGetInt64(values[i]) < 0)
			nulls[i] = 'n';
	if (error == NULL)
		nulls[7] = 'n';
	values[8] = boundary ? CStringGetTextDatum(boundary) : (Datum) 0;
	nulls[8] = boundary ? ' ' : 'n';
	values[9] = Int64GetDatum(changed_rows);
	nulls[9] = changed_rows < 0 ? 'n' : ' ';

	sql = psprintf("INSERT INTO %s (target, started_at, finished_at, status,"
				   " batch_rows, speed_rows, output_rows, error, boundary,"
				   " changed_rows)"
				   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
				   sl_qualified("serving_layer_history"));
	relid = get_relname_relid("serving_layer_history", sl_extension_schema());

	memset(&call, 0, sizeof(call));
	call.run_as = sl_relation_owner(relid);
	call.nargs = 10;
	call.argtypes = argtypes;
	call.values = values;
	call.nulls = nulls;
	(void) sl_spi_run(sql, SPI_OK_INSERT, &call);
}
