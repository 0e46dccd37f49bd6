/*-------------------------------------------------------------------------
 *
 * target.c
 *	  Parse the "target" argument and find the serving table it names.
 *
 * A target may be schema-qualified and quoted ('"Sales"."by city"').  An
 * unqualified target belongs to the schema where a table of that name is
 * found through search_path or, when there is none yet, to the schema a
 * CREATE TABLE would use.  The name is resolved once, when the target is
 * defined, and stored with its schema, so a later search_path cannot move it.
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
#include "definition.h"
#include "target.h"

/*
 * refuse_temporary
 *		Definitions outlive sessions, so a temporary serving table cannot
 *		have one (as a materialized view cannot use temporary tables).
 */
static void
refuse_temporary(const char *text)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("serving table \"%s\" cannot be temporary", text),
			 errdetail("A definition outlives the session, a temporary table does not.")));
}

/*
 * target_parse
 *		Split a target into schema and name, resolving the schema when the
 *		user did not give one.
 *
 * The display form is the normalized name (quoted where needed), qualified
 * only when the user qualified it.  A target being defined cannot be
 * temporary; a target being looked up that resolves to a temporary table
 * simply has no definition.
 */
TargetName *
target_parse(const char *text, bool for_define)
{
	List	   *names;
	RangeVar   *rv;
	TargetName *target = palloc0(sizeof(TargetName));
	Oid			relid;
	Oid			nspid;

	/* raises invalid_name (42602) on bad syntax */
	names = stringToQualifiedNameList(text, NULL);
	rv = makeRangeVarFromNameList(names);
	if (rv->catalogname != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cross-database references are not implemented: \"%s\"",
						text)));

	target->name = rv->relname;
	if (rv->schemaname != NULL)
	{
		if (for_define &&
			(strcmp(rv->schemaname, "pg_temp") == 0 ||
			 isAnyTempNamespace(get_namespace_oid(rv->schemaname, true))))
			refuse_temporary(text);
		target->schema = rv->schemaname;
		target->display = quote_qualified_identifier(rv->schemaname,
													 rv->relname);
		return target;
	}

	relid = RangeVarGetRelid(rv, NoLock, true);
	if (OidIsValid(relid))
		nspid = get_rel_namespace(relid);
	else
	{
		/* raises invalid_schema_name (3F000) when search_path is empty */
		nspid = RangeVarGetCreationNamespace(rv);
	}
	if (for_define && isAnyTempNamespace(nspid))
		refuse_temporary(text);
	target->schema = get_namespace_name(nspid);
	target->display = pstrdup(quote_identifier(rv->relname));
	return target;
}

/*
 * target_namespace
 *		The OID of the target's schema, or InvalidOid if it is gone.
 */
Oid
target_namespace(const TargetName *target)
{
	return get_namespace_oid(target->schema, true);
}

/*
 * target_relid
 *		The OID of the serving table, or InvalidOid if it does not exist yet.
 */
Oid
target_relid(const TargetName *target)
{
	Oid			nspid = target_namespace(target);

	if (!OidIsValid(nspid))
		return InvalidOid;
	return get_relname_relid(target->name, nspid);
}

/*
 * target_lock
 *		Lock the serving table in lockmode and return its OID, or
 *		InvalidOid if it does not exist (also when it was dropped while we
 *		waited for the lock).
 */
Oid
target_lock(const TargetName *target, LOCKMODE lockmode)
{
	return RangeVarGetRelidExtended(makeRangeVar(target->schema, target->name,
												 -1),
									lockmode, RVR_MISSING_OK, NULL, NULL);
}

/*
 * target_label
 *		The target as messages name it, inside double quotes: "schema.name"
 *		when the user qualified it, else "name", as core names relations.
 *		The error context of a refresh names it the same way.
 */
const char *
target_label(const TargetName *target)
{
	if (strcmp(target->display, quote_identifier(target->name)) == 0)
		return target->name;
	return psprintf("%s.%s", target->schema, target->name);
}
