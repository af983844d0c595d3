#!/usr/bin/env bash
# A complete local support session on this machine: a relay, a host sharing its (test-pattern) screen, and
# a technician's viewer that pairs by one-time code, saves the host's screen as a PNG and types a greeting.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=packages.sh
. scripts/packages.sh
tether_ensure_packages "${TETHER_BUILD_PACKAGES[@]}"

echo "Building Tether (the first build takes a few minutes)..." >&2
cargo build --workspace --bins --locked --quiet
bin="${CARGO_TARGET_DIR:-target}/debug"
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# Wait for a line "PREFIX value" in FILE and print the value.
await_line() {
    local prefix=$1 file=$2
    for _ in $(seq 200); do
        local value
        value=$(awk -v p="$prefix" '$1 == p { print $2; exit }' "$file" 2>/dev/null)
        if [ -n "$value" ]; then echo "$value"; return 0; fi
        sleep 0.05
    done
    echo "timed out waiting for '$prefix' in $file" >&2
    cat "$file" >&2
    return 1
}

"$bin/tether-relay" --listen 127.0.0.1:0 --data-dir "$work/relay" >"$work/relay.out" 2>"$work/relay.log" &
pids+=($!)
relay=$(await_line listening "$work/relay.out")
fingerprint=$(await_line fingerprint "$work/relay.out")
echo "1. Relay listening on $relay (certificate $fingerprint)"

"$bin/tether-host" --relay "$relay" --relay-fingerprint "$fingerprint" --headless --grant view,control \
    >"$work/host.out" 2>"$work/host.log" &
pids+=($!)
code=$(await_line code "$work/host.out")
echo "2. Host is waiting; the user reads out the code: $code"

snapshot="$PWD/tether-session.png"
echo "3. Technician connects with the code..."
"$bin/tether-viewer" --relay "$relay" --relay-fingerprint "$fingerprint" --code "$code" --name "Demo Technician" \
    --snapshot "$snapshot" --click 640,360 --type "Hello from your technician"
await_line ended "$work/host.out" >/dev/null
echo "4. The host received, over the end-to-end encrypted session:"
grep '^input ' "$work/host.out" | sed 's/^/     /'
echo "   and logged: $(tail -n 1 "$work/host.log")"
echo "Done. The host's screen as the technician saw it: $snapshot"
