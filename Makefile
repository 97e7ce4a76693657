# cfgm — the two commands a new user runs: `make demo` and `make test`.
# Exit codes of every target: 0 success, non-zero failure.

CARGO ?= cargo
STATES ?= states
CFGM := target/debug/cfgm

.PHONY: all deps build test unit-test module-test fleet-test bench lint demo demo-down clean

all: build

deps:
	@scripts/deps.sh

build: deps
	$(CARGO) build --workspace

# Lint, unit, golden and property tests, the resource kinds on a real
# Debian root, then the fleet tests on real hosts. Runs as root: a test that
# needs root fails here rather than skip (CFGM_TEST_REQUIRE_ROOT).
test: export CFGM_TEST_REQUIRE_ROOT = 1
test: lint unit-test module-test fleet-test

# Everything but the module cases and the fleet; as a plain user, the few
# tests that need root say `skipped (needs root): NAME`.
unit-test: build
	$(CARGO) test --workspace --exclude cfgm-testing --exclude cfgm-modules
	$(CARGO) test -p cfgm-modules --lib

# The resource kinds against a real Debian root: overlays, chroot,
# namespaces and booted containers, so root only.
module-test: build
	CFGM_TEST_REQUIRE_ROOT=1 $(CARGO) test -p cfgm-modules --test tests

fleet-test: build
	testing/fleet-test

bench: deps
	$(CARGO) bench -p cfgm-cli --bench compile
	$(CARGO) bench -p cfgm-cli --bench fleet
	$(CARGO) build --release -p cfgm-agent
	$(CARGO) bench -p cfgm-cli --bench rollout
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
