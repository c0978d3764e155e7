# The commands people type. Everything real happens in CMake and ctest.
#   make demo   set up, build, run the main job
#   make test   set up, build with ASan+UBSan, run every test
#   make bench  build optimised and run the storage/watch benchmarks

PKGS := gcc make cmake pkg-config libuv1-dev libprotobuf-c-dev \
        protobuf-c-compiler liblmdb-dev libssl-dev libcmocka-dev libyaml-dev \
        clang libclang-rt-14-dev iproute2 iptables gnuplot-nox faketime

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
TEST_DIR := build/test
REL_DIR  := build/release
FUZZ_DIR := build/fuzz
FUZZ_TIME ?= 60

.PHONY: all deps build test demo bench clean fuzz fuzz-build

all: build

deps:
	@deploy/install-deps.sh $(PKGS)

build: deps
	cmake -S . -B $(REL_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(REL_DIR) -j $(JOBS)

# The optimised build too: what `make demo` runs must build cleanly, and
# -O2 sees warnings the debug build does not.
test: deps build
	cmake -S . -B $(TEST_DIR) -DCMAKE_BUILD_TYPE=Debug -DSKIFF_SANITIZE=ON \
	      -DSKIFF_UNSAFE_SWITCHES=ON >/dev/null
	cmake --build $(TEST_DIR) -j $(JOBS)
	$(MAKE) --no-print-directory fuzz FUZZ_TIME=15
	cd $(TEST_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 900

# make fuzz [FUZZ_TIME=seconds]: each libFuzzer target for that long; any
# crash fails (reproducers land in build/fuzz/crashes).
fuzz-build: deps
	CC=clang cmake -S . -B $(FUZZ_DIR) -DCMAKE_BUILD_TYPE=Debug -DSKIFF_FUZZ=ON >/dev/null
	cmake --build $(FUZZ_DIR) -j $(JOBS) --target fuzz_frame fuzz_apply fuzz_objects

fuzz: fuzz-build
	@mkdir -p $(FUZZ_DIR)/crashes
	@for f in fuzz_frame fuzz_apply fuzz_objects; do \
	  echo "fuzz: $$f for $(FUZZ_TIME) s"; \
	  $(FUZZ_DIR)/tests/fuzz/$$f -max_total_time=$(FUZZ_TIME) -max_len=4096 \
	    -artifact_prefix=$(FUZZ_DIR)/crashes/ -print_final_stats=1 \
	    > $(FUZZ_DIR)/$$f.log 2>&1 || { tail -n 60 $(FUZZ_DIR)/$$f.log; \
	    echo "fuzz: $$f FAILED"; exit 1; }; \
	  grep -E 'stat::number_of_executed_units|stat::new_units_added' \
	    $(FUZZ_DIR)/$$f.log; \
	done

demo: build
	deploy/demo.sh $(REL_DIR) .skiff-demo

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

# make jepsen: the long fault-injection suite (docs/jepsen.md): every
# workload under every nemesis on 5 members, plus the unsafe-switch
# checks.  Needs root.  Hours, not minutes.
JEPSEN_DIR := build/jepsen
.PHONY: jepsen
jepsen: deps
	cmake -S . -B $(JEPSEN_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	      -DSKIFF_UNSAFE_SWITCHES=ON >/dev/null
	cmake --build $(JEPSEN_DIR) -j $(JOBS) --target jepsen-run
	jepsen/suite.sh long $(JEPSEN_DIR)/jepsen/jepsen-run
