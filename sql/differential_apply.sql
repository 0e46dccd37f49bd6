--
-- differential_apply.sql
--	  The differential test (differential.sql) with every definition in
--	  mode 'apply': the rows applied in place must be the reference's in
--	  every layout, as the swap's are.
--
SET sl_diff.mode = 'apply';
-- (pg_regress feeds the file on stdin, from the tree's top directory)
\i sql/differential.sql
RESET sl_diff.mode;
