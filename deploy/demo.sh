#!/usr/bin/env bash
# The main job of `make demo`: a three-member skiff cluster on loopback,
# driven with skiffctl the way an etcd operator would.  It shows the
# members, writes, keeps a watch running, SIGKILLs the leader, shows the
# survivors electing a new one and taking more writes, checks that the data
# and the watch's events came through without a gap, then restarts the
# killed member and shows it caught up (same raft index, same hash).
#   deploy/demo.sh BUILD_DIR [DATA_DIR]
# Ports: clients on SKIFF_DEMO_PORT (23790) + 0..2, peers on + 10..12.
set -euo pipefail
build=${1:?usage: demo.sh BUILD_DIR [DATA_DIR]}
dir=${2:-.skiff-demo}
base=${SKIFF_DEMO_PORT:-23790}
skiffd=$build/server/skiffd
skiffctl=$build/cli/skiffctl

cport() { echo $((base + $1)); }
pport() { echo $((base + 10 + $1)); }
all="127.0.0.1:$(cport 0),127.0.0.1:$(cport 1),127.0.0.1:$(cport 2)"
initial="n1=http://127.0.0.1:$(pport 0),n2=http://127.0.0.1:$(pport 1),n3=http://127.0.0.1:$(pport 2)"

ctl() { "$skiffctl" --endpoints "$all" "$@"; }
ctl_at() { local i=$1; shift; "$skiffctl" --endpoints "127.0.0.1:$(cport "$i")" "$@"; }
heading() { printf '\n\033[1;34m== %s\033[0m\n' "$*"; }
say() { printf '\033[1m$ skiffctl %s\033[0m\n' "$*"; }
run() { say "$*"; ctl "$@"; }
die() { echo "demo: $*" >&2; exit 1; }

# Every process this script starts is killed on exit, however it exits.
mpid=(0 0 0)
watcher=0
cleanup() {
    for p in "${mpid[@]}" "$watcher"; do
        [ "$p" != 0 ] && kill -9 "$p" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM # so the EXIT trap runs on ^C and kill too

start_member() { # index, initial-cluster-state
    local i=$1 n=n$(($1 + 1))
    "$skiffd" --name "$n" --data-dir "$dir/$n" \
        --listen-client-urls "127.0.0.1:$(cport "$i")" \
        --advertise-client-urls "http://127.0.0.1:$(cport "$i")" \
        --listen-peer-urls "http://127.0.0.1:$(pport "$i")" \
        --initial-advertise-peer-urls "http://127.0.0.1:$(pport "$i")" \
        --initial-cluster "$initial" --initial-cluster-state "$2" \
        --initial-cluster-token skiff-demo --log-level warn \
        2>>"$dir/$n.log" &
    mpid[$i]=$!
}

# Polls (bounded) until cmd succeeds; an election has no event to wait on.
poll() { # seconds, what, cmd...
    local secs=$1 what=$2; shift 2
    for _ in $(seq $((secs * 20))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    die "$what did not happen within ${secs}s (logs in $dir/*.log)"
}

# Elected, and every member has published its client address (member
# list shows it only once the member's own announcement is applied).
cluster_ready() {
    ctl endpoint health >/dev/null 2>&1 &&
        [ "$(ctl member list 2>/dev/null | grep -c 'http://127.0.0.1:[0-9]*, http')" = 3 ]
}

# Index (0..2) of the member that the live members call leader, or fails.
leader_index() {
    local out
    out=$(ctl endpoint status -w table 2>/dev/null || true)
    local ep
    ep=$(printf '%s\n' "$out" | awk -F'|' '$6 ~ /true/ {gsub(/ /, "", $2); print $2}')
    [ -n "$ep" ] || return 1
    local port=${ep##*:}
    echo $((port - base))
}

# The raft applied index of every listed member, one line each.
applied_indexes() {
    ctl endpoint status -w json 2>/dev/null |
        grep -o '"raftAppliedIndex":[0-9]*' | cut -d: -f2
}
all_caught_up() {
    local idx
    idx=$(applied_indexes)
    [ "$(printf '%s\n' "$idx" | grep -c .)" = 3 ] &&
        [ "$(printf '%s\n' "$idx" | sort -u | wc -l)" = 1 ]
}

rm -rf "$dir"
mkdir -p "$dir"

heading "Start three members (data in $dir/n1..n3, clients on $all)"
for i in 0 1 2; do start_member "$i" new; done
poll 30 "a leader election" cluster_ready
run member list -w table
run endpoint status --cluster -w table

# The watch connects to the leader first, so killing the leader below
# cuts its connection and it has to resume on a survivor.
old=$(leader_index) || die "no leader"
weps="127.0.0.1:$(cport "$old")"
for i in 0 1 2; do [ "$i" = "$old" ] || weps="$weps,127.0.0.1:$(cport "$i")"; done
heading "Watch /demo/ from revision 1 in the background, on the leader n$((old + 1))"
printf '\033[1m$ skiffctl --endpoints %s watch --prefix /demo/ --rev 1 > %s &\033[0m\n' \
    "$weps" "$dir/watch.out"
"$skiffctl" --endpoints "$weps" watch --prefix /demo/ --rev 1 \
    >"$dir/watch.out" 2>"$dir/watch.err" &
watcher=$!

heading "Write through whichever member answers"
for k in 1 2 3 4 5; do run put "/demo/k$k" "before-$k"; done

[ "$(leader_index)" = "$old" ] || old=$(leader_index) || die "no leader"
heading "SIGKILL the leader, n$((old + 1)) (pid ${mpid[$old]})"
kill -9 "${mpid[$old]}"
wait "${mpid[$old]}" 2>/dev/null || true
mpid[$old]=0

heading "The two survivors elect a new leader"
new_leader() { local l; l=$(leader_index) && [ "$l" != "$old" ]; }
poll 30 "a new election" new_leader
new=$(leader_index)
echo "new leader: n$((new + 1))"
say "endpoint status -w table   (n$((old + 1)) is down)"
ctl endpoint status -w table 2>&1 || true

heading "Writes go on"
for k in 6 7 8 9 10; do run put "/demo/k$k" "after-$k"; done
run get /demo/ --prefix

heading "The watch saw every write once, in order"
watch_complete() { grep -qx /demo/k10 "$dir/watch.out"; }
poll 30 "the watch receiving /demo/k10" watch_complete
cat "$dir/watch.out"
got=$(grep -x '/demo/k[0-9]*' "$dir/watch.out" | tr '\n' ' ')
want=$(for k in $(seq 10); do printf '/demo/k%s ' "$k"; done)
[ "$got" = "$want" ] || die "watch events differ: got [$got], want [$want]"
echo "-> 10 events, k1..k10, no gap and no duplicate"

heading "Restart n$((old + 1)) from its data dir; it catches up"
start_member "$old" existing
poll 60 "n$((old + 1)) catching up" all_caught_up
run endpoint status --cluster -w table
run endpoint hashkv --cluster -w table
hashes=$(ctl endpoint hashkv --cluster -w json | grep -o '"hash":[0-9]*' | sort -u | wc -l)
[ "$hashes" = 1 ] || die "members disagree on HashKV"
echo "-> same raft applied index and the same HashKV on all three members"

heading "Stop the cluster"
# The watcher is done; end it quietly (wait swallows bash's "Killed").
{ kill -9 "$watcher" && wait "$watcher"; } 2>/dev/null || true
watcher=0
for i in 0 1 2; do kill -TERM "${mpid[$i]}" 2>/dev/null || true; done
for i in 0 1 2; do wait "${mpid[$i]}" 2>/dev/null || true; mpid[$i]=0; done
echo "Done: data stays in $dir/n1..n3, member logs in $dir/*.log."
