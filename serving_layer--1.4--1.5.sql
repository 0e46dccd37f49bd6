/* serving_layer--1.4--1.5.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION serving_layer UPDATE TO '1.5'" to load this file. \quit

--
-- Version 1.5: the state a refresh in mode 'apply' leaves for the next one
-- is no longer WAL-logged.  Its row holds every speed group's key and hashes
-- (megabytes at a few hundred thousand speed keys), rewritten by every
-- refresh: most of the WAL a refresh that changed a few keys wrote, and all
-- of it replayed by every standby, which never reads it.  Unlogged, it is
-- still written in the refresh's transaction (a failed refresh leaves the
-- previous row); a crash empties it, and a promoted standby or a restored
-- backup starts with it empty, so the next refresh of each target compares
-- in full, as after pg_dump, and leaves it again.  The SQL interface is
-- unchanged.
--
ALTER TABLE serving_layer_apply_state SET UNLOGGED;
