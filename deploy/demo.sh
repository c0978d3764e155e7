#!/usr/bin/env bash
# The main job of `make demo`: a store member (skiffd) on loopback with a
# data dir of its own, driven with skiffctl the way an etcd user would:
# writes, reads, a transaction, a lease, a watch receiving every event,
# then a SIGKILL and a restart from the data dir with everything intact.
#   deploy/demo.sh BUILD_DIR [DATA_DIR]
set -euo pipefail
build=${1:?usage: demo.sh BUILD_DIR [DATA_DIR]}
dir=${2:-.skiff-demo}
port=${SKIFF_DEMO_PORT:-23790}
mport=$((port + 1))
skiffd=$build/server/skiffd
ctl() { "$build/cli/skiffctl" --endpoints "127.0.0.1:$port" "$@"; }
say() { printf '\n\033[1m$ skiffctl %s\033[0m\n' "$*"; }
run() { say "$*"; ctl "$@"; }

pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

start() {
    "$skiffd" --name demo --data-dir "$dir/data" \
        --listen-client-urls "127.0.0.1:$port" \
        --listen-metrics-urls "127.0.0.1:$mport" --log-level warn &
    server=$!
    pids+=("$server")
    for _ in $(seq 200); do
        ctl endpoint health >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "skiffd did not come up" >&2
    exit 1
}

rm -rf "$dir"
mkdir -p "$dir"
echo "Starting skiffd: data in $dir/data, clients on 127.0.0.1:$port," \
     "metrics on 127.0.0.1:$mport"
start
run endpoint status -w table

# From revision 1, so the watcher sees every event whenever it connects.
say "watch --prefix /demo/ --prev-kv --rev 1   (in the background)"
ctl watch --prefix /demo/ --prev-kv --rev 1 >"$dir/watch.out" 2>&1 &
watcher=$!
pids+=("$watcher")

run put /demo/greeting hello
run put /demo/target world
run get /demo/ --prefix
run get /demo/greeting -w json
say "txn   (if version(/demo/greeting) = 1 then put greeting, put audit)"
printf 'version("/demo/greeting") = "1"\n\nput /demo/greeting "hello again"\nput /demo/audit "changed in one txn"\n\nput /demo/audit "compare failed"\n' |
    ctl txn
lease=$(ctl lease grant 60 | awk '{print $2}')
say "lease grant 60"
echo "lease $lease granted with TTL(60s)"
run put /demo/session alive --lease="$lease"
run lease timetolive "$lease" --keys
run del /demo/target
run lease revoke "$lease"
run get /demo/ --prefix --keys-only

# Wait for the watcher to have seen the last revision, then show it.
rev=$(ctl endpoint status -w json | sed -n 's/.*"revision":\([0-9]*\).*/\1/p' | head -1)
for _ in $(seq 200); do grep -q /demo/session "$dir/watch.out" &&
    [ "$(grep -c '^DELETE' "$dir/watch.out")" -ge 2 ] && break; sleep 0.05; done
kill "$watcher" 2>/dev/null || true
printf '\n\033[1mWhat the watcher received (revision %s is the last):\033[0m\n' "$rev"
cat "$dir/watch.out"

printf '\n\033[1mSIGKILL skiffd, restart it from %s/data:\033[0m\n' "$dir"
kill -9 "$server"
wait "$server" 2>/dev/null || true
start
run get /demo/ --prefix
run endpoint hashkv -w table
run endpoint health
kill -TERM "$server"
wait "$server" 2>/dev/null || true
echo
echo "Done: skiffd stopped; its data stays in $dir/data."
