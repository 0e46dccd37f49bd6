# serving_layer/Makefile
#
# PGXS build of the serving_layer extension.  Tests are discovered from the
# tree: every sql/*.sql is a pg_regress test, every test/specs/*.spec an
# isolation test, every test/t/*.pl a TAP test.  Run them against a running
# server with "make installcheck", or everything on a throwaway cluster with
# test/run-tests.sh (see README.md).

MODULE_big = serving_layer
OBJS = \
	$(WIN32RES) \
	src/apply.o \
	src/apply_batch_watch.o \
	src/apply_compare.o \
	src/apply_delta.o \
	src/apply_delta_apply.o \
	src/apply_delta_scan.o \
	src/apply_delta_state.o \
	src/apply_full.o \
	src/apply_lookup.o \
	src/apply_rows.o \
	src/apply_state.o \
	src/apply_tids.o \
	src/apply_watch.o \
	src/assign_typmod.o \
	src/batch_guard.o \
	src/boundary.o \
	src/build.o \
	src/catalog.o \
	src/entry.o \
	src/fast_merge.o \
	src/group_table.o \
	src/heap_writer.o \
	src/history.o \
	src/history_worker.o \
	src/large_alloc.o \
	src/layer_read.o \
	src/layers.o \
	src/live_view.o \
	src/merge_acc.o \
	src/merge_kinds.o \
	src/merge_plan.o \
	src/merge_sql.o \
	src/pick_agg.o \
	src/publication.o \
	src/query_rows.o \
	src/refresh.o \
	src/retire.o \
	src/spill.o \
	src/spill_batch.o \
	src/spill_file.o \
	src/swap.o \
	src/swap_files.o \
	src/target.o \
	src/target_create.o \
	src/util.o

EXTENSION = serving_layer
DATA = $(wildcard serving_layer--*.sql)
PGFILEDESC = "serving_layer - batch and speed layers merged into a serving table"

REGRESS = $(sort $(basename $(notdir $(wildcard $(srcdir)/sql/*.sql))))
REGRESS_OPTS = --inputdir=$(srcdir)

ISOLATION = $(sort $(basename $(notdir $(wildcard $(srcdir)/test/specs/*.spec))))
ISOLATION_OPTS = --inputdir=$(srcdir)/test --outputdir=output_iso

TAP_TESTS = 1
PROVE_TESTS = $(sort $(wildcard test/t/*.pl))

PG_CPPFLAGS = -I$(srcdir)/src
EXTRA_CLEAN = output_iso

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks header dependencies only where PostgreSQL was configured with
# --enable-depend (Debian's is not): rebuild every object, and its bitcode
# for JIT inlining, when one of the headers changes.
SL_OBJECTS = $(filter %.o,$(OBJS))
$(SL_OBJECTS) $(SL_OBJECTS:.o=.bc): $(wildcard $(srcdir)/src/*.h)
