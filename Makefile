# cfgm — the two commands a new user runs: `make demo` and `make test`.
# Exit codes of every target: 0 success, non-zero failure.

CARGO ?= cargo
STATES ?= states
CFGM := target/debug/cfgm

.PHONY: all deps build test unit-test fleet-test bench lint demo demo-down clean

all: build

deps:
	@scripts/deps.sh

build: deps
	$(CARGO) build --workspace

# Unit, golden and property tests, then the fleet tests on real hosts.
test: unit-test fleet-test

unit-test: build
	$(CARGO) test --workspace --exclude cfgm-testing

fleet-test: build
	testing/fleet-test

bench: deps
	$(CARGO) bench -p cfgm-cli --bench compile
	$(CARGO) bench -p cfgm-agent --bench apply
	$(CARGO) bench -p cfgm-agent --bench agent
	$(CARGO) bench -p cfgm-agent --bench idle

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The main job on the built-in example tree: validate it, bring up the fleet
# in a box (real Debian hosts in three datacenters), sign the tree as a commit
# of the served states repository, install the agent as a service on every
# host and show each converge on its own; then a commit signed by an untrusted
# key is refused everywhere, and a signed one on top changes nothing. The
# fleet stays up.
demo: build
	scripts/demo.sh

demo-down:
	testing/fleet down

clean:
	$(CARGO) clean
