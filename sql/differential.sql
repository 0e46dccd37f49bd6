--
-- differential.sql
--	  Differential test of serving_layer_refresh() against a reference
--	  computed in plain SQL.
--
-- From a fixed seed, 1,000 random layouts are generated (and run twice: with
-- the default serving_layer.fast_merge_memory and with 8kB, on which the C
-- merge spills to temporary files).  Each one gets a
-- batch table of random shape: 1 to 3 key columns (text, text COLLATE "C",
-- text of a case-insensitive ICU collation in every fourth layout,
-- varchar(n), char(n), date, boolean, or integer named in "key"), 0 to 4
-- measures (smallint, integer, bigint, numeric, numeric(p,s), real, double
-- precision), sometimes a text or date measure, columns in random order,
-- some names needing quotes (spaces, semicolons, quotes, upper case,
-- non-ASCII, "s", "c1", "u", "p", "b"), sometimes a dropped column, and
-- sometimes a view over the table.  The speed table's columns match by
-- name, by name in another order, by name with extra columns, by position
-- (renamed, or with the batch names permuted), or through speed_columns
-- (also crosswise); their types differ from the batch types where an
-- assignment cast exists (numeric to integer rounds, timestamp and
-- timestamptz to date, text to varchar(n) and char(n), ...); sometimes the
-- batch table is its own speed table.  Merges are random: the default,
-- sum, min, max, speed, batch and a user-defined aggregate (qualified or
-- found through search_path).  Each layer has 0 to 30 rows over small key
-- domains, so keys repeat within and across layers, with NULL keys, NULL
-- measures, and in some layouts NaN and infinities, values that overflow
-- and strings that do not fit.  The serving table does not exist yet, or
-- exists empty or with rows, maybe with a dropped column, an index (plain,
-- unique, partial unique) and a view over it.  A quarter of the layouts
-- are refreshed a second time after their layers changed.
--
-- The reference converts the speed rows to the batch types by INSERTing
-- them into a table shaped like the batch table (an assignment cast, as
-- the contract says), then GROUPs BY the key over batch UNION ALL speed
-- with one expression per merge (CASE over per-layer FILTERed aggregates
-- for "speed" and "batch"), and INSERTs the result into another table
-- shaped like the batch table (so the merge results are assigned to the
-- batch types, as the contract says).  Errors the reference hits (22003,
-- 22001) and duplicates in the winning layer of a "speed"/"batch" merge
-- (21000) are the errors the refresh must raise; then the serving table
-- must be exactly as it was.  Otherwise the serving table (read through
-- its view when it has one) must equal the reference: same row count, one
-- row per distinct key, EXCEPT ALL empty both ways over the keys and the
-- exactly comparable measures, and float sums and user-aggregate results
-- within a relative tolerance (float sums depend on the order of the
-- additions).  The refresh's status and row counts, the effective
-- definition (key, merge, speed_columns) and the serving table's OID are
-- checked too.
--
-- The output is one summary row, the expected errors by SQLSTATE, and the
-- first failures with a script reproducing each (no rows when all is
-- well).  sl_diff.shapes says what each layout was made of; to debug, run
-- this file without its clean-up and query sl_diff.failures and
-- sl_diff.shapes.  differential_apply.sql runs it all again with every
-- definition in mode 'apply' (setting sl_diff.mode).
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS serving_layer;
-- batch layers shrink on purpose here; the half-loaded batch guard has its
-- own test (lambda_guard)
LOAD 'serving_layer';
SET serving_layer.min_batch_fraction = 0;
-- The generator and the reference are long; do not echo them.
\set ECHO none
CREATE SCHEMA sl_diff;
SET search_path = public, sl_diff;
-- a nondeterministic collation for some text keys ('a' and 'A' are one
-- key), which the C merge hashes and compares with the type's functions
-- rather than as bytes
CREATE COLLATION sl_diff.ci (provider = icu, locale = 'und-u-ks-level2',
							 deterministic = false);
-- timestamptz speed keys become dates in this zone
SET TimeZone = 'PST8PDT';

-- A user-defined aggregate for the merges: the sum of absolute values
-- (NULLs ignored, all NULL gives NULL).  Two overloads, as users have them;
-- integer columns resolve to the double precision one.
CREATE FUNCTION sl_diff.sum_abs_n(s numeric, v numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE
AS $$ SELECT CASE WHEN v IS NULL THEN s ELSE coalesce(s, 0) + abs(v) END $$;
CREATE AGGREGATE sl_diff.sum_abs(numeric) (sfunc = sl_diff.sum_abs_n, stype = numeric);
CREATE FUNCTION sl_diff.sum_abs_f(s float8, v float8) RETURNS float8
LANGUAGE sql IMMUTABLE
AS $$ SELECT CASE WHEN v IS NULL THEN s ELSE coalesce(s, 0) + abs(v) END $$;
CREATE AGGREGATE sl_diff.sum_abs(float8) (sfunc = sl_diff.sum_abs_f, stype = float8);

-- What happened to each refresh, and the first failures in detail.
CREATE TABLE sl_diff.events (layout int, phase int, outcome text, sqlstate text,
							 expected text);
CREATE TABLE sl_diff.failures (layout int, phase int, problem text, script text);
-- What each layout was made of (to see what the generator covers).
CREATE TABLE sl_diff.shapes (layout int, btypes text[], stypes text[], iskey boolean[],
							 merges text[], smode text, key_given boolean,
							 batch_rows int, speed_rows int, uniq boolean, big boolean,
							 long boolean, tmode text, tindex text, tview boolean,
							 phases int, fast_merge boolean, script text);

CREATE FUNCTION sl_diff.note(p_layout int, p_phase int, p_outcome text,
							 p_sqlstate text, p_problem text, p_script text,
							 p_expected text[] DEFAULT NULL)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO sl_diff.events VALUES (p_layout, p_phase, p_outcome, p_sqlstate,
		(SELECT string_agg(DISTINCT x, ' or ' ORDER BY x) FROM unnest(p_expected) x));
	IF p_outcome IN ('mismatch', 'unexpected_error')
	   AND (SELECT count(*) FROM sl_diff.failures) < 5 THEN
		INSERT INTO sl_diff.failures VALUES (p_layout, p_phase, p_problem, p_script);
	END IF;
END $$;

-- Random helpers.  Every draw comes from random() in a fixed order, so the
-- layouts depend only on the seed.
CREATE FUNCTION sl_diff.ri(lo int, hi int) RETURNS int LANGUAGE sql VOLATILE
AS $$ SELECT lo + floor(random() * (hi - lo + 1))::int $$;
CREATE FUNCTION sl_diff.rn(lo numeric, hi numeric) RETURNS numeric LANGUAGE sql VOLATILE
AS $$ SELECT lo + floor(random() * (hi - lo + 1))::numeric $$;
CREATE FUNCTION sl_diff.chance(p float8) RETURNS boolean LANGUAGE sql VOLATILE
AS $$ SELECT random() < p $$;
CREATE FUNCTION sl_diff.pick(a text[]) RETURNS text LANGUAGE sql VOLATILE
AS $$ SELECT a[sl_diff.ri(1, cardinality(a))] $$;
CREATE FUNCTION sl_diff.perm(n int) RETURNS int[] LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	p int[] := ARRAY(SELECT generate_series(1, n));
	j int;
	t int;
BEGIN
	FOR i IN REVERSE n..2 LOOP
		j := sl_diff.ri(1, i);
		t := p[i]; p[i] := p[j]; p[j] := t;
	END LOOP;
	RETURN p;
END $$;

-- "a.k1 IS NOT DISTINCT FROM b.k1 AND ..." over the quoted key columns.
CREATE FUNCTION sl_diff.keymatch(a text, b text, kq text[]) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT string_agg(format('%1$s.%3$s IS NOT DISTINCT FROM %2$s.%3$s', a, b, k), ' AND ')
	FROM unnest(kq) k
$$;

-- A literal for a numeric measure of batch type base (numeric(bprec,bscale)
-- when bprec is set), stored in a column of type phys (numeric(pprec,pscale)).
-- In big mode, values come close to (or, where phys allows it, beyond) the
-- range of the batch type, so that sums and casts overflow.  With
-- probability special, NaN or an infinity.
CREATE FUNCTION sl_diff.mlit(base text, bprec int, bscale int, phys text,
							 pprec int, pscale int, big boolean, nullp float8,
							 special float8)
RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	lo numeric := 0;
	hi numeric := 100;
	v numeric;
	neg boolean;
BEGIN
	IF random() < nullp THEN
		RETURN 'NULL';
	END IF;
	-- NaN and infinities, where both types have them
	IF base IN ('numeric', 'real', 'double precision')
	   AND phys IN ('numeric', 'real', 'double precision')
	   AND (phys <> 'numeric' OR pprec IS NULL)
	   AND random() < special THEN
		RETURN quote_literal(sl_diff.pick(ARRAY['NaN', 'Infinity', '-Infinity']));
	END IF;
	IF big AND random() < 0.6 THEN
		CASE base
			WHEN 'smallint' THEN lo := 12000; hi := 34000;
			WHEN 'integer' THEN lo := 800000000; hi := 2200000000;
			WHEN 'bigint' THEN lo := 3000000000000000000; hi := 9300000000000000000;
			WHEN 'numeric' THEN
				IF bprec IS NULL THEN
					lo := 1e20; hi := 1e21;
				ELSE
					hi := 10::numeric ^ (bprec - bscale) * 1.02;
					lo := trunc(hi / 3);
				END IF;
			WHEN 'real' THEN
				-- multiples of 1e38: a sum fits (<= 3e38) or overflows
				-- (>= 4e38) whatever the order of the additions
				IF phys IN ('real', 'double precision', 'numeric') THEN
					RETURN quote_literal(sl_diff.pick(ARRAY['1e38', '2e38', '3e38']));
				END IF;
			WHEN 'double precision' THEN
				IF phys IN ('double precision', 'numeric') THEN
					RETURN quote_literal(sl_diff.pick(ARRAY['5e307', '1e308']));
				END IF;
		END CASE;
	END IF;
	neg := random() < 0.3;
	v := sl_diff.rn(lo, hi);
	-- stay inside what the physical column holds
	CASE phys
		WHEN 'smallint' THEN v := least(v, 32767);
		WHEN 'integer' THEN v := least(v, 2147483647);
		WHEN 'bigint' THEN v := least(v, 9223372036854775807);
		WHEN 'numeric' THEN
			IF pprec IS NOT NULL THEN
				v := least(v, 10::numeric ^ (pprec - pscale) - 1);
			END IF;
		ELSE NULL;
	END CASE;
	IF phys IN ('real', 'double precision') THEN
		-- quarters: exact in binary
		v := v + sl_diff.ri(0, 3) * 0.25;
	ELSIF phys = 'numeric' THEN
		IF pprec IS NOT NULL THEN
			v := v + round(sl_diff.ri(0, (10 ^ pscale)::int - 1) / (10 ^ pscale)::numeric, pscale);
		ELSIF random() < 0.6 THEN
			v := round(v + sl_diff.ri(0, 999) / 1000.0, sl_diff.ri(0, 3));
		END IF;
	END IF;
	IF neg THEN
		v := -v;
	END IF;
	IF phys IN ('smallint', 'integer', 'bigint') THEN
		v := trunc(v);
	END IF;
	RETURN quote_literal(v::text);
END $$;

-- A literal for a key column (or a text/date measure) whose batch value is
-- val (NULL for SQL NULL), stored in a column of type phys.  In long mode,
-- speed values sometimes do not fit the batch type.
CREATE FUNCTION sl_diff.klit(base text, bprec int, val text, phys text, long boolean)
RETURNS text LANGUAGE plpgsql VOLATILE AS $$
BEGIN
	IF val IS NULL THEN
		RETURN 'NULL';
	END IF;
	IF phys = base OR base IN ('text', 'boolean') THEN
		RETURN quote_literal(val);
	END IF;
	CASE base
		WHEN 'varchar', 'char' THEN
			IF long AND random() < 0.25 THEN
				IF random() < 0.5 THEN	-- too long: an error
					RETURN quote_literal(val || repeat('z', bprec + 1 - length(val)));
				ELSE					-- only spaces too many: truncated
					RETURN quote_literal(val || repeat(' ', bprec + 1 - length(val)));
				END IF;
			END IF;
			RETURN quote_literal(val);
		WHEN 'integer' THEN
			IF phys = 'bigint' THEN
				IF long AND random() < 0.15 THEN
					RETURN quote_literal('3000000000');
				END IF;
				RETURN quote_literal(val);
			END IF;
			-- numeric: rounds on assignment
			RETURN quote_literal((val::numeric
								  + sl_diff.pick(ARRAY['0', '0.4', '-0.4', '0.5'])::numeric)::text);
		WHEN 'date' THEN
			IF val LIKE '%infinity' THEN
				RETURN quote_literal(val);
			ELSIF phys = 'timestamp' THEN
				RETURN quote_literal(val || ' ' || sl_diff.pick(ARRAY['00:00:00', '12:34:56', '23:59:59.5']));
			ELSE
				RETURN quote_literal(val || ' ' || sl_diff.pick(ARRAY['03:00:00+00', '12:00:00+00', '23:30:00-05']));
			END IF;
		ELSE
			RETURN quote_literal(val);
	END CASE;
END $$;

-- The statements that make a layer named rel with these column definitions:
-- sometimes with a dropped column among them, sometimes as a view named rel
-- over a table named rel_t.
CREATE FUNCTION sl_diff.layer_setup(cols text[], rel text, rel_t text)
RETURNS text[] LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	setup text[] := '{}';
	j int;
	u text;
BEGIN
	IF sl_diff.chance(0.1) THEN
		j := sl_diff.ri(1, cardinality(cols) + 1);
		cols := cols[1:j - 1] || 'zz_gone integer'::text || cols[j:];
	END IF;
	u := CASE WHEN sl_diff.chance(0.08) THEN rel_t ELSE rel END;
	setup := setup || format('CREATE TABLE %s (%s)', u, array_to_string(cols, ', '));
	IF 'zz_gone integer' = ANY (cols) THEN
		setup := setup || format('ALTER TABLE %s DROP COLUMN zz_gone', u);
	END IF;
	IF u = rel_t THEN
		setup := setup || format('CREATE VIEW %s AS SELECT * FROM %s', rel, rel_t);
	END IF;
	RETURN setup;
END $$;

--
-- One layout: generate it, run it, compare, clean up.  Records one event
-- per refresh (and one for a wrong definition) in sl_diff.events.
--
CREATE FUNCTION sl_diff.layout(n int) RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
	-- batch columns in batch order
	ncol int;
	nk int;
	nm int;
	nx int;
	bname text[] := '{}';
	btyp text[] := '{}';		-- base type
	bsql text[] := '{}';		-- SQL type
	bprec int[] := '{}';
	bscale int[] := '{}';
	bkey boolean[] := '{}';
	mrg text[] := '{}';			-- merge of a measure (NULL for a key)
	mjson text[] := '{}';		-- the name given in the merge object
	kdom jsonb := '{}';			-- key domains: position -> array of values
	-- speed columns, one per batch column, in batch order
	sname text[] := '{}';
	styp text[] := '{}';
	ssql text[] := '{}';
	sprec int[] := '{}';
	sscale int[] := '{}';
	-- speed physical layout
	smode text;
	sphys int[];				-- physical order: batch position, or -k for extra k
	nextra int := 0;
	xtyp text[] := '{}';
	explicit_sc boolean := false;
	-- choices
	tgt text;
	srcrel text;
	key_given boolean;
	has_speed boolean;
	has_batch boolean;
	has_uda boolean;
	uniq boolean;
	big boolean;
	long boolean;
	nullk float8;
	nullm float8;
	tmode text;
	tindex text := NULL;
	tview boolean := false;
	tdrop boolean := false;
	special float8;
	fastonly boolean;
	fast boolean;
	selfspeed boolean;
	brel text;					-- the batch table (or view)
	brel_t text;				-- the table under a batch view
	sown text;					-- the speed table (or view)
	sown_t text;
	srel text;					-- the speed relation of the definition
	-- generated statements
	setup text[] := '{}';
	phase2 text[] := '{}';
	script text;
	-- rows
	nb int;
	ns int;
	ids text[];
	lits text[];
	bids text[] := '{}';
	blits text[] := '{}';
	sids text[] := '{}';
	slits text[] := '{}';
	seen text[];
	keep boolean[];
	-- work
	i int;
	j int;
	k int;
	p int[];
	t text;
	u text;
	id text;
	vals text[];
	st text;
	names_pool text[] := ARRAY['Key', 'two words', 'sum', 'select', 'a;b',
							   'ünï', 'q"uote', 'UPPER', 'm1', 'k1', 'x',
							   's', 'c1', 'c2', 'u', 'p', 'b'];
	bq text[];
	sq text[];
	kq text[];
	blist text;
	slist text;
	klist text;
	elist text;
	tolcols text[];
	tolconds text;
	exprs text[];
	pred text[];
	castfail boolean;
	dups bigint;
	existed boolean;
	rr record;
	got_state text;
	got_msg text;
	c1 bigint;
	c2 bigint;
	c3 bigint;
	c4 bigint;
	c5 bigint;
	c6 bigint;
	c7 bigint;
	problem text;
	exp_key text[];
	exp_merge jsonb;
	got record;
	nph int;
	old_oid oid;
BEGIN
	--------------------------------------------------------------------
	-- Shape of the batch table
	--------------------------------------------------------------------
	nk := sl_diff.ri(1, 3);
	nm := CASE WHEN sl_diff.chance(0.04) THEN 0 ELSE sl_diff.ri(1, 4) END;
	-- "fast" layouts merge only with sum, min and max, which the C merge
	-- handles; the others go through the general GROUP BY
	fastonly := sl_diff.chance(0.3);
	fast := sl_diff.chance(0.75);
	nx := CASE WHEN NOT fastonly AND sl_diff.chance(0.12) THEN 1 ELSE 0 END;
	ncol := nk + nm + nx;
	FOR i IN 1..ncol LOOP
		bprec[i] := NULL;
		bscale[i] := NULL;
		IF i <= nk THEN
			t := sl_diff.pick(ARRAY['text', 'integer', 'varchar', 'date', 'boolean', 'char']);
			bname[i] := 'k' || i;
			bkey[i] := true;
			mrg[i] := NULL;
			btyp[i] := t;
			bsql[i] := t;
			IF t = 'text' AND sl_diff.chance(0.2) THEN
				bsql[i] := 'text COLLATE "C"';
			ELSIF t = 'text' AND n % 4 = 0 THEN
				-- no draw here, so that the layouts stay those of the seed
				bsql[i] := 'text COLLATE sl_diff.ci';
			ELSIF t IN ('varchar', 'char') THEN
				bprec[i] := sl_diff.pick(ARRAY['3', '5'])::int;
				bsql[i] := format('%s(%s)', t, bprec[i]);
			END IF;
			-- the key's domain: few values, so that keys repeat
			kdom := kdom || jsonb_build_object(i::text, (
				SELECT jsonb_agg(v) FROM (
					SELECT v FROM unnest(CASE t
						WHEN 'text' THEN ARRAY['a', 'b', 'A', 'a b', '', 'x;y', 'Ω', 'b ']
						WHEN 'varchar' THEN ARRAY['a', 'bb', 'ccc', 'A', '', 'a ']
						WHEN 'char' THEN ARRAY['a', 'bb', 'ccc', 'A', '', 'a ', 'bb  ']
						WHEN 'integer' THEN ARRAY['0', '1', '-1', '2', '42', '2147483647', '-2147483648']
						WHEN 'date' THEN ARRAY['2024-01-01', '2024-02-29', '1999-12-31', '2000-01-01', 'infinity', '-infinity']
						ELSE ARRAY['true', 'false'] END) WITH ORDINALITY AS d(v, o)
					ORDER BY o) s));
			vals := ARRAY(SELECT jsonb_array_elements_text(kdom -> i::text));
			p := sl_diff.perm(cardinality(vals));
			k := sl_diff.ri(1, least(4, cardinality(vals)));
			kdom := jsonb_set(kdom, ARRAY[i::text],
							  (SELECT jsonb_agg(vals[p[x]] ORDER BY x) FROM generate_series(1, k) x));
		ELSIF i <= nk + nm THEN
			t := sl_diff.pick(ARRAY['smallint', 'integer', 'bigint', 'numeric', 'numeric',
									'real', 'double precision']);
			bname[i] := 'm' || (i - nk);
			bkey[i] := false;
			btyp[i] := t;
			bsql[i] := t;
			IF t = 'numeric' AND sl_diff.chance(0.5) THEN
				u := sl_diff.pick(ARRAY['5,2', '7,0', '9,3']);
				bprec[i] := split_part(u, ',', 1)::int;
				bscale[i] := split_part(u, ',', 2)::int;
				bsql[i] := format('numeric(%s)', u);
			END IF;
			IF fastonly THEN
				mrg[i] := sl_diff.pick(ARRAY['default', 'default', 'sum', 'min', 'max']);
			ELSE
				mrg[i] := sl_diff.pick(ARRAY['default', 'default', 'sum', 'min', 'max',
											 'speed', 'batch', 'uda']);
			END IF;
		ELSE
			t := sl_diff.pick(ARRAY['text', 'date']);
			bname[i] := 'x1';
			bkey[i] := false;
			btyp[i] := t;
			bsql[i] := t;
			mrg[i] := sl_diff.pick(ARRAY['min', 'max', 'speed', 'batch']);
		END IF;
	END LOOP;
	-- some names that need quoting
	FOR i IN 1..ncol LOOP
		IF sl_diff.chance(0.12) THEN
			t := sl_diff.pick(names_pool);
			IF NOT t = ANY (bname) THEN
				bname[i] := t;
			END IF;
		END IF;
	END LOOP;
	-- columns in random order
	p := sl_diff.perm(ncol);
	bname := ARRAY(SELECT bname[p[x]] FROM generate_series(1, ncol) x);
	btyp := ARRAY(SELECT btyp[p[x]] FROM generate_series(1, ncol) x);
	bsql := ARRAY(SELECT bsql[p[x]] FROM generate_series(1, ncol) x);
	bprec := ARRAY(SELECT bprec[p[x]] FROM generate_series(1, ncol) x);
	bscale := ARRAY(SELECT bscale[p[x]] FROM generate_series(1, ncol) x);
	bkey := ARRAY(SELECT bkey[p[x]] FROM generate_series(1, ncol) x);
	mrg := ARRAY(SELECT mrg[p[x]] FROM generate_series(1, ncol) x);
	kdom := (SELECT jsonb_object_agg(x::text, kdom -> p[x]::text)
			 FROM generate_series(1, ncol) x WHERE bkey[x]);

	has_speed := coalesce('speed' = ANY (mrg), false);
	has_batch := coalesce('batch' = ANY (mrg), false);
	has_uda := coalesce('uda' = ANY (mrg), false);
	FOR i IN 1..ncol LOOP
		mjson[i] := CASE mrg[i]
			WHEN 'uda' THEN sl_diff.pick(ARRAY['sl_diff.sum_abs', 'sum_abs'])
			WHEN 'default' THEN NULL
			ELSE mrg[i] END;
	END LOOP;

	--------------------------------------------------------------------
	-- Shape of the speed table
	--------------------------------------------------------------------
	t := sl_diff.pick(ARRAY['b', 'Batch Layer', 'b;x', 'B']);
	brel := 'sl_diff_w.' || quote_ident(t);
	brel_t := 'sl_diff_w.' || quote_ident(t || '_t');
	t := sl_diff.pick(ARRAY['s', 'Speed Layer', 's"q', 'S']);
	sown := 'sl_diff_w.' || quote_ident(t);
	sown_t := 'sl_diff_w.' || quote_ident(t || '_t');
	srel := sown;
	long := sl_diff.chance(0.15);
	u := CASE WHEN sl_diff.chance(0.5) THEN 'variants' ELSE 'same' END;
	FOR i IN 1..ncol LOOP
		styp[i] := btyp[i];
		ssql[i] := bsql[i];
		sprec[i] := bprec[i];
		sscale[i] := bscale[i];
		IF (u = 'variants' AND sl_diff.chance(0.35))
		   OR (long AND bkey[i] AND btyp[i] IN ('varchar', 'char')) THEN
			sprec[i] := NULL;
			sscale[i] := NULL;
			IF bkey[i] THEN
				CASE btyp[i]
					WHEN 'text' THEN
						ssql[i] := sl_diff.pick(ARRAY['varchar(20)', 'text COLLATE "C"', 'text COLLATE "POSIX"', 'text']);
						styp[i] := 'text';
					WHEN 'varchar', 'char' THEN
						styp[i] := sl_diff.pick(ARRAY['text', 'varchar+']);
						IF styp[i] = 'varchar+' THEN
							ssql[i] := format('varchar(%s)', bprec[i] + 3);
						ELSE
							ssql[i] := 'text';
						END IF;
					WHEN 'integer' THEN
						styp[i] := sl_diff.pick(ARRAY['bigint', 'numeric']);
						ssql[i] := styp[i];
					WHEN 'date' THEN
						styp[i] := sl_diff.pick(ARRAY['timestamp', 'timestamptz']);
						ssql[i] := styp[i];
					ELSE
						NULL;
				END CASE;
			ELSIF btyp[i] IN ('text', 'date') THEN
				IF btyp[i] = 'text' THEN
					ssql[i] := sl_diff.pick(ARRAY['varchar(20)', 'text COLLATE "C"']);
				ELSE
					styp[i] := 'timestamp';
					ssql[i] := 'timestamp';
				END IF;
			ELSE
				styp[i] := CASE btyp[i]
					WHEN 'smallint' THEN sl_diff.pick(ARRAY['integer', 'bigint', 'numeric'])
					WHEN 'integer' THEN sl_diff.pick(ARRAY['smallint', 'bigint', 'numeric', 'double precision'])
					WHEN 'bigint' THEN sl_diff.pick(ARRAY['integer', 'numeric', 'double precision'])
					WHEN 'numeric' THEN
						CASE WHEN bprec[i] IS NULL
							THEN sl_diff.pick(ARRAY['integer', 'double precision', 'real'])
							ELSE sl_diff.pick(ARRAY['integer', 'numeric', 'numeric']) END
					WHEN 'real' THEN sl_diff.pick(ARRAY['double precision', 'numeric', 'integer'])
					ELSE sl_diff.pick(ARRAY['real', 'numeric', 'bigint']) END;
				ssql[i] := styp[i];
				IF styp[i] = 'numeric' AND bprec[i] IS NOT NULL AND sl_diff.chance(0.5) THEN
					sprec[i] := bprec[i] + 2;
					sscale[i] := bscale[i] + 1;
					ssql[i] := format('numeric(%s,%s)', sprec[i], sscale[i]);
				END IF;
			END IF;
		END IF;
	END LOOP;

	smode := sl_diff.pick(ARRAY['same', 'same', 'shuffled', 'extra', 'position',
								'position_perm', 'explicit', 'explicit_cross']);
	CASE smode
		WHEN 'position' THEN
			j := sl_diff.ri(1, ncol);
			FOR i IN 1..ncol LOOP
				sname[i] := CASE WHEN i = j OR sl_diff.chance(0.3)
								 THEN 'sp_' || i ELSE bname[i] END;
			END LOOP;
		WHEN 'position_perm' THEN
			p := sl_diff.perm(ncol);
			FOR i IN 1..ncol LOOP
				sname[i] := bname[p[i]];
			END LOOP;
			sname[sl_diff.ri(1, ncol)] := 'sp_x';
		WHEN 'explicit' THEN
			FOR i IN 1..ncol LOOP
				sname[i] := CASE WHEN sl_diff.chance(0.5) THEN 'sp_' || i ELSE bname[i] END;
			END LOOP;
			explicit_sc := true;
		WHEN 'explicit_cross' THEN
			p := sl_diff.perm(ncol);
			FOR i IN 1..ncol LOOP
				sname[i] := bname[p[i]];
			END LOOP;
			explicit_sc := true;
		ELSE
			sname := bname;
			explicit_sc := smode = 'same' AND sl_diff.chance(0.15);
	END CASE;
	-- sometimes the batch table is its own speed table
	selfspeed := sl_diff.chance(0.04);
	IF selfspeed THEN
		smode := 'self';
		srel := brel;
		sname := bname;
		explicit_sc := false;
		styp := btyp;
		ssql := bsql;
		sprec := bprec;
		sscale := bscale;
	END IF;
	IF smode = 'extra' THEN
		nextra := sl_diff.ri(1, 2);
	ELSIF smode IN ('explicit', 'explicit_cross') THEN
		nextra := sl_diff.ri(0, 2);
	END IF;
	FOR i IN 1..nextra LOOP
		xtyp[i] := sl_diff.pick(ARRAY['integer', 'text']);
	END LOOP;
	sphys := ARRAY(SELECT generate_series(1, ncol)) || ARRAY(SELECT -generate_series(1, nextra));
	IF smode NOT IN ('same', 'position', 'position_perm') THEN
		p := sl_diff.perm(ncol + nextra);
		sphys := ARRAY(SELECT sphys[p[x]] FROM generate_series(1, ncol + nextra) x);
	END IF;

	--------------------------------------------------------------------
	-- Definition choices
	--------------------------------------------------------------------
	tgt := sl_diff.pick(ARRAY['sl_diff_w.srv', 'sl_diff_w."Serving Table"',
							  '"sl_diff_w"."srv;x"', 'sl_diff_w."SRV"']);
	key_given := nx > 0 OR EXISTS (SELECT 1 FROM generate_series(1, ncol) x
								   WHERE bkey[x] AND btyp[x] = 'integer')
		OR sl_diff.chance(0.4);
	uniq := (has_speed OR has_batch) AND sl_diff.chance(0.6);
	big := sl_diff.chance(0.15);
	-- not with big values: whether inf + 3e38 + 3e38 overflows depends on
	-- the order of the additions
	special := CASE WHEN sl_diff.chance(0.1) AND NOT big THEN 0.1 ELSE 0 END;
	nullk := sl_diff.pick(ARRAY['0', '0.08', '0.25'])::float8;
	nullm := sl_diff.pick(ARRAY['0', '0.1', '0.3'])::float8;
	tmode := sl_diff.pick(ARRAY['none', 'none', 'empty', 'filled']);
	IF tmode <> 'none' THEN
		IF sl_diff.chance(0.3) THEN
			tindex := sl_diff.pick(ARRAY['unique', 'plain', 'partial']);
		END IF;
		tview := sl_diff.chance(0.3);
		tdrop := sl_diff.chance(0.2);
	END IF;

	bq := ARRAY(SELECT quote_ident(x) FROM unnest(bname) x);
	sq := ARRAY(SELECT quote_ident(x) FROM unnest(sname) x);
	kq := ARRAY(SELECT bq[x] FROM generate_series(1, ncol) x WHERE bkey[x]);
	blist := array_to_string(bq, ', ');
	slist := array_to_string(sq, ', ');
	klist := array_to_string(kq, ', ');

	--------------------------------------------------------------------
	-- Tables
	--------------------------------------------------------------------
	setup := setup || 'CREATE SCHEMA sl_diff_w'::text;
	-- the C merge, or the GROUP BY query even where the C merge would do
	setup := setup || format('SET serving_layer.fast_merge = %s',
							 CASE WHEN fast THEN 'on' ELSE 'off' END);
	-- batch
	setup := setup || sl_diff.layer_setup(
		ARRAY(SELECT format('%s %s', bq[x], bsql[x]) FROM generate_series(1, ncol) x),
		brel, brel_t);
	-- speed
	setup := setup || sl_diff.layer_setup(
		ARRAY(SELECT CASE WHEN x > 0 THEN format('%s %s', sq[x], ssql[x])
				   ELSE format('extra_%s %s', -x, xtyp[-x]) END
			  FROM unnest(sphys) WITH ORDINALITY AS a(x, o) ORDER BY o),
		sown, sown_t);

	--------------------------------------------------------------------
	-- Rows
	--------------------------------------------------------------------
	nb := CASE WHEN sl_diff.chance(0.08) THEN 0 ELSE sl_diff.ri(0, 30) END;
	ns := CASE WHEN sl_diff.chance(0.08) THEN 0 ELSE sl_diff.ri(0, 30) END;
	FOR layer IN 0..1 LOOP
		ids := '{}';
		lits := '{}';
		FOR r IN 1..CASE layer WHEN 0 THEN nb ELSE ns END LOOP
			id := '';
			vals := '{}';
			FOR i IN 1..ncol LOOP
				IF bkey[i] THEN
					IF sl_diff.chance(nullk) THEN
						t := NULL;
						id := id || 'N,';
					ELSE
						j := sl_diff.ri(1, jsonb_array_length(kdom -> i::text));
						t := kdom -> i::text ->> (j - 1);
						id := id || j || ',';
					END IF;
					vals[i] := sl_diff.klit(btyp[i], bprec[i], t,
											CASE layer WHEN 0 THEN btyp[i] ELSE styp[i] END, long);
				ELSIF btyp[i] IN ('text', 'date') THEN
					IF sl_diff.chance(nullm) THEN
						t := NULL;
					ELSIF btyp[i] = 'text' THEN
						t := sl_diff.pick(ARRAY['apple', 'Banana', 'cherry', '', 'äpfel', 'Zebra']);
					ELSE
						t := sl_diff.pick(ARRAY['2024-01-01', '2024-02-29', '1999-12-31', 'infinity']);
					END IF;
					vals[i] := sl_diff.klit(btyp[i], NULL, t,
											CASE layer WHEN 0 THEN btyp[i] ELSE styp[i] END, false);
				ELSIF layer = 0 THEN
					vals[i] := sl_diff.mlit(btyp[i], bprec[i], bscale[i], btyp[i],
											bprec[i], bscale[i], big, nullm, special);
				ELSE
					vals[i] := sl_diff.mlit(btyp[i], bprec[i], bscale[i], styp[i],
											sprec[i], sscale[i], big, nullm, special);
				END IF;
			END LOOP;
			IF layer = 0 THEN
				lits := lits || format('(%s)', array_to_string(vals, ', ', 'NULL'));
			ELSE
				lits := lits || format('(%s)', (
					SELECT string_agg(CASE WHEN x > 0 THEN vals[x]
									  WHEN xtyp[-x] = 'integer' THEN sl_diff.ri(-5, 5)::text
									  ELSE quote_literal(sl_diff.pick(ARRAY['x', 'y', 'z'])) END, ', ' ORDER BY o)
					FROM unnest(sphys) WITH ORDINALITY AS a(x, o)));
			END IF;
			ids := ids || id;
		END LOOP;
		IF layer = 0 THEN
			bids := ids; blits := lits;
		ELSE
			sids := ids; slits := lits;
		END IF;
	END LOOP;

	-- In "unique" layouts, no key repeats in the layer that wins a
	-- "speed" or "batch" merge; other layouts repeat keys freely.
	IF uniq THEN
		IF has_speed THEN
			seen := '{}';
			keep := '{}';
			FOR r IN 1..coalesce(cardinality(sids), 0) LOOP
				keep[r] := NOT sids[r] = ANY (seen);
				seen := seen || sids[r];
			END LOOP;
			sids := ARRAY(SELECT sids[r] FROM generate_series(1, cardinality(sids)) r WHERE keep[r]);
			slits := ARRAY(SELECT slits[r] FROM generate_series(1, cardinality(slits)) r WHERE keep[r]);
		END IF;
		IF has_batch OR has_speed THEN
			seen := '{}';
			keep := '{}';
			FOR r IN 1..coalesce(cardinality(bids), 0) LOOP
				keep[r] := NOT bids[r] = ANY (seen)
					OR (NOT has_batch AND bids[r] = ANY (sids));
				seen := seen || bids[r];
			END LOOP;
			bids := ARRAY(SELECT bids[r] FROM generate_series(1, cardinality(bids)) r WHERE keep[r]);
			blits := ARRAY(SELECT blits[r] FROM generate_series(1, cardinality(blits)) r WHERE keep[r]);
		END IF;
		IF has_batch AND NOT has_speed THEN
			seen := '{}';
			keep := '{}';
			FOR r IN 1..coalesce(cardinality(sids), 0) LOOP
				keep[r] := NOT sids[r] = ANY (seen) OR sids[r] = ANY (bids);
				seen := seen || sids[r];
			END LOOP;
			sids := ARRAY(SELECT sids[r] FROM generate_series(1, cardinality(sids)) r WHERE keep[r]);
			slits := ARRAY(SELECT slits[r] FROM generate_series(1, cardinality(slits)) r WHERE keep[r]);
		END IF;
	END IF;
	IF cardinality(blits) > 0 THEN
		setup := setup || format('INSERT INTO %s (%s) VALUES %s', brel, blist,
								 array_to_string(blits, ', '));
	END IF;
	IF cardinality(slits) > 0 THEN
		setup := setup || format('INSERT INTO %s (%s) VALUES %s', sown,
			(SELECT string_agg(CASE WHEN x > 0 THEN sq[x] ELSE 'extra_' || -x END, ', ' ORDER BY o)
			 FROM unnest(sphys) WITH ORDINALITY AS a(x, o)),
			array_to_string(slits, ', '));
	END IF;

	-- An existing serving table, maybe with a dropped column, rows, an
	-- index, a view.
	IF tdrop THEN
		vals := ARRAY(SELECT format('%s %s', bq[x], bsql[x]) FROM generate_series(1, ncol) x);
		j := sl_diff.ri(1, ncol + 1);
		vals := vals[1:j - 1] || 'zz_gone text'::text || vals[j:];
		setup := setup || format('CREATE TABLE %s (%s)', tgt, array_to_string(vals, ', '));
		setup := setup || format('ALTER TABLE %s DROP COLUMN zz_gone', tgt);
	ELSIF tmode <> 'none' THEN
		setup := setup || format('CREATE TABLE %s (LIKE %s)', tgt, brel);
	END IF;
	IF tmode <> 'none' THEN
		IF tmode = 'filled' THEN
			setup := setup || format('INSERT INTO %s SELECT DISTINCT ON (%s) * FROM %s',
									 tgt, klist, brel);
		END IF;
		IF tindex = 'unique' THEN
			setup := setup || format('CREATE UNIQUE INDEX ON %s (%s)', tgt, klist);
		ELSIF tindex = 'plain' THEN
			setup := setup || format('CREATE INDEX ON %s (%s)', tgt, blist);
		ELSIF tindex = 'partial' THEN
			setup := setup || format('CREATE UNIQUE INDEX ON %s (%s) WHERE %s IS NOT NULL',
									 tgt, klist, kq[1]);
		END IF;
		IF tview THEN
			setup := setup || format('CREATE VIEW sl_diff_w.srv_v AS SELECT * FROM %s', tgt);
		END IF;
	END IF;

	-- The definition.
	st := format('SELECT serving_layer_define(%L, %L, %L', tgt, brel, srel);
	IF key_given THEN
		p := sl_diff.perm(cardinality(kq));
		st := st || format(', key => ARRAY[%s]::text[]',
			(SELECT string_agg(quote_literal(k0), ', ' ORDER BY p[o])
			 FROM unnest(ARRAY(SELECT bname[x] FROM generate_series(1, ncol) x WHERE bkey[x]))
				  WITH ORDINALITY AS a(k0, o)));
	END IF;
	t := (SELECT jsonb_object_agg(bname[x], mjson[x])::text
		  FROM generate_series(1, ncol) x WHERE mjson[x] IS NOT NULL);
	IF t IS NOT NULL THEN
		st := st || format(', merge => %L::jsonb', t);
	ELSIF sl_diff.chance(0.3) THEN
		st := st || ', merge => ''{}''::jsonb';
	END IF;
	IF explicit_sc THEN
		st := st || format(', speed_columns => ARRAY[%s]::text[]',
			(SELECT string_agg(quote_literal(x), ', ') FROM unnest(sname) x));
	END IF;
	-- the refresh mode, when the file that includes this one sets it
	IF coalesce(current_setting('sl_diff.mode', true), '') <> '' THEN
		st := st || format(', mode => %L', current_setting('sl_diff.mode'));
	END IF;
	st := st || ')';
	setup := setup || st;

	-- A second refresh after the layers changed, sometimes.
	nph := 1;
	IF sl_diff.chance(0.25) THEN
		nph := 2;
		IF sl_diff.chance(0.5) THEN
			-- more speed rows
			lits := '{}';
			FOR r IN 1..sl_diff.ri(1, 5) LOOP
				vals := '{}';
				FOR i IN 1..ncol LOOP
					IF bkey[i] THEN
						t := CASE WHEN sl_diff.chance(nullk) THEN NULL ELSE
							kdom -> i::text ->> (sl_diff.ri(1, jsonb_array_length(kdom -> i::text)) - 1) END;
						vals[i] := sl_diff.klit(btyp[i], bprec[i], t, styp[i], long);
					ELSIF btyp[i] IN ('text', 'date') THEN
						vals[i] := 'NULL';
					ELSE
						vals[i] := sl_diff.mlit(btyp[i], bprec[i], bscale[i], styp[i],
												sprec[i], sscale[i], big, nullm, special);
					END IF;
				END LOOP;
				lits := lits || format('(%s)', array_to_string(
					ARRAY(SELECT vals[x] FROM generate_series(1, ncol) x), ', '));
			END LOOP;
			phase2 := phase2 || format('INSERT INTO %s (%s) VALUES %s', sown, slist,
									   array_to_string(lits, ', '));
		END IF;
		IF sl_diff.chance(0.5) THEN
			-- the batch rows of one key value go
			i := (SELECT min(x) FROM generate_series(1, ncol) x WHERE bkey[x]);
			t := CASE WHEN sl_diff.chance(0.2) THEN 'NULL' ELSE
				quote_literal(kdom -> i::text ->> (sl_diff.ri(1, jsonb_array_length(kdom -> i::text)) - 1)) END;
			phase2 := phase2 || format('DELETE FROM %s WHERE %s IS NOT DISTINCT FROM %s::%s',
									   brel, bq[i], t, bsql[i]);
		END IF;
		IF cardinality(phase2) = 0 OR sl_diff.chance(0.2) THEN
			phase2 := phase2 || format('DELETE FROM %s', sown);
		END IF;
	END IF;

	script := array_to_string(setup, E';\n') || E';\nSELECT * FROM serving_layer_refresh('
		|| quote_literal(tgt) || ')';
	IF nph = 2 THEN
		script := script || E';\n' || array_to_string(phase2, E';\n')
			|| E';\nSELECT * FROM serving_layer_refresh(' || quote_literal(tgt) || ')';
	END IF;
	script := script || ';';

	--------------------------------------------------------------------
	-- Reference expressions
	--------------------------------------------------------------------
	exprs := '{}';
	tolcols := '{}';
	tolconds := NULL;
	FOR i IN 1..ncol LOOP
		IF bkey[i] THEN
			exprs[i] := bq[i];
		ELSIF mrg[i] IN ('default', 'sum') THEN
			IF btyp[i] IN ('real', 'double precision') THEN
				exprs[i] := format('sum(%s::float8)', bq[i]);
				tolcols := tolcols || i::text;
			ELSE
				exprs[i] := format('sum(%s::numeric)', bq[i]);
			END IF;
		ELSIF mrg[i] IN ('min', 'max') THEN
			exprs[i] := format('%s(%s)', mrg[i], bq[i]);
		ELSIF mrg[i] = 'uda' THEN
			exprs[i] := format('sl_diff.sum_abs(%s)', bq[i]);
			tolcols := tolcols || i::text;
		ELSE
			exprs[i] := format('CASE WHEN count(*) FILTER (WHERE %1$s"_s") > 0'
							   ' THEN min(%2$s) FILTER (WHERE %1$s"_s")'
							   ' ELSE min(%2$s) FILTER (WHERE NOT %1$s"_s") END',
							   CASE mrg[i] WHEN 'speed' THEN '' ELSE 'NOT ' END, bq[i]);
		END IF;
	END LOOP;
	elist := (SELECT string_agg(bq[x], ', ' ORDER BY x) FROM generate_series(1, ncol) x
			  WHERE NOT x::text = ANY (tolcols));
	IF cardinality(tolcols) > 0 THEN
		tolconds := (SELECT string_agg(format(
			'(o.%1$s IS NOT DISTINCT FROM r.%1$s OR abs(o.%1$s::float8 - r.%1$s::float8) <= 1e-5 * (1 + t."_t%2$s"))',
			bq[x::int], x), ' AND ') FROM unnest(tolcols) x);
	END IF;
	srcrel := CASE WHEN tview THEN 'sl_diff_w.srv_v' ELSE tgt END;

	--------------------------------------------------------------------
	-- Run it
	--------------------------------------------------------------------
	BEGIN
		INSERT INTO sl_diff.shapes VALUES (n, bsql, ssql, bkey, mrg, smode, key_given,
			cardinality(blits), cardinality(slits), uniq, big, long, tmode, tindex,
			tview, nph, fast, script);
		FOREACH st IN ARRAY setup LOOP
			EXECUTE st;
		END LOOP;

		-- the effective definition
		exp_key := ARRAY(SELECT bname[x] FROM generate_series(1, ncol) x WHERE bkey[x] ORDER BY 1);
		exp_merge := coalesce((SELECT jsonb_object_agg(bname[x], CASE mrg[x]
								   WHEN 'default' THEN 'sum'
								   WHEN 'uda' THEN 'sl_diff.sum_abs'
								   ELSE mrg[x] END)
							   FROM generate_series(1, ncol) x WHERE NOT bkey[x]), '{}');
		SELECT ARRAY(SELECT x FROM unnest(d.key) x ORDER BY 1) AS k, d.merge AS m,
			   d.speed_columns AS sc
			INTO got
			FROM serving_layer_definitions d WHERE to_regclass(d.batch) = to_regclass(brel);
		IF got.k IS DISTINCT FROM exp_key OR got.m IS DISTINCT FROM exp_merge
		   OR got.sc IS DISTINCT FROM sname THEN
			PERFORM sl_diff.note(n, 0, 'mismatch', NULL,
				format('definition: key %s merge %s speed_columns %s; expected %s %s %s',
					   got.k, got.m, got.sc, exp_key, exp_merge, sname), script);
		END IF;

		FOR ph IN 1..nph LOOP
			IF ph = 2 THEN
				FOREACH st IN ARRAY phase2 LOOP
					EXECUTE st;
				END LOOP;
			END IF;
			DROP TABLE IF EXISTS pg_temp.ref_u, pg_temp.ref_r, pg_temp.ref_t, pg_temp.ref_snap;
			pred := '{}';

			-- batch UNION ALL speed in the batch types
			EXECUTE format('CREATE TEMP TABLE ref_u (LIKE %s)', brel);
			ALTER TABLE pg_temp.ref_u ADD COLUMN "_s" boolean;
			EXECUTE format('INSERT INTO pg_temp.ref_u (%s, "_s") SELECT %s, false FROM %s',
						   blist, blist, brel);
			castfail := false;
			BEGIN
				EXECUTE format('INSERT INTO pg_temp.ref_u (%s, "_s") SELECT %s, true FROM %s',
							   blist, slist, srel);
			EXCEPTION WHEN numeric_value_out_of_range OR string_data_right_truncation THEN
				castfail := true;
			END;
			IF castfail THEN
				-- which conversions fail
				FOR i IN 1..ncol LOOP
					BEGIN
						EXECUTE format('INSERT INTO pg_temp.ref_u (%s) SELECT %s FROM %s',
									   bq[i], sq[i], srel);
					EXCEPTION WHEN numeric_value_out_of_range OR string_data_right_truncation THEN
						pred := pred || SQLSTATE;
					END;
				END LOOP;
				-- a float sum may overflow while the rows are aggregated,
				-- before the row that cannot be converted is read
				IF big AND cardinality(tolcols) > 0 THEN
					pred := pred || '22003'::text;
				END IF;
			ELSE
				-- two rows of a key in the winning layer of a speed/batch merge
				EXECUTE format('SELECT count(*) FROM (SELECT %s, count(*) FILTER (WHERE "_s") AS cs,'
							   ' count(*) FILTER (WHERE NOT "_s") AS cb FROM pg_temp.ref_u GROUP BY %s) g'
							   ' WHERE (%L::boolean AND (cs > 1 OR (cs = 0 AND cb > 1)))'
							   ' OR (%L::boolean AND (cb > 1 OR (cb = 0 AND cs > 1)))',
							   klist, klist, has_speed, has_batch) INTO dups;
				IF dups > 0 THEN
					pred := pred || '21000'::text;
				END IF;
				-- the merged rows, assigned to the batch types
				EXECUTE format('CREATE TEMP TABLE ref_r (LIKE %s)', brel);
				BEGIN
					EXECUTE format('INSERT INTO pg_temp.ref_r (%s) SELECT %s FROM pg_temp.ref_u GROUP BY %s',
								   blist, array_to_string(exprs, ', '), klist);
				EXCEPTION WHEN numeric_value_out_of_range THEN
					pred := pred || SQLSTATE;
				END;
				IF tolconds IS NOT NULL THEN
					EXECUTE format('CREATE TEMP TABLE ref_t AS SELECT %s, %s FROM pg_temp.ref_u GROUP BY %s',
								   klist,
								   (SELECT string_agg(format('least(sum(abs(%s::numeric)), 1e300)::float8 AS "_t%s"', bq[x::int], x), ', ')
									FROM unnest(tolcols) x),
								   klist);
				END IF;
			END IF;

			-- the serving table as it is
			existed := to_regclass(tgt) IS NOT NULL;
			old_oid := to_regclass(tgt);
			IF existed THEN
				EXECUTE format('CREATE TEMP TABLE ref_snap AS SELECT * FROM %s', tgt);
			END IF;

			got_state := NULL;
			BEGIN
				EXECUTE format('SELECT * FROM serving_layer_refresh(%L)', tgt) INTO rr;
			EXCEPTION WHEN OTHERS THEN
				got_state := SQLSTATE;
				got_msg := SQLERRM;
			END;

			problem := NULL;
			IF got_state IS NOT NULL THEN
				IF NOT got_state = ANY (pred) THEN
					PERFORM sl_diff.note(n, ph, 'unexpected_error', got_state,
						format('refresh failed with %s: %s (expected %s)', got_state, got_msg,
							   CASE WHEN cardinality(pred) = 0 THEN 'success' ELSE array_to_string(pred, ' or ') END),
						script);
					CONTINUE;
				END IF;
				-- an error leaves the serving table as it was
				IF existed THEN
					EXECUTE format('SELECT count(*) FROM (SELECT * FROM %s EXCEPT ALL SELECT * FROM pg_temp.ref_snap) d', tgt) INTO c1;
					EXECUTE format('SELECT count(*) FROM (SELECT * FROM pg_temp.ref_snap EXCEPT ALL SELECT * FROM %s) d', tgt) INTO c2;
					IF c1 <> 0 OR c2 <> 0 THEN
						problem := format('serving table changed by a failed refresh (%s rows added, %s lost)', c1, c2);
					END IF;
				ELSIF to_regclass(tgt) IS NOT NULL THEN
					problem := 'serving table created by a failed refresh';
				END IF;
				IF problem IS NULL THEN
					PERFORM sl_diff.note(n, ph, 'expected_error', got_state, NULL, NULL, pred);
				ELSE
					PERFORM sl_diff.note(n, ph, 'mismatch', got_state, problem, script);
				END IF;
				CONTINUE;
			END IF;

			IF cardinality(pred) > 0 THEN
				PERFORM sl_diff.note(n, ph, 'mismatch', NULL,
					format('refresh succeeded, expected error %s', array_to_string(pred, ' or ')), script);
				CONTINUE;
			END IF;

			-- compare with the reference
			EXECUTE format('SELECT count(*) FROM %s', brel) INTO c1;
			EXECUTE format('SELECT count(*) FROM %s', srel) INTO c2;
			EXECUTE 'SELECT count(*) FROM pg_temp.ref_r' INTO c3;
			IF rr.status IS DISTINCT FROM 'ok' OR rr.batch_rows IS DISTINCT FROM c1
			   OR rr.speed_rows IS DISTINCT FROM c2 OR rr.output_rows IS DISTINCT FROM c3 THEN
				problem := format('refresh returned %s; expected ok with %s batch, %s speed, %s output rows',
								  rr, c1, c2, c3);
			END IF;
			EXECUTE format('SELECT count(*) FROM %s', srcrel) INTO c4;
			EXECUTE format('SELECT count(*) FROM (SELECT DISTINCT %s FROM %s) d', klist, srcrel) INTO c5;
			EXECUTE format('SELECT count(*) FROM (SELECT %1$s FROM %2$s EXCEPT ALL SELECT %1$s FROM pg_temp.ref_r) d',
						   elist, srcrel) INTO c6;
			EXECUTE format('SELECT count(*) FROM (SELECT %1$s FROM pg_temp.ref_r EXCEPT ALL SELECT %1$s FROM %2$s) d',
						   elist, srcrel) INTO c7;
			IF existed AND to_regclass(tgt) IS DISTINCT FROM old_oid THEN
				problem := concat_ws('; ', problem, 'the serving table is a new table');
			END IF;
			IF c4 <> c3 OR c5 <> c4 OR c6 <> 0 OR c7 <> 0 THEN
				problem := concat_ws('; ', problem, format(
					'%s rows (expected %s), %s distinct keys, %s rows not in the reference, %s reference rows missing; columns (%s)',
					c4, c3, c5, c6, c7, elist));
				EXECUTE format('SELECT string_agg(d::text, '' '') FROM (SELECT %1$s FROM %2$s EXCEPT ALL SELECT %1$s FROM pg_temp.ref_r LIMIT 5) d',
							   elist, srcrel) INTO t;
				problem := problem || format('; got %s', t);
				EXECUTE format('SELECT string_agg(d::text, '' '') FROM (SELECT %1$s FROM pg_temp.ref_r EXCEPT ALL SELECT %1$s FROM %2$s LIMIT 5) d',
							   elist, srcrel) INTO t;
				problem := problem || format('; expected %s', t);
			ELSIF tolconds IS NOT NULL THEN
				EXECUTE format('SELECT count(*) FROM pg_temp.ref_r r JOIN pg_temp.ref_t t ON %s'
							   ' WHERE NOT EXISTS (SELECT 1 FROM %s o WHERE %s AND %s)',
							   sl_diff.keymatch('r', 't', kq), srcrel,
							   sl_diff.keymatch('o', 'r', kq), tolconds) INTO c1;
				IF c1 <> 0 THEN
					EXECUTE format('SELECT string_agg(r::text, '' '') FROM (SELECT * FROM pg_temp.ref_r LIMIT 5) r') INTO t;
					EXECUTE format('SELECT string_agg(o::text, '' '') FROM (SELECT * FROM %s LIMIT 5) o', srcrel) INTO u;
					problem := format('%s rows differ beyond the tolerance; expected %s; got %s', c1, t, u);
				END IF;
			END IF;
			IF problem IS NULL THEN
				PERFORM sl_diff.note(n, ph, 'ok', NULL, NULL, NULL);
			ELSE
				PERFORM sl_diff.note(n, ph, 'mismatch', NULL, problem, script);
			END IF;
		END LOOP;

		PERFORM serving_layer_forget(tgt);
		DROP SCHEMA sl_diff_w CASCADE;
		DROP TABLE IF EXISTS pg_temp.ref_u, pg_temp.ref_r, pg_temp.ref_t, pg_temp.ref_snap;
	EXCEPTION WHEN OTHERS THEN
		-- everything the layout did is rolled back; say what went wrong
		GET STACKED DIAGNOSTICS got_msg = PG_EXCEPTION_CONTEXT;
		PERFORM sl_diff.note(n, -1, 'unexpected_error', SQLSTATE,
							 format('%s: %s (%s)', SQLSTATE, SQLERRM,
									split_part(got_msg, E'\n', 1)), script);
	END;
END $fn$;

\set ECHO all

-- The 1,000 layouts from a fixed seed, committing every 20 so that the
-- locks taken on the dropped tables do not pile up.
CREATE PROCEDURE sl_diff.layouts() LANGUAGE plpgsql AS $$
BEGIN
	PERFORM setseed(0.42);
	FOR n IN 1..1000 LOOP
		PERFORM sl_diff.layout(n);
		IF n % 20 = 0 THEN
			COMMIT;
		END IF;
	END LOOP;
END $$;
SELECT pg_stat_force_next_flush();
SELECT temp_files AS temp_files_before FROM pg_stat_database
WHERE datname = current_database() \gset
CALL sl_diff.layouts();

-- The same 1,000 layouts again with serving_layer.fast_merge_memory at its
-- smallest, 8kB: every layout the C merge takes spills its layers to
-- temporary files and merges them partition by partition (spill.c).  That
-- they spilled shows in the database's temporary files: none in the first
-- round (a few rows a layer: neither the C merge at its default budget nor
-- the GROUP BY needs any), some in the second.
SELECT pg_stat_force_next_flush();
SELECT temp_files = :temp_files_before AS first_round_did_not_spill
FROM pg_stat_database WHERE datname = current_database();
SELECT temp_files AS temp_files_before FROM pg_stat_database
WHERE datname = current_database() \gset
SET serving_layer.fast_merge_memory = '8kB';
CALL sl_diff.layouts();
RESET serving_layer.fast_merge_memory;
SELECT pg_stat_force_next_flush();
SELECT temp_files > :temp_files_before AS second_round_spilled
FROM pg_stat_database WHERE datname = current_database();

-- The summary: every refresh matched the reference or failed as expected
-- (a mismatch is a refresh, or a definition, that differs from the
-- reference; an unexpected error is one the reference did not predict).
SELECT count(DISTINCT layout) AS layouts,
	   count(*) FILTER (WHERE phase > 0) AS refreshes,
	   count(*) FILTER (WHERE outcome = 'ok') AS matched,
	   count(*) FILTER (WHERE outcome = 'mismatch') AS mismatches,
	   count(*) FILTER (WHERE outcome = 'expected_error') AS expected_errors,
	   count(*) FILTER (WHERE outcome = 'unexpected_error') AS unexpected_errors
FROM sl_diff.events;
-- The expected errors, by the SQLSTATEs the reference predicted (where
-- it predicted two, either is right: it depends on the order of the groups).
SELECT expected AS expected_sqlstate, count(*) FROM sl_diff.events
WHERE outcome = 'expected_error' GROUP BY expected ORDER BY expected;
-- The first failures, each with a script that reproduces it (none expected).
\x on
SELECT layout, phase, problem, script FROM sl_diff.failures ORDER BY layout, phase LIMIT 3;
\x off

-- Clean up.
DELETE FROM serving_layer_history WHERE target LIKE 'sl\_diff\_w.%';
DROP SCHEMA sl_diff CASCADE;
RESET search_path;
RESET client_min_messages;
RESET TimeZone;
RESET serving_layer.fast_merge;
