/*-------------------------------------------------------------------------
 *
 * layers.c
 *	  Find a definition's batch and speed tables by the names it stores.
 *
 * The layers are bound by name, not by OID: batch jobs replace their table
 * on every run, dbt by building a new one and renaming it into place, Spark
 * by dropping and creating it, and either gives the table a new OID.  So a
 * definition stores the schema-qualified names, and every refresh looks them
 * up again here and checks what it finds against the definition anew
 * (merge_plan.c), exactly as a query naming the tables would.
 *
 * The lookup locks the table it finds (AccessShareLock, as the query that
 * reads it would), retrying when the name is dropped or renamed meanwhile,
 * so the refresh reads the table that holds the name once it has the lock.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/varlena.h"

#include "compat.h"
#include "layers.h"
#include "target.h"

/*
 * layers_name
 *		The stored name of a layer: its schema and name, both quoted.
 */
char *
layers_name(Oid relid)
{
	char	   *relname = get_rel_name(relid);

	if (relname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  relname);
}

/*
 * resolve_one
 *		The OID of the relation a stored layer name names now, locked
 *		AccessShareLock; an error naming the layer and its serving table
 *		when there is none.
 */
static Oid
resolve_one(const char *name, bool speed, const Definition *def)
{
	RangeVar   *rv;
	Oid			relid;

	rv = makeRangeVarFromNameList(stringToQualifiedNameList(name, NULL));
	relid = RangeVarGetRelidExtended(rv, AccessShareLock, RVR_MISSING_OK,
									 NULL, NULL);
	if (OidIsValid(relid))
		return relid;
	if (speed)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("speed table \"%s\" of serving table \"%s\" does not exist",
						rv->relname, target_label(def->target)),
				 errdetail("The definition reads its speed layer from the relation named %s, and there is none now.",
						   name),
				 errhint("Create the table again, or define the serving table again with serving_layer_define().")));
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_TABLE),
			 errmsg("batch table \"%s\" of serving table \"%s\" does not exist",
					rv->relname, target_label(def->target)),
			 errdetail("The definition reads its batch layer from the relation named %s, and there is none now.",
					   name),
			 errhint("Create the table again, or define the serving table again with serving_layer_define().")));
	return InvalidOid;			/* keep compiler quiet */
}

/*
 * layers_resolve
 *		Set def->batch and def->speed to the relations the stored names name
 *		now.  The classic layout, which stores no names, keeps the tables it
 *		found through search_path.
 */
void
layers_resolve(Definition *def)
{
	if (def->batch_name != NULL)
		def->batch = resolve_one(def->batch_name, false, def);
	if (def->speed_name != NULL)
		def->speed = resolve_one(def->speed_name, true, def);
}

/*
 * layers_find
 *		The OID of the relation a stored layer name names now, or
 *		InvalidOid; no lock is taken.
 */
Oid
layers_find(const char *name)
{
	if (name == NULL)
		return InvalidOid;
	return RangeVarGetRelid(makeRangeVarFromNameList(stringToQualifiedNameList(name, NULL)),
							NoLock, true);
}
