# scripts/objs.mk: the build rules configure appends to objs/Makefile.
# Variables CC, B, CFLAGS, LDFLAGS, LIBS and MODULE_OBJS come before it.

CORE_SRCS := $(filter-out core/portico.c,$(wildcard core/*.c core/*/*.c))
CORE_OBJS := $(patsubst core/%.c,$(B)/core/%.o,$(CORE_SRCS))
MAIN_OBJ  := $(B)/core/portico.o
GEN_OBJS  := $(B)/pt_modules.o
LIB_OBJS  := $(CORE_OBJS) $(MODULE_OBJS) $(GEN_OBJS)

UNIT_SRCS := $(wildcard t/unit/test_*.c)
UNIT_BINS := $(patsubst t/unit/%.c,$(B)/unit/%,$(UNIT_SRCS))

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
unit: $(UNIT_BINS) $(B)/bench_router

$(B)/unit/%: t/unit/%.c $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -It/unit $(LDFLAGS) -o $@ $< $(LIB_OBJS) $(LIBS)

.PHONY: all unit

-include $(CORE_OBJS:.o=.d) $(MAIN_OBJ:.o=.d) $(MODULE_OBJS:.o=.d) $(GEN_OBJS:.o=.d)

# The router micro-benchmark (make bench-router).
$(B)/bench_router: scripts/bench_router.c $(LIB_OBJS)
	$(CC) $(CFLAGS) -Imodules/router $(LDFLAGS) -o $@ $< $(LIB_OBJS) $(LIBS)

bench-router: $(B)/bench_router
	$(B)/bench_router

.PHONY: bench-router
