# Portico: `make run` and `make test` work on a fresh Debian 12 machine.
#
#   make            build objs/portico (runs ./configure if objs/ is missing)
#   make run        install missing packages, build, serve conf/portico.yaml
#   make test       install missing packages, build, run every test
#   make bench      portico against nginx on the same backend (scripts/bench)
#   make bench-router  route lookup cost with 10 and 10,000 routes
#   make clean      remove objs/

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
	s=0; scripts/check-style $(B) || s=1; scripts/check-layers || s=1; \
	    exit $$s
	prove -j$(PROVE_JOBS) t/

bench: build
	scripts/deps bench
	scripts/bench

bench-router: build
	$(MAKE) -f $(B)/Makefile bench-router

clean:
	rm -rf $(B)

.PHONY: all build deps run test bench bench-router clean
