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
	src/protocol/consumer_protocol.o \
	src/protocol/offsets_records.o \
	src/protocol/scram.o \
	src/protocol/generated/kmsg.o \
	src/protocol/generated/kapi.o \
	src/storage/partitioner.o \
	src/storage/offset_map.o

# The cluster's metadata (src/cluster/): pure code like the codecs, also
# compiled as frontend code for the unit tests, linked with libraft
CLUSTER_OBJS = \
	src/cluster/metadata_wire.o \
	src/cluster/metadata_records.o \
	src/cluster/metadata_image.o \
	src/cluster/metadata_fsm.o \
	src/cluster/controller_request.o \
	src/cluster/replica_placement.o \
	src/cluster/controller.o

OBJS = \
	$(CODEC_OBJS) \
	$(CLUSTER_OBJS) \
	src/streamlog.o \
	src/guc.o \
	src/shmem.o \
	src/storage/catalog_query.o \
	src/storage/partition_state.o \
	src/storage/wakeups.o \
	src/storage/topics.o \
	src/storage/cluster_catalog.o \
	src/storage/topic_config.o \
	src/storage/segments.o \
	src/storage/log_append.o \
	src/storage/log_read.o \
	src/storage/key_index.o \
	src/storage/latest.o \
	src/storage/retention.o \
	src/storage/compaction.o \
	src/storage/delete_records.o \
	src/storage/producers.o \
	src/storage/producer_ids.o \
	src/storage/topic_lock_cache.o \
	src/storage/xact.o \
	src/storage/group_offsets.o \
	src/storage/offsets_topic.o \
	src/storage/client_quotas.o \
	src/storage/acl.o \
	src/storage/authorize.o \
	src/sqlapi/topics_sql.o \
	src/sqlapi/cluster_sql.o \
	src/sqlapi/produce_sql.o \
	src/sqlapi/read_sql.o \
	src/sqlapi/latest_sql.o \
	src/sqlapi/record_rows.o \
	src/sqlapi/delete_records_sql.o \
	src/sqlapi/compaction_sql.o \
	src/sqlapi/consume_sql.o \
	src/sqlapi/groups_sql.o \
	src/sqlapi/drop_extension.o \
	src/sqlapi/scram_sql.o \
	src/sqlapi/acl_sql.o \
	src/sqlapi/client_quotas_sql.o \
	src/sqlapi/role_commands.o \
	src/metadata/cluster_topics.o \
	src/sqlapi/cluster_submit_sql.o \
	src/sqlapi/cluster_admin_sql.o \
	src/metadata/cluster_submit.o \
	src/metadata/membership.o \
	src/metadata/producer_id_blocks.o \
	src/metadata/leader_election.o \
	src/metadata/group_placement.o \
	src/server/dispatch.o \
	src/server/group_metadata.o \
	src/server/handlers.o \
	src/server/listeners.o \
	src/server/subtransaction.o \
	src/server/topic_admin.o \
	src/server/partition_leader.o \
	src/server/kafka_errors.o \
	src/server/auth/session_role.o \
	src/server/auth/sasl.o \
	src/server/auth/role_sessions.o \
	src/storage/scram_credentials.o \
	src/server/authorize.o \
	src/server/quotas.o \
	src/server/handlers/transactions.o \
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
	src/server/handlers/quorum.o \
	src/server/handlers/elect_leaders.o \
	src/server/handlers/client_quotas.o \
	src/server/handlers/init_producer_id.o \
	src/server/handlers/acls.o \
	src/server/handlers/scram_credentials.o \
	src/server/groups/slots.o \
	src/server/groups/protocols.o \
	src/server/groups/rebalance.o \
	src/server/groups/timers.o \
	src/server/groups/join.o \
	src/server/groups/membership.o \
	src/server/groups/admin.o \
	src/server/handlers/groups.o \
	src/server/handlers/offsets.o \
	src/bgworkers/cleaner.o \
	src/bgworkers/offsets_expiry.o \
	src/bgworkers/offsets_topic_creator.o \
	src/bgworkers/broker.o src/bgworkers/listen_socket.o \
	src/bgworkers/broker_stats.o \
	src/bgworkers/conn.o \
	src/bgworkers/tls.o \
	src/bgworkers/conn_limits.o

# The Raft worker, the cluster state it publishes, its heartbeats
CLUSTER_OBJS += src/cluster/heartbeat.o src/cluster/quorum.o
OBJS += src/metadata/cluster_state.o src/bgworkers/raft_worker.o src/bgworkers/heartbeats.o src/sqlapi/cluster_views_sql.o

# Replicated partitions, one line per area (keep the blank lines between)
REPLICA_LOG_OBJS = src/storage/stored_batches.o src/storage/leader_epochs.o src/storage/replica_truncate.o \
	src/storage/replica_read.o src/sqlapi/replica_log_sql.o \
	src/server/handlers/offset_for_leader_epoch.o
# its pure part: the epoch search, unit-tested as frontend code
CODEC_OBJS += src/storage/epoch_search.o src/storage/read_replica.o

REPLICA_PROGRESS_OBJS = src/storage/replica_view.o src/storage/replica_progress.o \
	src/sqlapi/replica_progress_sql.o src/bgworkers/isr_manager.o

# the stream's message codec is pure: unit tests and fuzzers link it too
REPLICA_STREAM_CODEC_OBJS = src/replication/stream_message.o
REPLICA_STREAM_OBJS = $(REPLICA_STREAM_CODEC_OBJS) src/replication/output_plugin.o \
	src/storage/replica_append.o src/storage/replica_followed.o \
	src/replication/leader_link.o src/replication/apply_worker.o src/replication/launcher.o

PARTITION_CHANGE_OBJS = src/metadata/partition_change.o src/sqlapi/partition_change_sql.o \
	src/metadata/partition_reassignment.o src/sqlapi/reassignment_sql.o \
	src/storage/partition_reassignments.o src/server/handlers/partition_reassignments.o \
	src/server/handlers/describe_topic_partitions.o
CLUSTER_OBJS += src/cluster/controller_alter_partition.o src/cluster/topic_config_flag.o \
	src/cluster/partition_change_builder.o src/cluster/controller_reassign.o

PRODUCE_FORWARD_OBJS = src/storage/forward_queue.o src/sqlapi/forward_sql.o \
	src/replication/produce_forward.o src/bgworkers/forwarder.o

GROUPS_CLUSTER_OBJS = src/storage/group_offsets_load.o src/bgworkers/group_loader.o

# One line per area; each area adds its objects on its own line
SQL_CONSUME_CLUSTER_OBJS = src/storage/group_claim.o src/storage/group_remote_claims.o \
	src/metadata/group_remote.o src/metadata/group_resolver.o src/storage/group_offsets_wait.o
REPLICA_MAINTENANCE_OBJS = src/replication/slot_cleanup.o src/server/groups/resign.o
REMOTE_READ_OBJS = src/sqlapi/remote_read.o
SHARED_HELPER_OBJS = src/metadata/node_link.o src/worker.o src/storage/segment_rows.o
TXN_LOG_OBJS = src/storage/txn_index.o src/storage/txn_markers.o src/sqlapi/txn_test_sql.o \
	src/sqlapi/isolation_arg.o src/sqlapi/transactions_sql.o
CODEC_OBJS += src/protocol/control_records.o src/storage/txn_filter.o
TXN_COORDINATOR_OBJS = src/storage/txn_state.o src/storage/txn_offsets.o src/server/txn/coordinator.o \
	src/bgworkers/txn_expiry.o
# the transaction coordinator's pure part: __transaction_state records and
# its state machine, unit-tested as frontend code
CODEC_OBJS += src/protocol/txn_log_records.o src/server/txn/txn_machine.o
LSO_CACHE_OBJS = src/sqlapi/lso_cache_sql.o
TXN_ADMIN_OBJS = src/server/handlers/transaction_admin.o src/sqlapi/producers_sql.o

TXN_CLUSTER_OBJS = src/storage/txn_state_load.o src/storage/txn_marker_apply.o \
	src/server/txn/coordinator_cluster.o src/sqlapi/txn_marker_sql.o \
	src/server/handlers/txn_answer.o \
	src/bgworkers/txn_coordinator_worker.o
TXN_FAULTS_OBJS = src/server/txn/coordinator_test_door.o
TXN_CLEAN_OBJS = src/storage/txn_truncate.o
# the cleaner's view of transactions is pure: unit-tested as frontend code
CODEC_OBJS += src/storage/txn_cleaner.o
METRICS_OBJS = src/metrics/counters.o src/metrics/partition_counters.o src/metrics/connections.o src/server/request_metrics.o \
	src/metrics/fetch_session_counts.o \
	src/sqlapi/sql_read_metrics.o src/sqlapi/stat_api_sql.o src/sqlapi/stat_topics_sql.o \
	src/sqlapi/stat_connections_sql.o src/sqlapi/stat_broker_sql.o
CODEC_OBJS += src/metrics/histogram.o src/metrics/record_counts.o
PROMHTTP_OBJS = src/storage/metrics_partitions.o src/storage/metrics_groups.o \
	src/storage/metrics_cleaner.o src/storage/metrics_raft.o \
	src/bgworkers/metrics_scrape.o src/bgworkers/metrics_http.o \
	src/storage/metrics_traffic.o src/bgworkers/metrics_requests.o \
	src/bgworkers/metrics_connections.o \
	src/storage/log_dirs.o src/server/handlers/describe_log_dirs.o \
	src/storage/metrics_brokers.o
# the endpoint's pure part: the HTTP request parser, the metric table and
# the exposition writer, unit-tested and fuzzed as frontend code
CODEC_OBJS += src/protocol/http_request.o src/protocol/metric_table.o \
	src/protocol/metrics_exposition.o
KAFKA_WRITE_OBJS = src/server/fetch_sessions.o
SQL_WRITE_OBJS = src/storage/segment_pages.o src/storage/batch_cache.o src/storage/spill_file.o
KAFKA_PRODUCE_OBJS = src/bgworkers/conn_handoff.o src/bgworkers/wal_prealloc.o
# the batches' CRC32C, three streams at a time: a codec, unit-tested as frontend code
CODEC_OBJS += src/protocol/crc32c.o

OBJS += $(REPLICA_LOG_OBJS) $(REPLICA_PROGRESS_OBJS) $(REPLICA_STREAM_OBJS) \
	$(PARTITION_CHANGE_OBJS) $(PRODUCE_FORWARD_OBJS) $(GROUPS_CLUSTER_OBJS) \
	$(SQL_CONSUME_CLUSTER_OBJS) $(REPLICA_MAINTENANCE_OBJS) $(SHARED_HELPER_OBJS) \
	$(TXN_LOG_OBJS) $(TXN_COORDINATOR_OBJS) $(LSO_CACHE_OBJS) $(TXN_ADMIN_OBJS) \
	$(REMOTE_READ_OBJS) \
	$(TXN_CLUSTER_OBJS) $(TXN_FAULTS_OBJS) $(TXN_CLEAN_OBJS) \
	$(METRICS_OBJS) $(PROMHTTP_OBJS) $(KAFKA_WRITE_OBJS) $(SQL_WRITE_OBJS) \
	$(KAFKA_PRODUCE_OBJS)

DATA = sql/streamlog--$(EXTVERSION).sql

CODEC_LIBS = -lzstd -llz4 -lsnappy -lz
RAFT_LIBS = -lraft -luv
SHLIB_LINK = $(CODEC_LIBS) $(RAFT_LIBS) -lssl -lcrypto
# libpq: a node forwards requests to the controller's SQL (as dblink links it)
SHLIB_LINK_INTERNAL = $(libpq)
# The project's headers are all under src/include/streamlog/ and included as
# "streamlog/...", so that none can shadow a PostgreSQL header
PG_CPPFLAGS = -I$(srcdir)/src/include -I$(libpq_srcdir)
PG_CFLAGS = -Wall -Wmissing-prototypes -Wno-declaration-after-statement

# pg_regress suites in sql/ (expected output in expected/) and
# isolationtester specs in test/isolation/specs (expected output in
# test/isolation/expected).  They need the library preloaded, so
# `make installcheck` runs them on temporary instances of the installed
# PostgreSQL started with test/regress.conf (as pg_cron does), never on a
# running server; scripts/test.sh runs it on a copy the postgres user owns.
REGRESS = regress_setup topic_admin produce_read errors groups acl authz scram_credentials \
	latest compaction partition_leadership
REGRESS_OPTS = --temp-config=$(srcdir)/test/regress.conf --temp-instance=./tmp_check

ISOLATION = topic_admin_races commit_order idle_producer group_consumers retention_readers acl_grants \
	key_index compaction_readers offsets_topic replica_truncate
# Transactions, partition side (issue 14)
ISOLATION += txn_markers
ISOLATION += lso_cache
# Transactions through compaction (issue 14)
ISOLATION += txn_compaction
# Transactions under faults: concurrent calls on one transactional id
ISOLATION += txn_coordinator_races
ISOLATION_OPTS = --inputdir=$(srcdir)/test/isolation --load-extension=streamlog \
	--temp-config=$(srcdir)/test/regress.conf --temp-instance=./tmp_check_iso

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# The specs use the database that streamlog.database in test/regress.conf
# names, which the background workers serve (PGXS would use another)
ISOLATION_TESTDB = contrib_regression

# Rebuild objects whose headers changed
override CFLAGS += -MMD -MP
-include $(OBJS:.o=.d)
EXTRA_CLEAN += $(OBJS:.o=.d)

# Where generated code goes: .c next to the codecs, headers with the others
GENERATED_SRC = src/protocol/generated
GENERATED_INC = src/include/streamlog/protocol/generated
PROTOCOL_HEADERS = src/include/streamlog/protocol/*.h $(GENERATED_INC)/*.h

# C unit tests of the codecs: frontend code, no server needed
UNIT_SRCS = $(CODEC_OBJS:.o=.c) $(CLUSTER_OBJS:.o=.c) $(REPLICA_STREAM_CODEC_OBJS:.o=.c)
PG_LIBDIR := $(shell $(PG_CONFIG) --pkglibdir)
PG_INCDIR := $(shell $(PG_CONFIG) --includedir-server)
UNIT_CFLAGS = -DFRONTEND -O2 -g -Wall $(COPT) -I$(srcdir)/src/include -I$(srcdir)/test/unit -I$(PG_INCDIR)
# libpgcommon's hashes and HMAC (SCRAM) are OpenSSL's in a build --with-openssl
UNIT_LIBS = $(PG_LIBDIR)/libpgcommon.a $(PG_LIBDIR)/libpgport.a $(CODEC_LIBS) $(RAFT_LIBS) -lcrypto

# make unit UNIT_SANITIZE=1 builds the tests and the codecs they link with
# AddressSanitizer and UndefinedBehaviorSanitizer, any finding fatal (as
# scripts/test.sh does).  That build has a tree of its own, test/unit/san,
# so that switching between the two never links objects of both.
# Leaks are not looked for: the codecs palloc into memory contexts that the
# server resets, which the frontend build (palloc = malloc) has not.
ifneq ($(UNIT_SANITIZE),)
UNIT_OUT = test/unit/san
UNIT_CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
UNIT_RUN_ENV = ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1
else
UNIT_OUT = test/unit
UNIT_RUN_ENV =
endif
UNIT_TESTS = $(patsubst test/unit/%.c,$(UNIT_OUT)/%,$(wildcard test/unit/test_*.c))

# The codecs compiled once as frontend objects, shared by every test
UNIT_OBJS = $(patsubst %.o,$(UNIT_OUT)/obj/%.o,$(CODEC_OBJS) $(CLUSTER_OBJS) $(REPLICA_STREAM_CODEC_OBJS))

CLUSTER_HEADERS = $(wildcard src/include/streamlog/cluster/*.h src/include/streamlog/cluster/internal/*.h)

$(UNIT_OUT)/obj/%.o: %.c $(wildcard $(PROTOCOL_HEADERS) src/include/streamlog/storage/partitioner.h) $(CLUSTER_HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(UNIT_CFLAGS) -c -o $@ $<

$(UNIT_OUT)/%: test/unit/%.c test/unit/unit.h test/unit/unit_hex.h $(UNIT_OBJS) $(CLUSTER_HEADERS)
	$(CC) $(UNIT_CFLAGS) -o $@ $< $(UNIT_OBJS) $(UNIT_LIBS)

.PHONY: unit
unit: $(UNIT_TESTS)
	@set -e; for t in $(UNIT_TESTS); do $(UNIT_RUN_ENV) ./$$t; done

EXTRA_CLEAN += $(UNIT_TESTS) test/unit/obj test/unit/san

# Generated test helpers and headers of the wire codecs
$(UNIT_TESTS): $(wildcard $(GENERATED_INC)/*.h)

# Kafka message codecs, generated from Apache Kafka's JSON schemas (which
# stay outside the project).  The output ($(GENERATED_SRC) and
# $(GENERATED_INC)) is committed, so building needs no Python.
KAFKA_SCHEMAS ?= ../shared/kafka-protocol
KAFKAGEN = python3 $(srcdir)/scripts/kafkagen.py

.PHONY: regen check-generated
regen:
	$(KAFKAGEN) --schemas $(KAFKA_SCHEMAS) --out $(GENERATED_SRC) --include-out $(GENERATED_INC)

check-generated:
	@if [ ! -d "$(KAFKA_SCHEMAS)" ]; then \
		echo "check-generated: schema folder $(KAFKA_SCHEMAS) not found; set KAFKA_SCHEMAS"; \
		exit 1; \
	fi; \
	tmp=$$(mktemp -d) || exit 1; \
	trap 'rm -rf "$$tmp"' EXIT; \
	$(KAFKAGEN) --schemas $(KAFKA_SCHEMAS) --out "$$tmp/src" --include-out "$$tmp/inc" || exit 1; \
	rc=0; \
	for f in $$(cd "$$tmp/src" && ls -A); do \
		diff -u "$(GENERATED_SRC)/$$f" "$$tmp/src/$$f" || rc=1; \
	done; \
	for f in $$(cd "$$tmp/inc" && ls -A); do \
		diff -u "$(GENERATED_INC)/$$f" "$$tmp/inc/$$f" || rc=1; \
	done; \
	if [ $$rc -ne 0 ]; then \
		echo "check-generated: generated code is stale; run make regen"; \
		exit 1; \
	fi; \
	echo "check-generated: $(GENERATED_SRC) and $(GENERATED_INC) are up to date"

# The layering of src/ (rules and reasons in scripts/check_layers.py): no
# include and no call between the built objects goes up, no include circle.
# `scripts/check_layers.py --graph` prints the include graph.
.PHONY: check-layers
check-layers: $(OBJS)
	/usr/bin/env python3 $(srcdir)/scripts/check_layers.py --root $(srcdir)

# libFuzzer targets of the codecs (test/fuzz/): frontend code like the unit
# tests, built with clang, ASan and UBSan into test/fuzz/bin/.
#
#   make fuzz                        build them
#   make fuzz-run FUZZ_SECONDS=30    run each over a copy of its seed corpus
#   make fuzz-corpus                 regenerate the committed seed corpus
FUZZ_CC ?= clang-14
FUZZ_SECONDS ?= 30
FUZZ_DIR = test/fuzz
FUZZ_BIN = $(FUZZ_DIR)/bin
FUZZ_LEGACY := $(if $(wildcard $(srcdir)/src/include/streamlog/protocol/legacy_records.h),yes)
FUZZ_SRCS = $(filter src/protocol/% src/cluster/% src/replication/%,$(UNIT_SRCS))
ifeq ($(FUZZ_LEGACY),)
FUZZ_SRCS := $(filter-out src/protocol/legacy_records.c,$(FUZZ_SRCS))
endif
FUZZ_OBJS = $(patsubst %.c,$(FUZZ_BIN)/obj/%.o,$(FUZZ_SRCS))
FUZZ_TARGETS = fuzz_request fuzz_record_batch fuzz_decompress fuzz_consumer_protocol fuzz_scram fuzz_metadata fuzz_stream_message fuzz_txn_log fuzz_control_records $(if $(FUZZ_LEGACY),fuzz_legacy)
# the metrics endpoint's HTTP request parser
FUZZ_TARGETS += fuzz_http_request
FUZZ_CFLAGS = -DFRONTEND -g -O1 -fno-omit-frame-pointer \
	-fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-Wall -Wno-ignored-attributes -I$(srcdir)/src/include -I$(srcdir)/$(FUZZ_DIR) \
	-I$(PG_INCDIR) $(if $(FUZZ_LEGACY),-DSL_FUZZ_LEGACY)

$(FUZZ_BIN)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(FUZZ_BIN)/fuzz_%: $(FUZZ_DIR)/fuzz_%.c $(FUZZ_DIR)/fuzz_common.h $(FUZZ_OBJS) \
		$(wildcard $(PROTOCOL_HEADERS)) $(CLUSTER_HEADERS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJS) $(UNIT_LIBS)

-include $(FUZZ_OBJS:.o=.d)

# Compressor used by make_corpus.py: the project's own SlCompress
$(FUZZ_BIN)/compress_tool: $(FUZZ_DIR)/compress_tool.c src/protocol/compression.c src/include/streamlog/protocol/compression.h
	@mkdir -p $(@D)
	$(CC) $(UNIT_CFLAGS) -o $@ $< src/protocol/compression.c $(UNIT_LIBS)

.PHONY: fuzz fuzz-run fuzz-corpus
fuzz: $(addprefix $(FUZZ_BIN)/,$(FUZZ_TARGETS))

fuzz-run: fuzz
	$(FUZZ_DIR)/run.sh -t $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-corpus: $(FUZZ_BIN)/compress_tool
	/usr/bin/python3 $(FUZZ_DIR)/make_corpus.py --compress-tool $(FUZZ_BIN)/compress_tool

EXTRA_CLEAN += $(FUZZ_BIN)
