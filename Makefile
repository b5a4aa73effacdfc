# streamlog: Kafka semantics inside PostgreSQL.  Built with PGXS.

EXTENSION = streamlog
EXTVERSION = 0.1
MODULE_big = streamlog

CODEC_OBJS = \
	src/protocol/varint.o \
	src/protocol/compression.o \
	src/protocol/records.o \
	src/protocol/legacy_records.o \
	src/protocol/wire.o \
	src/protocol/generated/kmsg.o \
	src/protocol/generated/kapi.o \
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
	src/storage/delete_records.o \
	src/storage/producers.o \
	src/sqlapi/topics_sql.o \
	src/sqlapi/produce_sql.o \
	src/sqlapi/read_sql.o \
	src/sqlapi/delete_records_sql.o \
	src/server/dispatch.o \
	src/server/handlers.o \
	src/server/topic_admin.o \
	src/server/handlers/api_versions.o \
	src/server/handlers/metadata.o \
	src/server/handlers/produce.o \
	src/server/handlers/fetch.o \
	src/server/handlers/list_offsets.o \
	src/server/handlers/admin.o \
	src/server/handlers/admin_topics.o \
	src/server/handlers/admin_configs.o \
	src/server/handlers/delete_records.o \
	src/server/handlers/describe_cluster.o \
	src/server/handlers/init_producer_id.o \
	bgworkers/cleaner.o \
	bgworkers/broker.o \
	bgworkers/conn.o

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

# The codecs compiled once as frontend objects, shared by every test
UNIT_OBJS = $(patsubst %.o,test/unit/obj/%.o,$(CODEC_OBJS))

test/unit/obj/%.o: %.c $(wildcard src/protocol/*.h src/protocol/generated/*.h src/storage/partitioner.h)
	@mkdir -p $(dir $@)
	$(CC) $(UNIT_CFLAGS) -c -o $@ $<

test/unit/%: test/unit/%.c test/unit/unit.h $(UNIT_OBJS)
	$(CC) $(UNIT_CFLAGS) -o $@ $< $(UNIT_OBJS) $(UNIT_LIBS)

.PHONY: unit
unit: $(UNIT_TESTS)
	@set -e; for t in $(UNIT_TESTS); do ./$$t; done

EXTRA_CLEAN += $(UNIT_TESTS) test/unit/obj

# Generated test helpers and headers of the wire codecs
$(UNIT_TESTS): $(wildcard src/protocol/generated/*.h)

# Kafka message codecs, generated from Apache Kafka's JSON schemas (which
# stay outside the project).  The output in src/protocol/generated/ is
# committed, so building needs no Python.
KAFKA_SCHEMAS ?= ../shared/kafka-protocol
KAFKAGEN = python3 $(srcdir)/scripts/kafkagen.py

.PHONY: regen check-generated
regen:
	$(KAFKAGEN) --schemas $(KAFKA_SCHEMAS) --out src/protocol/generated

check-generated:
	@if [ ! -d "$(KAFKA_SCHEMAS)" ]; then \
		echo "check-generated: skipped, schema folder $(KAFKA_SCHEMAS) not found"; \
		exit 0; \
	fi; \
	tmp=$$(mktemp -d) || exit 1; \
	trap 'rm -rf "$$tmp"' EXIT; \
	$(KAFKAGEN) --schemas $(KAFKA_SCHEMAS) --out "$$tmp" || exit 1; \
	rc=0; \
	for f in $$(cd "$$tmp" && ls -A); do \
		diff -u "src/protocol/generated/$$f" "$$tmp/$$f" || rc=1; \
	done; \
	if [ $$rc -ne 0 ]; then \
		echo "check-generated: src/protocol/generated is stale; run make regen"; \
		exit 1; \
	fi; \
	echo "check-generated: src/protocol/generated is up to date"
