# switchboard: one non-recursive Makefile.
#
#   make                 release build of every program into build/bin/
#   make run             install what is missing, build, start switchboard (+ simulator when present)
#   make cluster         two nodes behind nginx on port 8080 sharing Redis (scripts/cluster.sh)
#   make test            install what is missing, build, run every test (release, ASan+UBSan, TSan,
#                        the browser tests in chromium)
#   make check-layering  the include layering rules (scripts/layering.py), first step of make test
#   make asan | tsan     build that flavour and run its tests
#   make stress-shutdown SIGTERM under load, 200 times (tests/integration/stress_shutdown.py)
#   make soak            mixed load with injected faults, leak checks between waves (bench/soak.py;
#                        SOAK_MINUTES, default 30), report in build/soak/report.md
#   make bench           micro-benchmarks (mailbox throughput, net->actor->net round trip) and
#                        the load matrices (voice relay, phone calls beside the browser path)
#   make format | clean
#
# MODE=debug|release|asan|tsan picks the flavour of a single build; objects go to build/<MODE>/.
# The release flavour's programs are also what SPEC section 1 names: build/bin/<program>.

MODE    ?= release
WERROR  ?= 0
CC      ?= cc
ifeq ($(origin CC),default)
CC      := gcc
endif

PKGS    := libwebsockets libuv ck libcjson libsodium openssl libcurl sqlite3 speexdsp libjwt hiredis \
           libpq
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# poppler (and glib, cairo under it) only where PDFs are read: agents/onboard/pdftext.c and the
# programs that call it. The archive's other users never pull pdftext.o, so they link without it.
PDF_PKGS   := poppler-glib
PDF_CFLAGS := $(shell pkg-config --cflags $(PDF_PKGS) 2>/dev/null)
PDF_LIBS   := $(shell pkg-config --libs $(PDF_PKGS) 2>/dev/null)

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wundef \
           -Wimplicit-fallthrough -Wvla
ifeq ($(WERROR),1)
WARN    += -Werror
endif
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE $(WARN) -I. $(PKG_CFLAGS) -MMD -MP -pthread
LDLIBS  := $(PKG_LIBS) -lm -pthread

ifeq ($(MODE),release)
MODE_CFLAGS := -O2 -g -DNDEBUG
else ifeq ($(MODE),debug)
MODE_CFLAGS := -O0 -g3
else ifeq ($(MODE),asan)
MODE_CFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
MODE_LDFLAGS := -fsanitize=address,undefined
else ifeq ($(MODE),tsan)
# CK's read-modify-writes become compiler builtins TSan understands; see tests/tsan.supp.
MODE_CFLAGS := -O1 -g -fsanitize=thread -fno-omit-frame-pointer -DCK_USE_CC_BUILTINS=1
MODE_LDFLAGS := -fsanitize=thread
else
$(error MODE must be debug, release, asan or tsan)
endif

CFLAGS  := $(CFLAGS_BASE) $(MODE_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS := $(MODE_LDFLAGS) $(EXTRA_LDFLAGS)

OUT     := build/$(MODE)
ifeq ($(MODE),release)
BIN     := build/bin
else
BIN     := $(OUT)/bin
endif

# Library code: every layer except the program entry points.
LIB_SRCS := $(wildcard base/*.c mailbox/*.c actors/*.c net/*.c agents/*.c agents/*/*.c audio/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(OUT)/%.o)

# The browser files (web/), compiled into the service by scripts/embed.sh (agents/web.h).
WEB_FILES := $(sort $(wildcard web/*.html web/*.js web/*.css web/*.svg))
WEB_GEN   := $(OUT)/gen/web_assets.c
LIB_OBJS  += $(WEB_GEN:%.c=%.o)
LIB      := $(OUT)/libswitchboard.a

# The core library: what the simulator and the load generator share with the service (and the
# event scanner and the WebSocket client's pure parts, which they use too: framing, handshake,
# message reassembly and TLS on memory BIOs).
CORE_SRCS := $(wildcard base/*.c audio/*.c) net/wsframe.c net/wsproto.c net/wshs.c net/wsmsg.c \
             net/tlsc.c
CORE_OBJS := $(CORE_SRCS:%.c=$(OUT)/%.o)
CORE      := $(OUT)/libsbcore.a

# switchboard-sim (bench/sim/) and switchboard-bench (bench/loadgen/).
SIM_SRCS     := $(wildcard bench/sim/*.c)
SIM_OBJS     := $(SIM_SRCS:%.c=$(OUT)/%.o)
LOADGEN_SRCS := $(wildcard bench/loadgen/*.c)
LOADGEN_OBJS := $(LOADGEN_SRCS:%.c=$(OUT)/%.o)
# --twilio signs its webhooks with the service's own Twilio code (pure: agents/phone/twilio.h).
LOADGEN_PROD := $(OUT)/agents/phone/twilio.o $(OUT)/net/httphead.o
# The load generator without its main(), for the unit tests of its modules (tests/test_storm.c).
LOADGEN_LIB  := $(OUT)/libloadgen.a
# switchboard-mcp (cli/): the MCP client CLI on the service's library.
MCPCLI_SRCS  := $(wildcard cli/mcp_*.c)
MCPCLI_OBJS  := $(MCPCLI_SRCS:%.c=$(OUT)/%.o)
# switchboard-onboard (cli/): a tenant file from a PDF brief (agents/onboard/).
ONBOARD_SRCS := $(wildcard cli/onboard_*.c)
ONBOARD_OBJS := $(ONBOARD_SRCS:%.c=$(OUT)/%.o)

# Unit and stress tests live in tests/<folder>/ beside what they test (tests/net/test_wsframe.c
# tests net/wsframe.c); the tests/<folder>/ tree mirrors the sources.
UNIT_SRCS   := tests/runner.c $(sort $(wildcard tests/*/test_*.c tests/agents/*/test_*.c))
UNIT_OBJS   := $(UNIT_SRCS:%.c=$(OUT)/%.o)
STRESS_SRCS := $(wildcard tests/*/stress_*.c)
STRESS_BINS := $(STRESS_SRCS:%.c=$(OUT)/%)
# Probes (tests/<folder>/probe_*.c): programs on the product's library that the integration
# tests drive from Python against real servers (probe_pg: net_pg_query() against PostgreSQL).
PROBE_SRCS  := $(wildcard tests/*/probe_*.c)
PROBE_BINS  := $(PROBE_SRCS:%.c=$(OUT)/%)
# Actor unit tests (tests/agents/<subsystem>/actor_*.c): single product actors driven through a
# fake network, a fake clock and probe collaborators (tests/fakes/). Their binary links the
# product's objects from an archive that leaves out what the fakes replace: net/ but its pure
# files, base/clock.c, the store actor (agents/store/store.c: a probe stands in for it and reads
# the real record messages its front, records.c, builds) and the wiring (agents/agents.c). A test that reached for a real one fails to link instead of running it.
ACTORS_UNIT_SRCS   := tests/runner.c $(wildcard tests/fakes/*.c tests/agents/*/actor_*.c)
ACTORS_UNIT_OBJS   := $(ACTORS_UNIT_SRCS:%.c=$(OUT)/%.o)
ACTORS_UNIT_FAKED  := base/clock.c agents/store/store.c agents/agents.c
ACTORS_UNIT_NET    := net/query.c net/httphead.c net/wsproto.c net/wsframe.c net/sendfmt.c \
                      net/netmsg.c
ACTORS_UNIT_PROD   := $(filter-out $(ACTORS_UNIT_FAKED) net/%.c,$(LIB_SRCS)) $(ACTORS_UNIT_NET)
ACTORS_UNIT_LIB    := $(OUT)/libsbactors.a
BENCH_SRCS  := $(wildcard bench/bench_*.c)
BENCH_BINS  := $(BENCH_SRCS:bench/%.c=$(OUT)/bench/%)

PROGRAMS := $(BIN)/switchboard $(BIN)/switchboard-mcp $(BIN)/switchboard-onboard
ifneq ($(SIM_SRCS),)
PROGRAMS += $(BIN)/switchboard-sim
endif
ifneq ($(LOADGEN_SRCS),)
PROGRAMS += $(BIN)/switchboard-bench
endif

.PHONY: all build deps run test check-layering test-unit test-actors-unit test-integration test-integration-pg \
	test-shutdown test-browser test-stress stress-shutdown soak cluster asan tsan bench fuzz fuzz-merge \
	format clean

all: $(PROGRAMS) $(OUT)/tests/unit $(OUT)/tests/actors_unit $(STRESS_BINS) $(PROBE_BINS) \
	$(BENCH_BINS)

build: all

$(OUT)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(WEB_GEN): $(WEB_FILES) scripts/embed.sh
	@mkdir -p $(dir $@)
	scripts/embed.sh $@ $(WEB_FILES)

$(OUT)/agents/onboard/pdftext.o: CFLAGS += $(PDF_CFLAGS)

$(WEB_GEN:%.c=%.o): $(WEB_GEN)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(CORE): $(CORE_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(LOADGEN_LIB): $(filter-out $(OUT)/bench/loadgen/main.o,$(LOADGEN_OBJS))
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(BIN)/switchboard-sim: $(SIM_OBJS) $(CORE)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/switchboard-bench: $(LOADGEN_OBJS) $(LOADGEN_PROD) $(CORE)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/switchboard-mcp: $(MCPCLI_OBJS) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/switchboard-onboard: $(ONBOARD_OBJS) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(PDF_LIBS)

$(BIN)/switchboard: $(OUT)/main.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(OUT)/tests/unit: $(UNIT_OBJS) $(LOADGEN_LIB) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(PDF_LIBS)

$(ACTORS_UNIT_LIB): $(ACTORS_UNIT_PROD:%.c=$(OUT)/%.o)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(OUT)/tests/actors_unit: $(ACTORS_UNIT_OBJS) $(ACTORS_UNIT_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(STRESS_BINS) $(PROBE_BINS): %: %.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The PostgreSQL schema and statements (agents/store/pgschema.c) printed as JSON and, with
# --sqlite, the SQLite store's answers to the same operations, for the integration tests
# tests/integration/test_pgschema*.py, which run the statements on a real PostgreSQL.
PGSCHEMA_DUMP := $(OUT)/tests/pgschema_dump
$(PGSCHEMA_DUMP): $(OUT)/tests/agents/store/pgschema_dump.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(OUT)/bench/bench_%: $(OUT)/bench/bench_%.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

-include $(shell find build -name '*.d' 2>/dev/null)

# ---------------------------------------------------------------------------------------------
# The README's two commands.

deps:
	@scripts/deps.sh

run: deps
	@$(MAKE) --no-print-directory MODE=release all
	@scripts/run.sh

# make cluster: two nodes behind nginx on port 8080 sharing Redis (SPEC 13; scripts/cluster.sh).
cluster: deps
	@$(MAKE) --no-print-directory MODE=release all
	@scripts/cluster.sh

# make test: every flavour, every suite. Each step prints TAP or a summary; the first failure
# stops the run with a non-zero status. Builds use TEST_JOBS compilers; the integration suite runs
# INTEGRATION_JOBS test classes at once (each on its own servers; the classes that measure the
# machine run alone afterwards, tests/integration/run.py -j). The other suites run one at a time.
TEST_JOBS ?= 2
INTEGRATION_JOBS ?= 4
test: deps
	@$(MAKE) --no-print-directory check-layering
	@$(MAKE) --no-print-directory -j$(TEST_JOBS) MODE=release WERROR=1 all
	@$(MAKE) --no-print-directory MODE=release test-unit test-integration test-integration-pg
	@$(MAKE) --no-print-directory soak SOAK_MINUTES=2
	@$(MAKE) --no-print-directory MODE=release test-shutdown test-browser
	@$(MAKE) --no-print-directory asan WERROR=1
	@$(MAKE) --no-print-directory tsan WERROR=1
	@$(MAKE) --no-print-directory -j$(TEST_JOBS) fuzz FUZZ_SECONDS=3
	@echo "make test: all suites passed"

# Which folder may include which (the table at the top of scripts/layering.py): its self-test on
# the fake trees of tests/layering/, then the check of this tree, which prints the include graph.
check-layering:
	@/usr/bin/python3 tests/layering/test_layering.py
	@/usr/bin/python3 scripts/layering.py

test-unit: $(OUT)/tests/unit $(OUT)/tests/actors_unit
	$(OUT)/tests/unit
	$(OUT)/tests/actors_unit

test-actors-unit: $(OUT)/tests/actors_unit
	$(OUT)/tests/actors_unit

test-stress: $(STRESS_BINS)
	@set -e; for t in $(STRESS_BINS); do echo "# $$t"; $$t; done

test-integration: $(BIN)/switchboard $(BIN)/switchboard-sim $(BIN)/switchboard-bench \
		$(BIN)/switchboard-mcp $(BIN)/switchboard-onboard $(PROBE_BINS) $(PGSCHEMA_DUMP)
	INTEGRATION_JOBS=$(INTEGRATION_JOBS) SWITCHBOARD_PGSCHEMA_DUMP=$(PGSCHEMA_DUMP) \
		SWITCHBOARD_BIN=$(BIN)/switchboard SWITCHBOARD_SIM_BIN=$(BIN)/switchboard-sim \
		SWITCHBOARD_BENCH_BIN=$(BIN)/switchboard-bench SWITCHBOARD_PROBES=$(OUT)/tests \
		SWITCHBOARD_ONBOARD_BIN=$(BIN)/switchboard-onboard scripts/integration.sh

# The suites that read and write records again, with every server's store in PostgreSQL instead
# of SQLite (SPEC 13): tests/integration/harness.py gives each server a database of its own on
# one PostgreSQL started for the run (pgfix.py). Then SIGTERM under load on PostgreSQL: every
# admitted call is recorded.
PG_SUITES ?= test_calls test_tools test_postcall test_chat test_agent
test-integration-pg: $(BIN)/switchboard $(BIN)/switchboard-sim
	SWITCHBOARD_TEST_PG=1 INTEGRATION_JOBS=$(INTEGRATION_JOBS) \
		SWITCHBOARD_BIN=$(BIN)/switchboard SWITCHBOARD_SIM_BIN=$(BIN)/switchboard-sim \
		SWITCHBOARD_BENCH_BIN=$(BIN)/switchboard-bench \
		SWITCHBOARD_ONBOARD_BIN=$(BIN)/switchboard-onboard scripts/integration.sh $(PG_SUITES)
	SWITCHBOARD_TEST_PG=1 SWITCHBOARD_BIN=$(BIN)/switchboard SWITCHBOARD_SIM_BIN=$(BIN)/switchboard-sim \
		/usr/bin/python3 tests/integration/stress_shutdown.py --iterations 10

# SIGTERM at a random moment under load (voice sessions, chat threads, an agent run, supervisor
# runs in flight): exit 0 within 10 s, no sanitizer report, every admitted call recorded.
# SHUTDOWN_SEED=S replays a run.
SHUTDOWN_ITERATIONS ?= 20
test-shutdown: $(BIN)/switchboard $(BIN)/switchboard-sim
	SWITCHBOARD_BIN=$(BIN)/switchboard SWITCHBOARD_SIM_BIN=$(BIN)/switchboard-sim \
		/usr/bin/python3 tests/integration/stress_shutdown.py --iterations $(SHUTDOWN_ITERATIONS)

stress-shutdown:
	@$(MAKE) --no-print-directory MODE=release all
	@$(MAKE) --no-print-directory MODE=release test-shutdown SHUTDOWN_ITERATIONS=200

# Soak (bench/soak.py): waves of voice calls, a tool storm, chat threads and agent runs on the
# release build, with switchboard-sim --faults and MCP server kills; samples every 30 s and the
# pass/fail lines in build/soak/report.md, non-zero exit on a failure. SOAK_MINUTES under 5 runs
# the short profile (make test runs SOAK_MINUTES=2); SOAK_SEED=S replays the load's choices.
SOAK_MINUTES ?= 30
soak:
	@$(MAKE) --no-print-directory MODE=release build/bin/switchboard build/bin/switchboard-sim \
		build/bin/switchboard-bench
	SOAK_MINUTES=$(SOAK_MINUTES) /usr/bin/python3 bench/soak.py --out build/soak

# The console, the demo site and switchboard.js in Debian's chromium (scripts/browser.sh).
test-browser: $(BIN)/switchboard $(BIN)/switchboard-sim
	SWITCHBOARD_BIN=$(BIN)/switchboard SWITCHBOARD_SIM_BIN=$(BIN)/switchboard-sim \
		scripts/browser.sh

asan:
	@$(MAKE) --no-print-directory -j$(TEST_JOBS) MODE=asan WERROR=$(WERROR) all
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		$(MAKE) --no-print-directory MODE=asan test-unit test-stress test-integration test-shutdown

tsan:
	@$(MAKE) --no-print-directory -j$(TEST_JOBS) MODE=tsan WERROR=$(WERROR) all
	@TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 history_size=7 suppressions=$(CURDIR)/tests/tsan.supp" \
		$(MAKE) --no-print-directory MODE=tsan test-unit test-stress test-integration test-shutdown

# libFuzzer targets (clang, ASan+UBSan), tests/fuzz/fuzz_<name>.c, each linked with only what it
# exercises (FUZZ_DEPS_<name>) and run on a copy of its seed corpus, tests/fuzz/corpus/<name>/
# (client_events and upstream_events use client/ and upstream/). make fuzz runs each target
# FUZZ_RUNS times; FUZZ_SECONDS=S runs each for S seconds instead (make test). FUZZ_TARGETS=...
# picks some. A finding stops the run with its input in build/fuzz/ (crash-*, leak-*, ...).
# make fuzz-merge adds to the committed corpora the inputs of a run that reach new coverage
# (-merge=1; the named seeds stay as they are).
FUZZ_RUNS    ?= 10000000
FUZZ_SECONDS ?=
FUZZ_MAX_LEN ?= 16384
FUZZ_CC      := clang
FUZZ_FLAGS   := -std=c11 -D_GNU_SOURCE -g -O1 -I. $(PKG_CFLAGS) $(WARN) \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_LIMIT   := $(if $(FUZZ_SECONDS),-max_total_time=$(FUZZ_SECONDS),-runs=$(FUZZ_RUNS))
FUZZ_TARGETS ?= client_events upstream_events utf8 wsrx scan wsmsg query url httpreq jwt \
                agentcfg mcpsse mcpproto onboard twilio

FUZZ_DEPS_client_events   := net/wsproto.c agents/voice/events.c audio/b64.c base/util.c
FUZZ_DEPS_upstream_events := agents/voice/events.c audio/b64.c base/util.c
FUZZ_DEPS_utf8            := net/wsproto.c
FUZZ_DEPS_wsrx            := net/wsframe.c net/wshs.c
FUZZ_DEPS_scan            := net/wsproto.c
FUZZ_DEPS_wsmsg           := net/wsmsg.c net/wsframe.c base/util.c
FUZZ_DEPS_query           := net/query.c net/httphead.c base/util.c base/sbuf.c
FUZZ_DEPS_url             := net/url.c base/util.c
FUZZ_DEPS_httpreq         := net/httpreq.c net/httphead.c base/sbuf.c base/util.c
FUZZ_DEPS_jwt             := agents/auth/jwtauth.c base/util.c
FUZZ_DEPS_agentcfg        := agents/config/agentcfg.c agents/config/agentcfg_demo.c \
                             agents/config/cfgparse.c agents/config/tenantkeys.c base/util.c
FUZZ_DEPS_mcpsse          := agents/mcp/mcpsse.c base/sbuf.c base/util.c
FUZZ_DEPS_tenant          := agents/tenant/tenants.c agents/tenant/tenantdir.c \
                             $(FUZZ_DEPS_agentcfg) base/strmap.c base/log.c base/clock.c base/config.c \
                             base/sbuf.c
FUZZ_DEPS_mcpproto        := agents/mcp/mcpproto.c agents/tools/tools.c mailbox/msg.c \
                             $(FUZZ_DEPS_tenant)
FUZZ_DEPS_twilio          := agents/phone/twilio.c net/httphead.c net/wsproto.c audio/b64.c \
                             base/sbuf.c base/util.c
FUZZ_DEPS_onboard         := agents/onboard/onboard.c $(FUZZ_DEPS_agentcfg) base/sbuf.c

.SECONDEXPANSION:
build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $$(FUZZ_DEPS_$$*)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $^ $(PKG_LIBS)

fuzz: $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)
	@set -e; for t in $(FUZZ_TARGETS); do \
		c=$${t%_events}; rm -rf build/fuzz/corpus-$$c; mkdir -p build/fuzz/corpus-$$c; \
		cp tests/fuzz/corpus/$$c/* build/fuzz/corpus-$$c/; \
		echo "# fuzz $$t ($(FUZZ_LIMIT))"; \
		if ! build/fuzz/fuzz_$$t $(FUZZ_LIMIT) -max_len=$(FUZZ_MAX_LEN) \
			-artifact_prefix=build/fuzz/ build/fuzz/corpus-$$c > build/fuzz/$$t.log 2>&1; then \
			tail -40 build/fuzz/$$t.log; echo "fuzz $$t: FAILED (artifact in build/fuzz/)"; exit 1; \
		fi; \
		grep -E "^Done" build/fuzz/$$t.log; \
	done

fuzz-merge: $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)
	@set -e; for t in $(FUZZ_TARGETS); do \
		c=$${t%_events}; d=tests/fuzz/corpus/$$c; test -d build/fuzz/corpus-$$c || continue; \
		build/fuzz/fuzz_$$t -merge=1 -max_len=$(FUZZ_MAX_LEN) $$d build/fuzz/corpus-$$c \
			> build/fuzz/$$t.merge.log 2>&1 || { tail -20 build/fuzz/$$t.merge.log; exit 1; }; \
		echo "# $$d: $$(ls $$d | wc -l) files"; \
	done

bench: deps
	@$(MAKE) --no-print-directory MODE=release all
	@scripts/bench.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build
