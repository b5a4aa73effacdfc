# streamlog: Kafka semantics inside PostgreSQL.  Built with PGXS.

EXTENSION = streamlog
EXTVERSION = 0.1
MODULE_big = streamlog

CODEC_OBJS = \
	src/protocol/varint.o \
	src/protocol/compression.o \
	src/protocol/records.o \
	src/storage/partitioner.o

OBJS = \
	$(CODEC_OBJS) \
	src/streamlog.o \
	src/guc.o \
	src/shmem.o \
	src/storage/catalog_query.o \
	src/storage/partition_state.o \
	src/storage/topics.o \
	src/storage/topic_config.o \
	src/storage/segments.o \
	src/storage/log_append.o \
	src/storage/log_read.o \
	src/storage/retention.o \
	src/sqlapi/topics_sql.o \
	src/sqlapi/produce_sql.o \
	src/sqlapi/read_sql.o \
	bgworkers/cleaner.o

DATA = sql/streamlog--$(EXTVERSION).sql

CODEC_LIBS = -lzstd -llz4 -lsnappy -lz
SHLIB_LINK = $(CODEC_LIBS)
PG_CPPFLAGS = -I$(srcdir)/src -I$(srcdir)
PG_CFLAGS = -Wall -Wmissing-prototypes -Wno-declaration-after-statement

# pg_regress suites in sql/ (expected output in expected/); they need a
# server with the library preloaded, see scripts/test.sh
REGRESS = topic_admin produce_read errors

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Rebuild objects whose headers changed
override CFLAGS += -MMD -MP
-include $(OBJS:.o=.d)
EXTRA_CLEAN += $(OBJS:.o=.d)

# C unit tests of the codecs: frontend code, no server needed
UNIT_SRCS = $(CODEC_OBJS:.o=.c)
UNIT_TESTS = $(patsubst %.c,%,$(wildcard test/unit/test_*.c))
PG_LIBDIR := $(shell $(PG_CONFIG) --pkglibdir)
PG_INCDIR := $(shell $(PG_CONFIG) --includedir-server)
UNIT_CFLAGS = -DFRONTEND -O2 -g -Wall -I$(srcdir)/src -I$(srcdir)/test/unit -I$(PG_INCDIR)
UNIT_LIBS = $(PG_LIBDIR)/libpgcommon.a $(PG_LIBDIR)/libpgport.a $(CODEC_LIBS)

test/unit/%: test/unit/%.c test/unit/unit.h $(UNIT_SRCS) $(wildcard src/protocol/*.h src/storage/partitioner.h)
	$(CC) $(UNIT_CFLAGS) -o $@ $< $(UNIT_SRCS) $(UNIT_LIBS)

.PHONY: unit
unit: $(UNIT_TESTS)
	@set -e; for t in $(UNIT_TESTS); do ./$$t; done

EXTRA_CLEAN += $(UNIT_TESTS)
