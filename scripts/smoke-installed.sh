#!/usr/bin/env bash
# Smoke test of the Debian packages, run by CI as root on a machine without a display:
#   1. lintian (no errors) on the three .deb files; desktop-file-validate on the entries they carry;
#   2. apt-get install of the three;
#   3. the relay started with the command line of its installed systemd unit (listening on loopback);
#   4. the organization's settings from `tether-relay client-config`, installed as /etc/tether/host.toml;
#   5. the installed host with no flag but --headless (no display: it shares its test pattern) shows a code;
#   6. the installed viewer, given only that code and its technician token, saves a snapshot of the screen.
# Usage: scripts/smoke-installed.sh [DIR with the .deb files, default target/debian]
set -euo pipefail
cd "$(dirname "$0")/.."
debs="$(cd "${1:-${CARGO_TARGET_DIR:-target}/debian}" && pwd)"  # absolute: apt-get takes ./x.deb or /x.deb, not x.deb
work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -f /etc/tether/host.toml
    rm -rf "$work"
}
trap cleanup EXIT
step() { echo "smoke: $*" >&2; }
fail() { echo "smoke: FAILED: $*" >&2; exit 1; }

step "lintian"
lintian --fail-on error --suppress-tags no-manual-page "$debs"/tether-host_*.deb "$debs"/tether-viewer_*.deb \
    "$debs"/tether-relay_*.deb

step "apt-get install"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$debs"/tether-host_*.deb \
    "$debs"/tether-viewer_*.deb "$debs"/tether-relay_*.deb > "$work/apt.log" 2>&1 || { cat "$work/apt.log"; fail "install"; }
for f in /usr/bin/tether-host /usr/bin/tether-viewer /usr/bin/tether-relay /etc/tether-relay/relay.toml \
    /usr/share/applications/tether-host.desktop /usr/share/applications/tether-viewer.desktop \
    /usr/share/icons/hicolor/scalable/apps/tether-host.svg /usr/share/doc/tether-host/examples/host.toml; do
    [ -e "$f" ] || fail "$f is not installed"
done
desktop-file-validate /usr/share/applications/tether-host.desktop /usr/share/applications/tether-viewer.desktop
unit="$(dpkg -L tether-relay | grep '/systemd/system/tether-relay.service$')" || fail "no systemd unit"

wait_line() { # FILE PREFIX: the rest of the first line "PREFIX rest" in FILE, waiting up to 30 s
    for _ in $(seq 300); do
        line="$(grep -m1 "^$2 " "$1" 2>/dev/null || true)"
        [ -n "$line" ] && { echo "${line#"$2 "}"; return 0; }
        sleep 0.1
    done
    cat "$1" "$1.err" >&2 2>/dev/null || true
    fail "no '$2' line in $1"
}

step "relay from $unit"
read -r -a relay_cmd <<< "$(sed -n 's/^ExecStart=//p' "$unit")"
[ "${relay_cmd[0]}" = /usr/bin/tether-relay ] || fail "the unit starts ${relay_cmd[0]}"
"${relay_cmd[@]}" --listen 127.0.0.1:0 > "$work/relay" 2> "$work/relay.err" &
pids+=($!)
addr="$(wait_line "$work/relay" listening)"
config=(--config /etc/tether-relay/relay.toml --data-dir /var/lib/tether-relay)
# A machine that ran this before has the account: a new token for it then.
account="$(tether-relay "${config[@]}" user add smoke-test 2>"$work/user.err" ||
    tether-relay "${config[@]}" user reissue smoke-test 2>>"$work/user.err")" || fail "account: $(cat "$work/user.err")"
token="$(sed -n 's/^token //p' <<< "$account")"
[ -n "$token" ] || fail "no technician token: $(cat "$work/user.err")"

step "settings file from client-config"
install -d -m 0755 /etc/tether
tether-relay "${config[@]}" client-config --address "$addr" --organization "Smoke Test IT" \
    --permissions view > /etc/tether/host.toml
cat /etc/tether/host.toml >&2

step "host with no flags (headless)"
env -u DISPLAY -u WAYLAND_DISPLAY tether-host --headless > "$work/host" 2> "$work/host.err" &
pids+=($!)
code="$(wait_line "$work/host" code)"

step "viewer with only the code"
TETHER_TOKEN="$token" tether-viewer --code "$code" --name "Smoke Test" --snapshot "$work/shot.png" > "$work/viewer"
grep -qx "granted view" "$work/viewer" || fail "viewer: $(cat "$work/viewer")"
verified="$(wait_line "$work/host" verified)"
case "$verified" in smoke-test\ by\ *) ;; *) fail "host: verified $verified" ;; esac
size="$(identify -format '%wx%h' "$work/shot.png")"
[ "$size" = 1280x720 ] || fail "snapshot is $size"
step "passed: code $code, snapshot $size, technician $verified"
