# Build and test kipvs. The host kernel has no IPVS, so kernel tests, benchmarks and the demo
# run inside a User-Mode-Linux guest (integration/uml.sh) that sees this tree through hostfs.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
SWIFT ?= swift
UML := integration/uml.sh

.PHONY: all deps build test unit-test kernel-test bench demo clean

all: build

deps:
	integration/deps.sh

build: deps
	$(SWIFT) build --build-tests

# Kernel tests skip themselves on the host; the guest runs them for real.
test: build
	$(SWIFT) test --skip-build
	$(UML) --pin integration/kernel-tests.sh

unit-test: build
	$(SWIFT) test --skip-build

# TESTS picks some, e.g. `make kernel-test TESTS="save edit"`.
kernel-test: build
	$(UML) --pin integration/kernel-tests.sh $(TESTS)

# Pinned to one CPU: unpinned guest timings vary several-fold. A static release binary: start-up
# (dynamic loading) is dear in the guest, and shipped images are built the same way.
bench: deps
	$(SWIFT) build -c release --static-swift-stdlib --product kipvs
	$(SWIFT) build -c release --static-swift-stdlib --product kube-api-test-server
	KIPVS=$(CURDIR)/.build/release/kipvs KIPVS_API_SERVER=$(CURDIR)/.build/release/kube-api-test-server \
	  $(UML) --pin --mem 3G integration/bench.sh

demo: build
	$(UML) integration/demo.sh

# Keeps fetched dependencies, so a rebuild needs no network.
clean:
	$(SWIFT) package clean
