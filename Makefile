# Portico: `make run` and `make test` work on a fresh Debian 12 machine.
#
#   make            build objs/portico (runs ./configure if objs/ is missing)
#   make run        install missing packages, build, serve conf/portico.yaml
#   make test       install missing packages, build, run every test
#   make bench      portico against nginx on the same backend (scripts/bench)
#   make bench-router  route lookup cost with 10 and 10,000 routes
#   make fuzz       libFuzzer builds of t/fuzz/fuzz_*.c in objs-fuzz/
#   make clean      remove objs/ and objs-fuzz/

B ?= objs
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
	prove -j$(PROVE_JOBS) t/

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
	rm -rf $(B) $(FUZZ_B)

.PHONY: all build deps run test bench bench-router fuzz clean
