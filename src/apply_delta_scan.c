/*-------------------------------------------------------------------------
 *
 * apply_delta_scan.c
 *	  Mode 'apply' following the change, when many keys changed: their
 *	  serving rows found by one scan of the serving table instead of one
 *	  index lookup each.
 *
 * A lookup descends the key's unique index and visits its heap page: some
 * microseconds a key, in no order, where a scan reads each page once, in
 * order, and probes the changed keys' groups (already in memory) with
 * each row's key, at a fraction of a microsecond a row.  Past a few per
 * cent of the table's rows changed, the scan costs less; it also changes
 * the rows in the table's order, so that the pages it dirties are dirtied
 * together.  The rows found, compared and changed are the same either way:
 * the scan reads under the refresh's snapshot, as the lookups do, so it
 * sees neither its own changes (made under a later command id) nor rows
 * committed after the snapshot; a changed key the scan did not meet has no
 * serving row, as its lookup would have found.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/tableam.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "apply_delta_int.h"
#include "settings.h"

/*
 * What a lookup, a page scanned and a row scanned cost, in nanoseconds, as
 * measured on a table of 2M rows with a unique index on a text key
 * (test/bench/apply.sh); only their ratios matter.
 */
#define LOOKUP_COST		5000.0
#define PLACED_COST		500.0
#define PAGE_COST		1000.0
#define ROW_COST		150.0
/* rows a page is taken to hold when the table has no statistics */
#define ROWS_PER_PAGE_GUESS	100.0

/*
 * delta_scan_pays
 *		Whether a scan of the serving table costs less than finding the rows
 *		of the changed keys one by one: nlookups looked up in the index,
 *		nplaced fetched where a refresh left them (apply_tids.c); by the
 *		table's pages (exact) and rows (its statistics, or a guess from its
 *		pages before it has any), unless serving_layer.apply_find_rows says
 *		which.
 */
bool
delta_scan_pays(Relation rel, uint64 nlookups, uint64 nplaced)
{
	double		pages;
	double		rows;

	if (sl_apply_find_rows != APPLY_FIND_AUTO)
		return sl_apply_find_rows == APPLY_FIND_SCAN;
	pages = (double) RelationGetNumberOfBlocks(rel);
	rows = rel->rd_rel->reltuples;
	if (rows < 0)
		rows = pages * ROWS_PER_PAGE_GUESS;
	return (double) nlookups * LOOKUP_COST + (double) nplaced * PLACED_COST >
		pages * PAGE_COST + rows * ROW_COST;
}

/*
 * delta_scan_apply
 *		Scan the serving table under snapshot and, for each row whose key is
 *		a changed speed group's, merge the group with its key's batch part
 *		(the state's, or this very row when the batch layer was not read)
 *		and apply the new row to it (delta_apply_group()).  The group is
 *		marked applied, so that delta_apply() inserts only the rows of the
 *		others.  Needs ds set up by delta_apply().
 */
void
delta_scan_apply(DeltaScan *ds, Relation rel, Snapshot snapshot)
{
	TableScanDesc scan;
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	TupleTableSlot *found = changes_oldslot(ds->ch);
	MemoryContext oldcxt;
	int			natts = 0;

	for (int i = 0; i < ds->ncols; i++)
		if (ds->cols[i].acc == ACC_KEY)
			natts = Max(natts, ds->servatt[i] + 1);

	/*
	 * No buffer access strategy: the scan changes rows as it goes, and a
	 * bulk-read ring would have to write out (and flush WAL for) each page
	 * it dirtied before reusing its buffer.
	 */
	scan = table_beginscan_strat(rel, snapshot, 0, NULL, false, true);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		Group	   *sg;
		uint64		h;

		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(ds->rowcxt);
		oldcxt = MemoryContextSwitchTo(ds->rowcxt);
		slot_getsomeattrs(slot, natts);
		for (int i = 0; i < ds->ncols; i++)
		{
			bool		key = ds->cols[i].acc == ACC_KEY;

			ds->values[i] = key ? slot->tts_values[ds->servatt[i]] : (Datum) 0;
			ds->nulls[i] = key ? slot->tts_isnull[ds->servatt[i]] : true;
		}
		h = group_key_hash(ds->cols, ds->ncols, ds->values, ds->nulls);
		sg = group_table_find(&ds->speed, ds->cols, ds->ncols, h, ds->values,
							  ds->nulls, false);
		MemoryContextSwitchTo(oldcxt);
		if (sg == NULL || !sg->matched || sg->applied)
			continue;
		sg->applied = true;

		/* the row as the changes need it: in their slot, fetched */
		changes_fetch(ds->ch, &slot->tts_tid);
		delta_apply_group(ds, sg, found, false);
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
}
