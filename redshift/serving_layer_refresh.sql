/*
 * redshift/serving_layer_refresh.sql
 *
 * The serving layer refresh for Amazon Redshift, which cannot load the C
 * extension: three stored procedures in the PL/pgSQL subset that Redshift
 * documents.  They rebuild a serving table from a batch table and a speed
 * table with the defaults of serving_layer's reference (README.md, section
 * "Reference"):
 *
 *   - one row per distinct key value found in batch or speed; NULL is a key
 *     value like any other, composite keys compare column by column;
 *   - the columns of the batch table, in its order, names and types;
 *   - keys = every batch column whose type is not numeric (smallint, integer,
 *     bigint, numeric, real, double precision), and the time column if one is
 *     given; measures are summed over the union of batch and speed values
 *     (NULLs ignored, all NULL gives NULL);
 *   - speed columns matched by name when every batch column name exists in
 *     the speed table, else by position when both have as many columns, else
 *     an error; speed values converted to the batch column's type by an
 *     assignment (INSERT) cast;
 *   - with a time column, the derived time boundary of the contract: the
 *     greatest non-NULL time of the batch table; batch rows at or before it
 *     and speed rows after it are taken, rows whose time is NULL are taken
 *     from both layers; no such batch row: every speed row is taken;
 *   - any error (overflow included) leaves the serving table as it was.
 *
 * Install (into the first schema of search_path; the database needs no
 * extension):
 *
 *     psql -v ON_ERROR_STOP=1 -f redshift/serving_layer_refresh.sql
 *
 * Use:
 *
 *     CALL serving_layer_refresh();        -- serving_layer from batch_layer and speed_layer
 *     CALL serving_layer_refresh('sales.by_city', 'sales.batch', 'sales.speed');
 *     CALL serving_layer_refresh('sales.by_city_hour', 'sales.batch', 'sales.speed', 'hour');
 *
 * The overloads with fewer arguments call the four-argument one by its
 * unqualified name, so the schema installed into must be on search_path.
 * Names are SQL identifiers, optionally schema-qualified and double-quoted
 * ('"Sales"."by city"'); unqualified batch and speed tables are found through
 * search_path, an unqualified new serving table is created in current_schema().
 * The time column is a column name as stored in the catalog, not quoted.
 *
 * What differs from the C extension (see redshift/README.md):
 *   - no definitions, no history, no GUCs: only the contract's defaults, and
 *     only the derived time boundary (no serving_layer_set_boundary);
 *   - the swap renames tables (Redshift has no relfilenode swap): the new
 *     contents are built into a new table, then, in the caller's transaction,
 *     the old table is renamed away, the new one renamed into place and the
 *     old one dropped.  Views on the serving table must therefore be
 *     late-binding (CREATE VIEW ... WITH NO SCHEMA BINDING); a regular view
 *     would block the drop, so the procedure refuses, naming it.
 *   - the new table of an existing serving table whose columns are the batch
 *     table's is created with CREATE TABLE ... (LIKE <serving table>), which
 *     on Redshift keeps its DISTKEY, SORTKEY, column encodings and NOT NULL
 *     columns; otherwise it gets the batch table's columns and Redshift's
 *     defaults.
 *   - lock behaviour: ALTER TABLE and DROP take exclusive locks; readers
 *     queue behind the rename until the CALL's transaction commits, and the
 *     rename waits for running readers.  There is no lock timeout.
 *   - the owner, table and column comments and the table grants of users,
 *     groups, roles and PUBLIC are re-applied to the new table (on Redshift
 *     read from SVV_RELATION_PRIVILEGES, which shows a non-superuser only
 *     the identities it can see); column grants and constraints other than
 *     NOT NULL are not.  The table's identity (its OID) changes.
 *   - the procedure's own errors have SQLSTATE P0001 (Redshift's RAISE has
 *     no USING ERRCODE); counts and the boundary are reported in an INFO line.
 *
 * The subset rule: this file calls none of the functions Redshift lists as
 * unsupported (no format, string or array aggregation, array functions,
 * generate_series, advisory locks, privilege inquiry functions, IS DISTINCT
 * FROM).  Column lists come from the catalog with string concatenation in a
 * loop; NULL keys are matched by GROUP BY over UNION ALL.
 * test/t/080_redshift.pl checks the subset and runs the same cases as the C
 * extension on PostgreSQL.
 */

/*
 * serving_layer_refresh(target, batch, speed, time_column): the refresh.
 * time_column NULL merges every row of both layers; a time column applies
 * the derived boundary.
 */
CREATE OR REPLACE PROCEDURE serving_layer_refresh(target varchar, batch varchar, speed varchar, time_column varchar)
AS $$
DECLARE
	rec			RECORD;
	i			integer;
	pos			integer;
	nm			varchar(65535);
	ch			varchar(8);
	part		varchar(65535);
	p_nsp		varchar(65535);
	p_rel		varchar(65535);
	in_quotes	boolean;
	r_nsp		varchar(65535);
	r_kind		varchar(8);
	t_nsp		varchar(65535);
	t_rel		varchar(65535);
	b_nsp		varchar(65535);
	b_rel		varchar(65535);
	s_nsp		varchar(65535);
	s_rel		varchar(65535);
	t_exists	boolean := false;
	q_target	varchar(65535);
	q_batch		varchar(65535);
	q_speed		varchar(65535);
	q_stage		varchar(65535);
	q_new		varchar(65535);
	new_rel		varchar(256);
	old_rel		varchar(256);
	stage_rel	varchar(256);
	b_cols		integer;
	s_cols		integer;
	key_cols	integer := 0;
	by_name		boolean;
	missing		varchar(65535);
	s_col		varchar(65535);
	sep			varchar(8) := '';
	col_defs	varchar(65535) := '';
	col_list	varchar(65535) := '';
	speed_list	varchar(65535) := '';
	merge_list	varchar(65535) := '';
	group_list	varchar(65535) := '';
	owner_name	varchar(65535);
	grant_sql	varchar(65535);
	v_nsp		varchar(65535);
	v_rel		varchar(65535);
	t_sig		varchar(65535) := '';
	time_typ	varchar(65535);
	q_time		varchar(65535);
	boundary	varchar(65535);
	batch_where	varchar(65535) := '';
	late_rows	bigint;
	batch_rows	bigint;
	speed_rows	bigint;
	output_rows	bigint;
BEGIN
	IF target IS NULL OR batch IS NULL OR speed IS NULL THEN
		RAISE EXCEPTION 'serving_layer_refresh: target, batch and speed must not be null';
	END IF;

	/*
	 * Split each name into schema and relation the way PostgreSQL reads an
	 * identifier: unquoted parts fold to lower case, quoted parts are taken
	 * as written with "" for a quote, a dot outside quotes separates the
	 * schema.  A loop over the three names, as there are no arrays.
	 */
	FOR i IN 1..3 LOOP
		IF i = 1 THEN nm := target; ELSIF i = 2 THEN nm := batch; ELSE nm := speed; END IF;
		part := '';
		p_nsp := NULL;
		in_quotes := false;
		pos := 1;
		WHILE pos <= pg_catalog.length(nm) LOOP
			ch := pg_catalog.substring(nm, pos, 1);
			IF in_quotes THEN
				IF ch = '"' AND pg_catalog.substring(nm, pos + 1, 1) = '"' THEN
					part := part || '"';
					pos := pos + 1;
				ELSIF ch = '"' THEN
					in_quotes := false;
				ELSE
					part := part || ch;
				END IF;
			ELSIF ch = '"' THEN
				in_quotes := true;
			ELSIF ch = '.' AND p_nsp IS NULL AND part <> '' THEN
				p_nsp := part;
				part := '';
			ELSIF pg_catalog.strpos('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_$', ch) > 0
				  OR pg_catalog.ascii(ch) > 127 THEN
				part := part || pg_catalog.translate(ch, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz');
			ELSE
				RAISE EXCEPTION 'serving_layer_refresh: invalid table name %', nm;
			END IF;
			pos := pos + 1;
		END LOOP;
		IF in_quotes OR part = '' THEN
			RAISE EXCEPTION 'serving_layer_refresh: invalid table name %', nm;
		END IF;
		p_rel := part;

		/*
		 * Resolve the name in the catalog: a qualified name as given, an
		 * unqualified one through search_path (pg_table_is_visible).  The
		 * batch and speed tables must exist; the serving table may not yet,
		 * then it is created in its schema or in current_schema().
		 */
		r_nsp := NULL;
		r_kind := NULL;
		IF p_nsp IS NULL THEN
			SELECT n.nspname, c.relkind INTO r_nsp, r_kind
			FROM pg_catalog.pg_class c
			JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			WHERE c.relname = p_rel
			  AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
			  AND pg_catalog.pg_table_is_visible(c.oid);
		ELSE
			SELECT n.nspname, c.relkind INTO r_nsp, r_kind
			FROM pg_catalog.pg_class c
			JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			WHERE c.relname = p_rel
			  AND n.nspname = p_nsp;
		END IF;

		IF i = 1 THEN
			t_rel := p_rel;
			IF r_nsp IS NULL THEN
				t_nsp := COALESCE(p_nsp, pg_catalog.current_schema());
				IF t_nsp IS NULL THEN
					RAISE EXCEPTION 'serving_layer_refresh: no schema to create serving table % in', nm;
				END IF;
			ELSIF r_kind NOT IN ('r', 'p') THEN
				RAISE EXCEPTION 'serving_layer_refresh: serving table % is not a table', nm;
			ELSE
				t_nsp := r_nsp;
				t_exists := true;
			END IF;
		ELSIF r_nsp IS NULL OR r_kind NOT IN ('r', 'p', 'v', 'm', 'f') THEN
			RAISE EXCEPTION 'serving_layer_refresh: % table % does not exist', CASE WHEN i = 2 THEN 'batch' ELSE 'speed' END, nm;
		ELSIF i = 2 THEN
			b_nsp := r_nsp;
			b_rel := p_rel;
		ELSE
			s_nsp := r_nsp;
			s_rel := p_rel;
		END IF;
	END LOOP;

	q_target := pg_catalog.quote_ident(t_nsp) || '.' || pg_catalog.quote_ident(t_rel);
	q_batch := pg_catalog.quote_ident(b_nsp) || '.' || pg_catalog.quote_ident(b_rel);
	q_speed := pg_catalog.quote_ident(s_nsp) || '.' || pg_catalog.quote_ident(s_rel);

	-- Reading and replacing the same table in one statement would lose rows.
	IF (t_nsp = b_nsp AND t_rel = b_rel) OR (t_nsp = s_nsp AND t_rel = s_rel) THEN
		RAISE EXCEPTION 'serving_layer_refresh: serving table % is also the batch or speed table', q_target;
	END IF;

	/*
	 * The old table is dropped at the swap, so a view bound to it (a
	 * pg_rewrite rule depending on it) would block the drop with a message
	 * naming a temporary name.  Refuse up front and say what to do instead.
	 */
	IF t_exists THEN
		SELECT vn.nspname, vc.relname INTO v_nsp, v_rel
		FROM pg_catalog.pg_depend d
		JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid
		JOIN pg_catalog.pg_class vc ON vc.oid = r.ev_class
		JOIN pg_catalog.pg_namespace vn ON vn.oid = vc.relnamespace
		JOIN pg_catalog.pg_class tc ON tc.oid = d.refobjid
		JOIN pg_catalog.pg_namespace tn ON tn.oid = tc.relnamespace
		WHERE tn.nspname = t_nsp
		  AND tc.relname = t_rel
		  AND vc.oid <> tc.oid
		  AND d.classid = (SELECT k.oid FROM pg_catalog.pg_class k
						   JOIN pg_catalog.pg_namespace kn ON kn.oid = k.relnamespace
						   WHERE kn.nspname = 'pg_catalog' AND k.relname = 'pg_rewrite')
		ORDER BY 1, 2
		LIMIT 1;
		IF v_rel IS NOT NULL THEN
			RAISE EXCEPTION 'serving_layer_refresh: view %.% depends on serving table %, which a refresh replaces; create views on a serving table as late-binding views (CREATE VIEW ... WITH NO SCHEMA BINDING)',
				pg_catalog.quote_ident(v_nsp), pg_catalog.quote_ident(v_rel), q_target;
		END IF;
	END IF;

	/*
	 * Choose how speed columns match batch columns: by name when every batch
	 * column name exists in the speed table, else by position when both have
	 * as many columns (the classic layout names speed columns "count(id)").
	 */
	SELECT pg_catalog.count(*) INTO b_cols
	FROM pg_catalog.pg_attribute a
	JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
	JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname = b_nsp AND c.relname = b_rel AND a.attnum > 0 AND NOT a.attisdropped;

	SELECT pg_catalog.count(*) INTO s_cols
	FROM pg_catalog.pg_attribute a
	JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
	JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname = s_nsp AND c.relname = s_rel AND a.attnum > 0 AND NOT a.attisdropped;

	IF b_cols = 0 THEN
		RAISE EXCEPTION 'serving_layer_refresh: batch table % has no columns (a late-binding view cannot be a batch table)', q_batch;
	END IF;

	SELECT ba.attname INTO missing
	FROM pg_catalog.pg_attribute ba
	JOIN pg_catalog.pg_class bc ON bc.oid = ba.attrelid
	JOIN pg_catalog.pg_namespace bn ON bn.oid = bc.relnamespace
	WHERE bn.nspname = b_nsp AND bc.relname = b_rel AND ba.attnum > 0 AND NOT ba.attisdropped
	  AND NOT EXISTS (SELECT 1
					  FROM pg_catalog.pg_attribute sa
					  JOIN pg_catalog.pg_class sc ON sc.oid = sa.attrelid
					  JOIN pg_catalog.pg_namespace sn ON sn.oid = sc.relnamespace
					  WHERE sn.nspname = s_nsp AND sc.relname = s_rel
						AND sa.attnum > 0 AND NOT sa.attisdropped
						AND sa.attname = ba.attname)
	ORDER BY ba.attnum
	LIMIT 1;

	by_name := missing IS NULL;
	IF NOT by_name AND s_cols <> b_cols THEN
		RAISE EXCEPTION 'serving_layer_refresh: speed table % matches batch table % neither by name (it has no column %) nor by position (it has % columns, the batch table %)',
			q_speed, q_batch, pg_catalog.quote_ident(missing), s_cols, b_cols;
	END IF;

	/*
	 * Build every column list in one pass over the batch columns, in their
	 * order: definitions for the new tables, the plain list, the speed
	 * expressions, the merged select list and the GROUP BY list.  Columns
	 * of a non-numeric type are keys, and so is the time column whatever
	 * its type (an integer hour bucket is a key, not a measure); the others
	 * are summed.
	 */
	pos := 0;
	FOR rec IN
		SELECT a.attname AS col,
			   pg_catalog.format_type(a.atttypid, a.atttypmod) AS typ,
			   a.atttypid IN (20, 21, 23, 700, 701, 1700) AS is_measure
		FROM pg_catalog.pg_attribute a
		JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = b_nsp AND c.relname = b_rel AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY a.attnum
	LOOP
		pos := pos + 1;
		IF by_name THEN
			s_col := rec.col;
		ELSE
			-- The speed column with as many live columns up to it as pos.
			SELECT a.attname INTO s_col
			FROM pg_catalog.pg_attribute a
			JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
			JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = s_nsp AND c.relname = s_rel AND a.attnum > 0 AND NOT a.attisdropped
			  AND (SELECT pg_catalog.count(*) FROM pg_catalog.pg_attribute a2
				   WHERE a2.attrelid = a.attrelid AND a2.attnum > 0 AND NOT a2.attisdropped
					 AND a2.attnum <= a.attnum) = pos;
		END IF;

		col_defs := col_defs || sep || pg_catalog.quote_ident(rec.col) || ' ' || rec.typ;
		col_list := col_list || sep || pg_catalog.quote_ident(rec.col);
		speed_list := speed_list || sep || 's.' || pg_catalog.quote_ident(s_col);
		IF rec.col = time_column THEN
			time_typ := rec.typ;
		END IF;
		IF rec.is_measure AND (time_column IS NULL OR rec.col <> time_column) THEN
			-- SUM is left unqualified: Redshift resolves aggregates on its
			-- compute nodes as built-ins and has no user-defined aggregates.
			merge_list := merge_list || sep || 'SUM(u.' || pg_catalog.quote_ident(rec.col) || ')';
		ELSE
			merge_list := merge_list || sep || 'u.' || pg_catalog.quote_ident(rec.col);
			group_list := group_list || CASE WHEN key_cols > 0 THEN ', ' ELSE '' END
						  || 'u.' || pg_catalog.quote_ident(rec.col);
			key_cols := key_cols + 1;
		END IF;
		sep := ', ';
	END LOOP;

	IF key_cols = 0 THEN
		RAISE EXCEPTION 'serving_layer_refresh: batch table % has no key column (every column is numeric)', q_batch;
	END IF;
	IF time_column IS NOT NULL AND time_typ IS NULL THEN
		RAISE EXCEPTION 'serving_layer_refresh: time column % is not a column of batch table %',
			pg_catalog.quote_ident(time_column), q_batch;
	END IF;

	/*
	 * The derived time boundary: the greatest non-NULL time of the batch
	 * table (MAX ignores NULLs; a type without an ordering fails here).  It
	 * is kept as text and given back to every later statement as a literal
	 * cast to the column's type, so that they all split at the same value
	 * even where each statement reads a newer snapshot: batch rows after it
	 * that arrive meanwhile are then ignored, and the speed rows after it
	 * taken, so no time is counted twice or lost.  No such batch row: no
	 * boundary, every row of both layers is taken.
	 */
	IF time_column IS NOT NULL THEN
		q_time := pg_catalog.quote_ident(time_column);
		EXECUTE 'SELECT CAST(MAX(' || q_time || ') AS varchar(65535)) FROM ' || q_batch INTO boundary;
		IF boundary IS NOT NULL THEN
			batch_where := ' WHERE ' || q_time || ' IS NULL OR ' || q_time || ' <= CAST('
				|| pg_catalog.quote_literal(boundary) || ' AS ' || time_typ || ')';
		END IF;
	END IF;

	/*
	 * Stage the speed rows in a table with the batch table's column types:
	 * INSERT converts them with assignment casts, as the C extension does
	 * (an over-long string or an out-of-range number is an error, never
	 * silently truncated).  A regular table in the serving table's schema,
	 * named after this backend, keeps every name qualified; it is dropped
	 * before the transaction ends.
	 */
	stage_rel := 'serving_layer_stage_' || CAST(pg_catalog.pg_backend_pid() AS varchar);
	new_rel := 'serving_layer_new_' || CAST(pg_catalog.pg_backend_pid() AS varchar);
	old_rel := 'serving_layer_old_' || CAST(pg_catalog.pg_backend_pid() AS varchar);
	q_stage := pg_catalog.quote_ident(t_nsp) || '.' || pg_catalog.quote_ident(stage_rel);

	EXECUTE 'CREATE TABLE ' || q_stage || ' (' || col_defs || ')';
	EXECUTE 'INSERT INTO ' || q_stage || ' (' || col_list || ') SELECT ' || speed_list || ' FROM ' || q_speed || ' s';
	GET DIAGNOSTICS speed_rows := ROW_COUNT;

	/*
	 * Speed rows at or before the boundary are what the batch already
	 * covers (late events included): drop them from the stage, after the
	 * cast, so they compare as batch values do.  NULL times stay.
	 */
	IF boundary IS NOT NULL THEN
		EXECUTE 'DELETE FROM ' || q_stage || ' WHERE ' || q_time || ' <= CAST('
			|| pg_catalog.quote_literal(boundary) || ' AS ' || time_typ || ')';
		GET DIAGNOSTICS late_rows := ROW_COUNT;
		speed_rows := speed_rows - late_rows;
	END IF;
	EXECUTE 'SELECT COUNT(*) FROM ' || q_batch || batch_where INTO batch_rows;

	/*
	 * Merge: GROUP BY over UNION ALL gives one row per key (NULL keys
	 * included, as GROUP BY treats NULLs as equal) and sums every measure
	 * over both layers.  The INSERT casts each sum back to the batch type,
	 * so an overflow is an error here, before anything was swapped.  A new
	 * serving table is built in place; an existing one beside it.
	 */
	IF t_exists THEN
		q_new := pg_catalog.quote_ident(t_nsp) || '.' || pg_catalog.quote_ident(new_rel);

		/*
		 * When the serving table has the batch table's columns (names and
		 * types, in order), create the new table LIKE it: on Redshift that
		 * keeps its DISTKEY, SORTKEY, column encodings and NOT NULL columns,
		 * which the batch table's column definitions would lose.  Otherwise
		 * the serving table takes the batch table's columns, as it always
		 * did.
		 */
		sep := '';
		FOR rec IN
			SELECT a.attname AS col, pg_catalog.format_type(a.atttypid, a.atttypmod) AS typ
			FROM pg_catalog.pg_attribute a
			JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
			JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = t_nsp AND c.relname = t_rel AND a.attnum > 0 AND NOT a.attisdropped
			ORDER BY a.attnum
		LOOP
			t_sig := t_sig || sep || pg_catalog.quote_ident(rec.col) || ' ' || rec.typ;
			sep := ', ';
		END LOOP;
	ELSE
		q_new := q_target;
	END IF;
	IF t_exists AND t_sig = col_defs THEN
		EXECUTE 'CREATE TABLE ' || q_new || ' (LIKE ' || q_target || ')';
	ELSE
		EXECUTE 'CREATE TABLE ' || q_new || ' (' || col_defs || ')';
	END IF;
	EXECUTE 'INSERT INTO ' || q_new || ' (' || col_list || ') SELECT ' || merge_list
		|| ' FROM (SELECT ' || col_list || ' FROM ' || q_batch || batch_where
		|| ' UNION ALL SELECT ' || col_list || ' FROM ' || q_stage || ') u GROUP BY ' || group_list;
	GET DIAGNOSTICS output_rows := ROW_COUNT;
	EXECUTE 'DROP TABLE ' || q_stage;

	IF t_exists THEN
		/*
		 * Carry the old table's comments over to the new one: the table's
		 * and those of the columns the batch table (so the new one) has.
		 */
		FOR rec IN
			SELECT d.objsubid AS sub, d.description AS txt, a.attname AS col
			FROM pg_catalog.pg_description d
			JOIN pg_catalog.pg_class c ON c.oid = d.objoid
			JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid
			WHERE n.nspname = t_nsp AND c.relname = t_rel
			  AND d.classoid = (SELECT k.oid FROM pg_catalog.pg_class k
								JOIN pg_catalog.pg_namespace kn ON kn.oid = k.relnamespace
								WHERE kn.nspname = 'pg_catalog' AND k.relname = 'pg_class')
			  AND (d.objsubid = 0
				   OR EXISTS (SELECT 1
							  FROM pg_catalog.pg_attribute ba
							  JOIN pg_catalog.pg_class bc ON bc.oid = ba.attrelid
							  JOIN pg_catalog.pg_namespace bn ON bn.oid = bc.relnamespace
							  WHERE bn.nspname = b_nsp AND bc.relname = b_rel
								AND ba.attnum > 0 AND NOT ba.attisdropped
								AND ba.attname = a.attname))
			ORDER BY d.objsubid
		LOOP
			IF rec.sub = 0 THEN
				EXECUTE 'COMMENT ON TABLE ' || q_new || ' IS ' || pg_catalog.quote_literal(rec.txt);
			ELSE
				EXECUTE 'COMMENT ON COLUMN ' || q_new || '.' || pg_catalog.quote_ident(rec.col) || ' IS ' || pg_catalog.quote_literal(rec.txt);
			END IF;
		END LOOP;

		/*
		 * Re-apply the table grants.  Redshift lists them in
		 * SVV_RELATION_PRIVILEGES (users, groups, roles, PUBLIC);
		 * PostgreSQL in information_schema.table_privileges.  Both are
		 * read as plain rows, since the ACL itself is an array.  The
		 * owner's own privileges come with ownership, below.
		 */
		SELECT pg_catalog.pg_get_userbyid(c.relowner) INTO owner_name
		FROM pg_catalog.pg_class c
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = t_nsp AND c.relname = t_rel;

		IF pg_catalog.version() LIKE '%Redshift%' THEN
			grant_sql := 'SELECT identity_name AS grantee, pg_catalog.lower(identity_type) AS kind, '
				|| 'pg_catalog.upper(privilege_type) AS privilege, admin_option AS grantable '
				|| 'FROM pg_catalog.svv_relation_privileges '
				|| 'WHERE namespace_name = ' || pg_catalog.quote_literal(t_nsp)
				|| ' AND relation_name = ' || pg_catalog.quote_literal(t_rel);
		ELSE
			grant_sql := 'SELECT grantee, CASE WHEN grantee = ''PUBLIC'' THEN ''public'' ELSE ''user'' END AS kind, '
				|| 'pg_catalog.upper(privilege_type) AS privilege, is_grantable = ''YES'' AS grantable '
				|| 'FROM information_schema.table_privileges '
				|| 'WHERE table_schema = ' || pg_catalog.quote_literal(t_nsp)
				|| ' AND table_name = ' || pg_catalog.quote_literal(t_rel);
		END IF;
		FOR rec IN EXECUTE grant_sql LOOP
			IF rec.privilege IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE', 'REFERENCES', 'TRUNCATE', 'DROP', 'ALTER')
			   AND NOT (rec.kind = 'user' AND rec.grantee = owner_name) THEN
				EXECUTE 'GRANT ' || rec.privilege || ' ON TABLE ' || q_new || ' TO '
					|| CASE rec.kind
						   WHEN 'public' THEN 'PUBLIC'
						   WHEN 'group' THEN 'GROUP ' || pg_catalog.quote_ident(rec.grantee)
						   WHEN 'role' THEN 'ROLE ' || pg_catalog.quote_ident(rec.grantee)
						   ELSE pg_catalog.quote_ident(rec.grantee)
					   END
					|| CASE WHEN rec.kind = 'user' AND rec.grantable THEN ' WITH GRANT OPTION' ELSE '' END;
			END IF;
		END LOOP;

		-- Ownership last: a superuser refreshing someone's table gives it back.
		IF owner_name <> current_user THEN
			EXECUTE 'ALTER TABLE ' || q_new || ' OWNER TO ' || pg_catalog.quote_ident(owner_name);
		END IF;

		/*
		 * The swap, in the caller's transaction: rename the old table away,
		 * the new one into place, drop the old one.  Late-binding views find
		 * the new table by name at their next query.
		 */
		EXECUTE 'ALTER TABLE ' || q_target || ' RENAME TO ' || pg_catalog.quote_ident(old_rel);
		EXECUTE 'ALTER TABLE ' || q_new || ' RENAME TO ' || pg_catalog.quote_ident(t_rel);
		EXECUTE 'DROP TABLE ' || pg_catalog.quote_ident(t_nsp) || '.' || pg_catalog.quote_ident(old_rel);
	END IF;

	IF time_column IS NULL THEN
		RAISE INFO 'serving_layer_refresh: % refreshed from % (% rows) and % (% rows): % rows',
			q_target, q_batch, batch_rows, q_speed, speed_rows, output_rows;
	ELSE
		RAISE INFO 'serving_layer_refresh: % refreshed from % (% rows) and % (% rows) at boundary % of %: % rows',
			q_target, q_batch, batch_rows, q_speed, speed_rows, COALESCE(boundary, 'none'), q_time, output_rows;
	END IF;
END;
$$ LANGUAGE plpgsql;

/*
 * serving_layer_refresh(target, batch, speed): the refresh without a time
 * column, every row of both layers merged.  Redshift procedures take no
 * default arguments, hence an overload; it finds the four-argument one
 * through search_path.
 */
CREATE OR REPLACE PROCEDURE serving_layer_refresh(target varchar, batch varchar, speed varchar)
AS $$
DECLARE
	no_time_column varchar(1);
BEGIN
	CALL serving_layer_refresh(target, batch, speed, no_time_column);
END;
$$ LANGUAGE plpgsql;

/*
 * The classic layout of the original design: serving_layer from batch_layer
 * and speed_layer, found through search_path.  Redshift procedures take no
 * default arguments, hence an overload rather than DEFAULTs.
 */
CREATE OR REPLACE PROCEDURE serving_layer_refresh()
AS $$
BEGIN
	CALL serving_layer_refresh('serving_layer', 'batch_layer', 'speed_layer');
END;
$$ LANGUAGE plpgsql;
