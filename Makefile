# The commands people type. Everything real happens in CMake and ctest.
#   make demo   set up, build, run the main job
#   make test   set up, build with ASan+UBSan, run every test
#   make bench  build optimised and run the storage/watch benchmarks

PKGS := gcc make cmake pkg-config libuv1-dev libprotobuf-c-dev \
        protobuf-c-compiler liblmdb-dev libssl-dev libcmocka-dev libyaml-dev

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
TEST_DIR := build/test
REL_DIR  := build/release

.PHONY: all deps build test demo bench clean

all: build

deps:
	@deploy/install-deps.sh $(PKGS)

build: deps
	cmake -S . -B $(REL_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(REL_DIR) -j $(JOBS)

test: deps
	cmake -S . -B $(TEST_DIR) -DCMAKE_BUILD_TYPE=Debug -DSKIFF_SANITIZE=ON >/dev/null
	cmake --build $(TEST_DIR) -j $(JOBS)
	cd $(TEST_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 900

demo: build
	$(REL_DIR)/examples/skiff-demo .skiff-demo

bench: build
	$(REL_DIR)/bench/skiff-storage-bench
	$(REL_DIR)/bench/skiff-watch-bench

clean:
	rm -rf build

# make sim SEEDS=N [SEED=first]: more seeds of the raft simulator
# (optimised build); a failing seed replays with tests/sim/replay SEED.
SEEDS ?= 1000
SEED ?= 1
.PHONY: sim
sim: deps
	cmake -S . -B $(REL_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(REL_DIR) -j $(JOBS) --target raft_sim
	$(REL_DIR)/tests/sim/raft_sim -s $(SEED) -c $(SEEDS) -k 20000
