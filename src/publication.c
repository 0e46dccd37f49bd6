/*-------------------------------------------------------------------------
 *
 * publication.c
 *	  Refuse a 'swap' refresh of a serving table that logical replication
 *	  publishes.
 *
 * A swap replaces the serving table's storage and emits no row changes, so
 * a subscriber would silently keep the old rows.  A serving table in any
 * publication (FOR TABLE, FOR TABLES IN SCHEMA of its schema, FOR ALL
 * TABLES) is refused before any work; mode 'apply' sends row changes and
 * is what such a table needs.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_publication.h"
#include "utils/lsyscache.h"

#include "apply.h"

/*
 * publication_refuse_swap
 *		Raise feature_not_supported if the serving table relid (or, when it
 *		does not exist yet, any table created in namespace) is published.
 */
void
publication_refuse_swap(Oid relid, Oid namespace, const char *display)
{
	List	   *pubs = NIL;

	if (OidIsValid(relid))
	{
		namespace = get_rel_namespace(relid);
		pubs = GetRelationPublications(relid);
	}
	if (pubs == NIL)
		pubs = GetSchemaPublications(namespace);
	if (pubs == NIL)
		pubs = GetAllTablesPublications();
	if (pubs == NIL)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("cannot refresh serving table \"%s\" by swap because publication \"%s\" publishes it",
					display, get_publication_name(linitial_oid(pubs), false)),
			 errdetail("A swap replaces the table's storage without row changes, so subscribers would keep the old rows."),
			 errhint("Define the table with mode 'apply', which applies the differences as row changes.")));
}
