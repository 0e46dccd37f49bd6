/*-------------------------------------------------------------------------
 *
 * apply_state.c
 *	  The row serving_layer_apply_state keeps per target in mode 'apply':
 *	  what its last refresh read and left, for the next refresh to follow
 *	  the change from (apply_delta.c).
 *
 * The row is written in the refresh's transaction, so it is exactly as
 * durable as the changes it describes: a refresh that fails or is rolled
 * back leaves the previous row, which still describes the table.  Nothing
 * here decides whether the row can be trusted; apply.c compares it with
 * what the refresh finds.  A new definition or a forgotten target drops
 * it, and pg_dump does not dump it: a restored table is compared in full
 * once.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "apply_state.h"
#include "util.h"

/* the layout of speed_state: bump when it changes */
#define APPLY_STATE_FORMAT	5

/*
 * apply_plan_hash
 *		A hash of what the merge computes: the columns, their types and
 *		merges, and the server's major version (whose hash functions the
 *		state's key hashes came from).  A state of another plan is not used.
 */
int64
apply_plan_hash(const MergePlan *plan)
{
	uint64		h = hash_bytes_uint32_extended(APPLY_STATE_FORMAT,
											   PG_VERSION_NUM / 100);

	for (int i = 0; i < plan->ncolumns; i++)
	{
		const PlanColumn *col = &plan->columns[i];
		uint32		parts[8] = {col->typid, (uint32) col->typmod,
			col->collid, (uint32) col->kind, col->aggoid,
			(uint32) col->builtin, col->speed_typid, (uint32) col->speed_typmod};

		h = hash_combine64(h, hash_bytes_extended((const unsigned char *) parts,
												  sizeof(parts), i));
		h = hash_combine64(h, hash_bytes_extended((const unsigned char *) col->name,
												  strlen(col->name), i));
	}
	return (int64) h;
}

/*
 * state_call
 *		An SPI call with the two parameters naming a target, run as the
 *		extension's owner (the state is internal: no other role may read
 *		or write it).
 */
static void
state_call(SpiCall *call, const TargetName *target, Oid *types, Datum *values)
{
	memset(call, 0, sizeof(SpiCall));
	call->run_as = sl_relation_owner(get_relname_relid("serving_layer_apply_state",
													   sl_extension_schema()));
	call->argtypes = types;
	call->values = values;
	call->nargs = 2;
	types[0] = NAMEOID;
	types[1] = NAMEOID;
	values[0] = DirectFunctionCall1(namein, CStringGetDatum(target->schema));
	values[1] = DirectFunctionCall1(namein, CStringGetDatum(target->name));
}

/* sl_spi_run() callback: the state row, copied into the caller's context */
static void
state_from_row(HeapTuple tuple, TupleDesc desc, void *arg)
{
	ApplyState **out = arg;
	ApplyState *st = palloc0(sizeof(ApplyState));
	bool		isnull;

#define GETOID(n) DatumGetObjectId(SPI_getbinval(tuple, desc, n, &isnull))
#define GETI64(n) DatumGetInt64(SPI_getbinval(tuple, desc, n, &isnull))
	st->serving = GETOID(1);
	st->serving_node = GETOID(2);
	st->watch_version = GETI64(3);
	st->batch = GETOID(4);
	st->batch_node = GETOID(5);
	st->plan_hash = GETI64(6);
	st->batch_rows = GETI64(7);
	st->batch_hash = GETI64(8);
	st->output_rows = GETI64(9);
	st->speed_groups = GETI64(10);
	st->speed_state = DatumGetByteaPCopy(SPI_getbinval(tuple, desc, 11, &isnull));
#undef GETOID
#undef GETI64
	*out = st;
}

/*
 * apply_state_load
 *		The target's state row, or NULL.
 */
ApplyState *
apply_state_load(const TargetName *target)
{
	ApplyState *st = NULL;
	Oid			types[2];
	Datum		values[2];
	SpiCall		call;

	state_call(&call, target, types, values);
	call.read_only = true;
	call.row_fn = state_from_row;
	call.row_arg = &st;
	(void) sl_spi_run(psprintf("SELECT serving, serving_node, watch_version,"
							   " batch, batch_node, plan_hash, batch_rows,"
							   " batch_hash, output_rows, speed_groups, speed_state"
							   " FROM %s WHERE target_schema OPERATOR(pg_catalog.=) $1"
							   " AND target_name OPERATOR(pg_catalog.=) $2",
							   sl_qualified("serving_layer_apply_state")),
					  SPI_OK_SELECT, &call);
	return st;
}

/*
 * apply_state_save
 *		Replace the target's state row.
 */
void
apply_state_save(const TargetName *target, const ApplyState *st)
{
	Oid			types[13];
	Datum		values[13];
	SpiCall		call;

	state_call(&call, target, types, values);
	call.nargs = 13;
	types[2] = OIDOID;
	values[2] = ObjectIdGetDatum(st->serving);
	types[3] = OIDOID;
	values[3] = ObjectIdGetDatum(st->serving_node);
	types[4] = INT8OID;
	values[4] = Int64GetDatum(st->watch_version);
	types[5] = OIDOID;
	values[5] = ObjectIdGetDatum(st->batch);
	types[6] = OIDOID;
	values[6] = ObjectIdGetDatum(st->batch_node);
	types[7] = INT8OID;
	values[7] = Int64GetDatum(st->plan_hash);
	types[8] = INT8OID;
	values[8] = Int64GetDatum(st->batch_rows);
	types[9] = INT8OID;
	values[9] = Int64GetDatum(st->batch_hash);
	types[10] = INT8OID;
	values[10] = Int64GetDatum(st->output_rows);
	types[11] = INT8OID;
	values[11] = Int64GetDatum(st->speed_groups);
	types[12] = BYTEAOID;
	values[12] = PointerGetDatum(st->speed_state);

	apply_state_forget(target);
	(void) sl_spi_run(psprintf("INSERT INTO %s (target_schema, target_name,"
							   " serving, serving_node, watch_version, batch,"
							   " batch_node, plan_hash, batch_rows, batch_hash,"
							   " output_rows, speed_groups, speed_state)"
							   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
							   " $10, $11, $12, $13)",
							   sl_qualified("serving_layer_apply_state")),
					  SPI_OK_INSERT, &call);
}

/*
 * apply_state_forget
 *		Delete the target's state row, if any.
 */
void
apply_state_forget(const TargetName *target)
{
	Oid			types[2];
	Datum		values[2];
	SpiCall		call;

	state_call(&call, target, types, values);
	(void) sl_spi_run(psprintf("DELETE FROM %s"
							   " WHERE target_schema OPERATOR(pg_catalog.=) $1"
							   " AND target_name OPERATOR(pg_catalog.=) $2",
							   sl_qualified("serving_layer_apply_state")),
					  SPI_OK_DELETE, &call);
}
