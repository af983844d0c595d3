#!/usr/bin/env bash
# A complete local support session on this machine: a relay, a host sharing an X screen, and the
# technician's viewer window connected to it by one-time code.
#
# With a desktop (DISPLAY set): the host shares your screen and the viewer window opens on it; use it,
# then close the window to end. Without one (a server, CI): two virtual displays (Xvfb) stand in for the
# user's screen (with a terminal) and the technician's; the script clicks into the remote terminal
# through the viewer window, types a command, and saves what the technician saw as tether-viewer.png.
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
    # Displays are started in command substitutions (subshells), so their pids are kept in a file.
    [ -f "$work/xvfb.pids" ] && mapfile -t -O "${#pids[@]}" pids <"$work/xvfb.pids"
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

# Start a virtual display of WIDTHxHEIGHT and print its DISPLAY value.
start_xvfb() {
    local out="$work/xvfb-$1.out"
    Xvfb -displayfd 1 -screen 0 "$1x24" -noreset -nolisten tcp >"$out" 2>/dev/null &
    echo $! >>"$work/xvfb.pids"
    for _ in $(seq 100); do [ -s "$out" ] && break; sleep 0.05; done
    echo ":$(cat "$out")"
}

"$bin/tether-relay" --listen 127.0.0.1:0 --data-dir "$work/relay" >"$work/relay.out" 2>"$work/relay.log" &
pids+=($!)
relay=$(await_line listening "$work/relay.out")
headless_demo=false
if [ -z "${DISPLAY:-}" ]; then
    headless_demo=true
    user_display=$(start_xvfb 1280x800)
    tech_display=$(start_xvfb 1600x1000)
    DISPLAY=$user_display xsetroot -solid '#336699'
    echo "0. No display here: the user's screen is virtual display $user_display (with a terminal), the technician's $tech_display"
else
    user_display=$DISPLAY
    tech_display=$DISPLAY
fi
DISPLAY=$user_display xterm -geometry 60x20+800+100 -title "Tether demo: the user's terminal" &
pids+=($!)
sleep 1
fingerprint=$(await_line fingerprint "$work/relay.out")
echo "1. Relay listening on $relay (certificate $fingerprint)"

# The user's side: the host window (it also prints `code …` and `connected …` for scripts like this one).
DISPLAY=$user_display HOME=${HOME:-/root} "$bin/tether-host" --relay "$relay" --relay-fingerprint "$fingerprint" \
    >"$work/host.out" 2>"$work/host.log" &
pids+=($!)
code=$(await_line code "$work/host.out")
echo "2. The host window shows the code the user reads out: $code"

echo "3. The technician's window connects with the code; the user is asked to allow it..."
viewer_args=(--relay "$relay" --relay-fingerprint "$fingerprint" --code "$code" --name "Demo Technician")
if ! $headless_demo; then
    echo "   Click Allow in the host window. Close the viewer window to end."
    "$bin/tether-viewer" "${viewer_args[@]}"
    echo "Done: the viewer window was closed, the session ended."
    exit 0
fi
DISPLAY=$tech_display XDG_RUNTIME_DIR=$work TETHER_VIEWER_CONFIG=$work/viewer.json \
    "$bin/tether-viewer" "${viewer_args[@]}" 2>"$work/viewer.log" &
pids+=($!)
sleep 2
# Nobody is at the virtual display: click the host window's Allow button for the user. The button takes
# clicks once the question has been readable for a moment, so click again until the session starts.
for _ in $(seq 10); do
    DISPLAY=$user_display xdotool mousemove 102 445 click 1
    for _ in $(seq 15); do grep -q '^connected ' "$work/host.out" && break 2; sleep 0.1; done
done
await_line connected "$work/host.out" >/dev/null
echo "4. The user allowed it; the technician sees the user's screen."
sleep 2
window=$(DISPLAY=$tech_display xdotool search --name "Tether Viewer" | head -n 1)
DISPLAY=$tech_display xdotool windowfocus "$window" mousemove 1010 300 click 1
sleep 0.5
DISPLAY=$tech_display xdotool type --delay 30 "echo Hello from your technician"
DISPLAY=$tech_display xdotool key Return
sleep 1.5
DISPLAY=$tech_display import -window "$window" "$PWD/tether-viewer.png"
host_window=$(DISPLAY=$user_display xdotool search --name "share your screen" | head -n 1)
DISPLAY=$user_display import -window "$host_window" "$PWD/tether-host.png"
echo "5. Through the viewer window the technician clicked into the user's terminal and typed a command."
echo "Done. What the technician saw: $PWD/tether-viewer.png; the user's host window: $PWD/tether-host.png"
