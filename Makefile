# Outrigger: `make demo` and `make test` are all a new user needs.
SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/outrigger/target
CARGO ?= cargo

.PHONY: all build deps up down interrupt demo test lint fmt fmt-check arch-check clippy unit fuzz test-cluster bench bench-scheduling bench-provisioning bench-lb bench-cluster-autoscaler bench-node-agent bench-disruption crds clean

all: build

deps:
	@bash scripts/deps.sh

build: deps
	$(CARGO) build --workspace

## up / down: the local environment (control plane, kwok, moto, joiner, components)
up: deps
	@bash testenv/scripts/up.sh

down:
	@bash testenv/scripts/down.sh

## interrupt: send an EventBridge-shaped interruption event for INSTANCE to the interruption queue (KIND: spot, rebalance, state-change [STATE=stopping], scheduled-change)
interrupt:
	@source .testenv/env && testenv-python testenv/aws/interrupt.py --instance "$(INSTANCE)" --kind "$(or $(KIND),spot)" --state "$(or $(STATE),stopping)"

## demo: bring the environment up and walk through what is implemented so far
demo: deps build
	@bash testenv/scripts/up.sh
	@bash demo/run.sh

## test: format, lint, unit tests and cluster tests
test: deps fmt-check arch-check clippy unit fuzz test-cluster

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

## arch-check: the crate layering and no module cycle (ARCHITECTURE.md)
arch-check:
	@python3 scripts/layers.py .
	@python3 scripts/module-cycles.py crates

clippy:
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

unit:
	$(CARGO) test --workspace
	@V=$$(bash testenv/scripts/venv.sh) && "$$V/bin/python" -m unittest discover -s testenv/aws -p 'test_*.py'

# Every fuzz target for FUZZ_SECONDS (default 15) each.
fuzz:
	@bash scripts/fuzz.sh

# Starts the environment if it is not running and stops it afterwards only in
# that case, so a developer's running environment is reused and kept.
test-cluster:
	@started=0; \
	if ! bash testenv/scripts/status.sh >/dev/null 2>&1; then started=1; fi; \
	bash testenv/scripts/up.sh >/dev/null || exit 1; \
	$(CARGO) test -p outrigger-e2e --tests -- --ignored; rc=$$?; \
	if [ $$started = 1 ]; then bash testenv/scripts/down.sh; fi; \
	exit $$rc

## bench: Outrigger against the upstream projects, side by side (see bench/RESULTS.md)
bench: deps bench-scheduling bench-provisioning bench-lb bench-disruption
	@bash testenv/scripts/up.sh >/dev/null
	@bash bench/metrics-server.sh | tee bench/last-metrics-server.md
	@$(CARGO) run -q -p outrigger-e2e --bin outrigger-bench-populate -- --delete
	@$(MAKE) --no-print-directory bench-cluster-autoscaler
	@$(MAKE) --no-print-directory bench-node-agent

## bench-cluster-autoscaler: against upstream CA 1.34.5 on 1,000 kwok nodes x 30 pods + 500 pending (needs a snapshot of kubernetes/autoscaler, CA_MIRROR)
bench-cluster-autoscaler:
	@bash testenv/scripts/up.sh >/dev/null
	@bash bench/cluster-autoscaler.sh
	@$(CARGO) run -q -p outrigger-e2e --bin outrigger-bench-populate -- --delete

## bench-node-agent: the node agent against Fluent Bit 5.1.1 (quickstart pipeline): parse + enrich per core, RSS, loss at 3 and 10 MB/s into moto (needs a Fluent Bit built from source, FLUENT_BIT)
bench-node-agent:
	@bash testenv/scripts/up.sh >/dev/null
	@bash bench/node-agent.sh

## crds: regenerate deploy/crds/ from the Rust types (make test fails when they drift)
crds:
	@mkdir -p deploy/crds
	@$(CARGO) run -q -p outrigger -- crds --dir deploy/crds

## bench-provisioning: batch window closed -> NodeClaims created, 1,000 pods a round (local environment)
bench-provisioning:
	@bash bench/provisioning.sh

## bench-disruption: 500 over-provisioned kwok nodes consolidated, against Karpenter v1.12.1's controller (local environment)
bench-disruption:
	@bash bench/disruption.sh

## bench-lb: 200 Ingresses in 20 groups -> ALBs from nothing, time and ELBv2 calls (local environment)
bench-lb:
	@bash bench/lb.sh

## bench-scheduling: the solver against Karpenter's, on Karpenter's benchmark shape (no cluster)
bench-scheduling:
	@bash bench/scheduling.sh

clean: down
	$(CARGO) clean
