#!/usr/bin/env bash
# client_install: installs libskiff (cmake --install, component "skiff")
# into a temporary prefix, compiles examples/client_example.c against the
# INSTALLED headers and libraries through pkg-config, once against the
# shared and once against the static library, and runs both against a
# real skiffd on a free loopback port.
#
# Usage: client_install.sh BUILD_DIR SOURCE_DIR SKIFFD [EXTRA_CFLAGS]
set -euo pipefail

build=$1 src=$2 skiffd=$3 extra=${4:-}
if [ ! -x "$skiffd" ]; then
    echo "client_install: skiffd not found at $skiffd" >&2
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/skiff-install.XXXXXX")
pid=
cleanup() {
    if [ -n "$pid" ]; then
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

cmake --install "$build" --prefix "$tmp/prefix" --component skiff >/dev/null
pc=$(dirname "$(find "$tmp/prefix" -name skiff.pc | head -n1)")
[ -n "$pc" ] || { echo "client_install: skiff.pc not installed" >&2; exit 1; }
export PKG_CONFIG_PATH=$pc
libdir=$(pkg-config --variable=libdir skiff)
test -f "$(pkg-config --variable=includedir skiff)/skiff.h"

# shellcheck disable=SC2086
cc -std=c11 -Wall -Wextra -Werror $extra \
    "$src/examples/client_example.c" \
    $(pkg-config --cflags --libs skiff) -o "$tmp/example_shared"
# shellcheck disable=SC2086
cc -std=c11 -Wall -Wextra -Werror $extra \
    "$src/examples/client_example.c" $(pkg-config --cflags skiff) \
    "$libdir/libskiff.a" $(pkg-config --static --libs-only-l skiff | \
        sed 's/-lskiff//') -lpthread -o "$tmp/example_static"

# A free port: let the kernel pick one, then start skiffd on it; retry
# if someone else took it in between.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
        echo $((20000 + RANDOM % 30000))
}
for attempt in 1 2 3 4 5; do
    port=$(free_port)
    mport=$(free_port)
    mkdir -p "$tmp/data$attempt"
    "$skiffd" --name n1 --data-dir "$tmp/data$attempt" \
        --listen-client-urls "127.0.0.1:$port" \
        --listen-metrics-urls "127.0.0.1:$mport" --log-level warn &
    pid=$!
    up=
    for _ in $(seq 1 1000); do
        if ! kill -0 "$pid" 2>/dev/null; then break; fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            up=1
            break
        fi
        sleep 0.01
    done
    [ -n "$up" ] && break
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=
done
[ -n "$pid" ] || { echo "client_install: skiffd did not start" >&2; exit 1; }

LD_LIBRARY_PATH=$libdir "$tmp/example_shared" "127.0.0.1:$port"
"$tmp/example_static" "127.0.0.1:$port"
echo "client_install: ok"
