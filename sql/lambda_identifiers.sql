--
-- lambda_identifiers: the v2 arguments with identifiers of every shape --
-- a schema with quotes and a semicolon, a time column whose name is SQL, a
-- live view named like a comment -- work, and change no SQL that runs.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS serving_layer;
RESET client_min_messages;
CREATE SCHEMA "Odd ""S""; x";
SET search_path = "Odd ""S""; x", public;
CREATE TABLE victim (x int);
CREATE TABLE "B; t" ("K e y" text, "Hour; DROP TABLE victim; --" int, "Ñ" bigint);
CREATE TABLE "S; t" ("K e y" text, "Hour; DROP TABLE victim; --" int, "Ñ" bigint);
INSERT INTO "B; t" VALUES ('a', 1, 1), ('a', 2, 2);
INSERT INTO "S; t" VALUES ('a', 2, 20), ('a', 3, 30);
SELECT serving_layer_define('"Odd ""S""; x"."T; v"', '"B; t"', '"S; t"',
	key => '{"K e y","Hour; DROP TABLE victim; --"}',
	time_column => 'Hour; DROP TABLE victim; --',
	live_view => '"Odd ""S""; x"."Live; --"');
SELECT * FROM serving_layer_refresh('"Odd ""S""; x"."T; v"');
INSERT INTO "S; t" VALUES ('b', 9, 90);
SELECT * FROM "Live; --" ORDER BY 1, 2;
SELECT serving_layer_set_boundary('"Odd ""S""; x"."T; v"', '1');
SELECT * FROM serving_layer_refresh('"Odd ""S""; x"."T; v"');
SELECT * FROM "Live; --" ORDER BY 1, 2;
SELECT target, batch, speed, key, time_column, boundary, live_view
FROM serving_layer_definitions;
SELECT serving_layer_forget('"Odd ""S""; x"."T; v"');
SELECT to_regclass('"Live; --"') IS NULL AS view_dropped,
	   to_regclass('victim') IS NOT NULL AS victim_alive;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA "Odd ""S""; x" CASCADE;
RESET client_min_messages;
