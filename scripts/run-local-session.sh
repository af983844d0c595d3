#!/usr/bin/env bash
# A complete local support session on this machine: a relay, a host sharing its X screen, and a
# technician's viewer that pairs by one-time code, types into a terminal on the host and saves the host's
# screen as a PNG. Without a display (a server, CI) it starts a virtual one (Xvfb) with a terminal on it.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=packages.sh
. scripts/packages.sh
tether_ensure_packages "${TETHER_BUILD_PACKAGES[@]}" "${TETHER_TEST_PACKAGES[@]}"

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
if [ -z "${DISPLAY:-}" ]; then
    Xvfb -displayfd 1 -screen 0 1280x800x24 -noreset -nolisten tcp >"$work/xvfb.out" 2>/dev/null &
    pids+=($!)
    for _ in $(seq 100); do [ -s "$work/xvfb.out" ] && break; sleep 0.05; done
    export DISPLAY=":$(cat "$work/xvfb.out")"
    xsetroot -solid '#336699'
    echo "0. No display here: started a virtual one ($DISPLAY) with a terminal to share"
fi
xterm -geometry 90x24+60+60 -title "Tether demo: the user's terminal" &
pids+=($!)
sleep 1
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
    --click 300,200 --type "echo Hello from your technician
" --stay-secs 1 --snapshot "$snapshot"
await_line ended "$work/host.out" >/dev/null
echo "4. The technician clicked into the terminal and typed a command; the host logged:"
echo "   $(tail -n 1 "$work/host.log")"
echo "Done. The host's screen as the technician saw it: $snapshot"
