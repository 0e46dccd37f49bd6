#!/usr/bin/env bash
# test/demo.sh
#
# The main job on its embedded default, end to end: installs what is missing,
# builds and installs serving_layer, starts a throwaway PostgreSQL 15 cluster,
# creates the classic layout of the original design (batch_layer and
# speed_layer, filled with generated tweet aggregates from test/demo_data.sql),
# runs "SELECT * FROM serving_layer_refresh();" with no definition at all, and
# shows what came out: the refresh's row, the ten busiest locations of
# serving_layer, and how its keys compare with the two layers.  It also checks
# that serving_layer holds exactly batch + speed summed per location (NULL
# location included) and exits non-zero if not.  Then version 2's features on
# an hourly layout: a time boundary so no hour is counted twice, a live view,
# a batch table replaced the dbt way; and serving_layer refreshed in mode
# 'apply', whose second refresh follows the change (one location changed,
# one row updated), checked against the layers.  The cluster is removed on
# exit.
#
#   test/demo.sh
set -euo pipefail
# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
	sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
fi

ensure_packages
build_log=$(mktemp "${TMPDIR:-/tmp}/serving_layer.build.XXXXXX")
on_exit "rm -f '$build_log'"
say "building and installing serving_layer (PostgreSQL 15)"
# build_and_install exits on failure: show its output then.
(build_and_install) >"$build_log" 2>&1 || {
	cat "$build_log" >&2
	die "building or installing the extension failed (output above)"
}
ensure_test_user
start_cluster

# Run a demo step: psql on the demo database, quiet, stopping on the first error.
demo_psql() { sl_psql -q -d demo "$@"; }

# Print a step heading.
heading() { printf '\n== %s ==\n' "$*"; }

sl_psql -q -d postgres -c 'CREATE DATABASE demo'
heading "1. the classic layout: batch_layer and speed_layer (test/demo_data.sql)"
demo_psql -f "$SL_ROOT/test/demo_data.sql"
demo_psql <<'SQL'
\pset null '(null)'
SELECT 'batch_layer' AS layer, count(*) AS locations, sum(count_id) AS tweets,
       sum(sum_followers_count) AS followers, sum(sum_favorite_count) AS favorites,
       sum(sum_retweet_count) AS retweets
FROM batch_layer
UNION ALL
SELECT 'speed_layer', count(*), sum("count(id)"), sum("sum(followers_count)"),
       sum("sum(favorite_count)"), sum("sum(retweet_count)")
FROM speed_layer;
SQL

heading "2. CREATE EXTENSION serving_layer; SELECT * FROM serving_layer_refresh();"
demo_psql <<'SQL'
CREATE EXTENSION serving_layer;
SELECT * FROM serving_layer_refresh();
SQL

heading "3. the ten busiest locations in serving_layer"
demo_psql <<'SQL'
\pset null '(null)'
SELECT s.*, b.count_id AS batch_count, v."count(id)" AS speed_count
FROM serving_layer AS s
LEFT JOIN batch_layer AS b ON b.location IS NOT DISTINCT FROM s.location
LEFT JOIN speed_layer AS v ON v.location IS NOT DISTINCT FROM s.location
ORDER BY s.count_id DESC NULLS LAST, s.location
LIMIT 10;
SQL

heading "4. locations the batch layer has not seen yet, and the NULL location"
demo_psql <<'SQL'
\pset null '(null)'
SELECT * FROM serving_layer AS s
WHERE s.location IS NULL
   OR NOT EXISTS (SELECT FROM batch_layer AS b WHERE b.location = s.location)
ORDER BY s.location NULLS FIRST
LIMIT 6;
SQL

heading "5. serving_layer against the layers"
# The expected serving layer, computed here in plain SQL, must match row for row.
demo_psql -t -A <<'SQL'
CREATE TEMP VIEW expected AS
SELECT location, sum(c)::bigint AS count_id, sum(f)::bigint AS sum_followers_count,
       sum(fa)::bigint AS sum_favorite_count, sum(r)::bigint AS sum_retweet_count
FROM (SELECT location, count_id, sum_followers_count, sum_favorite_count, sum_retweet_count
      FROM batch_layer
      UNION ALL
      SELECT location, "count(id)", "sum(followers_count)", "sum(favorite_count)", "sum(retweet_count)"
      FROM speed_layer) AS u (location, c, f, fa, r)
GROUP BY location;
SELECT format('keys: %s in batch_layer, %s in speed_layer (%s of them also in batch, %s new), %s in serving_layer',
              (SELECT count(*) FROM batch_layer), (SELECT count(*) FROM speed_layer),
              (SELECT count(*) FROM speed_layer AS v WHERE EXISTS
                  (SELECT FROM batch_layer AS b WHERE b.location IS NOT DISTINCT FROM v.location)),
              (SELECT count(*) FROM speed_layer AS v WHERE NOT EXISTS
                  (SELECT FROM batch_layer AS b WHERE b.location IS NOT DISTINCT FROM v.location)),
              (SELECT count(*) FROM serving_layer));
SELECT format('tweets: %s in batch_layer + %s in speed_layer = %s in serving_layer',
              (SELECT sum(count_id) FROM batch_layer), (SELECT sum("count(id)") FROM speed_layer),
              (SELECT sum(count_id) FROM serving_layer));
DO $$
DECLARE
	missing bigint;
	extra bigint;
BEGIN
	SELECT count(*) INTO missing FROM (TABLE expected EXCEPT ALL TABLE serving_layer) AS d;
	SELECT count(*) INTO extra FROM (TABLE serving_layer EXCEPT ALL TABLE expected) AS d;
	IF missing > 0 OR extra > 0 THEN
		RAISE EXCEPTION 'serving_layer is not batch_layer + speed_layer: % rows missing, % rows wrong or extra', missing, extra;
	END IF;
END $$;
SELECT 'check: every location of serving_layer is its batch row + its speed row: ok';
SQL
heading "6. version 2: an hourly pipeline with a time boundary and a live view"
# The speed layer still holds hours the batch already counted (09:00, 10:00):
# with time_column they are counted once.  The live view shows new speed rows
# at once; the batch job then replaces its table the dbt way and records its
# boundary, and the next refresh reads the new table.
demo_psql <<'SQL'
\pset null '(null)'
CREATE TABLE tweets_batch (location text, hour timestamptz, tweets bigint);
CREATE TABLE tweets_speed (location text, hour timestamptz, tweets bigint,
                           PRIMARY KEY (location, hour));
SET TimeZone = 'UTC';
INSERT INTO tweets_batch
SELECT location, h, (count_id * (1 + extract(hour FROM h)::int % 3)) / 10
FROM batch_layer, generate_series(timestamptz '2026-01-01 07:00',
                                  '2026-01-01 10:00', '1 hour') AS h
WHERE location IS NOT NULL;
INSERT INTO tweets_speed
SELECT location, h, "count(id)"
FROM speed_layer, generate_series(timestamptz '2026-01-01 09:00',
                                  '2026-01-01 11:00', '1 hour') AS h
WHERE location IS NOT NULL;
SELECT serving_layer_define('tweets_hourly', 'tweets_batch', 'tweets_speed',
                            key => '{location,hour}', time_column => 'hour',
                            live_view => 'tweets_live');
SELECT target, batch_rows, speed_rows, output_rows, status, boundary
FROM serving_layer_refresh('tweets_hourly');
SELECT format('tweets: %s in the batch + %s in the speed layer after its boundary = %s served (a plain sum of both layers would say %s)',
              (SELECT sum(tweets) FROM tweets_batch),
              (SELECT sum(tweets) FROM tweets_speed WHERE hour > '2026-01-01 10:00'),
              (SELECT sum(tweets) FROM tweets_hourly),
              (SELECT sum(tweets) FROM tweets_batch) + (SELECT sum(tweets) FROM tweets_speed)) AS "counted once";
-- the stream goes on (Kafka Connect's upsert); the live view sees it at once
INSERT INTO tweets_speed VALUES ('London, England', '2026-01-01 11:00', 1000)
ON CONFLICT (location, hour) DO UPDATE SET tweets = tweets_speed.tweets + excluded.tweets;
SELECT 'tweets_hourly' AS relation, tweets FROM tweets_hourly
WHERE location = 'London, England' AND hour = '2026-01-01 11:00'
UNION ALL
SELECT 'tweets_live', tweets FROM tweets_live
WHERE location = 'London, England' AND hour = '2026-01-01 11:00';
-- the batch job covers 11:00 now: dbt builds the new table and renames it in
CREATE TABLE tweets_batch__dbt_tmp AS
SELECT * FROM tweets_batch UNION ALL
SELECT location, hour, tweets FROM tweets_speed WHERE hour = '2026-01-01 11:00';
ALTER TABLE tweets_batch RENAME TO tweets_batch__dbt_backup;
ALTER TABLE tweets_batch__dbt_tmp RENAME TO tweets_batch;
DROP TABLE tweets_batch__dbt_backup CASCADE;
SELECT serving_layer_set_boundary('tweets_hourly', '2026-01-01 11:00+00');
SELECT target, batch_rows, speed_rows, output_rows, status, boundary
FROM serving_layer_refresh('tweets_hourly');
SELECT target, batch, time_column, boundary, live_view, mode
FROM serving_layer_definitions;
SQL
demo_psql -t -A <<'SQL'
DO $$
DECLARE
	bad bigint;
BEGIN
	SELECT count(*) INTO bad FROM
		((SELECT * FROM tweets_hourly EXCEPT ALL SELECT * FROM tweets_batch) UNION ALL
		 (SELECT * FROM tweets_batch EXCEPT ALL SELECT * FROM tweets_hourly)) AS d;
	IF bad > 0 THEN
		RAISE EXCEPTION 'tweets_hourly is not the batch that covers every hour: % rows differ', bad;
	END IF;
	SELECT count(*) INTO bad FROM
		((TABLE tweets_live EXCEPT ALL TABLE tweets_hourly) UNION ALL
		 (TABLE tweets_hourly EXCEPT ALL TABLE tweets_live)) AS d;
	IF bad > 0 THEN
		RAISE EXCEPTION 'tweets_live differs from tweets_hourly right after a refresh: % rows', bad;
	END IF;
END $$;
SELECT 'check: every hour counted once, and the live view equals the serving table after the refresh: ok';
SQL

# Mode 'apply': the same rows, applied in place as row changes (for hot
# standbys, logical subscribers, row triggers).  With a unique index on the
# key, a refresh after the first follows the change: only the locations whose
# speed rows changed are recomputed and looked up, and the batch layer is not
# read (the watch trigger define put on batch_layer logged no change).
heading "7. version 2: mode 'apply' follows the change"
demo_psql <<'SQL'
CREATE UNIQUE INDEX ON serving_layer (location);
SELECT serving_layer_define('serving_layer', 'batch_layer', 'speed_layer',
							mode => 'apply');
SET serving_layer."verbose" = on;
SET client_min_messages = warning;
-- the first refresh of the definition compares the whole table
SELECT status, output_rows, changed_rows FROM serving_layer_refresh('serving_layer');
-- the speed layer gets three new tweets in one location
UPDATE speed_layer SET "count(id)" = "count(id)" + 3
WHERE location = (SELECT min(location) FROM speed_layer);
SELECT status, output_rows, changed_rows FROM serving_layer_refresh('serving_layer');
SQL
demo_psql -t -A <<'SQL'
DO $$
DECLARE
	bad bigint;
BEGIN
	CREATE TEMP VIEW expected_counts AS
	SELECT location, sum(c)::bigint AS count_id
	FROM (SELECT location, count_id FROM batch_layer
		  UNION ALL SELECT location, "count(id)" FROM speed_layer) AS u (location, c)
	GROUP BY location;
	SELECT count(*) INTO bad FROM
		((SELECT location, count_id FROM serving_layer
		  EXCEPT ALL TABLE expected_counts) UNION ALL
		 (TABLE expected_counts
		  EXCEPT ALL SELECT location, count_id FROM serving_layer)) AS d;
	IF bad > 0 THEN
		RAISE EXCEPTION 'serving_layer differs from batch + speed after the apply refresh: % rows', bad;
	END IF;
END $$;
SELECT 'check: after the apply refresh serving_layer is batch + speed again: ok';
SQL
echo
say "done (the throwaway cluster is removed on exit)"
