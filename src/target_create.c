/*-------------------------------------------------------------------------
 *
 * target_create.c
 *	  The serving table of a refresh: locked SHARE UPDATE EXCLUSIVE, or
 *	  created by the first refresh, as the role the definition allows.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#include "apply_watch.h"
#include "catalog.h"
#include "merge_sql.h"
#include "settings.h"
#include "target.h"
#include "target_create.h"
#include "util.h"

/*
 * role_name
 *		A role's name for a message, also when the role was dropped.
 */
static char *
role_name(Oid roleid)
{
	char	   *name = GetUserNameFromId(roleid, true);

	return name ? name : psprintf("%u", roleid);
}

/*
 * target_lock_or_create
 *		Lock the serving table SHARE UPDATE EXCLUSIVE (readers and writers
 *		go on; DDL, VACUUM and another refresh wait), or create it when it
 *		does not exist yet.
 *
 * The build runs as the serving table's owner and runs code the definition
 * names (its aggregates, the functions of batch or speed views).  So that
 * code never runs with more rights than the role that defined it had, the
 * definer must have the privileges of the owner, and a table created here
 * belongs to the caller only when the definer has the caller's privileges
 * (the usual case: the definer refreshing); otherwise, say a superuser's
 * nightly refresh of a definition an ordinary role made, it is created as
 * the definer.
 */
Oid
target_lock_or_create(const MergePlan *plan, const Definition *def)
{
	const TargetName *target = def->target;
	RangeVar   *rv = makeRangeVar(target->schema, target->name, -1);
	Oid			relid;
	Oid			owner;

	relid = RangeVarGetRelidExtended(rv, ShareUpdateExclusiveLock,
									 RVR_MISSING_OK, NULL, NULL);
	check_target_privileges(target);
	if (!OidIsValid(relid))
	{
		SpiCall		call;

		memset(&call, 0, sizeof(call));
		if (!has_privs_of_role(def->definer, GetUserId()))
			call.run_as = def->definer;
		(void) sl_spi_run(merge_sql_create_table(plan, target),
						  SPI_OK_UTILITY, &call);
		CommandCounterIncrement();
		relid = RangeVarGetRelidExtended(rv, ShareUpdateExclusiveLock, 0,
										 NULL, NULL);
		/*
		 * A new table in mode 'apply' is watched (apply_watch.c), and keeps
		 * room on its pages for the refreshes' UPDATEs: an updated row that
		 * fits on its page is a HOT update, which adds no index entry.  The
		 * default, 90, leaves a tenth of each page free, as much as a
		 * refresh that changes a tenth of the rows needs; a batch layer
		 * rewritten with new values for every key needs half
		 * (serving_layer.apply_fillfactor = 50: test/bench/apply.sh).
		 */
		if (def->mode == REFRESH_MODE_APPLY)
		{
			(void) sl_spi_run(psprintf("ALTER TABLE %s SET (fillfactor = %d)",
									   quote_qualified_identifier(target->schema,
																  target->name),
									   sl_apply_fillfactor),
							  SPI_OK_UTILITY, &call);
			apply_watch_set(relid, true);
		}
	}

	owner = sl_relation_owner(relid);
	if (!has_privs_of_role(def->definer, owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("serving table \"%s\" was defined by a role without the privileges of its owner",
						target_label(target)),
				 errdetail("Role \"%s\" defined it and role \"%s\" owns it; a refresh runs the definition's merges as the table's owner.",
						   role_name(def->definer), role_name(owner)),
				 errhint("Have the owner define it again with serving_layer_define().")));
	return relid;
}
