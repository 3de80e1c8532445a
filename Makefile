# reprolab — see README.md. `make test` is what CI runs (via .ci/run).
GO        ?= go
CACHE     ?= $(or $(REPROLAB_CACHE),$(HOME)/.cache/reprolab)
BIN       := bin
AGENTS    := $(BIN)/reprolab-agent-amd64 $(BIN)/reprolab-agent-arm64

.PHONY: all build setup run smoke test vet bench clean ci-kernel ci-history seed-kernels

all: build

# The CLI plus static guest agents next to it (lab/image finds them beside the binary).
build: $(BIN)/reprolab $(AGENTS)

$(BIN)/reprolab: FORCE
	$(GO) build -o $@ ./cmd/reprolab

$(BIN)/reprolab-agent-%: FORCE
	CGO_ENABLED=0 GOOS=linux GOARCH=$* $(GO) build -trimpath -o $@ ./cmd/reprolab-agent

# Host packages (apt) and Debian's prebuilt kernels for both arches. Needs root.
setup:
	images/setup-host.sh

# The main job: the seed bug's matrix (both arches x v4.11, v4.11+fix, v4.13 x probe off/on),
# kernels from kernel.org unless MATRIX_ARGS points at local trees. Resumable.
MATRIX_ARGS ?=
run: build
	$(BIN)/reprolab matrix reproducers/memcg-writeback-null/matrix.yaml $(MATRIX_ARGS)

# A minute's check of a fresh set-up: the seed reproducer on Debian's prebuilt kernels,
# both arches. Those kernels carry the fix, so the expected outcome is "survived".
DEB       := $(CACHE)/debian
SMOKE_ARGS ?= --iterations 3
smoke: build
	$(BIN)/reprolab run --arch x86_64 --kernel $$(ls $(DEB)/amd64/boot/vmlinuz-* | head -1) \
		--modules $$(ls -d $(DEB)/amd64/lib/modules/* | head -1) --repro memcg-writeback-null $(SMOKE_ARGS)
	$(BIN)/reprolab run --arch arm64 --kernel $$(ls $(DEB)/arm64/boot/vmlinuz-* | head -1) \
		--modules $$(ls -d $(DEB)/arm64/lib/modules/* | head -1) --repro memcg-writeback-null $(SMOKE_ARGS)

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

# The one kernel the tests build and share: Debian's linux-source-6.1 with the seed's
# fragments, debug info and probe (kconfigs/ci-6.1-x86_64.yaml). Cached by lab/kbuild, so a
# second `make test` does not recompile; the build result (paths, probe parameters) goes to
# a JSON file the tests read.
CI_KERNEL_JSON := $(CACHE)/ci-kernel.json
ci-kernel: $(BIN)/reprolab
	@mkdir -p $(CACHE)
	$(BIN)/reprolab kernel build --spec kconfigs/ci-6.1-x86_64.yaml --json > $(CI_KERNEL_JSON).tmp
	mv $(CI_KERNEL_JSON).tmp $(CI_KERNEL_JSON)

# The founding case's kernels for BenchmarkSeed (lab/repro): pristine v4.11 with the seed
# probe, both arches. kernel.org's tarball by default; without kernel.org, a local tree:
#   make seed-kernels SEED_SOURCE="--git ~/linux --ref v4.11"
SEED_SOURCE ?= --kernel-org 4.11 --sha256 b67ecafd0a42b3383bf4d82f0850cbff92a7e72a215a6d02f42ddbafcf42a7d6
seed-kernels: $(BIN)/reprolab
	@mkdir -p $(CACHE)
	for a in x86_64 arm64; do \
		$(BIN)/reprolab kernel build --arch $$a $(SEED_SOURCE) \
			--probe reproducers/memcg-writeback-null/probes/seed.yaml --json > $(CACHE)/seed-kernel-$$a.json.tmp && \
		mv $(CACHE)/seed-kernel-$$a.json.tmp $(CACHE)/seed-kernel-$$a.json || exit 2; \
	done

# The synthetic kernel history bisection and validation tests share (lab/cihistory): git
# commits on top of the CI kernel's own source tree, one injecting a crash reproducers/ci-race
# hits, one fixing it, plus fix/no-op candidate patches. Reproducible ids; a second run
# finds it recorded and returns at once.
CI_HISTORY_JSON := $(CACHE)/ci-history.json
ci-history: ci-kernel
	$(GO) run ./cmd/reprolab-ci-history -o $(CI_HISTORY_JSON)

# Tests boot real guests under TCG; -p 1 keeps two packages from fighting over 2 cores
# and turning timing-sensitive boots into timeouts.
# PostgreSQL tests use a local cluster that images/test-postgres.sh starts (they skip without).
test: vet build ci-kernel ci-history
	REPROLAB_TEST_POSTGRES=$${REPROLAB_TEST_POSTGRES:-$$(images/test-postgres.sh)} \
	REPROLAB_CI_HISTORY_JSON=$(CI_HISTORY_JSON) \
	REPROLAB_CI_KERNEL_JSON=$(CI_KERNEL_JSON) $(GO) test -p 1 -timeout 80m -count=1 ./...

bench: build ci-kernel ci-history
	REPROLAB_TEST_POSTGRES=$${REPROLAB_TEST_POSTGRES:-$$(images/test-postgres.sh)} \
	REPROLAB_CI_HISTORY_JSON=$(CI_HISTORY_JSON) \
	REPROLAB_CI_KERNEL_JSON=$(CI_KERNEL_JSON) $(GO) test -p 1 -run '^$$' -bench . -benchtime 1x -timeout 60m ./...

clean:
	rm -rf $(BIN)

FORCE:
