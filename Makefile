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

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The main job on the built-in example tree: validate every host of the
# example edge fleet, then show one host's compiled catalog.
demo: build
	@echo "== cfgm validate: compile the catalog of every host in $(STATES)/inventory.toml"
	$(CFGM) --tree $(STATES) validate
	@echo
	@echo "== cfgm catalog: what ams-edge1 (edge role, ams01) converges to, in apply order"
	$(CFGM) --tree $(STATES) catalog --host ams-edge1
	@echo
	@echo "== cfgm graph: its dependency DAG (render with: $(CFGM) --tree $(STATES) graph --host ams-edge1 | dot -Tsvg > graph.svg)"
	$(CFGM) --tree $(STATES) graph --host ams-edge1 | head -n 12

demo-down:
	testing/fleet down

clean:
	$(CARGO) clean
