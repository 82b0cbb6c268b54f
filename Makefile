# Portico: `make run` and `make test` work on a fresh Debian 12 machine.
#
#   make            build objs/portico (runs ./configure if objs/ is missing)
#   make run        install missing packages, build, serve conf/portico.yaml
#   make test       install missing packages, build, run every test
#   make test-asan  the same tests against an ASan and UBSan build (objs-asan/)
#   make bench      portico against nginx on the same backend (scripts/bench)
#   make bench-router  route lookup cost with 10 and 10,000 routes
#   make fuzz       libFuzzer builds of t/fuzz/fuzz_*.c in objs-fuzz/
#   make clean      remove objs/, objs-asan/ and objs-fuzz/

B ?= objs
BA ?= objs-asan
PROVE_JOBS ?= 2

all: build

$(B)/Makefile: configure scripts/objs.mk $(wildcard modules/*/module.mk)
	./configure --builddir=$(B) $$(cat $(B)/configure.args 2>/dev/null \
	    | sed 's/--builddir=[^ ]*//')

build: $(B)/Makefile
	$(MAKE) -f $(B)/Makefile

deps:
	scripts/deps

run: deps build
	mkdir -p logs
	$(B)/portico -c conf/portico.yaml

test: deps build
	$(MAKE) -f $(B)/Makefile unit
	s=0; scripts/check-style $(B) || s=1; scripts/check-layers || s=1; \
	    exit $$s
	$(PROVE) $(B)

# prove over t/; the diag output of failing files is collected in
# BUILDDIR/test-failures.log and shown again after the summary.
PROVE = scripts/prove-all -j$(PROVE_JOBS)

# Sanitizer options (LeakSanitizer is on by default); the harness adds a
# log_path to both (t/lib/Test/Portico.pm).
ASAN_OPTS = detect_stack_use_after_return=1:strict_string_checks=1
UBSAN_OPTS = halt_on_error=1:print_stacktrace=1

test-asan: deps
	grep -qs -- --with-asan $(BA)/configure.args \
	    || ./configure --builddir=$(BA) --with-asan
	$(MAKE) B=$(BA) build
	$(MAKE) -f $(BA)/Makefile unit
	ASAN_OPTIONS=$(ASAN_OPTS) UBSAN_OPTIONS=$(UBSAN_OPTS) \
	    PT_TEST_BINARY=$(BA)/portico $(PROVE) $(BA)

bench: build
	scripts/deps bench
	scripts/bench

bench-router: build
	$(MAKE) -f $(B)/Makefile bench-router

# Fuzzing needs clang and its libFuzzer runtime, and a build of its own.
FUZZ_B ?= objs-fuzz

$(FUZZ_B)/Makefile: configure scripts/objs.mk $(wildcard modules/*/module.mk)
	./configure --builddir=$(FUZZ_B) --cc=clang-14 --with-fuzz

fuzz:
	scripts/deps fuzz
	$(MAKE) $(FUZZ_B)/Makefile
	$(MAKE) -f $(FUZZ_B)/Makefile fuzzers

clean:
	rm -rf $(B) $(BA) $(FUZZ_B)

.PHONY: all build deps run test test-asan bench bench-router fuzz clean
