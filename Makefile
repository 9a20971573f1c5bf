# Istio sidecar injector, a Kubewarden policy.
#
#   make            build policy.wasm and annotated-policy.wasm
#   make run        evaluate demo/request.json (a Pod in a namespace labelled
#                   istio-injection=enabled) and print the response and the injected Pod
#   make test       fmt check, clippy, unit tests, end-to-end tests, the explainer's browser
#                   tests (headless Chromium) and its parity with the policy (make web-tests)
#   make e2e-tests  end-to-end tests only (KWCTL=/path/to/kwctl runs them through kwctl,
#                   POLICY_SERVER=/path/to/policy-server adds the policy-server suite)
#   make run-parity `make run`'s output through kwctl and through kwhost, compared
#   make push REGISTRY=host[:port]/repository [TAG=vX.Y.Z]
#                   publish annotated-policy.wasm (kwctl push, or kwhost push) and print
#                   the digest-pinned reference
#   make manifests  regenerate the ClusterAdmissionPolicy manifests in manifests/
#   make artifacthub
#                   regenerate artifacthub/artifacthub-pkg.yml
#   make profile-module
#                   target/profile/policy.wasm: policy.wasm with function names, for perf
#                   (README, Profiling)
#   make web        build the explainer's WebAssembly (web/pkg/); make web-serve serves the
#                   page on 127.0.0.1; make web-tests runs its tests (see the block below)
#   make clean
#
# Targets install what they need (the wasm32-wasip1 target, binaryen's wasm-opt, the test
# host).

SHELL := /bin/bash
CARGO ?= cargo
WASM_TARGET := wasm32-wasip1
CRATE := istio_sidecar_injector
# kwctl is used for annotate/run/e2e-tests when set or on PATH; otherwise the project's own
# host (kwhost). policy-server, when set or on PATH, runs the policy-server suite.
# `eval "$$(../shared/kubewarden/install)"` sets both (kwctl and policy-server 1.36.0-beta.1).
KWCTL ?= $(shell command -v kwctl 2>/dev/null)
POLICY_SERVER ?= $(shell command -v policy-server 2>/dev/null)
KWHOST := e2e-tests/target/release/kwhost
SOURCES := $(shell find src -name '*.rs') Cargo.toml Cargo.lock
# The policy version (Cargo.toml); must equal io.kubewarden.policy.version.
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
HOST_SOURCES := $(shell find e2e-tests/src -name '*.rs') e2e-tests/Cargo.toml e2e-tests/Cargo.lock

.PHONY: all
all: policy.wasm annotated-policy.wasm

.PHONY: wasm-target
wasm-target:
	@if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx $(WASM_TARGET); then \
		rustup target add $(WASM_TARGET); \
	fi

# binaryen's wasm-opt makes the module smaller and faster where it runs (README,
# Performance). Installed here when missing (Debian's binaryen, through apt, as root).
# The features are those rustc's wasm32-wasip1 output uses; wasm-opt may use no others.
WASM_OPT_FLAGS := -Oz --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
	--enable-nontrapping-float-to-int

.PHONY: wasm-opt
wasm-opt:
	@if ! command -v wasm-opt >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			DEBIAN_FRONTEND=noninteractive apt-get update -q && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends binaryen; \
		else \
			echo "wasm-opt is missing: install binaryen (Debian's binaryen package)" >&2; exit 1; \
		fi; \
	fi

# LLVM's inliner at a threshold of 50 (its default at opt-level 2 is 225): in fresh instances
# as fast as the default (kwbench, same rounds: pod-1 216 against 222 µs, pod-20 728 against
# 737), for a module 96 KB smaller; at 25, or with the crate at opt-level "s", requests are
# 6-20% slower.
# The policy's own code without bulk memory (the MVP CPU plus the features rustc's default
# CPU has, bulk memory, multivalue and reference types aside): its copies then run in the
# module (libc's memcpy, which keeps `memory.copy` for copies over 32 bytes) instead of one
# `memory.copy` each. policy-server's wasmtime 44 makes each `memory.copy` a call out to the
# host, and that cost 5-16% of a fresh request (kwbench, same rounds). The module is 1.5 KB
# bigger.
# Only for the policy: the floor and baseline modules keep the defaults.
POLICY_CODEGEN := --config 'target.$(WASM_TARGET).rustflags=["-C", "llvm-args=-inline-threshold=50", \
	"-C", "target-cpu=mvp", "-C", "target-feature=+sign-ext,+nontrapping-fptoint,+mutable-globals"]'

# The flags policy.wasm is built with; the stamp changes, and the module is built again, only
# when they do (a checkout that already had a module kept its old flags otherwise).
# Written by the shell, not by make's `file`, which `make -n` would run too. The flags are
# quoted for the shell (they hold single quotes).
POLICY_FLAGS := $(subst ','\'',$(POLICY_CODEGEN) $(WASM_OPT_FLAGS))
target/policy-flags: FORCE
	@mkdir -p target
	@printf '%s\n' '$(POLICY_FLAGS)' >$@.new
	@if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; fi

policy.wasm: $(SOURCES) target/policy-flags | wasm-target wasm-opt
	$(CARGO) build --locked --release --target $(WASM_TARGET) $(POLICY_CODEGEN)
	wasm-opt $(WASM_OPT_FLAGS) target/$(WASM_TARGET)/release/$(CRATE).wasm -o policy.wasm

# policy.wasm with its function names, for perf (README, Profiling): the same code
# generation flags and the same wasm-opt, only not stripped (`-g` keeps the names wasm-opt
# would drop). The module's own target dir keeps policy.wasm's build untouched.
PROFILE_MODULE := target/profile/policy.wasm
$(PROFILE_MODULE): $(SOURCES) target/policy-flags | wasm-target wasm-opt
	CARGO_PROFILE_RELEASE_STRIP=false $(CARGO) build --locked --release --target $(WASM_TARGET) \
		--target-dir target/profile $(POLICY_CODEGEN)
	wasm-opt $(WASM_OPT_FLAGS) -g target/profile/$(WASM_TARGET)/release/$(CRATE).wasm -o $@

# Annotated too, for policy-server, which loads only annotated modules (README, Profiling).
target/profile/annotated-policy.wasm: $(PROFILE_MODULE) policy-metadata.yml $(KWHOST)
	$(ANNOTATE) -m policy-metadata.yml -o $@ $(PROFILE_MODULE)

.PHONY: profile-module
profile-module: $(PROFILE_MODULE) target/profile/annotated-policy.wasm $(KWHOST)

$(KWHOST): $(HOST_SOURCES)
	$(CARGO) build --locked --release --manifest-path e2e-tests/Cargo.toml
	@touch $@

# Which annotator writes annotated-policy.wasm (kwctl when set or on PATH, else kwhost); the
# stamp changes, and the module is annotated again, only when that changes.
ANNOTATOR := $(if $(KWCTL),kwctl $(KWCTL),kwhost)

target/annotator: FORCE
	@mkdir -p target; if [ "$$(cat $@ 2>/dev/null)" != '$(ANNOTATOR)' ]; then echo '$(ANNOTATOR)' > $@; fi

.PHONY: FORCE
FORCE:

# The usage embedded in the module (io.kubewarden.policy.usage, what kwctl inspect and
# Artifact Hub show the policy's users): the README down to its developer sections, which
# a marker in it starts (testing, benchmarks, development: 16 KB the module need not carry),
# and without the two sections above it that are for developers too: building and testing
# from source ("Two commands") and publishing to a registry ("Publishing"), 6 KB more.
USAGE := target/usage.md
$(USAGE): README.md Makefile
	@mkdir -p target
	awk '/^<!-- For developers from here on/ { exit } \
		/^## / { developer = $$0 == "## Two commands" || $$0 == "## Publishing" } \
		!developer' README.md > $@

# Embeds policy-metadata.yml (and the usage) in the io.kubewarden.metadata section.
ifneq ($(KWCTL),)
annotated-policy.wasm: policy.wasm policy-metadata.yml $(USAGE) target/annotator
	$(KWCTL) annotate -m policy-metadata.yml -u $(USAGE) -o annotated-policy.wasm policy.wasm
else
annotated-policy.wasm: policy.wasm policy-metadata.yml $(USAGE) $(KWHOST) target/annotator
	$(KWHOST) annotate -m policy-metadata.yml -u $(USAGE) -o annotated-policy.wasm policy.wasm
endif

# kwctl logs on stderr at INFO level and up, whatever RUST_LOG says, but a directive for a
# module wins: these silence its start-up noise (no sigstore trust root without network, the
# replay session in use) and keep its other warnings.
KWCTL_QUIET := RUST_LOG=kwctl::config::pull_and_run=error,policy_evaluator::callback_handler::sigstore_verification=error

ifneq ($(KWCTL),)
RUNNER := $(KWCTL_QUIET) $(KWCTL)
RUNNER_DEP :=
else
RUNNER := $(KWHOST)
RUNNER_DEP := $(KWHOST)
endif

RUN_ARGS := run --request-path demo/request.json --settings-path demo/settings.yml \
	--allow-context-aware --replay-host-capabilities-interactions demo/session.yml annotated-policy.wasm

.PHONY: run
run: annotated-policy.wasm $(RUNNER_DEP)
	@set -o pipefail; $(RUNNER) $(RUN_ARGS) | python3 demo/show.py demo/request.json

# `make run` prints the same through kwctl as through kwhost (stdout and stderr).
.PHONY: run-parity
run-parity: annotated-policy.wasm $(KWHOST)
	@if [ -z "$(KWCTL)" ]; then echo "run parity skipped: kwctl is not set nor on PATH"; exit 0; fi; \
	set -o pipefail; mkdir -p target; \
	{ $(KWCTL_QUIET) $(KWCTL) $(RUN_ARGS) | python3 demo/show.py demo/request.json; } > target/run-kwctl.txt 2>&1 \
		|| { cat target/run-kwctl.txt; echo "run parity: make run fails through kwctl"; exit 1; }; \
	{ $(KWHOST) $(RUN_ARGS) | python3 demo/show.py demo/request.json; } > target/run-kwhost.txt 2>&1 \
		|| { cat target/run-kwhost.txt; echo "run parity: make run fails through kwhost"; exit 1; }; \
	if cmp -s target/run-kwctl.txt target/run-kwhost.txt; then \
		echo "run parity: make run prints the same $$(wc -l < target/run-kwhost.txt) lines through kwctl and kwhost"; \
	else \
		echo "run parity: make run prints differently through kwctl and kwhost:"; \
		diff -u target/run-kwhost.txt target/run-kwctl.txt; exit 1; \
	fi

.PHONY: fmt
fmt:
	$(CARGO) fmt --all -- --check
	$(CARGO) fmt --manifest-path e2e-tests/Cargo.toml --all -- --check

.PHONY: lint
lint:
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	$(CARGO) clippy --locked --release --all-targets --manifest-path e2e-tests/Cargo.toml -- -D warnings

.PHONY: unit-tests
unit-tests:
	$(CARGO) test --locked --workspace

# The registry tests push to a real OCI registry (the CNCF distribution registry, Debian's
# docker-registry package); each test starts its own instance on 127.0.0.1. Installed here
# when missing (as root, through apt); SKIP_REGISTRY_TESTS=1 skips those tests instead.
.PHONY: registry
registry:
	@if [ "$${SKIP_REGISTRY_TESTS:-}" != 1 ] && ! command -v docker-registry >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			DEBIAN_FRONTEND=noninteractive apt-get update -q && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker-registry; \
		else \
			echo "docker-registry is missing: install Debian's docker-registry package, or set SKIP_REGISTRY_TESTS=1" >&2; exit 1; \
		fi; \
	fi

# Which runtime runs the end-to-end tests, said once.
.PHONY: e2e-runtime
e2e-runtime:
	@kw='$(KWCTL)'; ps='$(POLICY_SERVER)'; \
	if [ -n "$$kw" ]; then line="kwctl $$($$kw --version 2>/dev/null | head -n 1 | sed 's/^kwctl //') ($$kw)"; \
	else line="kwhost (the project's own waPC host)"; fi; \
	if [ -n "$$ps" ]; then line="$$line + policy-server $$($$ps --version 2>/dev/null | head -n 1 | sed 's/^policy-server //') ($$ps)"; \
	else line="$$line; policy-server suite skipped: POLICY_SERVER is not set"; fi; \
	echo "e2e runtime: $$line"

.PHONY: e2e-tests
e2e-tests: e2e-runtime annotated-policy.wasm registry
	KWCTL='$(KWCTL)' POLICY_SERVER='$(POLICY_SERVER)' POLICY_WASM=$(CURDIR)/annotated-policy.wasm \
		$(CARGO) test --locked --release --no-fail-fast --manifest-path e2e-tests/Cargo.toml

.PHONY: test
test: e2e-runtime fmt lint unit-tests e2e-tests run-parity web-tests

# Publishing. REGISTRY is host[:port]/repository (registry:// optional), TAG defaults
# to v$(VERSION). PUSH_SOURCES is a kwctl sources file (insecure_sources,
# source_authorities); without one, a loopback registry (localhost, 127.x, [::1]) is
# pushed to as an insecure source (HTTPS without verification, then plain HTTP).
REGISTRY ?=
TAG ?= v$(VERSION)
PUSH_SOURCES ?=

.PHONY: push
push: annotated-policy.wasm $(RUNNER_DEP)
	@if [ -z "$(REGISTRY)" ]; then \
		echo "usage: make push REGISTRY=host[:port]/repository [TAG=v$(VERSION)] [PUSH_SOURCES=sources.yml]" >&2; exit 2; \
	fi
	@if [ "$(TAG)" != "v$(VERSION)" ]; then \
		echo "note: TAG=$(TAG) is not the policy version v$(VERSION) (io.kubewarden.policy.version)" >&2; \
	fi
	@set -euo pipefail; \
	ref='$(REGISTRY)'; ref="$${ref#registry://}"; host="$${ref%%/*}"; sources='$(PUSH_SOURCES)'; \
	if [ -z "$$sources" ]; then \
		case "$$host" in localhost|localhost:*|127.*|\[::1\]*) \
			mkdir -p target; sources=target/push-sources.yml; \
			printf 'insecure_sources:\n  - "%s"\n' "$$host" > "$$sources";; \
		esac; \
	fi; \
	set -x; \
	$(RUNNER) push $${sources:+--sources-path "$$sources"} annotated-policy.wasm "registry://$$ref:$(TAG)"

# ClusterAdmissionPolicy manifests for both namespaceSelection modes, for the default
# revision and the revisions below; manifests/settings.yml goes into every policy.
MANIFEST_REVISIONS := default canary

.PHONY: manifests
manifests: $(KWHOST)
	$(KWHOST) manifests --metadata-path policy-metadata.yml --settings-path manifests/settings.yml \
		$(addprefix --revision ,$(MANIFEST_REVISIONS)) --output-dir manifests

# kwctl scaffold artifacthub, with the version from Cargo.toml (checked against the
# metadata) and createdAt kept while the version is unchanged (kwhost, also when kwctl
# is installed: kwctl would stamp the current time on every run).
.PHONY: artifacthub
artifacthub: $(KWHOST)
	$(KWHOST) artifacthub --metadata-path policy-metadata.yml --version $(VERSION) \
		--questions-path questions-ui.yml --output artifacthub/artifacthub-pkg.yml

# Benchmarks (not part of `make test`): allocations of the engine natively, then the cost
# of a request as policy-server pays it (a fresh instance, one `validate`, dropped), in the
# wapc + wasmtime host, against modules timed in the same rounds: the floor (reads the
# request, answers with the policy's own answer, precomputed by the engine at build time),
# the parse-and-return baseline, Kubewarden's pod-ndots (from ../shared, when present); then
# the same modules behind a real policy-server over HTTP when POLICY_SERVER is set. Writes
# bench-results/ (JSON, Markdown) and fails when a budget is exceeded.
BENCH_PODS := tests/data/pod-1-containers.json tests/data/pod-3-containers.json tests/data/pod-20-containers.json
BASELINE := e2e-tests/baseline-policy/target/$(WASM_TARGET)/release/baseline_policy.wasm
FLOOR := e2e-tests/floor-policy/target/$(WASM_TARGET)/release/floor_policy.wasm
NDOTS ?= $(firstword $(wildcard ../shared/kubewarden/pod-ndots-*.wasm))
# Budgets (issue 13): fresh call / floor, policy-server p50 / floor (and no slower than
# pod-ndots), module bytes (700 KiB), check mode / inject mode on the same stored Pod.
BENCH_BUDGETS := --max-fresh-ratio pod-1-containers.json=1.5 --max-fresh-ratio pod-20-containers.json=1.1 \
	--max-size 716800 --max-check-ratio 2 \
	$(if $(POLICY_SERVER),--max-server-ratio pod-1-containers.json=1.2 --max-server-ratio pod-20-containers.json=1.2)
ANNOTATE := $(if $(KWCTL),$(KWCTL),$(KWHOST)) annotate

$(BASELINE): e2e-tests/baseline-policy/src/lib.rs e2e-tests/baseline-policy/Cargo.toml e2e-tests/bench-guest.rs | wasm-target
	$(CARGO) build --locked --release --target $(WASM_TARGET) --manifest-path e2e-tests/baseline-policy/Cargo.toml

# The floor's answers come from the engine: it is rebuilt whenever the engine changes.
$(FLOOR): e2e-tests/floor-policy/src/lib.rs e2e-tests/floor-policy/build.rs e2e-tests/floor-policy/Cargo.toml \
		e2e-tests/bench-guest.rs $(SOURCES) $(BENCH_PODS) | wasm-target
	$(CARGO) build --locked --release --target $(WASM_TARGET) --manifest-path e2e-tests/floor-policy/Cargo.toml

# Through the same wasm-opt as the policy; policy-server loads only annotated modules.
target/bench/floor.wasm: $(FLOOR) e2e-tests/bench-metadata.yml $(KWHOST) | wasm-opt
	@mkdir -p target/bench
	wasm-opt $(WASM_OPT_FLAGS) $< -o target/bench/floor-opt.wasm
	$(ANNOTATE) -m e2e-tests/bench-metadata.yml -o $@ target/bench/floor-opt.wasm

target/bench/baseline.wasm: $(BASELINE) e2e-tests/bench-metadata.yml $(KWHOST) | wasm-opt
	@mkdir -p target/bench
	wasm-opt $(WASM_OPT_FLAGS) $< -o target/bench/baseline-opt.wasm
	$(ANNOTATE) -m e2e-tests/bench-metadata.yml -o $@ target/bench/baseline-opt.wasm

.PHONY: bench
bench: annotated-policy.wasm target/bench/floor.wasm target/bench/baseline.wasm $(KWHOST)
	mkdir -p bench-results
	set -o pipefail; $(CARGO) bench --locked --bench alloc | tee bench-results/alloc.txt
	set -o pipefail; e2e-tests/target/release/kwbench --policy annotated-policy.wasm \
		--floor target/bench/floor.wasm --baseline target/bench/baseline.wasm \
		$(if $(NDOTS),--ndots $(NDOTS)) $(if $(POLICY_SERVER),--policy-server $(POLICY_SERVER)) \
		$(BENCH_BUDGETS) --json bench-results/wasm.json \
		--check tests/data/pod-20-containers.json=tests/data/pod-20-stored.json \
		$(BENCH_PODS) \
		| tee bench-results/wasm.md

# ---------------------------------------------------------------------------------------
# The explainer (web/, README "Explain a decision"): the policy's engine built a second time,
# for the browser (wasm32-unknown-unknown, wasm-bindgen), and a static page around it.
#
#   make web        web/pkg/: the web crate in release, `wasm-bindgen --target web`; fails
#                   when the module exceeds 1 MiB
#   make web-serve  serves web/ on http://127.0.0.1:$(WEB_PORT)/ (python3's http.server)
#   make web-tests  the page in headless Chromium (Debian's chromium and chromium-driver,
#                   installed with apt-get when missing) through its editors, with a
#                   screenshot (target/web/explainer.png) and explain of the 20-container
#                   Pod timed in the page; then explain (web/pkg in Node) against the policy
#                   module in the wasm host on every scenario, golden case and a decision
#                   matrix (e2e-tests/tests/web_parity.rs)
#
# Installs what it needs: the wasm32-unknown-unknown target and wasm-bindgen-cli, whose
# version must be the wasm-bindgen crate's (web/Cargo.toml); not --locked: its own lock file
# does not resolve against this registry. A debug build without its default features (TLS
# for the test runner's downloads, with ring's C code): it compiles in under 2 minutes on two
# cores instead of several, and writes the same module (0.5 s instead of 0.2 s).
WEB_TARGET := wasm32-unknown-unknown
WASM_BINDGEN_VERSION := 0.2.130
WASM_BINDGEN ?= wasm-bindgen
WEB_WASM := web/pkg/istio_sidecar_injector_web_bg.wasm
WEB_MAX_BYTES := 1048576
WEB_PORT ?= 8000
WEB_SOURCES := $(shell find web/src -name '*.rs') web/Cargo.toml demo/request.json demo/session.yml demo/settings.yml
# No wasm-opt: Debian's binaryen (108) saves 8% (-Oz) but breaks the externref table
# wasm-bindgen sets up (README "Explain a decision").

.PHONY: web-tools
web-tools:
	@if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx $(WEB_TARGET); then \
		rustup target add $(WEB_TARGET); \
	fi
	@if [ "$$($(WASM_BINDGEN) --version 2>/dev/null)" != "wasm-bindgen $(WASM_BINDGEN_VERSION)" ]; then \
		$(CARGO) install --debug --no-default-features wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION); \
	fi

# The release profile strips everything, wasm-bindgen's `target_features` section too (it
# needs it to know which Wasm features it may use): here only debug info is stripped, and
# wasm-bindgen removes the names. The engine is built for size here (`s`, not the policy's 2):
# the page downloads it, and runs it once per edit (2 ms natively for 20 containers).
$(WEB_WASM): $(SOURCES) $(WEB_SOURCES) | web-tools
	$(CARGO) build --locked --release -p istio-sidecar-injector-web --target $(WEB_TARGET) \
		--config 'profile.release.strip="debuginfo"' \
		--config 'profile.release.package.istio-sidecar-injector.opt-level="s"'
	rm -rf web/pkg
	$(WASM_BINDGEN) --target web --no-typescript --remove-name-section --remove-producers-section \
		--out-dir web/pkg target/$(WEB_TARGET)/release/istio_sidecar_injector_web.wasm
	@# Node reads the glue as an ES module (the parity test, and anyone's script).
	echo '{"type": "module"}' > web/pkg/package.json
	@size=$$(stat -c %s $@); \
	if [ "$$size" -gt $(WEB_MAX_BYTES) ]; then \
		echo "web: $@ is $$size bytes, over the budget of $(WEB_MAX_BYTES) (1 MiB)" >&2; rm -f $@; exit 1; \
	fi; \
	echo "web: $@ is $$size bytes (budget $(WEB_MAX_BYTES))"

.PHONY: web
web: $(WEB_WASM)

.PHONY: web-serve
web-serve: web
	@echo "The explainer: http://127.0.0.1:$(WEB_PORT)/"
	python3 -m http.server --bind 127.0.0.1 --directory web $(WEB_PORT)

# Debian's chromium and chromium-driver (the same version), and Node when there is none
# (the tests' runner), installed when missing, as root through apt, like docker-registry above.
.PHONY: chromium
chromium:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null 2>&1 || missing="$$missing chromium-driver"; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			DEBIAN_FRONTEND=noninteractive apt-get update -q && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
		else \
			echo "missing:$$missing: install these Debian packages" >&2; exit 1; \
		fi; \
	fi

# The browser tests run the files of "Reproduce with kwctl" through kwctl when set, else kwhost.
.PHONY: web-tests
web-tests: web chromium annotated-policy.wasm $(RUNNER_DEP)
	KWCTL='$(KWCTL)' KWHOST=$(CURDIR)/$(KWHOST) POLICY_WASM=$(CURDIR)/annotated-policy.wasm \
		node --test web/tests/*.test.mjs
	WEB_PKG=$(CURDIR)/web/pkg POLICY_WASM=$(CURDIR)/annotated-policy.wasm \
		$(CARGO) test --locked --release --manifest-path e2e-tests/Cargo.toml --test web_parity

.PHONY: clean
clean:
	$(CARGO) clean
	$(CARGO) clean --manifest-path e2e-tests/Cargo.toml
	rm -f policy.wasm annotated-policy.wasm
