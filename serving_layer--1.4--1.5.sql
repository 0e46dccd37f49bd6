/* serving_layer--1.4--1.5.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION serving_layer UPDATE TO '1.5'" to load this file. \quit

--
-- Version 1.5: what mode 'apply' keeps between refreshes is no longer
-- WAL-logged, and the extension's tables work under publications that
-- take every table (FOR ALL TABLES, FOR TABLES IN SCHEMA of the
-- extension's schema).  The SQL interface is unchanged.
--
-- The state a refresh in mode 'apply' leaves for the next one holds every
-- speed group's key and hashes (megabytes at a few hundred thousand speed
-- keys), rewritten by every refresh: most of the WAL a refresh that changed
-- a few keys wrote, and all of it replayed by every standby, which never
-- reads it.  Unlogged, it is still written in the refresh's transaction (a
-- failed refresh leaves the previous row); a crash empties it, and a
-- promoted standby or a restored base backup starts with it empty, so the
-- next refresh of each target compares in full, as after pg_dump, and
-- leaves it again.  The logs of changes of serving and batch tables only
-- matter with a state to follow the change from: they are unlogged too, so
-- that a crash empties them with it.  Being unlogged, the three are in no
-- publication either: until 1.4 a FOR ALL TABLES publication took the two
-- logs, which have no replica identity, and then PostgreSQL refused the
-- DELETE from them that serving_layer_define() and serving_layer_forget()
-- run (55000).
--
ALTER TABLE serving_layer_apply_state SET UNLOGGED;
ALTER TABLE serving_layer_apply_dirty SET UNLOGGED;
ALTER TABLE serving_layer_batch_dirty SET UNLOGGED;

-- The history has no key: published by such a publication, it needs a
-- replica identity for serving_layer_prune_history()'s DELETE.
ALTER TABLE serving_layer_history REPLICA IDENTITY FULL;
