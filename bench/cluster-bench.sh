#!/usr/bin/env bash
# Benchmarks a three-member skiffd cluster on loopback (fsync on, default
# timings) with skiff-bench, and optionally a three-member etcd 3.4 cluster
# with etcd's own benchmark tool, using the same flags for both.  It prints
# figures and never fails a build: a step that fails prints why and the
# script goes on.
#
#   bench/cluster-bench.sh [BUILD_DIR]        (default build/release)
# Env:
#   BENCH_DIR   scratch dir for data and logs (default /tmp/skiff-cluster-bench)
#   BASE_PORT   skiffd client ports BASE..BASE+2, peers BASE+10.. (default 24790)
#   ETCD=1      also run etcd: ETCD_TOOLS names the etcd-bench tools
#               directory (cluster.sh start3/wipe), ETCD_BENCHMARK etcd's
#               own benchmark binary
#   QUICK=1     a tenth of the request totals, for a smoke run
#   REPS=N      run every row N times and print the run with the median
#               throughput (default 3)
#
# Rows: put with 1 client to the leader (etcd's --target-leader; skiff-bench
# has no such flag, so it is given the leader's endpoint alone), put with 256
# clients to the leader, range of one key linearizable and serializable with
# 256 clients over all members, range linearizable with 1000 clients.
set -uo pipefail
build=${1:-build/release}
bdir=${BENCH_DIR:-/tmp/skiff-cluster-bench}
base=${BASE_PORT:-24790}
div=1
[ "${QUICK:-0}" = 1 ] && div=10
skiffd=$build/server/skiffd
skiffctl=$build/cli/skiffctl
bench=$build/bench/skiff-bench
floor=$build/bench/skiff-fsync-floor
etcd_tools=${ETCD_TOOLS:-}
etcd_benchmark=${ETCD_BENCHMARK:-}
# cluster.sh reads ETCD as the path of the etcd binary; ours is a switch.
etcd_cluster() { env -u ETCD "$etcd_tools/cluster.sh" "$@"; }

for b in "$skiffd" "$skiffctl" "$bench"; do
    [ -x "$b" ] || { echo "missing $b: cmake --build $build first" >&2; exit 0; }
done

pids=()
cleanup() {
    for p in "${pids[@]}"; do
        kill -9 "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true # reaped quietly: no "Killed" line
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM # so the EXIT trap runs on ^C and kill too

all="127.0.0.1:$base,127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2))"
initial="b1=http://127.0.0.1:$((base + 10)),b2=http://127.0.0.1:$((base + 11)),b3=http://127.0.0.1:$((base + 12))"

# One line per run, parsed from the etcd-style report both tools print.
summ() {
    awk '/Requests\/sec/{r=$2} /50% in/{p50=$3} /99% in/{p99=$3}
         END{printf "%8.0f req/s  p50 %7.2f ms  p99 %7.2f ms\n", r, p50*1000, p99*1000}'
}
row() { # label, tool, args...
    local label=$1 tool=$2; shift 2
    local out lines="" i
    for i in $(seq "${REPS:-3}"); do
        out=$("$tool" "$@" 2>&1)
        if ! printf '%s\n' "$out" | grep -q 'Requests/sec'; then
            printf '  %-30s failed: %s\n' "$label" "$(printf '%s\n' "$out" | tail -1)"
            return
        fi
        lines="$lines$(printf '%s\n' "$out" | summ)
"
    done
    # The run with the median throughput (runs sorted by req/s).
    printf '  %-30s %s\n' "$label" "$(printf '%s' "$lines" | sort -n |
        awk '{l[NR]=$0} END{print l[int((NR+1)/2)]}')"
}

start_skiff() {
    rm -rf "$bdir/skiff"
    mkdir -p "$bdir/skiff"
    for i in 0 1 2; do
        "$skiffd" --name "b$((i + 1))" --data-dir "$bdir/skiff/b$((i + 1))" \
            --listen-client-urls "127.0.0.1:$((base + i))" \
            --advertise-client-urls "http://127.0.0.1:$((base + i))" \
            --listen-peer-urls "http://127.0.0.1:$((base + 10 + i))" \
            --initial-advertise-peer-urls "http://127.0.0.1:$((base + 10 + i))" \
            --initial-cluster "$initial" --initial-cluster-state new \
            --initial-cluster-token skiff-bench --log-level warn \
            2>>"$bdir/skiff/b$((i + 1)).log" &
        pids+=($!)
    done
    # Poll until elected and every member has published its client
    # address (no event to wait on), bounded.
    for _ in $(seq 600); do
        "$skiffctl" --endpoints "$all" endpoint health >/dev/null 2>&1 &&
            [ "$("$skiffctl" --endpoints "$all" member list 2>/dev/null |
                grep -c 'http://127.0.0.1:[0-9]*, http')" = 3 ] && return 0
        sleep 0.05
    done
    echo "skiffd cluster did not become healthy; logs in $bdir/skiff" >&2
    return 1
}
stop_skiff() { cleanup; pids=(); }

# The leader's client endpoint, from the IS LEADER column.
skiff_leader() {
    "$skiffctl" --endpoints "$all" endpoint status -w table 2>/dev/null |
        awk -F'|' '$6 ~ /true/ {gsub(/ /, "", $2); print $2}'
}

# The put rows: $1 the tool, $2 the leader's endpoint.
matrix() {
    local tool=$1 leader=$2 t1=$((2000 / div)) t2=$((60000 / div))
    local put="put --key-size=8 --sequential-keys --key-space-size=100000 --val-size=256"
    row "put, 1 client (leader)" "$tool" --endpoints="$leader" --conns=1 --clients=1 $put --total=$t1
    row "put, 256 clients (leader)" "$tool" --endpoints="$leader" --conns=100 --clients=256 $put --total=$t2
}
# The range rows: $1 the tool, $2 every member's endpoint.
range_matrix() {
    local tool=$1 eps=$2 t3=$((100000 / div))
    row "range l, 256 clients (all)" "$tool" --endpoints="$eps" --conns=100 --clients=256 range rangekey --consistency=l --total=$t3
    row "range s, 256 clients (all)" "$tool" --endpoints="$eps" --conns=100 --clients=256 range rangekey --consistency=s --total=$t3
    row "range l, 1000 clients (all)" "$tool" --endpoints="$eps" --conns=100 --clients=1000 range rangekey --consistency=l --total=$t3
}
rangekey_value() { head -c 256 /dev/zero | tr '\0' v; }

mkdir -p "$bdir"
echo "== disk floor ($bdir)"
if [ -x "$floor" ]; then "$floor" "$bdir" 1000 | sed 's/^/  /'; else echo "  ($floor not built)"; fi

echo "== skiffd, 3 members on loopback (fsync on), $build"
if start_skiff; then
    leader=$(skiff_leader)
    echo "  leader: ${leader:-unknown}"
    matrix "$bench" "${leader:-$all}"
    # A fresh cluster before the reads: the put rows leave a lot of
    # history, and a follower still applying it skews reads.
    stop_skiff
    if start_skiff; then
        "$skiffctl" --endpoints "$all" put rangekey "$(rangekey_value)" >/dev/null
        range_matrix "$bench" "$all"
    fi
    stop_skiff
fi

echo "== etcd 3.4, 3 members on loopback"
if [ "${ETCD:-0}" != 1 ]; then
    echo "  skipped (set ETCD=1, ETCD_TOOLS and ETCD_BENCHMARK to run it)"
elif [ ! -x "$etcd_tools/cluster.sh" ] || [ ! -x "$etcd_benchmark" ]; then
    echo "  not available: ETCD_TOOLS/cluster.sh or ETCD_BENCHMARK missing,"
    echo "  then: ETCD=1 $0 $build"
else
    eall=127.0.0.1:23791,127.0.0.1:23792,127.0.0.1:23793
    etcd_cluster wipe >/dev/null 2>&1
    if etcd_cluster start3 >/dev/null; then
        # etcd's tool finds the leader itself.
        row "put, 1 client (leader)" "$etcd_benchmark" --endpoints="$eall" --target-leader --conns=1 --clients=1 put --key-size=8 --sequential-keys --key-space-size=100000 --val-size=256 --total=$((2000 / div))
        row "put, 256 clients (leader)" "$etcd_benchmark" --endpoints="$eall" --target-leader --conns=100 --clients=256 put --key-size=8 --sequential-keys --key-space-size=100000 --val-size=256 --total=$((60000 / div))
        etcd_cluster wipe >/dev/null 2>&1
        etcd_cluster start3 >/dev/null
        ETCDCTL_API=3 etcdctl --endpoints="$eall" put rangekey "$(rangekey_value)" >/dev/null
        range_matrix "$etcd_benchmark" "$eall"
    fi
    etcd_cluster wipe >/dev/null 2>&1
fi
exit 0
