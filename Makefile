# Build and test kipvs. The host kernel has no IPVS, so kernel tests, benchmarks and the demo
# run inside a User-Mode-Linux guest (integration/uml.sh) that sees this tree through hostfs.
# UML's kernel has no nf_tables for IP: the packet-path tests boot Debian's stock kernel under
# qemu instead (integration/qemu.sh), over the same tree.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
SWIFT ?= swift
UML := integration/uml.sh
QEMU := integration/qemu.sh
PEER := .build/peer

.PHONY: all deps build test unit-test kernel-test packet-test bench demo fuzz clean

all: build

deps:
	integration/deps.sh

build: deps $(PEER)
	$(SWIFT) build --build-tests

# The packet tests' client and server: a C program, since a process start is dear in the guest.
$(PEER): integration/packet/peer.c
	mkdir -p $(@D)
	$(CC) -O2 -Wall -Wextra -Werror -o $@ $<

# Kernel tests skip themselves on the host; the guests run them for real.
test: build
	$(SWIFT) test --skip-build
	$(UML) --pin integration/kernel-tests.sh
	$(QEMU) integration/packet-tests.sh

unit-test: build
	$(SWIFT) test --skip-build

# TESTS picks some, e.g. `make kernel-test TESTS="save edit"`.
kernel-test: build
	$(UML) --pin integration/kernel-tests.sh $(TESTS)

# Two nodes, pods and clients in one qemu guest; TESTS picks some, e.g. `make packet-test TESTS=smoke`.
packet-test: build
	$(QEMU) integration/packet-tests.sh $(TESTS)

# Pinned to one CPU: unpinned guest timings vary several-fold. A static release binary: start-up
# (dynamic loading) is dear in the guest, and shipped images are built the same way. The agent's
# steady churn lasts KIPVS_CHURN_SECONDS (600 by default). UML maps a guest process's memory in
# many host mappings: at the usual vm.max_map_count a process of a few hundred MiB is killed.
bench: deps
	$(SWIFT) build -c release --static-swift-stdlib --product kipvs
	$(SWIFT) build -c release --static-swift-stdlib --product kube-api-test-server
	$(SWIFT) build -c release --static-swift-stdlib --product packet-filter-bench
	@[ "$$(cat /proc/sys/vm/max_map_count)" -ge 262144 ] || echo "bench: vm.max_map_count is" \
	  "$$(cat /proc/sys/vm/max_map_count); the agent on 50,000 Services may be killed in the guest" \
	  "(sysctl -w vm.max_map_count=262144 lifts the limit)"
	KIPVS=$(CURDIR)/.build/release/kipvs KIPVS_API_SERVER=$(CURDIR)/.build/release/kube-api-test-server \
	  $(UML) --pin --mem 3G --timeout $${KIPVS_UML_TIMEOUT:-7200} integration/bench.sh
	KIPVS_PACKET_FILTER_BENCH=$(CURDIR)/.build/release/packet-filter-bench \
	  $(QEMU) --mem 3G integration/bench/packet-filter.sh

# The demo needs the agent and the test API server only, not the test targets. SwiftPM prints
# each step as it goes ([n/m] Compiling ...); a first build took 11 minutes on two busy cores.
.PHONY: demo-build
demo-build: deps
	@echo "demo: building kipvs and kube-api-test-server (a first build takes about 11 minutes on two cores)"
	$(SWIFT) build --product kipvs
	$(SWIFT) build --product kube-api-test-server

demo: demo-build
	$(UML) integration/demo.sh

# libFuzzer on the decoders of untrusted bytes, FUZZ_SECONDS (60) each; not part of `test`.
fuzz:
	FUZZ_SECONDS=$(or $(FUZZ_SECONDS),60) Fuzz/run.sh $(TARGETS)

# Keeps fetched dependencies, so a rebuild needs no network.
clean:
	$(SWIFT) package clean
