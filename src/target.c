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
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/varlena.h"

#include "serving_layer.h"

/*
 * target_parse
 *		Split a target into schema and name, resolving the schema when the
 *		user did not give one.
 *
 * The display form is the normalized name (quoted where needed), qualified
 * only when the user qualified it.
 */
TargetName *
target_parse(const char *text)
{
	List	   *names;
	RangeVar   *rv;
	TargetName *target = palloc0(sizeof(TargetName));
	Oid			relid;

	/* raises invalid_name (42602) on bad syntax */
	names = stringToQualifiedNameList(text);
	rv = makeRangeVarFromNameList(names);
	if (rv->catalogname != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cross-database references are not implemented: \"%s\"",
						text)));

	target->name = rv->relname;
	if (rv->schemaname != NULL)
	{
		target->schema = rv->schemaname;
		target->display = quote_qualified_identifier(rv->schemaname,
													 rv->relname);
		return target;
	}

	relid = RangeVarGetRelid(rv, NoLock, true);
	if (OidIsValid(relid))
		target->schema = get_namespace_name(get_rel_namespace(relid));
	else
	{
		/* raises invalid_schema_name (3F000) when search_path is empty */
		Oid			nspid = RangeVarGetCreationNamespace(rv);

		target->schema = get_namespace_name(nspid);
	}
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
