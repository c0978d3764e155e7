#!/bin/sh
# The raft core must stay a pure state machine (STYLE.md section 6): no
# libuv, LMDB, sockets, files, threads or clocks, no rand(), no raw heap
# calls.  This check fails the build's tests when a core file breaks that.
set -u
dir=${1:?usage: check_pure.sh RAFT_DIR}
bad=0
allowed='assert|errno|stdbool|stddef|stdint|stdio|string|limits|stdarg|inttypes|cm|raft|raft_int'
for f in "$dir"/*.c "$dir"/*.h; do
    # Every include must be on the allowed list.
    grep -nE '^[[:space:]]*#[[:space:]]*include' "$f" |
        grep -vE "[<\"]($allowed)\.h[>\"]" | sed "s|^|$f: forbidden include: |" |
        grep . && bad=1
    # No clock, randomness, threads, raw heap or file I/O calls.
    grep -nE '\b(rand|srand|random|time|clock_gettime|gettimeofday|pthread_[a-z_]+|malloc|calloc|realloc|free|fopen|open|read|write|fsync|fdatasync|socket)[[:space:]]*\(' "$f" |
        grep -vE '^[0-9]+:[[:space:]]*(\*|/\*|//)' |
        grep -vE '(cm_|raft_|->|\.)(rand|malloc|calloc|realloc|free|read|write)' |
        sed "s|^|$f: forbidden call: |" | grep . && bad=1
done
if [ $bad -ne 0 ]; then
    echo "raft core is not pure (see above)"
    exit 1
fi
echo "raft core is pure: $(ls "$dir"/*.c "$dir"/*.h | wc -l) files checked"
