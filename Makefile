# Istio sidecar injector, a Kubewarden policy.
#
#   make            build policy.wasm and annotated-policy.wasm
#   make run        evaluate demo/request.json (a Pod in a namespace labelled
#                   istio-injection=enabled) and print the response and the injected Pod
#   make test       fmt check, clippy, unit tests, end-to-end tests
#   make e2e-tests  end-to-end tests only (KWCTL=/path/to/kwctl runs them through kwctl)
#   make clean
#
# Targets install what they need (the wasm32-wasip1 target, the test host).

SHELL := /bin/bash
CARGO ?= cargo
WASM_TARGET := wasm32-wasip1
CRATE := istio_sidecar_injector
# kwctl is used for annotate/run when on PATH; otherwise the project's own host (kwhost).
KWCTL ?= $(shell command -v kwctl 2>/dev/null)
KWHOST := e2e-tests/target/release/kwhost
SOURCES := $(shell find src -name '*.rs') Cargo.toml Cargo.lock
HOST_SOURCES := $(shell find e2e-tests/src -name '*.rs') e2e-tests/Cargo.toml e2e-tests/Cargo.lock

.PHONY: all
all: policy.wasm annotated-policy.wasm

.PHONY: wasm-target
wasm-target:
	@if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx $(WASM_TARGET); then \
		rustup target add $(WASM_TARGET); \
	fi

policy.wasm: $(SOURCES) | wasm-target
	$(CARGO) build --locked --release --target $(WASM_TARGET)
	cp target/$(WASM_TARGET)/release/$(CRATE).wasm policy.wasm

$(KWHOST): $(HOST_SOURCES)
	$(CARGO) build --locked --release --manifest-path e2e-tests/Cargo.toml
	@touch $@

# Embeds policy-metadata.yml (and README.md as usage) in the io.kubewarden.metadata section.
ifneq ($(KWCTL),)
annotated-policy.wasm: policy.wasm policy-metadata.yml README.md
	$(KWCTL) annotate -m policy-metadata.yml -u README.md -o annotated-policy.wasm policy.wasm
else
annotated-policy.wasm: policy.wasm policy-metadata.yml README.md $(KWHOST)
	$(KWHOST) annotate -m policy-metadata.yml -u README.md -o annotated-policy.wasm policy.wasm
endif

ifneq ($(KWCTL),)
RUNNER := $(KWCTL)
RUNNER_DEP :=
else
RUNNER := $(KWHOST)
RUNNER_DEP := $(KWHOST)
endif

.PHONY: run
run: annotated-policy.wasm $(RUNNER_DEP)
	@set -o pipefail; $(RUNNER) run --request-path demo/request.json --settings-path demo/settings.yml \
		--allow-context-aware --replay-host-capabilities-interactions demo/session.yml \
		annotated-policy.wasm | python3 demo/show.py demo/request.json

.PHONY: fmt
fmt:
	$(CARGO) fmt --all -- --check
	$(CARGO) fmt --manifest-path e2e-tests/Cargo.toml --all -- --check

.PHONY: lint
lint:
	$(CARGO) clippy --locked --all-targets -- -D warnings
	$(CARGO) clippy --locked --release --all-targets --manifest-path e2e-tests/Cargo.toml -- -D warnings

.PHONY: unit-tests
unit-tests:
	$(CARGO) test --locked

.PHONY: e2e-tests
e2e-tests: annotated-policy.wasm
	POLICY_WASM=$(CURDIR)/annotated-policy.wasm $(CARGO) test --locked --release --manifest-path e2e-tests/Cargo.toml

.PHONY: test
test: fmt lint unit-tests e2e-tests

.PHONY: clean
clean:
	$(CARGO) clean
	$(CARGO) clean --manifest-path e2e-tests/Cargo.toml
	rm -f policy.wasm annotated-policy.wasm
