#!/usr/bin/env bash
# Makes sure the Debian packages skiff builds and runs with are installed.
# As root it installs what is missing; otherwise it prints the one
# apt-get line that would, and fails.
set -euo pipefail
missing=()
for p in "$@"; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$st" = "installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
    echo "deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    echo "deps: missing packages; run as root:"
    echo "  apt-get install -y ${missing[*]}"
    exit 1
fi
