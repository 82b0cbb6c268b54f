# scripts/objs.mk: the build rules configure appends to objs/Makefile.
# Variables CC, B, CFLAGS, LDFLAGS, LIBS and MODULE_OBJS come before it.

CORE_SRCS := $(filter-out core/portico.c,$(wildcard core/*.c core/*/*.c))
CORE_OBJS := $(patsubst core/%.c,$(B)/core/%.o,$(CORE_SRCS))
MAIN_OBJ  := $(B)/core/portico.o
GEN_OBJS  := $(B)/pt_modules.o
LIB_OBJS  := $(CORE_OBJS) $(MODULE_OBJS) $(GEN_OBJS)

# Tests and fuzz targets may test a module's own code: its folder is on
# their include path, as it is for the module's sources.
MODULE_INCS := $(patsubst %/module.mk,-I%,$(wildcard modules/*/module.mk))

UNIT_SRCS := $(wildcard t/unit/test_*.c)
UNIT_BINS := $(patsubst t/unit/%.c,$(B)/unit/%,$(UNIT_SRCS))

# Fuzz targets t/fuzz/fuzz_NAME.c: each links with the replay driver for
# `make test` (t/fuzz.t) and, in a build configured --with-fuzz, with
# libFuzzer (`make fuzz`).
FUZZ_NAMES  := $(patsubst t/fuzz/fuzz_%.c,%,$(wildcard t/fuzz/fuzz_*.c))
FUZZ_OBJS   := $(patsubst %,$(B)/fuzz/fuzz_%.o,$(FUZZ_NAMES))
REPLAY_BINS := $(patsubst %,$(B)/fuzz/replay_%,$(FUZZ_NAMES))
FUZZ_BINS   := $(patsubst %,$(B)/fuzz/fuzz_%,$(FUZZ_NAMES))

all: $(B)/portico

$(B)/portico: $(MAIN_OBJ) $(LIB_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(B)/core/%.o: core/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(B)/pt_modules.o: $(B)/pt_modules.c
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

# The micro-benchmark is built with the tests so an API change cannot
# leave it broken unnoticed.
unit: $(UNIT_BINS) $(B)/bench_router $(REPLAY_BINS)

$(B)/unit/%: t/unit/%.c $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -It/unit $(MODULE_INCS) $(LDFLAGS) -o $@ $< \
	    $(filter %.o,$^) $(LIBS)

# The cache store is tested before the cache module is compiled in: until
# configure builds the module, its test gets the store's object here.
ifeq ($(filter %/pt_cache_store.o,$(MODULE_OBJS)),)
$(B)/unit/test_cache_store: $(B)/unit/obj/pt_cache_store.o

$(B)/unit/obj/pt_cache_store.o: modules/cache/pt_cache_store.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Imodules/cache -MMD -MP -c -o $@ $<

-include $(B)/unit/obj/pt_cache_store.d
endif

$(FUZZ_OBJS) $(B)/fuzz/replay.o: $(B)/fuzz/%.o: t/fuzz/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -It/fuzz $(MODULE_INCS) -MMD -MP -c -o $@ $<

$(REPLAY_BINS): $(B)/fuzz/replay_%: $(B)/fuzz/fuzz_%.o $(B)/fuzz/replay.o \
                                    $(LIB_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(FUZZ_BINS): $(B)/fuzz/fuzz_%: $(B)/fuzz/fuzz_%.o $(LIB_OBJS)
	@test -n "$(FUZZ_LDFLAGS)" \
	    || { echo "$(B) is not configured --with-fuzz" >&2; exit 1; }
	$(CC) $(LDFLAGS) $(FUZZ_LDFLAGS) -o $@ $^ $(LIBS)

fuzzers: $(FUZZ_BINS)

.PHONY: all unit fuzzers

-include $(CORE_OBJS:.o=.d) $(MAIN_OBJ:.o=.d) $(MODULE_OBJS:.o=.d) $(GEN_OBJS:.o=.d)
-include $(FUZZ_OBJS:.o=.d) $(B)/fuzz/replay.d

# The router micro-benchmark (make bench-router).
$(B)/bench_router: scripts/bench_router.c $(LIB_OBJS)
	$(CC) $(CFLAGS) -Imodules/router $(LDFLAGS) -o $@ $< $(LIB_OBJS) $(LIBS)

bench-router: $(B)/bench_router
	$(B)/bench_router

.PHONY: bench-router
